//! Fake Claude endpoints on 127.0.0.1: the Anthropic Messages API (SSE) and
//! Bedrock's InvokeModelWithResponseStream (AWS event-stream frames). Both
//! check requests the way the real services would reject them, record every
//! request, and answer from a script ([`Brain`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use super::script::{Brain, Reply};

/// The API key the fake Anthropic API accepts.
pub const API_KEY: &str = "test-key";
/// The anthropic-version it expects.
pub const VERSION: &str = "2023-06-01";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// For Bedrock, the decoded model id from the path.
    pub model_path: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

struct Shared {
    brain: Brain,
    requests: Mutex<Vec<Recorded>>,
    arrived: watch::Sender<usize>,
    gate: Semaphore,
}

pub struct FakeModel {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeModel {
    pub async fn anthropic(brain: Brain) -> Self {
        Self::start(brain, |s| {
            Router::new()
                .route("/v1/messages", post(anthropic_messages))
                .with_state(s)
        })
        .await
    }

    pub async fn bedrock(brain: Brain) -> Self {
        Self::start(brain, |s| {
            Router::new()
                .route(
                    "/model/{model_id}/invoke-with-response-stream",
                    post(bedrock_invoke),
                )
                .with_state(s)
        })
        .await
    }

    async fn start(brain: Brain, app: impl FnOnce(Arc<Shared>) -> Router) -> Self {
        let shared = Arc::new(Shared {
            brain,
            requests: Mutex::new(Vec::new()),
            arrived: watch::channel(0).0,
            gate: Semaphore::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = app(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, shared }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.shared.arrived.subscribe();
        tokio::time::timeout(super::harness::STEP, rx.wait_for(|c| *c >= n))
            .await
            .expect("the fake model did not get the requests in time")
            .unwrap();
    }

    /// Lets `n` held replies go.
    pub fn release(&self, n: usize) {
        self.shared.gate.add_permits(n);
    }
}

impl Shared {
    /// Records the request and returns the script's reply (after the hold,
    /// for a held one), or the reason the real service would refuse it.
    async fn handle(&self, recorded: Recorded, problem: Option<String>) -> Result<Reply, String> {
        let n = {
            let mut r = self.requests.lock().unwrap();
            r.push(recorded.clone());
            r.len()
        };
        self.arrived.send_replace(n);
        if let Some(p) = problem {
            return Err(p);
        }
        let reply = (self.brain)(&recorded.body, n - 1);
        if let Reply::Held(events) = reply {
            self.gate.acquire().await.unwrap().forget();
            return Ok(Reply::Events(events));
        }
        Ok(reply)
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect()
}

/// What the real API would reject in the tools and messages the agent sent.
fn check_request(body: &Value) -> Option<String> {
    let Some(tools) = body["tools"].as_array().filter(|t| !t.is_empty()) else {
        return Some("tools: the agent sent no tools".into());
    };
    for t in tools {
        let name = t["name"].as_str().unwrap_or("");
        if name.is_empty() || t["input_schema"]["type"] != "object" {
            return Some(format!("tools: bad tool {t}"));
        }
        if t["input_schema"]["properties"].get("session_id").is_some() {
            return Some(format!("tools: {name} still shows session_id to Claude"));
        }
        if t["input_schema"].get("$schema").is_some() {
            return Some(format!("tools: {name} carries $schema"));
        }
        if name == "start_session" || name == "stop_session" {
            return Some(format!("tools: {name} should be hidden"));
        }
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Some("messages: empty".into());
    };
    if messages[0]["role"] != "user" {
        return Some("messages: the first message must be the user's".into());
    }
    // Every tool_result answers a tool_use of the message just before.
    for (i, m) in messages.iter().enumerate() {
        for b in m["content"].as_array().into_iter().flatten() {
            if b["type"] == "tool_result" {
                let id = &b["tool_use_id"];
                let answered = i > 0
                    && messages[i - 1]["content"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|u| u["type"] == "tool_use" && &u["id"] == id);
                if !answered {
                    return Some(format!(
                        "messages.{i}: tool_result {id} has no tool_use before it"
                    ));
                }
            }
        }
    }
    if body["max_tokens"].as_u64().unwrap_or(0) == 0 {
        return Some("max_tokens: missing".into());
    }
    None
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"type":"error","error":{"type":kind,"message":message}})),
    )
        .into_response()
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let headers = header_map(&headers);
    let problem = if headers.get("x-api-key").map(String::as_str) != Some(API_KEY) {
        Some("auth".to_owned())
    } else if headers.get("anthropic-version").map(String::as_str) != Some(VERSION) {
        Some(format!(
            "anthropic-version: expected {VERSION}, got {:?}",
            headers.get("anthropic-version")
        ))
    } else if body["stream"] != true || !body["model"].is_string() {
        Some("the request must have a model and stream: true".into())
    } else {
        check_request(&body)
    };
    let recorded = Recorded {
        model_path: None,
        headers,
        body,
    };
    match shared.handle(recorded, problem).await {
        Err(p) if p == "auth" => anthropic_error(401, "authentication_error", "invalid x-api-key"),
        Err(p) => anthropic_error(400, "invalid_request_error", &p),
        Ok(Reply::Status(status, kind, extra)) => {
            let mut r = anthropic_error(status, kind, "scripted failure");
            for (k, v) in extra {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        }
        Ok(Reply::Events(events) | Reply::Held(events)) => {
            let stream = futures::stream::iter(events.into_iter().map(|e| {
                let ty = e["type"].as_str().unwrap_or("message").to_owned();
                Ok::<_, Infallible>(Event::default().event(ty).data(e.to_string()))
            }));
            Sse::new(stream).into_response()
        }
    }
}

/// One AWS event-stream message.
pub fn frame(headers: &[(&str, &str)], payload: &Value) -> Bytes {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let mut msg = Message::new(serde_json::to_vec(payload).unwrap());
    for (name, value) in headers {
        msg = msg.add_header(Header::new(
            name.to_string(),
            HeaderValue::String(value.to_string().into()),
        ));
    }
    let mut buf = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&msg, &mut buf).unwrap();
    buf.into()
}

/// An InvokeModelWithResponseStream `chunk` carrying one Anthropic event.
fn chunk(event: &Value) -> Bytes {
    let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    frame(
        &[
            (":message-type", "event"),
            (":event-type", "chunk"),
            (":content-type", "application/json"),
        ],
        &json!({ "bytes": bytes }),
    )
}

fn aws_error(status: u16, kind: &str, message: &str) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({ "message": message })),
    )
        .into_response();
    r.headers_mut()
        .insert("x-amzn-errortype", kind.parse().unwrap());
    r
}

async fn bedrock_invoke(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let headers = header_map(&headers);
    let problem = if !headers
        .get("authorization")
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "))
    {
        Some("auth".to_owned())
    } else if body["anthropic_version"] != "bedrock-2023-05-31" {
        Some("anthropic_version must be bedrock-2023-05-31".into())
    } else if body.get("model").is_some() || body.get("stream").is_some() {
        Some("model and stream do not belong in a Bedrock body".into())
    } else {
        check_request(&body)
    };
    let recorded = Recorded {
        model_path: Some(model_id),
        headers,
        body,
    };
    match shared.handle(recorded, problem).await {
        Err(p) if p == "auth" => aws_error(403, "AccessDeniedException", "not signed"),
        Err(p) => aws_error(400, "ValidationException", &p),
        Ok(Reply::Status(status, kind, _)) => aws_error(status, kind, "scripted failure"),
        Ok(Reply::Events(events) | Reply::Held(events)) => {
            let frames: Vec<Result<Bytes, Infallible>> =
                events.iter().map(|e| Ok(chunk(e))).collect();
            Response::builder()
                .status(200)
                .header("content-type", "application/vnd.amazon.eventstream")
                .body(Body::from_stream(futures::stream::iter(frames)))
                .unwrap()
        }
    }
}
