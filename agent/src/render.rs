//! Terminal output of `run` and `invoke`: Claude's text as it streams, tool
//! calls and results as short indented blocks. Only this module writes to
//! the terminal; logs go to stderr through tracing.

use std::io::Write;

use serde_json::Value;

use crate::events::{AgentEvent, EventSink};

/// Lines of a tool's input shown before eliding the rest.
const INPUT_LINES: usize = 12;

/// Renders events readably to `out` (errors to `err`).
pub struct Terminal<W: Write + Send, E: Write + Send> {
    out: W,
    err: E,
    at_line_start: bool,
}

impl Terminal<std::io::Stdout, std::io::Stderr> {
    pub fn stdio() -> Self {
        Self::new(std::io::stdout(), std::io::stderr())
    }
}

impl<W: Write + Send, E: Write + Send> Terminal<W, E> {
    pub fn new(out: W, err: E) -> Self {
        Self {
            out,
            err,
            at_line_start: true,
        }
    }

    /// Writes a line of its own (after ending any text in progress).
    pub fn line(&mut self, text: &str) {
        self.end_line();
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Writes an error line to the error stream.
    pub fn error_line(&mut self, text: &str) {
        self.end_line();
        let _ = writeln!(self.err, "{text}");
        let _ = self.err.flush();
    }

    fn end_line(&mut self) {
        if !self.at_line_start {
            let _ = writeln!(self.out);
            self.at_line_start = true;
        }
    }

    pub fn into_parts(self) -> (W, E) {
        (self.out, self.err)
    }
}

impl<W: Write + Send, E: Write + Send> EventSink for Terminal<W, E> {
    fn emit(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::Text { text } => {
                if text.is_empty() {
                    return;
                }
                let _ = write!(self.out, "{text}");
                let _ = self.out.flush();
                self.at_line_start = text.ends_with('\n');
            }
            AgentEvent::ToolUse {
                tool_name,
                tool_input,
                ..
            } => {
                let (title, body) = describe_input(&tool_name, &tool_input);
                self.end_line();
                let _ = writeln!(self.out, "\n── {title}");
                let lines: Vec<&str> = body.lines().collect();
                for line in lines.iter().take(INPUT_LINES) {
                    let _ = writeln!(self.out, "   │ {line}");
                }
                if lines.len() > INPUT_LINES {
                    let _ = writeln!(
                        self.out,
                        "   │ … ({} more lines)",
                        lines.len() - INPUT_LINES
                    );
                }
                let _ = self.out.flush();
            }
            AgentEvent::ToolResult {
                is_error, summary, ..
            } => {
                self.end_line();
                let label = if is_error { "error" } else { "done" };
                let _ = writeln!(self.out, "   └ {label}: {summary}\n");
                let _ = self.out.flush();
            }
            AgentEvent::Final { .. } => self.end_line(),
            AgentEvent::Error { error, .. } => self.error_line(&format!("error: {error}")),
        }
    }
}

/// A title and a body for a tool call: code and commands as they are,
/// anything else as pretty JSON.
fn describe_input(tool: &str, input: &Value) -> (String, String) {
    let field = |k: &str| input.get(k).and_then(Value::as_str);
    match (tool, field("code"), field("command")) {
        ("execute_code", Some(code), _) => {
            let language = field("language").unwrap_or("python");
            (format!("{tool} ({language})"), code.to_owned())
        }
        ("execute_command", _, Some(command)) => (tool.to_owned(), format!("$ {command}")),
        _ => {
            let body = match input {
                Value::Object(m) if m.is_empty() => String::new(),
                _ => serde_json::to_string_pretty(input).unwrap_or_default(),
            };
            (tool.to_owned(), body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_reads_well() {
        let mut t = Terminal::new(Vec::new(), Vec::new());
        t.emit(AgentEvent::Text {
            text: "Let me compute.".into(),
        });
        t.emit(AgentEvent::ToolUse {
            tool_name: "execute_code".into(),
            tool_input: json!({"code": "x = 6\nprint(x * 7)"}),
            tool_use_id: "t".into(),
        });
        t.emit(AgentEvent::ToolResult {
            tool_name: "execute_code".into(),
            tool_use_id: "t".into(),
            is_error: false,
            summary: "42".into(),
        });
        t.emit(AgentEvent::Text {
            text: "It is 42.".into(),
        });
        t.emit(AgentEvent::Final {
            response: String::new(),
            session_id: "s".into(),
        });
        let (out, err) = t.into_parts();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Let me compute.\n\n── execute_code (python)\n   │ x = 6\n   │ print(x * 7)\n   └ done: 42\n\nIt is 42.\n"
        );
        assert!(err.is_empty());
    }

    #[test]
    fn commands_and_other_tools() {
        assert_eq!(
            describe_input("execute_command", &json!({"command": "ls -l"})),
            ("execute_command".into(), "$ ls -l".into())
        );
        assert_eq!(
            describe_input("list_files", &json!({})),
            ("list_files".into(), String::new())
        );
    }
}
