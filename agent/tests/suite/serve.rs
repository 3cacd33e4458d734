//! `serve`: the AgentCore Runtime HTTP contract, driven over HTTP on
//! 127.0.0.1 with Claude faked and the real server running the code.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::fake_model::FakeModel;
use super::harness::{AgentCommand, Serve, event_types, read_events, streamed_text};
use super::script::{Brain, Reply, compute_reply, result_text, tool_results};

const RS1: &str = "runtime-session-0000000000000000000001";
const RS2: &str = "runtime-session-0000000000000000000002";

/// The prompt of the exchange in progress (the newest user message that is
/// not tool results).
fn current_prompt(body: &Value) -> String {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|m| m["role"] == "user")
        .find_map(|m| {
            let blocks = m["content"].as_array()?;
            if blocks.iter().any(|b| b["type"] == "tool_result") {
                return None;
            }
            blocks.iter().find_map(|b| b["text"].as_str())
        })
        .unwrap()
        .to_owned()
}

/// "set x" defines x = 42; "x plus one" prints x + 1.
fn code_for(body: &Value) -> &'static str {
    if current_prompt(body).contains("set x") {
        "x = 6 * 7\nprint(x)"
    } else {
        "print(x + 1)"
    }
}

/// Runs the prompt's code; the first `held` first-turn requests wait for
/// the test to release them.
fn brain(held: usize) -> Brain {
    Arc::new(move |body: &Value, n: usize| {
        let events = compute_reply(body, code_for(body));
        if n < held {
            Reply::Held(events)
        } else {
            Reply::Events(events)
        }
    })
}

async fn serve_with(fake: &FakeModel) -> Serve {
    Serve::start(AgentCommand::new(&[]).anthropic(&fake.url)).await
}

fn final_session(events: &[Value]) -> String {
    let last = events.last().unwrap();
    assert_eq!(last["type"], "final", "{events:?}");
    last["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn ping_is_busy_while_an_invocation_runs() {
    let fake = FakeModel::anthropic(brain(1)).await;
    let serve = serve_with(&fake).await;

    let idle = serve.ping().await;
    assert_eq!(idle["status"], "Healthy");
    let t0 = idle["time_of_last_update"].as_u64().unwrap();
    assert_eq!(
        serve.ping().await["time_of_last_update"],
        t0,
        "unchanged status, unchanged time"
    );
    // Let the clock move on so that the change of status shows in the time.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let response = serve.start_invocation(r#"{"prompt": "set x"}"#, None).await;
    let busy = serve.ping().await;
    assert_eq!(busy["status"], "HealthyBusy");
    let t1 = busy["time_of_last_update"].as_u64().unwrap();
    assert!(t1 > t0, "{t1} > {t0}");
    fake.wait_for_requests(1).await;
    assert_eq!(serve.ping().await, busy, "still busy, time unchanged");

    fake.release(1);
    let events = read_events(response).await;
    final_session(&events);
    let idle = serve.ping().await;
    assert_eq!(idle["status"], "Healthy");
    assert!(idle["time_of_last_update"].as_u64().unwrap() >= t1);
    assert!(serve.stop().await, "serve exits cleanly on SIGTERM");
}

#[tokio::test]
async fn invocations_stream_events_and_return_a_reusable_session() {
    let fake = FakeModel::anthropic(brain(0)).await;
    let serve = serve_with(&fake).await;

    let events = serve.invoke(r#"{"prompt": "set x"}"#, None).await;
    assert_eq!(
        event_types(&events),
        ["text", "tool_use", "tool_result", "text", "final"],
        "{events:?}"
    );
    let tool_use = events.iter().find(|e| e["type"] == "tool_use").unwrap();
    assert_eq!(tool_use["tool_name"], "execute_code");
    assert_eq!(
        tool_use["tool_input"],
        json!({"code": "x = 6 * 7\nprint(x)"})
    );
    assert_eq!(tool_use["tool_use_id"], "toolu_compute");
    let result = events.iter().find(|e| e["type"] == "tool_result").unwrap();
    assert_eq!(result["tool_name"], "execute_code");
    assert_eq!(result["is_error"], false);
    assert!(!result["summary"].as_str().unwrap().is_empty());
    assert_eq!(
        streamed_text(&events),
        "Let me compute that.The result is 42."
    );
    let last = events.last().unwrap();
    assert_eq!(last["response"], "Let me compute that.\nThe result is 42.");
    let session = final_session(&events);

    // The returned id continues the session: x is still defined.
    let body = json!({"prompt": "x plus one", "session_id": session}).to_string();
    let events = serve.invoke(&body, None).await;
    assert_eq!(final_session(&events), session);
    assert_eq!(
        events.last().unwrap()["response"],
        "Let me compute that.\nThe result is 43."
    );
    // ... and the sample's `code_int_session_id` works too.
    let body = json!({"prompt": "x plus one", "code_int_session_id": session}).to_string();
    let events = serve.invoke(&body, None).await;
    assert_eq!(final_session(&events), session);

    // Each request without a runtime session is a conversation of its own.
    for r in fake.requests() {
        let first = &r.body["messages"][0]["content"][0]["text"];
        assert_eq!(first.as_str().unwrap(), current_prompt(&r.body));
    }

    // An unknown session is an error event, with no model call.
    let before = fake.requests().len();
    let events = serve
        .invoke(
            r#"{"prompt": "x plus one", "session_id": "nosuchsession"}"#,
            None,
        )
        .await;
    assert_eq!(event_types(&events), ["error"]);
    assert!(
        events[0]["error"]
            .as_str()
            .unwrap()
            .contains("`nosuchsession` is unknown or has ended")
    );
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn a_runtime_session_continues_one_conversation() {
    let fake = FakeModel::anthropic(brain(0)).await;
    let serve = serve_with(&fake).await;

    let first = serve.invoke(r#"{"prompt": "set x"}"#, Some(RS1)).await;
    let session = final_session(&first);
    let n = fake.requests().len();

    let second = serve.invoke(r#"{"prompt": "x plus one"}"#, Some(RS1)).await;
    assert_eq!(
        final_session(&second),
        session,
        "the conversation keeps its session"
    );
    let request = &fake.requests()[n];
    let messages = request.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5, "the first exchange, then the new prompt");
    assert_eq!(messages[0]["content"][0]["text"], "set x");
    assert_eq!(messages[3]["content"][0]["text"], "The result is 42.");
    assert_eq!(messages[4]["content"][0]["text"], "x plus one");
    assert!(
        second.last().unwrap()["response"]
            .as_str()
            .unwrap()
            .ends_with("The result is 43.")
    );

    // Another runtime session is another conversation, with its own session.
    let n = fake.requests().len();
    let other = serve.invoke(r#"{"prompt": "x plus one"}"#, Some(RS2)).await;
    assert_ne!(final_session(&other), session);
    let requests = fake.requests();
    assert_eq!(requests[n].body["messages"].as_array().unwrap().len(), 1);
    let result = &tool_results(&requests[n + 1].body)[0];
    assert!(result_text(result).contains("NameError"), "{result}");
}

#[tokio::test]
async fn bad_payloads_get_400_with_a_clear_message() {
    let fake = FakeModel::anthropic(brain(0)).await;
    let serve = serve_with(&fake).await;
    let http = reqwest::Client::new();
    for (body, says) in [
        ("not json", "not JSON"),
        (r#"["prompt"]"#, "JSON object"),
        ("{}", "`prompt` is missing"),
        (r#"{"prompt": ""}"#, "`prompt` is empty"),
        (r#"{"prompt": 7}"#, "`prompt` must be a string"),
        (
            r#"{"prompt": "x", "session_id": 5}"#,
            "`session_id` must be a string",
        ),
    ] {
        let r = http
            .post(format!("{}/invocations", serve.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let error: Value = r.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{body}: {error}"
        );
    }
    assert!(fake.requests().is_empty());
    assert_eq!(serve.ping().await["status"], "Healthy");
}

#[tokio::test]
async fn concurrent_invocations_are_served() {
    // Both first turns are held until both have reached Claude: were the
    // invocations served one at a time, the second would never arrive.
    let fake = FakeModel::anthropic(brain(2)).await;
    let serve = serve_with(&fake).await;
    let a = serve
        .start_invocation(r#"{"prompt": "set x"}"#, Some(RS1))
        .await;
    let b = serve
        .start_invocation(r#"{"prompt": "set x"}"#, Some(RS2))
        .await;
    fake.wait_for_requests(2).await;
    assert_eq!(serve.ping().await["status"], "HealthyBusy");
    fake.release(2);
    let (a, b) = tokio::join!(read_events(a), read_events(b));
    let (sa, sb) = (final_session(&a), final_session(&b));
    assert_ne!(sa, sb, "each conversation has its own session");
    assert!(
        a.last().unwrap()["response"]
            .as_str()
            .unwrap()
            .ends_with("42.")
    );
    assert!(
        b.last().unwrap()["response"]
            .as_str()
            .unwrap()
            .ends_with("42.")
    );
    assert_eq!(serve.ping().await["status"], "Healthy");
}
