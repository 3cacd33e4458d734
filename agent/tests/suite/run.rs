//! `run` against the fake Anthropic API, with the real server running real
//! code.

use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};

use super::fake_model::{API_KEY, FakeModel, VERSION};
use super::harness::{AgentCommand, server_child_of, signal, skip, test_python};
use super::script::{
    Reply, call, compute, compute_reply, result_text, say, sequence, tool_results,
};

/// The sum of the squares of 1..=1000: a number no one would guess.
const CODE: &str = "total = sum(i * i for i in range(1, 1001))\nprint(total)";
const EXPECTED: &str = "333833500";

#[tokio::test]
async fn run_executes_real_code_and_claude_sees_the_output() {
    let fake = FakeModel::anthropic(compute(CODE)).await;
    let out = AgentCommand::new(&["run", "What is the sum of the squares of 1 to 1000?"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(out.success, "{}", out.stderr);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one turn with the tool call, one answer");
    let first = &requests[0];
    assert_eq!(first.headers["x-api-key"], API_KEY);
    assert_eq!(first.headers["anthropic-version"], VERSION);
    assert_eq!(first.body["model"], "claude-sonnet-4-6");
    let tools: Vec<&str> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "execute_code",
        "execute_command",
        "write_files",
        "read_files",
        "list_files",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    let system = first.body["system"][0]["text"].as_str().unwrap();
    assert!(system.contains("without asking for permission"));
    assert!(
        system.contains("Guidance from the code interpreter"),
        "{system}"
    );
    assert_eq!(
        first.body["messages"][0]["content"][0]["text"],
        "What is the sum of the squares of 1 to 1000?"
    );

    // The tool result Claude got carries the real output of the real code.
    let results = tool_results(&requests[1].body);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["tool_use_id"], "toolu_compute");
    assert_eq!(results[0]["is_error"], false);
    assert!(result_text(&results[0]).contains(EXPECTED), "{results:?}");
    // The tool call Claude made is echoed back as the assistant's turn.
    let assistant = &requests[1].body["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"][1]["input"], json!({"code": CODE}));

    // The terminal shows the call, its result, the answer and the session.
    assert!(out.stdout.contains("── execute_code (python)"));
    assert!(out.stdout.contains("│ print(total)"));
    assert!(out.stdout.contains("└ done:"));
    assert!(
        out.stdout.contains(&format!("The result is {EXPECTED}.")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(stopped)"), "{}", out.stdout);
}

#[tokio::test]
async fn overload_rate_limits_and_server_errors_are_retried() {
    let brain = sequence(
        vec![
            Reply::Status(429, "rate_limit_error", vec![("retry-after", "0")]),
            Reply::Events(vec![
                json!({"type":"message_start","message":{"usage":{"input_tokens":1,"output_tokens":0}}}),
                json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
            ]),
            Reply::Status(529, "overloaded_error", vec![("retry-after", "0")]),
            Reply::Status(503, "api_error", vec![("retry-after", "0")]),
        ],
        compute(CODE),
    );
    let fake = FakeModel::anthropic(brain).await;
    let out = AgentCommand::new(&["run", "sum of squares"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(fake.requests().len(), 6);
    assert!(out.stdout.contains(&format!("The result is {EXPECTED}.")));
}

#[tokio::test]
async fn a_rejected_api_key_is_a_clear_error_and_not_retried() {
    let fake = FakeModel::anthropic(compute(CODE)).await;
    let out = AgentCommand::new(&["run", "hi"])
        .anthropic(&fake.url)
        .env("ANTHROPIC_API_KEY", "wrong-key")
        .output()
        .await;
    assert!(!out.success);
    assert_eq!(fake.requests().len(), 1);
    assert!(
        out.stderr
            .contains("the Anthropic API refused the credentials (401"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("ANTHROPIC_API_KEY"), "{}", out.stderr);
}

#[tokio::test]
async fn without_credentials_it_says_what_to_set() {
    let out = AgentCommand::new(&["run", "hi"]).output().await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("set ANTHROPIC_API_KEY") && out.stderr.contains("--provider bedrock"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_anthropic_version_is_configurable() {
    let fake = FakeModel::anthropic(compute(CODE)).await;
    let out = AgentCommand::new(&["run", "hi", "--anthropic-version", "2026-10-21"])
        .anthropic(&fake.url)
        .output()
        .await;
    // The fake only accepts 2023-06-01, so this is refused, visibly.
    assert!(!out.success);
    assert_eq!(
        fake.requests()[0].headers["anthropic-version"],
        "2026-10-21"
    );
    assert!(
        out.stderr.contains("request rejected (400)"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_unknown_session_is_refused_clearly() {
    let fake = FakeModel::anthropic(compute(CODE)).await;
    let out = AgentCommand::new(&["run", "hi", "--session", "nosuchsession"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(!out.success);
    assert!(fake.requests().is_empty());
    assert!(
        out.stderr
            .contains("`nosuchsession` is unknown or has ended"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_loop_stops_at_max_turns() {
    let forever = Arc::new(|_: &Value, n: usize| {
        Reply::Events(call(
            "again",
            &format!("toolu_{n}"),
            "execute_command",
            json!({"command": "true"}),
        ))
    });
    let fake = FakeModel::anthropic(forever).await;
    let out = AgentCommand::new(&["run", "loop", "--max-turns", "3"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(!out.success);
    assert_eq!(fake.requests().len(), 3);
    assert!(out.stderr.contains("raise --max-turns"), "{}", out.stderr);
}

#[tokio::test]
async fn a_hidden_or_unknown_tool_is_an_error_claude_sees() {
    let brain = Arc::new(|body: &Value, _| {
        let results = tool_results(body);
        Reply::Events(match results.first() {
            None => call("", "toolu_stop", "stop_session", json!({})),
            Some(r) => say(&format!("Got: {}", result_text(r))),
        })
    });
    let fake = FakeModel::anthropic(brain).await;
    let out = AgentCommand::new(&["run", "stop it"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(out.success, "{}", out.stderr);
    let results = tool_results(&fake.requests()[1].body);
    assert_eq!(results[0]["is_error"], true);
    assert!(result_text(&results[0]).contains("no tool named `stop_session`"));
    // The session was still there to be stopped at the end.
    assert!(out.stdout.contains("(stopped)"), "{}", out.stdout);
}

#[tokio::test]
async fn images_reach_claude_as_image_blocks() {
    let has_matplotlib = Command::new(test_python())
        .args(["-c", "import matplotlib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_matplotlib {
        skip("images_reach_claude_as_image_blocks: TEST_PYTHON has no matplotlib");
        return;
    }
    let fake = FakeModel::anthropic(compute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nprint('plotted')",
    ))
    .await;
    let out = AgentCommand::new(&["run", "plot"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(out.success, "{}", out.stderr);
    let results = tool_results(&fake.requests()[1].body);
    let image = results[0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "image")
        .unwrap_or_else(|| panic!("no image block in {results:?}"));
    assert_eq!(image["source"]["type"], "base64");
    assert_eq!(image["source"]["media_type"], "image/png");
    assert!(
        image["source"]["data"]
            .as_str()
            .unwrap()
            .starts_with("iVBOR")
    );
}

/// The server is killed while Claude is thinking: the agent restarts it,
/// reports the failure to Claude and the caller, and goes on in a new session.
#[tokio::test]
async fn a_dead_server_is_restarted_once_and_the_failure_reported() {
    let brain = Arc::new(|body: &Value, n: usize| match n {
        0 => Reply::Held(call(
            "Setting x.",
            "toolu_1",
            "execute_code",
            json!({"code": "x = 41"}),
        )),
        1 => Reply::Events(call(
            "Again.",
            "toolu_2",
            "execute_code",
            json!({"code": "print(40 + 2)"}),
        )),
        _ => Reply::Events(compute_reply(body, "")),
    });
    let fake = FakeModel::anthropic(brain).await;
    let agent = AgentCommand::new(&["run", "go"])
        .anthropic(&fake.url)
        .spawn();
    fake.wait_for_requests(1).await;
    let server = server_child_of(agent.pid()).await;
    signal(server, libc::SIGKILL);
    fake.release(1);
    let out = agent.output().await;
    assert!(out.success, "{}", out.stderr);

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    let failed = &tool_results(&requests[1].body)[0];
    assert_eq!(failed["is_error"], true);
    assert!(
        result_text(failed).contains("exited unexpectedly")
            && result_text(failed).contains("restarted"),
        "{failed}"
    );
    // The restarted server runs code in a new session.
    let worked = &tool_results(&requests[2].body)[0];
    assert_eq!(worked["is_error"], false, "{worked}");
    assert!(result_text(worked).contains("42"));
    assert!(
        out.stdout
            .contains("└ error: The code-interpreter server exited unexpectedly")
    );
    assert!(out.stdout.contains("The result is 42."), "{}", out.stdout);
}

/// Regression: the agent put `session_id` into every call, and tools that
/// take none (get_task, which refuses unknown arguments) failed.
#[tokio::test]
async fn tools_without_a_session_id_are_called_without_one() {
    let brain = Arc::new(|body: &Value, _| {
        Reply::Events(match tool_results(body).first() {
            None => call(
                "",
                "toolu_poll",
                "get_task",
                json!({"task_id": "nosuchtask"}),
            ),
            Some(r) => say(&format!("Got: {}", result_text(r))),
        })
    });
    let fake = FakeModel::anthropic(brain).await;
    let out = AgentCommand::new(&["run", "poll"])
        .anthropic(&fake.url)
        .output()
        .await;
    assert!(out.success, "{}", out.stderr);
    let requests = fake.requests();
    let offered = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "get_task");
    if !offered {
        skip("tools_without_a_session_id_are_called_without_one: this server has no get_task");
        return;
    }
    let result = &tool_results(&requests[1].body)[0];
    assert!(!result_text(result).contains("session_id"), "{result}");
    assert!(result_text(result).contains("nosuchtask"), "{result}");
}
