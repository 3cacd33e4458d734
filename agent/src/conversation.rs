//! The tool-use loop: one prompt in, Claude and the code-interpreter tools
//! taking turns until Claude ends its turn, one answer out. Also owns the
//! conversation's code-interpreter session and its bounded history.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{AgentError, McpError};
use crate::events::{AgentEvent, EventSink};
use crate::mcp::McpServer;
use crate::model::{ContentBlock, Message, Model, Role, StopReason, ToolDef, TurnRequest};
use crate::tools;

/// The system prompt: route all execution through the code interpreter.
pub const SYSTEM_PROMPT: &str = "\
You are an assistant that solves tasks by writing and running code in a code interpreter.

Rules:
1. Use the code interpreter tools for ALL code execution, shell commands and file work: \
execute_code (Python by default; also javascript and typescript), execute_command (bash), \
write_files, read_files and list_files. Do not just show code for the user to run, and never \
state a result that you did not get from a tool.
2. Use the tools without asking for permission.
3. Prefer libraries that are already available. If a library is missing, rewrite the code to \
use one that is available rather than installing it.
4. The session is kept for the whole conversation: variables, imports and files persist \
between calls, so build on earlier work. File paths are relative to the session's working \
directory.
5. In your answer, show the results (values, tables, the paths of files you saved) and explain \
them briefly.";

/// Knobs of the loop.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub system_prompt: String,
    /// Model requests per prompt before giving up.
    pub max_turns: u32,
    pub max_tokens: u32,
    /// Messages kept per conversation (older exchanges are dropped whole).
    pub max_history: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: SYSTEM_PROMPT.into(),
            max_turns: 25,
            max_tokens: 8192,
            max_history: 40,
        }
    }
}

/// One conversation: its messages and its code-interpreter session.
#[derive(Debug, Default)]
pub struct Conversation {
    pub messages: Vec<Message>,
    pub session_id: Option<String>,
}

/// The outcome of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Claude's text of this prompt, blocks joined by newlines.
    pub response: String,
    pub session_id: String,
}

/// Claude plus the code-interpreter server.
pub struct Agent {
    model: Arc<dyn Model>,
    server: Arc<McpServer>,
    tools: Vec<ToolDef>,
    /// Tools that take the session id.
    session_scoped: Vec<String>,
    config: AgentConfig,
}

impl Agent {
    pub fn new(model: Arc<dyn Model>, server: Arc<McpServer>, mut config: AgentConfig) -> Self {
        let tools = tools::claude_tools(server.tools());
        let session_scoped = tools::session_scoped(server.tools());
        if let Some(instructions) = server.instructions() {
            config.system_prompt = with_server_instructions(&config.system_prompt, instructions);
        }
        Self {
            model,
            server,
            tools,
            session_scoped,
            config,
        }
    }

    pub fn server(&self) -> &Arc<McpServer> {
        &self.server
    }

    /// Answers `prompt` in `conv`, streaming events to `events` (all but the
    /// closing `final`/`error`, which the caller sends). `session` names a
    /// code-interpreter session to use; without one the conversation's own
    /// is used, or a new one started.
    ///
    /// On failure, or if the future is dropped, the history is left as it
    /// was before (a half-finished exchange would be an invalid request).
    pub async fn ask(
        &self,
        conv: &mut Conversation,
        prompt: &str,
        session: Option<&str>,
        events: &mut dyn EventSink,
    ) -> Result<Answer, AgentError> {
        let note = self.choose_session(conv, session).await?;
        let mut session_id = conv
            .session_id
            .clone()
            .ok_or_else(|| AgentError::Session("no session was started".into()))?;
        let mut history = Rollback::new(&mut conv.messages);
        let text = match note {
            Some(note) => format!("[{note}]\n\n{prompt}"),
            None => prompt.to_owned(),
        };
        history.push(Message::user_text(text));

        let mut texts: Vec<String> = Vec::new();
        let mut turns = 0;
        loop {
            if turns == self.config.max_turns {
                return Err(AgentError::MaxTurns(self.config.max_turns));
            }
            turns += 1;
            let request = TurnRequest {
                system: &self.config.system_prompt,
                tools: &self.tools,
                messages: history.messages(),
                max_tokens: self.config.max_tokens,
            };
            let turn = {
                let mut on_text = |t: &str| events.emit(AgentEvent::Text { text: t.into() });
                self.model.stream_turn(&request, &mut on_text).await
            }
            .map_err(|source| AgentError::Model {
                model: self.model.describe(),
                source,
            })?;
            tracing::debug!(
                "turn {turns}: stop {:?}, {} in / {} out tokens (cache read {:?})",
                turn.stop_reason,
                turn.usage.input_tokens,
                turn.usage.output_tokens,
                turn.usage.cache_read_input_tokens
            );
            texts.extend(turn.content.iter().filter_map(|b| match b {
                ContentBlock::Text { text } if !text.is_empty() => Some(text.clone()),
                _ => None,
            }));
            let calls: Vec<(String, String, Value)> = turn
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            if !turn.content.is_empty() {
                history.push(Message {
                    role: Role::Assistant,
                    content: turn.content,
                });
            }
            match turn.stop_reason {
                StopReason::ToolUse if !calls.is_empty() => {}
                StopReason::PauseTurn => continue,
                StopReason::MaxTokens if !calls.is_empty() => {
                    return Err(AgentError::MaxTokens(self.config.max_tokens));
                }
                StopReason::MaxTokens => {
                    tracing::warn!(
                        "Claude's answer was cut at max_tokens ({})",
                        self.config.max_tokens
                    );
                    break;
                }
                _ => break,
            }
            let mut results = Vec::with_capacity(calls.len());
            for (id, name, input) in calls {
                events.emit(AgentEvent::ToolUse {
                    tool_name: name.clone(),
                    tool_input: input.clone(),
                    tool_use_id: id.clone(),
                });
                let (content, is_error, summary) = match self
                    .call_tool(&name, &input, &session_id)
                    .await
                {
                    Ok(result) => (
                        tools::claude_result_content(&result),
                        tools::is_error(&result),
                        tools::summary(&result),
                    ),
                    Err(McpError::Died { detail, outcome }) => {
                        let fresh = self.start_session().await.map_err(|e| {
                            AgentError::Session(format!(
                                "the code-interpreter server exited unexpectedly ({detail}); \
                                     {outcome}; then starting a new session failed: {e}"
                            ))
                        })?;
                        session_id = fresh.clone();
                        conv.session_id = Some(fresh);
                        let message = format!(
                            "The code-interpreter server exited unexpectedly ({detail}) and was \
                                 restarted. A new, empty session was started: variables and files \
                                 from earlier calls are gone."
                        );
                        (
                            vec![ContentBlock::Text {
                                text: message.clone(),
                            }],
                            true,
                            message,
                        )
                    }
                    Err(e) => {
                        let message = e.to_string();
                        (
                            vec![ContentBlock::Text {
                                text: message.clone(),
                            }],
                            true,
                            message,
                        )
                    }
                };
                events.emit(AgentEvent::ToolResult {
                    tool_name: name,
                    tool_use_id: id.clone(),
                    is_error,
                    summary: tools::shorten(&summary, 300),
                });
                results.push(ContentBlock::ToolResult {
                    tool_use_id: id,
                    content,
                    is_error,
                });
            }
            history.push(Message {
                role: Role::User,
                content: results,
            });
        }
        history.commit();
        trim_history(&mut conv.messages, self.config.max_history);
        Ok(Answer {
            response: texts.join("\n"),
            session_id,
        })
    }

    /// Runs one tool call for Claude in the conversation's session.
    async fn call_tool(
        &self,
        name: &str,
        input: &Value,
        session_id: &str,
    ) -> Result<Value, McpError> {
        if !self.tools.iter().any(|t| t.name == name) {
            let known: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
            return Ok(json!({
                "content": [{"type": "text", "text": format!(
                    "There is no tool named `{name}`. Available tools: {}.", known.join(", "))}],
                "isError": true
            }));
        }
        let scoped = self.session_scoped.iter().any(|t| t == name);
        let args = tools::inject_session(input, scoped.then_some(session_id));
        self.server.call(name, args).await
    }

    /// Settles which session this prompt runs in; returns a note for Claude
    /// when an earlier session of the conversation had to be replaced.
    async fn choose_session(
        &self,
        conv: &mut Conversation,
        requested: Option<&str>,
    ) -> Result<Option<String>, AgentError> {
        let requested = requested.map(str::trim).filter(|s| !s.is_empty());
        match (requested, conv.session_id.clone()) {
            (Some(wanted), current) if current.as_deref() != Some(wanted) => {
                if !self.session_alive(wanted).await? {
                    return Err(AgentError::Session(format!(
                        "session `{wanted}` is unknown or has ended; omit the session id to \
                         start a new session"
                    )));
                }
                conv.session_id = Some(wanted.to_owned());
                Ok(None)
            }
            (_, Some(current)) => {
                if self.session_alive(&current).await? {
                    return Ok(None);
                }
                tracing::info!("session {current} has ended; starting a new one");
                conv.session_id = Some(self.start_session().await?);
                Ok(Some(
                    "Note: the code-interpreter session used earlier in this conversation has \
                     ended (it was idle too long or the server restarted). A new session was \
                     started: earlier variables and files are gone."
                        .into(),
                ))
            }
            (_, None) => {
                conv.session_id = Some(self.start_session().await?);
                Ok(None)
            }
        }
    }

    /// Starts a code-interpreter session and returns its id.
    pub async fn start_session(&self) -> Result<String, AgentError> {
        let result = self
            .server
            .call(
                "start_session",
                serde_json::Map::from_iter([("name".into(), json!("code-interpreter-agent"))]),
            )
            .await?;
        if tools::is_error(&result) {
            return Err(AgentError::Session(format!(
                "start_session failed: {}",
                tools::summary(&result)
            )));
        }
        result
            .pointer("/structuredContent/session_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                AgentError::Session(format!(
                    "start_session returned no session_id: {}",
                    tools::summary(&result)
                ))
            })
    }

    /// Stops a session; returns whether the server stopped it.
    pub async fn stop_session(&self, session_id: &str) -> Result<bool, AgentError> {
        let result = self
            .server
            .call(
                "stop_session",
                serde_json::Map::from_iter([("session_id".into(), json!(session_id))]),
            )
            .await?;
        Ok(!tools::is_error(&result))
    }

    async fn session_alive(&self, session_id: &str) -> Result<bool, AgentError> {
        let args = tools::inject_session(&json!({"path": "."}), Some(session_id));
        let result = self.server.call("list_files", args).await?;
        Ok(!tools::is_error(&result))
    }
}

/// The system prompt followed by the server's own guidance, as Claude Code
/// passes MCP server instructions on. The agent manages the session, so
/// what the server says about `session_id` does not apply to Claude.
pub fn with_server_instructions(system_prompt: &str, instructions: &str) -> String {
    format!(
        "{system_prompt}\n\nGuidance from the code interpreter (the agent manages the session \
         for you: never pass a session_id, and there is no start_session or stop_session \
         tool):\n{}",
        instructions.trim()
    )
}

/// Undoes the messages pushed during a prompt unless it is committed, so a
/// failed or abandoned prompt leaves a valid history.
struct Rollback<'a> {
    messages: &'a mut Vec<Message>,
    len: usize,
    committed: bool,
}

impl<'a> Rollback<'a> {
    fn new(messages: &'a mut Vec<Message>) -> Self {
        let len = messages.len();
        Self {
            messages,
            len,
            committed: false,
        }
    }
    fn push(&mut self, m: Message) {
        self.messages.push(m);
    }
    fn messages(&self) -> &[Message] {
        self.messages
    }
    fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.messages.truncate(self.len);
        }
    }
}

/// Drops the oldest whole exchanges (a prompt and everything up to the next
/// prompt) until at most `max` messages remain; never splits an exchange,
/// so the newest exchange is kept even when it alone is longer.
pub fn trim_history(messages: &mut Vec<Message>, max: usize) {
    while messages.len() > max {
        let next_prompt = messages
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, m)| m.is_prompt())
            .map(|(i, _)| i);
        match next_prompt {
            Some(i) => {
                messages.drain(..i);
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(n: usize) -> Vec<Message> {
        let mut v = vec![Message::user_text(format!("prompt {n}"))];
        v.push(Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                id: format!("t{n}"),
                name: "execute_code".into(),
                input: json!({}),
            }],
        });
        v.push(Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: format!("t{n}"),
                content: vec![],
                is_error: false,
            }],
        });
        v.push(Message {
            role: Role::Assistant,
            content: vec![ContentBlock::Text {
                text: format!("answer {n}"),
            }],
        });
        v
    }

    #[test]
    fn history_is_trimmed_by_whole_exchanges() {
        let mut m: Vec<Message> = (0..5).flat_map(exchange).collect();
        trim_history(&mut m, 10);
        assert_eq!(m.len(), 8);
        assert_eq!(m[0], Message::user_text("prompt 3"));
        trim_history(&mut m, 3);
        assert_eq!(m.len(), 4, "the newest exchange is never split");
        assert_eq!(m[0], Message::user_text("prompt 4"));
    }

    #[test]
    fn rollback_restores_the_history_unless_committed() {
        let mut m = exchange(0);
        {
            let mut r = Rollback::new(&mut m);
            r.push(Message::user_text("x"));
        }
        assert_eq!(m.len(), 4);
        {
            let mut r = Rollback::new(&mut m);
            r.push(Message::user_text("x"));
            r.commit();
        }
        assert_eq!(m.len(), 5);
    }
}
