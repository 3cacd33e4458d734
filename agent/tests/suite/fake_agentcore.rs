//! A fake of the AgentCore data-plane endpoints `invoke` and `cleanup` use,
//! on 127.0.0.1: InvokeAgentRuntime (streaming SSE in awkward chunks),
//! StopRuntimeSession and StopCodeInterpreterSession. Records every call.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde_json::{Value, json};

/// One call as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: &'static str,
    /// The decoded path parameter (runtime ARN or code-interpreter id).
    pub target: String,
    pub query: HashMap<String, String>,
    pub runtime_session: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
}

pub struct FakeAgentCore {
    pub url: String,
    shared: Arc<Shared>,
}

/// Events the fake deployed agent streams.
pub fn runtime_events() -> Vec<Value> {
    vec![
        json!({"type":"text","text":"Let me "}),
        json!({"type":"text","text":"check."}),
        json!({"type":"tool_use","tool_name":"execute_command","tool_input":{"command":"uname -s"},"tool_use_id":"t1"}),
        json!({"type":"tool_result","tool_name":"execute_command","tool_use_id":"t1","is_error":false,"summary":"Linux"}),
        json!({"type":"text","text":"It runs Linux."}),
        json!({"type":"final","response":"Let me check.\nIt runs Linux.","session_id":"01KATMYCCH9ZMPTV7KQHRWV3GK"}),
    ]
}

impl FakeAgentCore {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/runtimes/{arn}/invocations", post(invoke))
            .route("/runtimes/{arn}/stopruntimesession", post(stop_runtime))
            .route(
                "/code-interpreters/{id}/sessions/stop",
                put(stop_interpreter),
            )
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }
}

fn record(
    shared: &Shared,
    operation: &'static str,
    target: String,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) {
    shared.calls.lock().unwrap().push(Call {
        operation,
        target,
        query,
        runtime_session: headers
            .get("x-amzn-bedrock-agentcore-runtime-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    });
}

fn not_found(message: &str) -> Response {
    let mut r = (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(json!({ "message": message })),
    )
        .into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        "ResourceNotFoundException".parse().unwrap(),
    );
    r
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(arn): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, "InvokeAgentRuntime", arn, query, &headers, &body);
    let mut sse = String::from(": keep-alive\n\n");
    for e in runtime_events() {
        sse.push_str(&format!("data: {e}\n\n"));
    }
    // Chunks of 7 bytes: lines arrive split anywhere.
    let chunks: Vec<Result<Bytes, Infallible>> = sse
        .into_bytes()
        .chunks(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let session = headers
        .get("x-amzn-bedrock-agentcore-runtime-session-id")
        .cloned();
    let mut response = Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    if let Some(s) = session {
        response
            .headers_mut()
            .insert("x-amzn-bedrock-agentcore-runtime-session-id", s);
    }
    response
}

async fn stop_runtime(
    State(shared): State<Arc<Shared>>,
    Path(arn): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, "StopRuntimeSession", arn, query, &headers, &body);
    let session = headers
        .get("x-amzn-bedrock-agentcore-runtime-session-id")
        .cloned();
    let mut response = axum::Json(json!({})).into_response();
    if let Some(s) = session {
        response
            .headers_mut()
            .insert("x-amzn-bedrock-agentcore-runtime-session-id", s);
    }
    response
}

async fn stop_interpreter(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = query.get("sessionId").cloned().unwrap_or_default();
    record(
        &shared,
        "StopCodeInterpreterSession",
        id.clone(),
        query,
        &headers,
        &body,
    );
    if session.starts_with("missing") {
        return not_found("Session not found");
    }
    axum::Json(json!({
        "codeInterpreterIdentifier": id,
        "sessionId": session,
        "lastUpdatedAt": "2026-11-25T04:00:00Z"
    }))
    .into_response()
}
