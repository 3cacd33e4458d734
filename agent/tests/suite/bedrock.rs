//! The same loop with Claude on a fake Bedrock runtime endpoint
//! (InvokeModelWithResponseStream, AWS event-stream framing, SigV4-signed).

use super::fake_model::FakeModel;
use super::harness::AgentCommand;
use super::script::{Reply, compute, result_text, sequence, tool_results};

const CODE: &str = "import math\nprint(math.factorial(20))";
const EXPECTED: &str = "2432902008176640000";

fn bedrock_agent(fake: &FakeModel, args: &[&str]) -> AgentCommand {
    AgentCommand::new(args)
        .fake_aws()
        .env("CLAUDE_CODE_USE_BEDROCK", "1")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &fake.url)
}

#[tokio::test]
async fn bedrock_loop_runs_real_code() {
    let fake = FakeModel::bedrock(compute(CODE)).await;
    let out = bedrock_agent(&fake, &["run", "What is 20 factorial?"])
        .output()
        .await;
    assert!(out.success, "{}", out.stderr);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].model_path.as_deref(),
        Some("global.anthropic.claude-sonnet-4-6")
    );
    assert!(requests[0].headers["authorization"].contains("/us-east-1/bedrock/aws4_request"));
    let results = tool_results(&requests[1].body);
    assert_eq!(results[0]["is_error"], false);
    assert!(result_text(&results[0]).contains(EXPECTED), "{results:?}");
    assert!(
        out.stdout.contains(&format!("The result is {EXPECTED}.")),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn bedrock_model_flag_and_throttling_retry() {
    let brain = sequence(
        vec![
            Reply::Status(429, "ThrottlingException", vec![]),
            Reply::Status(503, "ServiceUnavailableException", vec![]),
        ],
        compute(CODE),
    );
    let fake = FakeModel::bedrock(brain).await;
    let out = bedrock_agent(
        &fake,
        &[
            "run",
            "20!",
            "--model",
            "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        ],
    )
    .output()
    .await;
    assert!(out.success, "{}", out.stderr);
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(
        requests[3].model_path.as_deref(),
        Some("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    );
    assert!(out.stdout.contains(EXPECTED));
}

#[tokio::test]
async fn bedrock_access_denied_is_a_clear_error() {
    let fake = FakeModel::bedrock(sequence(
        vec![Reply::Status(403, "AccessDeniedException", vec![])],
        compute(CODE),
    ))
    .await;
    let out = bedrock_agent(&fake, &["run", "hi"]).output().await;
    assert!(!out.success);
    assert_eq!(fake.requests().len(), 1);
    assert!(
        out.stderr
            .contains("Amazon Bedrock refused the credentials (AccessDeniedException"),
        "{}",
        out.stderr
    );
}
