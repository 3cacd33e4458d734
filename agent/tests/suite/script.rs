//! Scripts for the fake Claude: what it answers to a request, as the stream
//! events of the Messages API (the same JSON for the Anthropic API's SSE and
//! Bedrock's chunks), and helpers to read what the agent sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

/// What the fake does with one request.
#[derive(Clone)]
pub enum Reply {
    /// Stream these events.
    Events(Vec<Value>),
    /// Wait until the test releases the fake, then stream these events.
    Held(Vec<Value>),
    /// Fail with this HTTP status, Anthropic-style error body and headers.
    Status(u16, &'static str, Vec<(&'static str, &'static str)>),
}

/// Decides the reply from the request body and the request's number (0-based).
pub type Brain = Arc<dyn Fn(&Value, usize) -> Reply + Send + Sync>;

/// The blocks of the newest message of a request.
pub fn last_message(body: &Value) -> &Value {
    body["messages"].as_array().unwrap().last().unwrap()
}

/// The `tool_result` blocks of the newest message, if it carries any.
pub fn tool_results(body: &Value) -> Vec<Value> {
    last_message(body)["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|b| b["type"] == "tool_result")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Every text inside a tool result, joined.
pub fn result_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `stdout` of the structured content Claude was shown.
pub fn result_stdout(result: &Value) -> Option<String> {
    result["content"].as_array()?.iter().find_map(|b| {
        let v: Value = serde_json::from_str(b["text"].as_str()?).ok()?;
        v["stdout"].as_str().map(str::to_owned)
    })
}

fn message_start() -> Value {
    json!({"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant",
        "model":"fake","content":[],"stop_reason":null,"stop_sequence":null,
        "usage":{"input_tokens":25,"output_tokens":1}}})
}

fn text_block(index: usize, text: &str) -> Vec<Value> {
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    vec![
        json!({"type":"content_block_start","index":index,"content_block":{"type":"text","text":""}}),
        json!({"type":"content_block_delta","index":index,"delta":{"type":"text_delta","text":&text[..mid]}}),
        json!({"type":"ping"}),
        json!({"type":"content_block_delta","index":index,"delta":{"type":"text_delta","text":&text[mid..]}}),
        json!({"type":"content_block_stop","index":index}),
    ]
}

fn end(stop_reason: &str) -> Vec<Value> {
    vec![
        json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"output_tokens":30}}),
        json!({"type":"message_stop"}),
    ]
}

/// A turn of text that ends Claude's turn.
pub fn say(text: &str) -> Vec<Value> {
    let mut v = vec![message_start()];
    v.extend(text_block(0, text));
    v.extend(end("end_turn"));
    v
}

/// A turn of text, then one tool call (its input streamed in two pieces).
pub fn call(text: &str, id: &str, tool: &str, input: Value) -> Vec<Value> {
    let mut v = vec![message_start()];
    v.extend(text_block(0, text));
    let json = input.to_string();
    let mid = json.len() / 2;
    v.push(json!({"type":"content_block_start","index":1,
        "content_block":{"type":"tool_use","id":id,"name":tool,"input":{}}}));
    v.push(json!({"type":"content_block_delta","index":1,
        "delta":{"type":"input_json_delta","partial_json":&json[..mid]}}));
    v.push(json!({"type":"content_block_delta","index":1,
        "delta":{"type":"input_json_delta","partial_json":&json[mid..]}}));
    v.push(json!({"type":"content_block_stop","index":1}));
    v.extend(end("tool_use"));
    v
}

/// Claude that runs `code` for any prompt and, given the result, answers
/// "The result is <stdout>." (or reports the tool error it got).
pub fn compute(code: &'static str) -> Brain {
    Arc::new(move |body, _| Reply::Events(compute_reply(body, code)))
}

pub fn compute_reply(body: &Value, code: &str) -> Vec<Value> {
    let results = tool_results(body);
    match results.first() {
        None => call(
            "Let me compute that.",
            "toolu_compute",
            "execute_code",
            json!({"code": code}),
        ),
        Some(r) if r["is_error"] == true => say(&format!("The tool failed: {}", result_text(r))),
        Some(r) => say(&format!(
            "The result is {}.",
            result_stdout(r).unwrap_or_default().trim()
        )),
    }
}

/// Replies in order, then `then` for every later request.
pub fn sequence(first: Vec<Reply>, then: Brain) -> Brain {
    let count = AtomicUsize::new(0);
    Arc::new(move |body, n| {
        let i = count.fetch_add(1, Ordering::SeqCst);
        match first.get(i) {
            Some(r) => r.clone(),
            None => then(body, n),
        }
    })
}
