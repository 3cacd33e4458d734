//! execute_code and execute_command through the real server.

use serde_json::{Value, json};

use super::harness::*;

async fn python_state_persists_and_clear_context_resets_it(b: Backend) {
    let s = Server::on(b).await;
    let r = s
        .py("x = 41\ndef inc(v):\n    return v + 1\nimport math")
        .await;
    assert_eq!(r["success"], true, "{r}");
    let r = s.py("print(inc(x))").await;
    assert_eq!(r["stdout"], "42\n");
    assert_eq!(value(&s.py("math.sqrt(16)").await), "4.0");

    let r = s
        .ok("execute_code", json!({"code": "x", "clear_context": true}))
        .await;
    assert_eq!(r["success"], false);
    assert_eq!(r["error"]["name"], "NameError", "{r}");
}

async fn exceptions_are_reported_as_data_with_traceback(b: Backend) {
    let s = Server::on(b).await;
    let r = s
        .call(
            "execute_code",
            json!({"code": "def f():\n    return 1/0\nf()"}),
        )
        .await;
    assert_ne!(
        r.is_error,
        Some(true),
        "user exceptions are not tool errors"
    );
    let v = r.structured_content.unwrap();
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["name"], "ZeroDivisionError");
    let tb = v["error"]["traceback"].as_str().unwrap();
    assert!(tb.contains("return 1/0"), "{tb}");
    assert!(!tb.contains("python_driver"), "{tb}");
}

#[tokio::test]
async fn timeout_interrupts_python_and_keeps_state() {
    let s = Server::start().await;
    s.py("kept = 'still here'").await;
    let started = std::time::Instant::now();
    let r = s
        .ok(
            "execute_code",
            json!({"code": "while True:\n    pass", "timeout_seconds": 1}),
        )
        .await;
    assert!(
        started.elapsed().as_secs_f64() < 4.0,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r["success"], false);
    assert_eq!(r["limit"]["limit"], "wall_time", "{r}");
    assert_eq!(r["limit"]["action"], "interrupted");
    assert_eq!(r["limit"]["state_lost"], false);
    assert_eq!(r["error"]["name"], "KeyboardInterrupt");
    let r = s.py("kept").await;
    assert_eq!(r["result"], "'still here'");
}

#[tokio::test]
async fn timeout_kills_code_that_ignores_interrupts_and_says_state_was_lost() {
    let s = Server::start().await;
    s.py("kept = 1").await;
    let code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)";
    let r = s
        .ok("execute_code", json!({"code": code, "timeout_seconds": 1}))
        .await;
    assert_eq!(r["limit"]["action"], "killed", "{r}");
    assert_eq!(r["limit"]["state_lost"], true);
    // A fresh interpreter takes over: the old variable is gone, the session works.
    let r = s.py("'kept' in globals()").await;
    assert_eq!(r["result"], "False", "{r}");
}

async fn command_reports_exit_code_stdout_and_stderr(b: Backend) {
    let s = Server::on(b).await;
    let r = s
        .ok(
            "execute_command",
            json!({"command": "echo out; echo err >&2; exit 3"}),
        )
        .await;
    assert_eq!(r["stdout"], "out\n");
    assert_eq!(r["stderr"], "err\n");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["success"], false);
    let r = s
        .ok("execute_command", json!({"command": "pwd; echo $HOME"}))
        .await;
    assert_eq!(
        r["stdout"], "/work\n/work\n",
        "the working directory is HOME, at /work"
    );
}

/// Every sandboxed process runs below a relay that mirrors how it ended;
/// the relay re-executes itself as `__sandbox-wait` to give back the memory
/// it used for the setup, and must still report exits and signals exactly.
#[tokio::test]
async fn the_relay_reports_signals_and_leaves_nothing_behind() {
    let s = Server::start().await;
    let r = s
        .ok(
            "execute_command",
            json!({"command": "echo before; kill -TERM $$"}),
        )
        .await;
    assert_eq!(r["stdout"], "before\n", "{r}");
    assert_eq!(r["signal"], "SIGTERM", "{r}");
    assert!(r.get("exit_code").is_none_or(Value::is_null), "{r}");
    assert_eq!(r["success"], false, "{r}");
    let r = s.ok("execute_command", json!({"command": "exit 7"})).await;
    assert_eq!(r["exit_code"], 7, "{r}");

    // With the interpreter warm and no command running, the session is its
    // init processes, the interpreter, and one relay, in its lean form.
    s.py("1").await;
    let cmdlines: Vec<String> = descendants(s.pid)
        .iter()
        .filter_map(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .collect();
    let relays: Vec<&String> = cmdlines
        .iter()
        .filter(|c| c.contains("__sandbox-exec") || c.contains("__sandbox-wait"))
        .collect();
    assert_eq!(
        relays.len(),
        1,
        "one relay, for the interpreter: {cmdlines:#?}"
    );
    assert!(
        relays[0].contains("__sandbox-wait"),
        "the relay re-executed itself: {cmdlines:#?}"
    );
}

#[tokio::test]
async fn command_timeout_interrupts_the_process_tree() {
    let s = Server::start().await;
    let r = s
        .ok(
            "execute_command",
            json!({"command": "sleep 30; echo never", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(r["limit"]["limit"], "wall_time", "{r}");
    assert_eq!(r["success"], false);
    assert!(!r["stdout"].as_str().unwrap().contains("never"));
    let r = s
        .ok("execute_command", json!({"command": "echo alive"}))
        .await;
    assert_eq!(r["stdout"], "alive\n");
}

async fn output_over_the_cap_is_cut_and_saved_in_full(b: Backend) {
    let s = Server::start_on(b, &["--output-limit", "1000"], &[], &[]).await;
    let r = s
        .py("for i in range(20000):\n    print(f'line {i:05d}')")
        .await;
    let stdout = r["stdout"].as_str().unwrap();
    assert!(stdout.len() < 1400, "{}", stdout.len());
    assert!(stdout.starts_with("line 00000\n"));
    assert!(stdout.ends_with("line 19999\n"));
    assert!(stdout.contains("bytes omitted"));
    let total = 20000 * 11;
    assert_eq!(r["truncated"]["stdout_bytes"], total);
    let file = r["truncated"]["stdout_file"].as_str().unwrap().to_string();

    let r = s
        .ok(
            "execute_command",
            json!({"command": format!("wc -c < {file}; sed -n '12345p' {file}")}),
        )
        .await;
    assert_eq!(r["stdout"], format!("{total}\nline 12344\n"));
}

async fn matplotlib_figures_come_back_as_png_images(b: Backend) {
    if !python_has("matplotlib") {
        return skip("matplotlib is not installed for the test Python (set TEST_PYTHON)");
    }
    let s = Server::on(b).await;
    let r = s
        .call(
            "execute_code",
            json!({"code": "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()"}),
        )
        .await;
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["images"], 1);
    let imgs = images(&r);
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].0, "image/png");
    assert!(imgs[0].1.starts_with(b"\x89PNG\r\n\x1a\n"));
    // The figure was consumed: the next call has none.
    let r = s.call("execute_code", json!({"code": "1"})).await;
    assert!(images(&r).is_empty());
}

async fn javascript_state_persists(b: Backend) {
    if node_version().is_none() {
        return skip("node is not installed (set TEST_NODE)");
    }
    let s = Server::on(b).await;
    let r = s
        .ok("execute_code", json!({"language": "javascript", "code": "let n = 20; function twice(v) { return v * 2 }"}))
        .await;
    assert_eq!(r["success"], true, "{r}");
    let r = s
        .ok(
            "execute_code",
            json!({"language": "javascript", "code": "console.log('hi')"}),
        )
        .await;
    assert_eq!(r["stdout"], "hi\n");
    let r = s
        .ok(
            "execute_code",
            json!({"language": "javascript", "code": "twice(n) + 2"}),
        )
        .await;
    assert_eq!(value(&r), "42", "{r}");
    let r = s
        .ok(
            "execute_code",
            json!({"language": "javascript", "code": "n", "clear_context": true}),
        )
        .await;
    assert_eq!(r["error"]["name"], "ReferenceError", "{r}");
}

async fn typescript_runs_or_says_what_to_install(b: Backend) {
    let Some(v) = node_version() else {
        return skip("node is not installed (set TEST_NODE)");
    };
    let s = Server::on(b).await;
    let r = s
        .ok(
            "execute_code",
            json!({"language": "typescript", "code": "const k: number = 21;\nk * 2"}),
        )
        .await;
    if v >= (22, 13) {
        assert_eq!(value(&r), "42", "{r}");
    } else {
        assert_eq!(r["error"]["name"], "TypeScriptUnavailable", "{r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains("22"),
            "{r}"
        );
    }
}

crate::on_both_backends!(
    python_state_persists_and_clear_context_resets_it,
    exceptions_are_reported_as_data_with_traceback,
    command_reports_exit_code_stdout_and_stderr,
    output_over_the_cap_is_cut_and_saved_in_full,
    matplotlib_figures_come_back_as_png_images,
    javascript_state_persists,
    typescript_runs_or_says_what_to_install,
);
