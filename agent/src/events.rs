//! What a conversation turn reports as it runs: the events streamed by
//! `serve` (one `data: <json>` SSE line each), rendered by `run`, and read
//! back by `invoke`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One event of an invocation. `final` or `error` is always the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// Claude called a tool (the input as Claude wrote it; the agent adds
    /// the session id).
    ToolUse {
        tool_name: String,
        tool_input: Value,
        #[serde(default)]
        tool_use_id: String,
    },
    /// A tool finished.
    ToolResult {
        tool_name: String,
        #[serde(default)]
        tool_use_id: String,
        is_error: bool,
        /// One line for people; Claude gets the full result.
        summary: String,
    },
    /// Text from Claude, streamed as it is written (a delta).
    Text { text: String },
    /// The answer: all of Claude's text of this invocation, and the code
    /// interpreter session to pass back to continue in it.
    Final {
        response: String,
        session_id: String,
    },
    /// The invocation failed; `session_id` is the session it was using, if
    /// one had been started.
    Error {
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
}

/// Where a conversation turn sends its events.
pub trait EventSink: Send {
    fn emit(&mut self, event: AgentEvent);
}

impl EventSink for tokio::sync::mpsc::UnboundedSender<AgentEvent> {
    fn emit(&mut self, event: AgentEvent) {
        // A closed channel means the caller went away; the task driving the
        // conversation notices that and stops it.
        let _ = self.send(event);
    }
}

impl EventSink for Vec<AgentEvent> {
    fn emit(&mut self, event: AgentEvent) {
        self.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_have_their_wire_shape() {
        let e = AgentEvent::ToolUse {
            tool_name: "execute_code".into(),
            tool_input: json!({"code":"1"}),
            tool_use_id: "t".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"type":"tool_use","tool_name":"execute_code","tool_input":{"code":"1"},"tool_use_id":"t"})
        );
        let e = AgentEvent::Error {
            error: "x".into(),
            session_id: None,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"type":"error","error":"x"})
        );
        let back: AgentEvent = serde_json::from_value(
            json!({"type":"final","response":"r","session_id":"s","extra":1}),
        )
        .unwrap();
        assert_eq!(
            back,
            AgentEvent::Final {
                response: "r".into(),
                session_id: "s".into()
            }
        );
    }
}
