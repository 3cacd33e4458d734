//! The AgentCore data plane from the caller's side: `invoke` (InvokeAgentRuntime,
//! reading the deployed agent's event stream) and `cleanup`
//! (StopRuntimeSession, StopCodeInterpreterSession).

use aws_sdk_bedrockagentcore::Client;
use aws_sdk_bedrockagentcore::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockagentcore::primitives::Blob;
use serde_json::{Value, json};

use crate::error::chain;
use crate::events::AgentEvent;

/// The shortest runtime session id AgentCore accepts.
pub const MIN_RUNTIME_SESSION_ID: usize = 33;

/// The AWS-managed code interpreter.
pub const DEFAULT_CODE_INTERPRETER: &str = "aws.codeinterpreter.v1";

/// A failed data-plane call.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Config(String),
    #[error("{operation} failed: {detail}")]
    Call {
        operation: &'static str,
        detail: String,
    },
    #[error("reading the response stream failed: {0}")]
    Stream(String),
}

/// Builds the client from the standard AWS chain (`region` overrides it;
/// `AWS_ENDPOINT_URL_BEDROCK_AGENTCORE` redirects it).
pub async fn client(region: Option<String>) -> Result<Client, RuntimeError> {
    let conf = crate::aws::load_config(region)
        .await
        .map_err(RuntimeError::Config)?;
    Ok(Client::new(&conf))
}

/// A fresh runtime session id (a UUID: 36 characters), or `given` if it is
/// long enough.
pub fn runtime_session_id(given: Option<String>) -> Result<String, RuntimeError> {
    match given {
        Some(id) if id.len() >= MIN_RUNTIME_SESSION_ID => Ok(id),
        Some(id) => Err(RuntimeError::Config(format!(
            "the runtime session id `{id}` is {} characters; AgentCore needs at least {MIN_RUNTIME_SESSION_ID}",
            id.len()
        ))),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// What a deployed agent's response carried, piece by piece.
#[derive(Debug, Clone, PartialEq)]
pub enum Streamed {
    /// One of this agent's events.
    Event(AgentEvent),
    /// Any other JSON or text line (another agent's format).
    Other(String),
}

/// What to invoke.
#[derive(Debug, Clone)]
pub struct Invoke {
    pub arn: String,
    pub qualifier: String,
    pub runtime_session_id: String,
    pub prompt: String,
    pub session_id: Option<String>,
}

/// Calls InvokeAgentRuntime and passes each streamed item to `on_item`.
pub async fn invoke(
    client: &Client,
    request: &Invoke,
    on_item: &mut (dyn FnMut(Streamed) + Send),
) -> Result<(), RuntimeError> {
    let mut payload = json!({"prompt": request.prompt});
    if let Some(s) = &request.session_id {
        payload["session_id"] = json!(s);
    }
    let payload = serde_json::to_vec(&payload)
        .map_err(|e| RuntimeError::Config(format!("cannot encode the payload: {e}")))?;
    let mut output = client
        .invoke_agent_runtime()
        .agent_runtime_arn(&request.arn)
        .qualifier(&request.qualifier)
        .runtime_session_id(&request.runtime_session_id)
        .content_type("application/json")
        .accept("text/event-stream, application/json")
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| call_error("InvokeAgentRuntime", &e))?;
    let mut lines = SseLines::default();
    while let Some(chunk) = output.response.next().await {
        let chunk = chunk.map_err(|e| RuntimeError::Stream(chain(&e)))?;
        for line in lines.push(&chunk) {
            on_item(parse_line(&line));
        }
    }
    if let Some(line) = lines.finish() {
        on_item(parse_line(&line));
    }
    Ok(())
}

/// Calls StopRuntimeSession.
pub async fn stop_runtime_session(
    client: &Client,
    arn: &str,
    runtime_session_id: &str,
    qualifier: &str,
) -> Result<(), RuntimeError> {
    client
        .stop_runtime_session()
        .agent_runtime_arn(arn)
        .runtime_session_id(runtime_session_id)
        .qualifier(qualifier)
        .send()
        .await
        .map_err(|e| call_error("StopRuntimeSession", &e))?;
    Ok(())
}

/// Calls StopCodeInterpreterSession.
pub async fn stop_code_interpreter_session(
    client: &Client,
    code_interpreter: &str,
    session_id: &str,
) -> Result<(), RuntimeError> {
    client
        .stop_code_interpreter_session()
        .code_interpreter_identifier(code_interpreter)
        .session_id(session_id)
        .send()
        .await
        .map_err(|e| call_error("StopCodeInterpreterSession", &e))?;
    Ok(())
}

fn call_error<E, R>(operation: &'static str, e: &SdkError<E, R>) -> RuntimeError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("(no message)")
        ),
        None => chain(e),
    };
    RuntimeError::Call { operation, detail }
}

/// One line of the response: an SSE `data:` line or a bare JSON line.
fn parse_line(line: &str) -> Streamed {
    let data = line
        .strip_prefix("data:")
        .map(str::trim_start)
        .unwrap_or(line);
    match serde_json::from_str::<Value>(data) {
        Ok(value) => match serde_json::from_value::<AgentEvent>(value.clone()) {
            Ok(event) => Streamed::Event(event),
            Err(_) => Streamed::Other(value.to_string()),
        },
        Err(_) => Streamed::Other(data.to_owned()),
    }
}

/// Splits a byte stream into lines, whatever the chunk boundaries, dropping
/// blank lines, SSE comments (`:keep-alive`) and non-data SSE fields.
#[derive(Default)]
struct SseLines {
    buf: Vec<u8>,
}

impl SseLines {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            if let Some(l) = keep(&line) {
                out.push(l);
            }
        }
        out
    }

    fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        keep(&rest)
    }
}

fn keep(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() || text.starts_with(':') {
        return None;
    }
    for field in ["event:", "id:", "retry:"] {
        if text.starts_with(field) {
            return None;
        }
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_any_chunking() {
        let body = b": keep-alive\n\ndata: {\"type\":\"text\",\"text\":\"a\"}\n\nevent: x\ndata: {\"type\":\"final\",\"response\":\"r\",\"session_id\":\"s\"}\r\n\r\n";
        for size in 1..body.len() {
            let mut l = SseLines::default();
            let mut got = Vec::new();
            for c in body.chunks(size) {
                got.extend(l.push(c));
            }
            got.extend(l.finish());
            assert_eq!(got.len(), 2, "chunk size {size}: {got:?}");
            assert_eq!(
                parse_line(&got[1]),
                Streamed::Event(AgentEvent::Final {
                    response: "r".into(),
                    session_id: "s".into()
                })
            );
        }
    }

    #[test]
    fn foreign_lines_are_kept_as_they_are() {
        assert_eq!(
            parse_line(r#"data: {"error":"boom","error_type":"KeyError"}"#),
            Streamed::Other(r#"{"error":"boom","error_type":"KeyError"}"#.into())
        );
        assert_eq!(parse_line("plain"), Streamed::Other("plain".into()));
    }

    #[test]
    fn runtime_session_ids_are_long_enough() {
        assert!(runtime_session_id(None).unwrap().len() >= MIN_RUNTIME_SESSION_ID);
        assert!(runtime_session_id(Some("short".into())).is_err());
        let long = "x".repeat(40);
        assert_eq!(runtime_session_id(Some(long.clone())).unwrap(), long);
    }
}
