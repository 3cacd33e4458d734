//! `serve`: the AgentCore Runtime HTTP contract. `POST /invocations` runs a
//! prompt and streams its events as SSE; `GET /ping` reports `Healthy` or
//! `HealthyBusy`. Requests with the same runtime-session header continue one
//! conversation, kept in memory with a bounded history.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::conversation::{Agent, Conversation};
use crate::events::AgentEvent;

/// The header AgentCore Runtime uses to name a runtime session.
pub const RUNTIME_SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";

/// Largest request body accepted.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Limits of the serve process.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// Runtime-session conversations kept in memory (least recently used
    /// dropped first).
    pub max_conversations: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_conversations: 100,
        }
    }
}

#[derive(Clone)]
struct AppState {
    agent: Arc<Agent>,
    health: Arc<Health>,
    conversations: Arc<Conversations>,
}

/// Serves until `shutdown` completes, then waits for running invocations.
pub async fn run(
    listener: TcpListener,
    agent: Arc<Agent>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState {
        agent,
        health: Arc::new(Health::new()),
        conversations: Arc::new(Conversations::new(config.max_conversations)),
    };
    let app = Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn ping(State(state): State<AppState>) -> Response {
    let (busy, since) = state.health.snapshot();
    let status = if busy { "HealthyBusy" } else { "Healthy" };
    axum::Json(json!({"status": status, "time_of_last_update": since})).into_response()
}

/// A valid `/invocations` body.
#[derive(Debug, PartialEq)]
struct Invocation {
    prompt: String,
    session_id: Option<String>,
}

/// Reads `{"prompt": "...", "session_id": "..."}` (`code_int_session_id`
/// is accepted for `session_id`, as the original sample's README used it).
fn parse_invocation(body: &[u8]) -> Result<Invocation, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(r#"the body is not JSON ({e}); send {{"prompt": "...", "session_id": "..."}}"#)
    })?;
    let Value::Object(obj) = value else {
        return Err(
            r#"the body must be a JSON object: {"prompt": "...", "session_id": "..."}"#.into(),
        );
    };
    let prompt = match obj.get("prompt") {
        Some(Value::String(p)) if !p.trim().is_empty() => p.clone(),
        Some(Value::String(_)) => return Err("`prompt` is empty".into()),
        Some(_) => return Err("`prompt` must be a string".into()),
        None => return Err(r#"`prompt` is missing: send {"prompt": "..."}"#.into()),
    };
    let mut session_id = None;
    for key in ["session_id", "code_int_session_id"] {
        match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                if session_id.is_none() {
                    session_id = Some(s.trim().to_owned());
                }
            }
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(format!("`{key}` must be a string")),
        }
    }
    Ok(Invocation { prompt, session_id })
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

async fn invocations(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let invocation = match parse_invocation(&body) {
        Ok(i) => i,
        Err(message) => return bad_request(message),
    };
    let runtime_session = match headers.get(RUNTIME_SESSION_HEADER).map(|v| v.to_str()) {
        Some(Ok(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Err(_)) => {
            return bad_request(format!("the {RUNTIME_SESSION_HEADER} header is not ASCII"));
        }
        _ => None,
    };
    // Busy from now, not from when the task first runs, so a ping right
    // after this response starts already sees it.
    let busy = state.health.begin();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<AgentEvent>();
    tokio::spawn(async move {
        let conversation = match &runtime_session {
            Some(id) => state.conversations.get(id),
            None => Arc::new(Mutex::new(Conversation::default())),
        };
        let mut conv = conversation.lock().await;
        let mut sink = tx.clone();
        let outcome = tokio::select! {
            r = state.agent.ask(&mut conv, &invocation.prompt, invocation.session_id.as_deref(), &mut sink) => r,
            () = tx.closed() => {
                tracing::info!("the caller went away; invocation stopped");
                return;
            }
        };
        let last = match outcome {
            Ok(answer) => AgentEvent::Final {
                response: answer.response,
                session_id: answer.session_id,
            },
            Err(e) => {
                tracing::warn!("invocation failed: {e}");
                AgentEvent::Error {
                    error: e.to_string(),
                    session_id: conv.session_id.clone(),
                }
            }
        };
        // Idle before the last event goes out: a caller that has seen
        // `final` must not then see HealthyBusy.
        drop(conv);
        drop(busy);
        let _ = tx.send(last);
    });
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(|event| {
        let data = serde_json::to_string(&event).unwrap_or_else(|e| {
            json!({"type": "error", "error": format!("cannot serialize an event: {e}")}).to_string()
        });
        Ok::<_, Infallible>(Event::default().data(data))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `/ping` state: busy while any invocation runs; the time changes only
/// when the status does (a time that moved on every ping would keep the
/// runtime session from ever going idle).
struct Health {
    inner: std::sync::Mutex<(usize, u64)>,
}

impl Health {
    fn new() -> Self {
        Self {
            inner: std::sync::Mutex::new((0, unix_now())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, u64)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> (bool, u64) {
        let g = self.lock();
        (g.0 > 0, g.1)
    }

    fn begin(self: &Arc<Self>) -> BusyGuard {
        let mut g = self.lock();
        if g.0 == 0 {
            g.1 = unix_now();
        }
        g.0 += 1;
        BusyGuard(Arc::clone(self))
    }
}

struct BusyGuard(Arc<Health>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.0 = g.0.saturating_sub(1);
        if g.0 == 0 {
            g.1 = unix_now();
        }
    }
}

type SharedConversation = Arc<Mutex<Conversation>>;

/// Conversations by runtime session id, at most `max`, least recently used
/// evicted first. A conversation's lock serializes its invocations.
struct Conversations {
    max: usize,
    inner: std::sync::Mutex<Lru>,
}

/// A use counter, and each conversation with the count at its last use.
#[derive(Default)]
struct Lru {
    clock: u64,
    map: HashMap<String, (u64, SharedConversation)>,
}

impl Conversations {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: std::sync::Mutex::new(Lru::default()),
        }
    }

    fn get(&self, id: &str) -> SharedConversation {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Lru { clock, map } = &mut *g;
        *clock += 1;
        let now = *clock;
        if let Some((used, conv)) = map.get_mut(id) {
            *used = now;
            return Arc::clone(conv);
        }
        if map.len() >= self.max
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
        {
            tracing::debug!("forgetting conversation of runtime session {oldest}");
            map.remove(&oldest);
        }
        let conv: SharedConversation = Arc::default();
        map.insert(id.to_owned(), (now, Arc::clone(&conv)));
        conv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_payloads() {
        assert_eq!(
            parse_invocation(br#"{"prompt":"hi","session_id":"s1"}"#).unwrap(),
            Invocation {
                prompt: "hi".into(),
                session_id: Some("s1".into())
            }
        );
        assert_eq!(
            parse_invocation(br#"{"prompt":"hi","code_int_session_id":"s2"}"#)
                .unwrap()
                .session_id,
            Some("s2".into())
        );
        assert_eq!(
            parse_invocation(br#"{"prompt":"hi","session_id":""}"#)
                .unwrap()
                .session_id,
            None
        );
        for bad in [
            &b"not json"[..],
            br#"["prompt"]"#,
            br#"{}"#,
            br#"{"prompt":""}"#,
            br#"{"prompt":3}"#,
            br#"{"prompt":"x","session_id":5}"#,
        ] {
            assert!(
                parse_invocation(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_invocation(b"{}").unwrap_err().contains("prompt"));
    }

    #[test]
    fn health_is_busy_while_any_invocation_runs() {
        let h = Arc::new(Health::new());
        assert!(!h.snapshot().0);
        let a = h.begin();
        let b = h.begin();
        assert!(h.snapshot().0);
        drop(a);
        assert!(h.snapshot().0);
        drop(b);
        assert!(!h.snapshot().0);
    }

    #[test]
    fn conversations_are_evicted_least_recently_used_first() {
        let c = Conversations::new(2);
        let a = c.get("a");
        let _b = c.get("b");
        assert!(Arc::ptr_eq(&a, &c.get("a")));
        let _c = c.get("c"); // evicts b, the least recently used
        assert!(Arc::ptr_eq(&a, &c.get("a")));
        let b2 = c.get("b");
        assert!(!Arc::ptr_eq(&_b, &b2));
    }
}
