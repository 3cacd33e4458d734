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

/// Polls get_task until the task is done, reading every page of output.
async fn follow(s: &Server, task_id: &str) -> (String, serde_json::Value, usize) {
    let mut cursor = 0u64;
    let mut output = String::new();
    let mut pages = 0;
    for _ in 0..600 {
        let r = s
            .ok("get_task", json!({"task_id": task_id, "cursor": cursor}))
            .await;
        output.push_str(r["output"].as_str().unwrap());
        pages += 1;
        cursor = r["cursor"].as_u64().unwrap();
        if r["status"] == "done" && r["more"] == false {
            return (output, r["result"].clone(), pages);
        }
        if r["more"] == false {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    panic!("task {task_id} did not finish");
}

async fn a_background_command_is_followed_to_the_end_in_pages(b: Backend) {
    let s = Server::start_on(b, &["--output-limit", "2000"], &[], &[]).await;
    let r = s
        .ok("execute_command", json!({"command": "for i in $(seq 1 3000); do echo line-$i; done; sleep 1; echo end", "background": true}))
        .await;
    assert_eq!(r["status"], "running", "{r}");
    let task_id = r["task_id"].as_str().unwrap().to_string();
    let (output, result, pages) = follow(&s, &task_id).await;
    let expected: String = (1..=3000)
        .map(|i| format!("line-{i}\n"))
        .collect::<String>()
        + "end\n";
    assert_eq!(output, expected);
    assert!(
        pages >= 10,
        "the output should take many 2000-byte pages, took {pages}"
    );
    assert_eq!(result["exit_code"], 0, "{result}");
    assert_eq!(result["success"], true);
}

async fn stop_task_ends_a_long_task(b: Backend) {
    let s = Server::on(b).await;
    let r = s
        .ok(
            "execute_command",
            json!({"command": "echo started; sleep 300", "background": true}),
        )
        .await;
    let task_id = r["task_id"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let r = s.ok("stop_task", json!({"task_id": task_id})).await;
    assert_eq!(r["status"], "done", "{r}");
    assert!(started.elapsed().as_secs() < 6);
    let r = s.ok("get_task", json!({"task_id": task_id})).await;
    assert_eq!(r["status"], "done");
    assert_eq!(r["result"]["limit"]["limit"], "cancelled", "{r}");
    let msg = s.err("get_task", json!({"task_id": "task-nope"})).await;
    assert!(msg.contains("unknown task_id"), "{msg}");
    s.assert_healthy().await;
}

async fn a_call_past_the_foreground_budget_continues_as_a_task(b: Backend) {
    let s = Server::start_on(b, &["--foreground-budget", "1"], &[], &[]).await;
    s.py("state = 'kept'").await;
    let started = std::time::Instant::now();
    let r = s
        .py("import time\nprint('working', flush=True)\ntime.sleep(3)\nprint('finished')\nstate")
        .await;
    assert!(
        started.elapsed().as_secs_f64() < 2.5,
        "the call should return at the budget"
    );
    assert_eq!(r["status"], "running", "{r}");
    assert!(r["notes"][0].as_str().unwrap().contains("get_task"), "{r}");
    let task_id = r["task_id"].as_str().unwrap().to_string();
    // The interpreter is busy meanwhile; the call says so rather than hang.
    let (output, result, _) = follow(&s, &task_id).await;
    if b == Backend::Local {
        assert_eq!(output, "working\nfinished\n");
    } else {
        // AgentCore prints the last value with the output.
        assert_eq!(output, "working\nfinished\n'kept'\n");
    }
    assert_eq!(value(&result), "'kept'", "{result}");
    assert_eq!(result["success"], true);
}

crate::on_both_backends!(
    a_background_command_is_followed_to_the_end_in_pages,
    stop_task_ends_a_long_task,
    a_call_past_the_foreground_budget_continues_as_a_task,
);
