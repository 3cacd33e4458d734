//! Not a test: the fake Claude of this suite on 127.0.0.1, kept up so that
//! people can try the real agent against it from a shell.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::fake_model::FakeModel;
use super::script::{Reply, compute_reply, last_message};

/// `FAKE_CLAUDE_CODE` is the code it runs for any prompt;
/// `FAKE_CLAUDE_SECONDS` how long it stays up (default 300).
#[tokio::test]
#[ignore = "a tool: cargo test -p code-interpreter-agent --test all -- --ignored --nocapture fake_claude_for_manual_runs"]
async fn fake_claude_for_manual_runs() {
    let code = std::env::var("FAKE_CLAUDE_CODE")
        .unwrap_or_else(|_| "print(sum(i * i for i in range(1, 1001)))".into());
    let seconds: u64 = std::env::var("FAKE_CLAUDE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let fake = FakeModel::anthropic(Arc::new(move |body: &Value, _| {
        Reply::Events(compute_reply(body, &code))
    }))
    .await;
    println!(
        "fake Claude listening: ANTHROPIC_BASE_URL={} ANTHROPIC_API_KEY={}",
        fake.url,
        super::fake_model::API_KEY
    );
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        let requests = fake.requests();
        for r in &requests[seen..] {
            println!(
                "request {seen}: {} tools, newest message: {}",
                r.body["tools"].as_array().map_or(0, Vec::len),
                last_message(&r.body)["content"]
            );
            seen += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
