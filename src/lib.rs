//! code-interpreter-mcp: an MCP server over stdio that gives an LLM agent
//! isolated, stateful code-execution sessions.
//!
//! # Layout
//!
//! - [`cli`]: command-line flags (each with an environment twin) and `run`,
//!   which the thin `main` calls.
//! - [`doctor`]: the `doctor` report: isolation layers, interpreters, a smoke run.
//! - [`server`]: the MCP tools, mapping calls onto sessions and shaping results.
//! - [`tools`]: tool parameter and result types, and the `tools/list` entries.
//! - [`session`]: the session registry: ids, the default session, expiry, shutdown.
//! - [`tasks`]: background tasks: calls past the foreground budget, `get_task`, `stop_task`.
//! - [`backend`]: the `Backend`/`Session` seam, and the embedded [`backend::local`]
//!   backend (working directory, interpreters, commands, confined files).
//! - [`output`]: capped output capture with spill files.
//! - [`error`]: the one error type, and how it reaches the client.
//! - [`ids`]: ids that cannot be guessed.
//!
//! Nothing in this crate writes to stdout except the MCP transport.

pub mod backend;
pub mod cli;
pub mod doctor;
pub mod emulator;
pub mod error;
pub mod ids;
pub mod output;
pub mod server;
pub mod session;
pub mod tasks;
pub mod tools;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
