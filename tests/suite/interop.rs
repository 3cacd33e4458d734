//! An independent client: the official Python MCP SDK drives the release
//! binary through every tool (tests/interop/py_sdk_check.py) and through
//! long work (tests/interop/py_sdk_long_work.py).

use std::process::Command;

use super::harness::*;

/// Runs `tests/interop/<script>` with the SDK's Python against the release
/// binary; it must exit 0 and print `done`.
fn run_sdk_script(script: &str, done: &str) {
    let Ok(py) = std::env::var("MCP_SDK_PYTHON") else {
        return skip("MCP_SDK_PYTHON (a Python with the `mcp` package) is not set");
    };
    let root = tempfile::tempdir().unwrap();
    let path = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(py)
        .arg(path)
        .arg(release_bin())
        .env("CODE_INTERPRETER_WORKDIR_ROOT", root.path())
        .env("CODE_INTERPRETER_PYTHON", test_python())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(done), "{stdout}");
}

#[test]
fn official_python_sdk_calls_every_tool() {
    run_sdk_script("py_sdk_check.py", "all tools ok");
}

/// Long work through the same independent client: progress callbacks
/// during a 10 s command, cancellation (state kept, processes gone),
/// background tasks paged with get_task, stop_task, and the foreground
/// budget.
#[test]
fn official_python_sdk_follows_long_work() {
    run_sdk_script("py_sdk_long_work.py", "long work ok");
}

/// The interpreter drivers' own protocol check (tests/drivers/driver_check.py),
/// run with the same Python and Node the sessions use.
#[test]
fn interpreter_drivers_pass_their_protocol_check() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/drivers/driver_check.py");
    let out = Command::new(test_python())
        .arg(script)
        .args(["--python", &test_python(), "--node", &test_node()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "driver check failed:\n{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
