//! The mapping between MCP tools and Claude's: which tools Claude sees and
//! with what schema, how the agent's session id is injected into each call,
//! and how a tool result becomes Claude content blocks.
//!
//! The agent owns the code-interpreter session of a conversation, so Claude
//! never sees `session_id` (removed from every schema, and injected into
//! every call of a tool that declares it) and never sees `start_session` /
//! `stop_session`: a model that stopped the session or started another would
//! break the conversation.

use serde_json::{Map, Value};

use crate::model::{ContentBlock, ImageSource, ToolDef};

/// MCP tools the agent keeps to itself.
pub const HIDDEN_TOOLS: &[&str] = &["start_session", "stop_session"];

/// The property the agent injects into every tool call.
pub const SESSION_PARAM: &str = "session_id";

/// Image types Claude accepts in content blocks.
const CLAUDE_IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Claude's view of the MCP tools: hidden tools dropped, `session_id` and
/// `$schema` removed from each input schema.
pub fn claude_tools(mcp_tools: &[rmcp::model::Tool]) -> Vec<ToolDef> {
    mcp_tools
        .iter()
        .filter(|t| !HIDDEN_TOOLS.contains(&t.name.as_ref()))
        .map(|t| ToolDef {
            name: t.name.to_string(),
            description: t.description.as_ref().map(|d| d.to_string()),
            input_schema: claude_schema(&t.input_schema),
        })
        .collect()
}

/// The tools whose input schema declares `session_id`: the ones the agent
/// injects it into (others, such as `get_task`, refuse unknown arguments).
pub fn session_scoped(mcp_tools: &[rmcp::model::Tool]) -> Vec<String> {
    mcp_tools
        .iter()
        .filter(|t| {
            t.input_schema
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key(SESSION_PARAM))
        })
        .map(|t| t.name.to_string())
        .collect()
}

fn claude_schema(schema: &Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    schema.remove("$schema");
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove(SESSION_PARAM);
    }
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r.as_str() != Some(SESSION_PARAM));
    }
    if schema.get("type").is_none() {
        schema.insert("type".into(), Value::String("object".into()));
    }
    Value::Object(schema)
}

/// The arguments sent to the server: Claude's input with the conversation's
/// session id put in when the tool takes one (replacing any the model
/// invented), and left out when it does not.
pub fn inject_session(input: &Value, session_id: Option<&str>) -> Map<String, Value> {
    let mut args = match input {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match session_id {
        Some(id) => args.insert(SESSION_PARAM.into(), Value::String(id.to_owned())),
        None => args.remove(SESSION_PARAM),
    };
    args
}

/// A tool result as Claude receives it (the content of a `tool_result`).
///
/// Text blocks and images are passed through; the structured content is
/// added as JSON text when present, because it is where the server puts
/// everything the model needs (Claude Code shows the model the same).
/// Images of types Claude cannot read, audio and resources become a note.
pub fn claude_result_content(result: &Value) -> Vec<ContentBlock> {
    let mut out = Vec::new();
    for block in result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text" => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                if !text.is_empty() && !is_copy_of_structured(text, result) {
                    out.push(ContentBlock::Text { text: text.into() });
                }
            }
            "image" => {
                let mime = block.get("mimeType").and_then(Value::as_str).unwrap_or("");
                let data = block.get("data").and_then(Value::as_str).unwrap_or("");
                if CLAUDE_IMAGE_TYPES.contains(&mime) && !data.is_empty() {
                    out.push(ContentBlock::Image {
                        source: ImageSource::Base64 {
                            media_type: mime.into(),
                            data: data.into(),
                        },
                    });
                } else {
                    out.push(ContentBlock::Text {
                        text: format!(
                            "[an image of type {mime:?} was returned; it is not shown because \
                             only PNG, JPEG, GIF and WebP images can be]"
                        ),
                    });
                }
            }
            "resource" => {
                let res = block.get("resource").unwrap_or(&Value::Null);
                let uri = res.get("uri").and_then(Value::as_str).unwrap_or("");
                match res.get("text").and_then(Value::as_str) {
                    Some(text) => out.push(ContentBlock::Text {
                        text: format!("[resource {uri}]\n{text}"),
                    }),
                    None => out.push(ContentBlock::Text {
                        text: format!("[binary resource {uri} not shown]"),
                    }),
                }
            }
            "resource_link" => {
                let uri = block.get("uri").and_then(Value::as_str).unwrap_or("");
                out.push(ContentBlock::Text {
                    text: format!("[resource link {uri}]"),
                });
            }
            other => out.push(ContentBlock::Text {
                text: format!("[{other} content not shown]"),
            }),
        }
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        out.push(ContentBlock::Text {
            text: structured.to_string(),
        });
    }
    if out.is_empty() {
        out.push(ContentBlock::Text {
            text: "(no output)".into(),
        });
    }
    out
}

/// A text block that only repeats the structured content (rmcp's `Json<T>`
/// results do this) would be sent twice; skip it.
fn is_copy_of_structured(text: &str, result: &Value) -> bool {
    match result.get("structuredContent") {
        Some(s) if !s.is_null() => serde_json::from_str::<Value>(text).is_ok_and(|t| &t == s),
        _ => false,
    }
}

/// Whether the server flagged the result as an error.
pub fn is_error(result: &Value) -> bool {
    result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A one-line description of a result for people (events, the terminal):
/// the server's short text, else a digest of the structured content.
pub fn summary(result: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                if !is_copy_of_structured(text, result) && !text.trim().is_empty() {
                    parts.push(text.trim().to_owned());
                }
            }
            Some("image") => parts.push("[image]".into()),
            _ => {}
        }
    }
    if parts.iter().all(|p| p == "[image]")
        && let Some(s) = result.get("structuredContent").filter(|v| !v.is_null())
    {
        parts.insert(0, s.to_string());
    }
    shorten(&parts.join(" "), 300)
}

/// `text` on one line, cut to about `max` characters.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, schema: Value) -> rmcp::model::Tool {
        serde_json::from_value(json!({"name": name, "description": "d", "inputSchema": schema}))
            .unwrap()
    }

    #[test]
    fn session_id_and_session_tools_are_hidden_from_claude() {
        let tools = vec![
            tool(
                "execute_code",
                json!({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
                       "properties":{"code":{"type":"string"},"session_id":{"type":"string"}},
                       "required":["code","session_id"]}),
            ),
            tool("start_session", json!({"type":"object","properties":{}})),
            tool(
                "stop_session",
                json!({"type":"object","properties":{"session_id":{"type":"string"}}}),
            ),
        ];
        let defs = claude_tools(&tools);
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].name, "execute_code");
        assert_eq!(
            defs[0].input_schema,
            json!({"type":"object","properties":{"code":{"type":"string"}},"required":["code"]})
        );
    }

    #[test]
    fn the_session_is_injected_over_whatever_the_model_sent() {
        let args = inject_session(&json!({"code":"1","session_id":"made-up"}), Some("real"));
        assert_eq!(Value::Object(args), json!({"code":"1","session_id":"real"}));
        let args = inject_session(&json!(null), Some("real"));
        assert_eq!(Value::Object(args), json!({"session_id":"real"}));
    }

    /// Regression: get_task takes no session_id and refuses unknown
    /// arguments, so injecting one everywhere broke it.
    #[test]
    fn tools_without_a_session_id_get_none() {
        let tools = vec![
            tool(
                "execute_code",
                json!({"type":"object","properties":{"code":{},"session_id":{}}}),
            ),
            tool(
                "get_task",
                json!({"type":"object","properties":{"task_id":{}},"required":["task_id"]}),
            ),
        ];
        assert_eq!(session_scoped(&tools), ["execute_code"]);
        let args = inject_session(&json!({"task_id":"t","session_id":"made-up"}), None);
        assert_eq!(Value::Object(args), json!({"task_id":"t"}));
    }

    #[test]
    fn results_become_text_images_and_structured_json() {
        let result = json!({
            "content":[
                {"type":"text","text":"ok: 42"},
                {"type":"image","data":"iVBO","mimeType":"image/png"},
                {"type":"image","data":"PHN2","mimeType":"image/svg+xml"}
            ],
            "structuredContent":{"stdout":"42\n","success":true},
            "isError":false
        });
        let blocks = claude_result_content(&result);
        assert_eq!(blocks.len(), 4);
        assert_eq!(
            blocks[0],
            ContentBlock::Text {
                text: "ok: 42".into()
            }
        );
        assert!(
            matches!(&blocks[1], ContentBlock::Image { source: ImageSource::Base64 { media_type, .. } } if media_type == "image/png")
        );
        assert!(matches!(&blocks[2], ContentBlock::Text { text } if text.contains("svg")));
        assert_eq!(
            blocks[3],
            ContentBlock::Text {
                text: r#"{"stdout":"42\n","success":true}"#.into()
            }
        );
        assert!(!is_error(&result));
        assert_eq!(summary(&result), "ok: 42 [image] [image]");
    }

    #[test]
    fn a_text_copy_of_the_structured_content_is_not_sent_twice() {
        let result = json!({
            "content":[{"type":"text","text":"{\"a\":1}"}],
            "structuredContent":{"a":1}
        });
        assert_eq!(
            claude_result_content(&result),
            vec![ContentBlock::Text {
                text: r#"{"a":1}"#.into()
            }]
        );
        assert_eq!(summary(&result), r#"{"a":1}"#);
    }

    #[test]
    fn errors_and_empty_results() {
        let result = json!({"content":[{"type":"text","text":"unknown session"}],"isError":true});
        assert!(is_error(&result));
        assert_eq!(
            claude_result_content(&result),
            vec![ContentBlock::Text {
                text: "unknown session".into()
            }]
        );
        assert_eq!(
            claude_result_content(&json!({"content":[]})),
            vec![ContentBlock::Text {
                text: "(no output)".into()
            }]
        );
    }

    #[test]
    fn shorten_keeps_one_line() {
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcdef", 3), "abc…");
    }
}
