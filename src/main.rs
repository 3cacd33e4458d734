//! Thin entry point: parse flags, log to stderr, run.

use std::process::ExitCode;

use clap::Parser;
use code_interpreter_mcp::backend::local::sandbox;
use code_interpreter_mcp::cli::{Cli, run};

fn main() -> ExitCode {
    // The sandbox helpers re-execute this binary; they run before anything
    // else (no runtime, no logging) so they stay single-threaded and fast.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__sandbox-init") => {
            let spec = args.get(2).and_then(|a| a.to_str()).unwrap_or("");
            sandbox::init::main(spec)
        }
        Some("__sandbox-exec") => sandbox::exec::main(&args[2..]),
        Some("__sandbox-wait") => sandbox::exec::wait_main(&args[2..]),
        _ => {}
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for blocking reads of stdin that may still be parked.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
