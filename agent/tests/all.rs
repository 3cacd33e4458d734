//! Integration tests: one binary. The real `code-interpreter-agent` is
//! spawned with the real `code-interpreter-mcp` as its child; only Claude and
//! the AWS endpoints are faked, on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod suite;
