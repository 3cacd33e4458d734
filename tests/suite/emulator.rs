//! The AgentCore Code Interpreter emulator (`code-interpreter-mcp emulator`)
//! driven by boto3, the real AWS SDK for Python
//! (tests/interop/boto3_emulator.py), including its fault injection.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::*;

/// A running emulator, stopped (SIGTERM, then SIGKILL) when dropped.
struct BotoEmulator {
    child: Child,
    url: String,
    sessions_root: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl BotoEmulator {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sessions_root = dir.path().join("sessions");
        let log = dir.path().join("emulator.log");
        let mut child = Command::new(server_bin())
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("CODE_INTERPRETER_WORKDIR_ROOT", &sessions_root)
            .env("CODE_INTERPRETER_PYTHON", test_python())
            .env("CODE_INTERPRETER_NODE", test_node())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let url = line.trim().to_string();
        let mut emu = BotoEmulator {
            child,
            url,
            sessions_root,
            log,
            _dir: dir,
        };
        if !emu.url.starts_with("http://127.0.0.1:") {
            let _ = emu.child.kill();
            panic!(
                "the emulator printed {line:?}, not its URL:\n{}",
                emu.log_text()
            );
        }
        emu
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the boto3 script in `mode` against this emulator.
    fn run_boto3(&self, py: &str, mode: &str) -> String {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/boto3_emulator.py"
        );
        let out = Command::new(py)
            .args([script, &self.url, mode])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("PASS"),
            "boto3 {mode} failed:\n{stdout}\n{stderr}\n--- emulator log ---\n{}",
            self.log_text()
        );
        stdout
    }

    /// SIGTERM, and waits (10 s at most) for a clean exit.
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill with a pid we spawned and a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for BotoEmulator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && self.terminate().is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The Python with boto3, or None (skipped) when there is none.
fn boto3_python() -> Option<String> {
    let Ok(py) = std::env::var("MCP_SDK_PYTHON") else {
        skip("MCP_SDK_PYTHON (a Python with boto3) is not set");
        return None;
    };
    let has = Command::new(&py)
        .args(["-c", "import boto3"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has {
        skip(&format!("{py} cannot import boto3 (pip install boto3)"));
        return None;
    }
    Some(py)
}

#[test]
fn boto3_drives_a_whole_session_and_shutdown_stops_the_rest() {
    let Some(py) = boto3_python() else { return };
    let mut emu = BotoEmulator::start(&[]);
    let out = emu.run_boto3(&py, "scenario");
    eprintln!("{out}");
    // The scenario leaves one session running: SIGTERM must stop it and
    // remove its directory.
    let status = emu.terminate();
    assert!(
        status.is_some_and(|s| s.success()),
        "the emulator did not exit cleanly on SIGTERM ({status:?}):\n{}",
        emu.log_text()
    );
    let left: Vec<_> = std::fs::read_dir(&emu.sessions_root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "session directories left after shutdown: {left:?}"
    );
    assert!(
        emu.log_text().contains("stopped sessions=1"),
        "{}",
        emu.log_text()
    );
}

#[test]
fn boto3_standard_retries_get_through_throttling() {
    let Some(py) = boto3_python() else { return };
    let emu = BotoEmulator::start(&["--fault", "executeCode:throttle:2"]);
    eprintln!("{}", emu.run_boto3(&py, "throttle"));
}

#[test]
fn a_cut_response_is_an_error_and_the_code_ran_once() {
    let Some(py) = boto3_python() else { return };
    let emu = BotoEmulator::start(&["--fault", "executeCode:cut:1"]);
    eprintln!("{}", emu.run_boto3(&py, "cut"));
}

#[test]
fn a_bad_fault_spec_is_refused() {
    let out = Command::new(server_bin())
        .args(["emulator", "--fault", "executeCode:explode"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown fault"), "{stderr}");
}

/// One raw HTTP/1.1 request with the given Host header; the response text.
fn raw_get(url: &str, host: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET /code-interpreters/aws.codeinterpreter.v1/sessions/get?sessionId=X HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out
}

#[test]
fn requests_addressed_to_another_host_are_refused() {
    // A page that rebinds its own name to 127.0.0.1 sends its name as Host.
    let emu = BotoEmulator::start(&[]);
    let refused = raw_get(&emu.url, "attacker.example:80");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("AccessDeniedException"), "{refused}");
    for host in [
        emu.url.trim_start_matches("http://").to_string(),
        "localhost".to_string(),
    ] {
        let answered = raw_get(&emu.url, &host);
        assert!(
            answered.contains("ResourceNotFoundException")
                || answered.contains("ValidationException"),
            "a loopback Host reaches the API ({host}): {answered}"
        );
    }
}
