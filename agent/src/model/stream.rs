//! Messages-API stream events and their assembly into one [`AssistantTurn`].
//! The Anthropic API sends them as SSE `data:`; Bedrock sends the same JSON
//! in InvokeModelWithResponseStream chunks.

use serde::Deserialize;
use serde_json::Value;

use super::{AssistantTurn, ContentBlock, StopReason, TextSink, Usage};
use crate::error::ModelError;

/// One stream event. Unknown event, block and delta types are tolerated: the
/// API reserves the right to add them.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: ApiError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StartMessage {
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// The `error` object of an error event or an HTTP error body.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// `{"type":"error","error":{...}}`, the body of an HTTP error.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

impl ApiError {
    /// Maps an in-stream error event onto the same classes as HTTP statuses.
    pub fn into_model_error(self, provider: &'static str, auth_hint: &'static str) -> ModelError {
        let message = format!("{}: {}", self.kind, self.message);
        let status = match self.kind.as_str() {
            "overloaded_error" => 529,
            "rate_limit_error" => 429,
            "api_error" => 500,
            "authentication_error" => 401,
            "permission_error" => 403,
            "not_found_error" => 404,
            "request_too_large" => 413,
            _ => 400,
        };
        ModelError::from_status(status, message, None, provider, auth_hint)
    }
}

enum Partial {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        initial: Value,
        json: String,
    },
    Skipped,
}

/// Builds an [`AssistantTurn`] from stream events, passing text on as it
/// arrives.
pub struct TurnAssembler {
    provider: &'static str,
    auth_hint: &'static str,
    blocks: Vec<Partial>,
    stop_reason: Option<String>,
    usage: Usage,
    stopped: bool,
}

impl TurnAssembler {
    pub fn new(provider: &'static str, auth_hint: &'static str) -> Self {
        Self {
            provider,
            auth_hint,
            blocks: Vec::new(),
            stop_reason: None,
            usage: Usage::default(),
            stopped: false,
        }
    }

    /// Parses and applies one event's JSON.
    pub fn push_json(&mut self, data: &[u8], on_text: &mut TextSink<'_>) -> Result<(), ModelError> {
        let event: StreamEvent = serde_json::from_slice(data).map_err(|e| {
            ModelError::Protocol(format!(
                "bad stream event ({e}): {}",
                String::from_utf8_lossy(&data[..data.len().min(200)])
            ))
        })?;
        self.push(event, on_text)
    }

    pub fn push(
        &mut self,
        event: StreamEvent,
        on_text: &mut TextSink<'_>,
    ) -> Result<(), ModelError> {
        match event {
            StreamEvent::MessageStart { message } => {
                if let Some(u) = message.usage {
                    self.usage = u;
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let partial = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            on_text(&text);
                        }
                        Partial::Text(text)
                    }
                    StartBlock::ToolUse { id, name, input } => Partial::ToolUse {
                        id,
                        name,
                        initial: input,
                        json: String::new(),
                    },
                    StartBlock::Unknown => Partial::Skipped,
                };
                while self.blocks.len() <= index {
                    self.blocks.push(Partial::Skipped);
                }
                self.blocks[index] = partial;
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                match (self.blocks.get_mut(index), delta) {
                    (Some(Partial::Text(t)), Delta::TextDelta { text }) => {
                        on_text(&text);
                        t.push_str(&text);
                    }
                    (
                        Some(Partial::ToolUse { json, .. }),
                        Delta::InputJsonDelta { partial_json },
                    ) => {
                        json.push_str(&partial_json);
                    }
                    (None, _) => {
                        return Err(ModelError::Protocol(format!(
                            "delta for block {index}, which was never started"
                        )));
                    }
                    _ => {}
                }
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping {} | StreamEvent::Unknown => {}
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(r) = delta.stop_reason {
                    self.stop_reason = Some(r);
                }
                if let Some(u) = usage {
                    // message_delta's output_tokens are cumulative for the turn.
                    self.usage.output_tokens = u.output_tokens;
                }
            }
            StreamEvent::MessageStop {} => self.stopped = true,
            StreamEvent::Error { error } => {
                return Err(error.into_model_error(self.provider, self.auth_hint));
            }
        }
        Ok(())
    }

    /// The finished turn; an error if the stream ended before `message_stop`.
    pub fn finish(self) -> Result<AssistantTurn, ModelError> {
        if !self.stopped {
            return Err(ModelError::Network(
                "the stream ended before message_stop".into(),
            ));
        }
        let mut content = Vec::with_capacity(self.blocks.len());
        for block in self.blocks {
            match block {
                Partial::Text(text) => content.push(ContentBlock::Text { text }),
                Partial::ToolUse {
                    id,
                    name,
                    initial,
                    json,
                } => {
                    // With no input_json_delta the input is the start block's
                    // (normally `{}`).
                    let input = if json.trim().is_empty() {
                        if initial.is_object() {
                            initial
                        } else {
                            Value::Object(Default::default())
                        }
                    } else {
                        serde_json::from_str(&json).map_err(|e| {
                            ModelError::Protocol(format!(
                                "input of tool call {name} ({id}) is not JSON: {e}"
                            ))
                        })?
                    };
                    content.push(ContentBlock::ToolUse { id, name, input });
                }
                Partial::Skipped => {}
            }
        }
        let stop_reason = match self.stop_reason {
            Some(r) => StopReason::parse(&r),
            None => {
                return Err(ModelError::Protocol(
                    "the stream carried no stop_reason".into(),
                ));
            }
        };
        Ok(AssistantTurn {
            content,
            stop_reason,
            usage: self.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feed(events: &[Value]) -> (Result<AssistantTurn, ModelError>, String) {
        let mut text = String::new();
        let mut a = TurnAssembler::new("test", "hint");
        let mut sink = |t: &str| text.push_str(t);
        for e in events {
            if let Err(err) = a.push_json(e.to_string().as_bytes(), &mut sink) {
                return (Err(err), text);
            }
        }
        (a.finish(), text)
    }

    #[test]
    fn assembles_text_and_tool_use() {
        let (turn, text) = feed(&[
            json!({"type":"message_start","message":{"id":"m","role":"assistant","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            json!({"type":"ping"}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"run it."}}),
            json!({"type":"content_block_stop","index":0}),
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"execute_code","input":{}}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"code\": \"6*"}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"7\"}"}}),
            json!({"type":"content_block_stop","index":1}),
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}),
            json!({"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10}}),
        ]);
        let turn = turn.unwrap();
        assert_eq!(text, "Let me run it.");
        assert_eq!(turn.stop_reason, StopReason::ToolUse);
        assert_eq!(turn.usage.input_tokens, 10);
        assert_eq!(turn.usage.output_tokens, 42);
        assert_eq!(
            turn.content,
            vec![
                ContentBlock::Text {
                    text: "Let me run it.".into()
                },
                ContentBlock::ToolUse {
                    id: "toolu_1".into(),
                    name: "execute_code".into(),
                    input: json!({"code": "6*7"})
                }
            ]
        );
    }

    #[test]
    fn tool_use_without_deltas_has_empty_input() {
        let (turn, _) = feed(&[
            json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"list_files","input":{}}}),
            json!({"type":"content_block_stop","index":0}),
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"}}),
            json!({"type":"message_stop"}),
        ]);
        assert_eq!(
            turn.unwrap().content,
            vec![ContentBlock::ToolUse {
                id: "t".into(),
                name: "list_files".into(),
                input: json!({})
            }]
        );
    }

    #[test]
    fn unknown_events_blocks_and_deltas_are_ignored() {
        let (turn, text) = feed(&[
            json!({"type":"brand_new_event","x":1}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}),
            json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":"ok"}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}),
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn"}}),
            json!({"type":"message_stop"}),
        ]);
        let turn = turn.unwrap();
        assert_eq!(text, "ok");
        assert_eq!(turn.content, vec![ContentBlock::Text { text: "ok".into() }]);
        assert_eq!(turn.stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn error_events_are_classified() {
        let (turn, _) = feed(&[
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        ]);
        let err = turn.unwrap_err();
        assert!(matches!(err, ModelError::Overloaded { .. }), "{err:?}");
        assert!(err.is_retryable());
    }

    #[test]
    fn a_truncated_stream_is_a_retryable_error() {
        let (turn, _) = feed(&[
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ]);
        let err = turn.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
    }
}
