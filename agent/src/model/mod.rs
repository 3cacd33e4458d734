//! The one seam for where Claude runs: the [`Model`] trait, the Messages-API
//! types both providers share, and the retry policy wrapped around them.
//!
//! Both providers speak Anthropic's native Messages format (Bedrock through
//! InvokeModelWithResponseStream with the Anthropic body), so one set of
//! types serves the conversation whichever provider is chosen at start-up.

pub mod anthropic;
pub mod bedrock;
pub mod stream;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ModelError;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One message of the conversation, in the Messages API's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }

    /// A user message that starts an exchange (a prompt), as opposed to one
    /// that carries tool results back to Claude.
    pub fn is_prompt(&self) -> bool {
        self.role == Role::User
            && !self
                .content
                .iter()
                .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
    }
}

/// A content block Claude reads or writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Vec<ContentBlock>,
        #[serde(default)]
        is_error: bool,
    },
}

/// Image data inside a content block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
}

/// A tool as Claude is shown it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
}

/// Everything one model turn needs.
#[derive(Debug, Clone, Copy)]
pub struct TurnRequest<'a> {
    pub system: &'a str,
    pub tools: &'a [ToolDef],
    pub messages: &'a [Message],
    pub max_tokens: u32,
}

/// Why Claude stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    PauseTurn,
    Refusal,
    Other(String),
}

impl StopReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "end_turn" => Self::EndTurn,
            "tool_use" => Self::ToolUse,
            "max_tokens" => Self::MaxTokens,
            "stop_sequence" => Self::StopSequence,
            "pause_turn" => Self::PauseTurn,
            "refusal" => Self::Refusal,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Token counts reported for one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
}

/// Claude's reply to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantTurn {
    pub content: Vec<ContentBlock>,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

/// Receives text as Claude writes it.
pub type TextSink<'a> = dyn FnMut(&str) + Send + 'a;

/// Where Claude runs. Chosen once, at start-up.
#[async_trait]
pub trait Model: Send + Sync {
    /// "provider model-id", for logs and errors.
    fn describe(&self) -> String;

    /// Streams one assistant turn, passing text deltas to `on_text` as they
    /// arrive. One attempt: retries are [`Retrying`]'s job.
    async fn stream_turn(
        &self,
        req: &TurnRequest<'_>,
        on_text: &mut TextSink<'_>,
    ) -> Result<AssistantTurn, ModelError>;
}

/// The request body both providers share: system prompt and tools marked
/// for prompt caching, and a cache breakpoint on the newest message so each
/// turn of a tool loop reuses the previous turns' prefix.
pub fn messages_body(req: &TurnRequest<'_>) -> Result<Map<String, Value>, ModelError> {
    let mut messages = serde_json::to_value(req.messages)
        .map_err(|e| ModelError::Internal(format!("cannot serialize messages: {e}")))?;
    if let Some(block) = messages
        .as_array_mut()
        .and_then(|m| m.last_mut())
        .and_then(|m| m.get_mut("content"))
        .and_then(Value::as_array_mut)
        .and_then(|c| c.last_mut())
        .and_then(Value::as_object_mut)
    {
        block.insert("cache_control".into(), json!({"type": "ephemeral"}));
    }
    let mut body = Map::new();
    body.insert("max_tokens".into(), json!(req.max_tokens));
    body.insert(
        "system".into(),
        json!([{"type": "text", "text": req.system, "cache_control": {"type": "ephemeral"}}]),
    );
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            serde_json::to_value(req.tools)
                .map_err(|e| ModelError::Internal(format!("cannot serialize tools: {e}")))?,
        );
    }
    body.insert("messages".into(), messages);
    Ok(body)
}

/// How often, and how patiently, a failed turn is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled on each retry, capped at `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): the server's
    /// `retry-after` when it gave one (capped), otherwise exponential backoff
    /// with up to 25% jitter so concurrent conversations spread out.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay.max(Duration::from_secs(60)));
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = exp.mul_f64(f64::from(nanos % 1000) / 4000.0);
        exp + jitter
    }
}

/// Retries a [`Model`] on rate limits (429), overload (529), server errors
/// (5xx) and dropped connections, with backoff. A turn is retried only while
/// none of its text has reached the caller, so a retry never repeats text.
pub struct Retrying {
    inner: Box<dyn Model>,
    policy: RetryPolicy,
}

impl Retrying {
    pub fn new(inner: Box<dyn Model>, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }
}

#[async_trait]
impl Model for Retrying {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn stream_turn(
        &self,
        req: &TurnRequest<'_>,
        on_text: &mut TextSink<'_>,
    ) -> Result<AssistantTurn, ModelError> {
        let mut retry = 0;
        loop {
            let mut emitted = false;
            let result = {
                let mut sink = |t: &str| {
                    emitted = true;
                    on_text(t);
                };
                self.inner.stream_turn(req, &mut sink).await
            };
            match result {
                Err(e) if e.is_retryable() && !emitted && retry < self.policy.max_retries => {
                    let delay = self.policy.delay(retry, e.retry_after());
                    tracing::warn!(
                        "{}: {e}; retrying in {:.1}s ({}/{})",
                        self.inner.describe(),
                        delay.as_secs_f64(),
                        retry + 1,
                        self.policy.max_retries
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_marks_system_and_newest_block_for_caching() {
        let messages = vec![
            Message::user_text("hi"),
            Message {
                role: Role::Assistant,
                content: vec![ContentBlock::ToolUse {
                    id: "t1".into(),
                    name: "execute_code".into(),
                    input: json!({"code": "1"}),
                }],
            },
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult {
                    tool_use_id: "t1".into(),
                    content: vec![ContentBlock::Text { text: "1".into() }],
                    is_error: false,
                }],
            },
        ];
        let req = TurnRequest {
            system: "sys",
            tools: &[],
            messages: &messages,
            max_tokens: 100,
        };
        let body = Value::Object(messages_body(&req).unwrap());
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        assert!(body.get("tools").is_none());
        assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(
            body["messages"][2]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert!(
            body["messages"][0]["content"][0]
                .get("cache_control")
                .is_none()
        );
        assert_eq!(body["messages"][2]["content"][0]["is_error"], false);
    }

    #[test]
    fn image_blocks_have_the_messages_api_shape() {
        let block = ContentBlock::Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&block).unwrap(),
            json!({"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}})
        );
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert!(p.delay(0, None) >= Duration::from_secs(1));
        assert!(p.delay(0, None) < Duration::from_millis(1251));
        assert!(p.delay(3, None) >= Duration::from_secs(8));
        assert!(p.delay(10, None) <= Duration::from_millis(37_500));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(0))),
            Duration::from_secs(0)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn prompt_messages_are_told_from_tool_results() {
        assert!(Message::user_text("x").is_prompt());
        let results = Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: "t".into(),
                content: vec![],
                is_error: true,
            }],
        };
        assert!(!results.is_prompt());
    }
}
