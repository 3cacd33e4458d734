//! `invoke` and `cleanup` against a fake AgentCore data plane, through the
//! real AWS SDK (endpoint set by `AWS_ENDPOINT_URL_BEDROCK_AGENTCORE`).

use serde_json::json;

use super::fake_agentcore::FakeAgentCore;
use super::harness::AgentCommand;

const ARN: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/claude_ci_agent-AbCdEf1234";

fn agent(fake: &FakeAgentCore, args: &[&str]) -> AgentCommand {
    AgentCommand::new(args)
        .fake_aws()
        .env("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", &fake.url)
}

#[tokio::test]
async fn invoke_streams_the_runtime_events() {
    let fake = FakeAgentCore::start().await;
    let out = agent(
        &fake,
        &[
            "invoke",
            "--arn",
            ARN,
            "--session",
            "01KPREVIOUS",
            "what OS?",
        ],
    )
    .output()
    .await;
    assert!(out.success, "{}", out.stderr);

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.operation, "InvokeAgentRuntime");
    assert_eq!(call.target, ARN);
    assert_eq!(
        call.query.get("qualifier").map(String::as_str),
        Some("DEFAULT")
    );
    assert_eq!(
        call.body,
        json!({"prompt": "what OS?", "session_id": "01KPREVIOUS"})
    );
    let runtime_session = call.runtime_session.clone().unwrap();
    assert!(runtime_session.len() >= 33, "{runtime_session}");

    assert!(out.stdout.contains("Let me check."), "{}", out.stdout);
    assert!(out.stdout.contains("── execute_command\n   │ $ uname -s"));
    assert!(out.stdout.contains("└ done: Linux"));
    assert!(out.stdout.contains("It runs Linux."));
    assert!(
        out.stdout
            .contains(&format!("runtime session {runtime_session}"))
    );
    assert!(
        out.stdout
            .contains("code-interpreter session 01KATMYCCH9ZMPTV7KQHRWV3GK")
    );
}

#[tokio::test]
async fn invoke_continues_a_given_runtime_session_and_refuses_short_ones() {
    let fake = FakeAgentCore::start().await;
    let id = "a-runtime-session-id-of-40-characters-xx";
    let out = agent(
        &fake,
        &["invoke", "--arn", ARN, "--runtime-session-id", id, "hi"],
    )
    .output()
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(fake.calls()[0].runtime_session.as_deref(), Some(id));
    assert_eq!(fake.calls()[0].body, json!({"prompt": "hi"}));

    let out = agent(
        &fake,
        &[
            "invoke",
            "--arn",
            ARN,
            "--runtime-session-id",
            "short",
            "hi",
        ],
    )
    .output()
    .await;
    assert!(!out.success);
    assert!(out.stderr.contains("at least 33"), "{}", out.stderr);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn cleanup_stops_a_code_interpreter_session() {
    let fake = FakeAgentCore::start().await;
    let out = agent(
        &fake,
        &[
            "cleanup",
            "--code-int-session-id",
            "01KATMYCCH9ZMPTV7KQHRWV3GK",
        ],
    )
    .output()
    .await;
    assert!(out.success, "{}", out.stderr);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].operation, "StopCodeInterpreterSession");
    assert_eq!(calls[0].target, "aws.codeinterpreter.v1");
    assert_eq!(
        calls[0].query.get("sessionId").map(String::as_str),
        Some("01KATMYCCH9ZMPTV7KQHRWV3GK")
    );
    assert!(
        out.stdout
            .contains("stopped code-interpreter session 01KATMYCCH9ZMPTV7KQHRWV3GK")
    );
}

/// The original sample's cleanup script crashed here (it called the stop
/// function with one argument and had no way to give the ARN).
#[tokio::test]
async fn cleanup_stops_a_runtime_session_given_its_arn() {
    let fake = FakeAgentCore::start().await;
    let id = "a-runtime-session-id-of-40-characters-xx";
    let out = agent(
        &fake,
        &["cleanup", "--runtime-session-id", id, "--arn", ARN],
    )
    .output()
    .await;
    assert!(out.success, "{}", out.stderr);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].operation, "StopRuntimeSession");
    assert_eq!(calls[0].target, ARN);
    assert_eq!(calls[0].runtime_session.as_deref(), Some(id));
    assert_eq!(
        calls[0].query.get("qualifier").map(String::as_str),
        Some("DEFAULT")
    );
    assert!(
        out.stdout
            .contains(&format!("stopped runtime session {id}"))
    );

    // Without the ARN it is a usage error, not a crash.
    let out = agent(&fake, &["cleanup", "--runtime-session-id", id])
        .output()
        .await;
    assert!(!out.success);
    assert!(out.stderr.contains("--arn"), "{}", out.stderr);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn cleanup_reports_a_missing_session() {
    let fake = FakeAgentCore::start().await;
    let out = agent(&fake, &["cleanup", "--code-int-session-id", "missing1"])
        .output()
        .await;
    assert!(!out.success);
    assert!(
        out.stderr.contains(
            "StopCodeInterpreterSession failed: ResourceNotFoundException: Session not found"
        ),
        "{}",
        out.stderr
    );
}
