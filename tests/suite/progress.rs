//! Long calls report progress to clients that ask for it.

use std::sync::{Arc, Mutex};

use rmcp::model::{CallToolRequestParams, ProgressNotificationParam};
use rmcp::service::NotificationContext;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

use super::harness::*;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for Recorder {
    async fn on_progress(&self, p: ProgressNotificationParam, _c: NotificationContext<RoleClient>) {
        self.0.lock().unwrap().push(p);
    }
}

#[tokio::test]
async fn progress_notifications_carry_elapsed_time_and_output() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    let cmd = tokio::process::Command::new(server_bin()).configure(|c| {
        c.args(["--progress-interval", "1"])
            .env("CODE_INTERPRETER_WORKDIR_ROOT", &root_path)
            .env("CODE_INTERPRETER_PYTHON", test_python())
            .env("RUST_LOG", "warn");
    });
    let recorder = Recorder::default();
    let client = recorder
        .clone()
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    let args = json!({"command": "for i in 1 2 3 4; do echo tick-$i; sleep 1; done"});
    let r = client
        .call_tool(
            CallToolRequestParams::new("execute_command")
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.structured_content.unwrap()["exit_code"], 0);
    let seen = recorder.0.lock().unwrap().clone();
    assert!(
        seen.len() >= 2,
        "expected progress every second, got {seen:?}"
    );
    for w in seen.windows(2) {
        assert!(
            w[1].progress > w[0].progress,
            "progress must increase: {seen:?}"
        );
    }
    let last = seen.last().unwrap().message.clone().unwrap();
    assert!(last.contains("command running for"), "{last}");
    assert!(
        last.contains("last line: tick-"),
        "progress should show the output: {last}"
    );
    assert!(last.contains("bytes of output"), "{last}");
}

#[tokio::test]
async fn a_cancelled_call_is_interrupted_and_the_session_keeps_its_state() {
    let s = Server::start().await;
    s.py("kept = 'still here'").await;
    let params = CallToolRequestParams::new("execute_code").with_arguments(
        json!({"code": "import time\nwhile True:\n    time.sleep(0.01)"})
            .as_object()
            .cloned()
            .unwrap(),
    );
    // Dropping the call's future sends notifications/cancelled.
    let call = s.client.call_tool(params);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), call)
            .await
            .is_err()
    );
    // The interpreter was interrupted, not killed: its state is intact. Calls
    // to one interpreter run one at a time, so a loop still running would
    // hold this call until the loop's 300 s timeout.
    let started = std::time::Instant::now();
    let r = s.py("kept").await;
    assert_eq!(r["result"], "'still here'", "{r}");
    assert!(
        started.elapsed().as_secs() < 3,
        "the next call waited for the cancelled one"
    );
    s.assert_healthy().await;
}
