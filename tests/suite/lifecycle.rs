//! Sessions: explicit and default, isolation between them, expiry, and
//! nothing left behind when the client goes away.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::*;

#[tokio::test]
async fn sessions_are_separate_and_stop_cleanly() {
    let s = Server::start().await;
    let a = s.ok("start_session", json!({})).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s.ok("start_session", json!({"name": "second"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a, b);
    assert!(a.len() >= 26);
    s.ok("execute_code", json!({"session_id": a, "code": "v = 'A'"}))
        .await;
    s.ok(
        "write_files",
        json!({"session_id": a, "files": [{"path": "f.txt", "text": "A"}]}),
    )
    .await;
    let r = s
        .ok(
            "execute_code",
            json!({"session_id": b, "code": "'v' in globals()"}),
        )
        .await;
    assert_eq!(r["result"], "False");
    let r = s
        .ok("read_files", json!({"session_id": b, "paths": ["f.txt"]}))
        .await;
    assert!(r["files"][0]["error"].is_string());
    // The default session is yet another one.
    let r = s
        .ok("execute_code", json!({"code": "'v' in globals()"}))
        .await;
    assert_eq!(r["result"], "False");
    assert_ne!(r["session_id"], a);

    let r = s.ok("stop_session", json!({"session_id": a})).await;
    assert_eq!(r["stopped"], true);
    let msg = s
        .err("execute_code", json!({"session_id": a, "code": "1"}))
        .await;
    assert!(
        msg.contains("has ended") && msg.contains("start_session"),
        "{msg}"
    );
    let msg = s
        .err("execute_code", json!({"session_id": "nope", "code": "1"}))
        .await;
    assert!(msg.contains("Unknown session"), "{msg}");
    let r = s
        .ok("execute_code", json!({"session_id": b, "code": "2"}))
        .await;
    assert_eq!(r["result"], "2");
}

#[tokio::test]
async fn idle_sessions_expire_with_an_explanation() {
    let s = Server::start_with(&["--idle-timeout", "1"]).await;
    let id = s.ok("start_session", json!({})).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.py("x = 1").await;
    // The reaper checks every 200 ms at this timeout; give it time.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let msg = s
        .err("execute_code", json!({"session_id": id, "code": "1"}))
        .await;
    assert!(msg.contains("idle"), "{msg}");
    let r = s.py("'x' in globals()").await;
    assert_eq!(r["result"], "False");
    assert!(
        r["notes"][0]
            .as_str()
            .unwrap()
            .contains("default session ended"),
        "{r}"
    );
}

fn send(stdin: &mut impl Write, v: serde_json::Value) {
    writeln!(stdin, "{v}").unwrap();
    stdin.flush().unwrap();
}

fn recv(lines: &mut impl Iterator<Item = std::io::Result<String>>, id: i64) -> serde_json::Value {
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["id"] == id {
            return v;
        }
    }
    panic!("no response {id}");
}

/// Those of `pids` still running (not gone, not zombies).
fn alive(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|s| {
                    !s.rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn stdin_eof_ends_the_server_and_every_session_process_within_two_seconds() {
    let root = tempfile::tempdir().unwrap();
    let mut child = Command::new(server_bin())
        .env("CODE_INTERPRETER_WORKDIR_ROOT", root.path())
        .env("CODE_INTERPRETER_PYTHON", test_python())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    send(
        &mut stdin,
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    );
    recv(&mut lines, 1);
    send(
        &mut stdin,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    let call = |id: i64, name: &str, args: serde_json::Value| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":args}});
    send(
        &mut stdin,
        call(2, "execute_code", json!({"code": "import os; os.getpid()"})),
    );
    let r = recv(&mut lines, 2);
    assert_eq!(r["result"]["structuredContent"]["success"], true, "{r}");
    // A second session, and a background process that outlives its command.
    send(&mut stdin, call(3, "start_session", json!({})));
    let sid = recv(&mut lines, 3)["result"]["structuredContent"]["session_id"].clone();
    send(
        &mut stdin,
        call(
            4,
            "execute_command",
            json!({"session_id": sid, "command": "nohup sleep 300 >/dev/null 2>&1 &"}),
        ),
    );
    recv(&mut lines, 4);
    send(
        &mut stdin,
        call(
            5,
            "execute_code",
            json!({"session_id": sid, "code": "import subprocess; p = subprocess.Popen(['sleep', '300'])"}),
        ),
    );
    recv(&mut lines, 5);

    let before = descendants(child.id());
    assert!(
        before.len() >= 4,
        "expected interpreters and sleeps, found {before:?}"
    );

    let t = Instant::now();
    drop(stdin);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "server still running 2 s after stdin EOF"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    loop {
        let left = alive(&before);
        if left.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "session processes left after 2 s: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "server and {} session processes gone {:?} after EOF",
        before.len(),
        t.elapsed()
    );
    // Session directories are removed too.
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn doctor_reports_every_layer_active_and_a_working_smoke_run() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(server_bin())
        .arg("doctor")
        .env("CODE_INTERPRETER_WORKDIR_ROOT", root.path())
        .env("CODE_INTERPRETER_PYTHON", test_python())
        .env("CODE_INTERPRETER_NODE", test_node())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(out.status.success(), "doctor failed:\n{report}");
    for layer in [
        "user namespace",
        "pid namespace",
        "network namespace",
        "mount namespace",
        "seccomp",
        "no_new_privs",
        "rlimits",
        "home directories",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains("[ ok ]") && l.contains(layer)),
            "{layer} not reported active:\n{report}"
        );
    }
    assert!(
        report.contains("[ ok ] python") && report.contains("printed 42"),
        "{report}"
    );
    assert!(report.contains("result: the local backend is ready"));
}

#[test]
fn doctor_fails_when_python_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(server_bin())
        .args(["doctor", "--python", "/nonexistent/python3"])
        .env("CODE_INTERPRETER_WORKDIR_ROOT", root.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "doctor should fail:\n{report}");
    assert!(report.contains("[FAIL] python"), "{report}");
}
