//! The code-interpreter MCP server as a child process: finding it, spawning
//! it over stdio with the rmcp client, forwarding its stderr to tracing,
//! calling tools, and restarting it once when it dies.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt;
use tokio::sync::RwLock;

use crate::error::McpError;

/// The server binary's name.
pub const SERVER_BIN: &str = "code-interpreter-mcp";

/// Longest a tool call may take: the server's own largest timeout (3600 s)
/// plus room for it to interrupt, kill and report.
pub const TOOL_CALL_LIMIT: Duration = Duration::from_secs(3700);

/// Environment variables the server never needs: keep model credentials out
/// of its process (it builds session environments from scratch anyway).
const WITHHELD_ENV: &[&str] = &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"];

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ServerCommand {
    /// `explicit` (from `--server` / `CODE_INTERPRETER_MCP_BIN`), else the
    /// server beside this executable, else the name, looked up on PATH.
    pub fn locate(explicit: Option<PathBuf>, args: Vec<String>) -> Self {
        let program = explicit
            .or_else(|| {
                let beside = std::env::current_exe().ok()?.parent()?.join(SERVER_BIN);
                beside.is_file().then_some(beside)
            })
            .unwrap_or_else(|| PathBuf::from(SERVER_BIN));
        Self { program, args }
    }
}

type Client = RunningService<RoleClient, ClientConfig>;

struct Running {
    client: Client,
    generation: u64,
}

enum State {
    Up(Running),
    /// It died and the one restart failed: calls fail with this reason.
    Down(String),
}

/// The running server, shared by every conversation of this process.
pub struct McpServer {
    command: ServerCommand,
    tools: Vec<Tool>,
    instructions: Option<String>,
    state: RwLock<State>,
}

impl McpServer {
    /// Spawns the server, initializes MCP and lists its tools.
    pub async fn start(command: ServerCommand) -> Result<Self, McpError> {
        let client = spawn(&command).await?;
        let tools = client
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| McpError::Initialize(format!("tools/list failed: {e}")))?;
        let instructions = client
            .peer()
            .peer_info()
            .and_then(|info| info.instructions.clone())
            .filter(|i| !i.trim().is_empty());
        tracing::debug!(
            "code-interpreter server {} offers {} tools",
            command.program.display(),
            tools.len()
        );
        Ok(Self {
            command,
            tools,
            instructions,
            state: RwLock::new(State::Up(Running {
                client,
                generation: 0,
            })),
        })
    }

    /// The tools the server listed at start.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The guidance the server gave at initialization, if any.
    pub fn instructions(&self) -> Option<&str> {
        self.instructions.as_deref()
    }

    /// Calls one tool and returns its result as MCP JSON (`content`,
    /// `structuredContent`, `isError`). If the server has died it is
    /// restarted once and the call fails with [`McpError::Died`].
    pub async fn call(&self, tool: &str, args: Map<String, Value>) -> Result<Value, McpError> {
        let (peer, generation) = match &*self.state.read().await {
            State::Up(r) => (r.client.peer().clone(), r.generation),
            State::Down(reason) => {
                return Err(McpError::Died {
                    detail: reason.clone(),
                    outcome: "it could not be restarted; restart the agent".into(),
                });
            }
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
        let result = tokio::time::timeout(TOOL_CALL_LIMIT, peer.call_tool(params)).await;
        match result {
            Err(_) => Err(McpError::Timeout {
                tool: tool.into(),
                seconds: TOOL_CALL_LIMIT.as_secs(),
            }),
            Ok(Ok(result)) => serde_json::to_value(&result).map_err(|e| McpError::Call {
                tool: tool.into(),
                detail: format!("cannot read the result: {e}"),
            }),
            Ok(Err(e @ (ServiceError::TransportClosed | ServiceError::TransportSend(_)))) => {
                let detail = e.to_string();
                tracing::error!("the code-interpreter server died during `{tool}`: {detail}");
                let outcome = self.restart(generation).await;
                Err(McpError::Died { detail, outcome })
            }
            Ok(Err(e)) => Err(McpError::Call {
                tool: tool.into(),
                detail: e.to_string(),
            }),
        }
    }

    /// Replaces a dead server of `generation` (unless a concurrent call has
    /// already done so). Returns what happened, for the caller to report.
    async fn restart(&self, generation: u64) -> String {
        let mut state = self.state.write().await;
        match &*state {
            State::Up(r) if r.generation != generation => {
                return "it has been restarted; sessions it held are gone".into();
            }
            State::Down(reason) => return format!("restarting it failed: {reason}"),
            State::Up(_) => {}
        }
        match spawn(&self.command).await {
            Ok(client) => {
                tracing::warn!("restarted the code-interpreter server");
                *state = State::Up(Running {
                    client,
                    generation: generation + 1,
                });
                "it has been restarted; sessions it held are gone".into()
            }
            Err(e) => {
                tracing::error!("could not restart the code-interpreter server: {e}");
                let reason = e.to_string();
                *state = State::Down(reason.clone());
                format!("restarting it failed: {reason}")
            }
        }
    }

    /// Closes the server's stdin and waits for it to stop its sessions and
    /// exit (SIGTERM, then SIGKILL, if it does not).
    /// Later calls fail.
    pub async fn shutdown(&self) {
        let old = std::mem::replace(
            &mut *self.state.write().await,
            State::Down("the agent is shutting down".into()),
        );
        if let State::Up(r) = old
            && let Err(e) = r.client.cancel().await
        {
            tracing::warn!("stopping the code-interpreter server: {e}");
        }
    }
}

async fn spawn(command: &ServerCommand) -> Result<Client, McpError> {
    let cmd = tokio::process::Command::new(&command.program).configure(|c| {
        c.args(&command.args);
        for var in WITHHELD_ENV {
            c.env_remove(var);
        }
    });
    let spawn_error = |source| McpError::Spawn {
        program: command.program.display().to_string(),
        source,
    };
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let Some(stderr) = stderr {
        tokio::spawn(forward_stderr(stderr));
    }
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("code-interpreter-agent", env!("CARGO_PKG_VERSION")),
    );
    info.serve(transport)
        .await
        .map_err(|e| McpError::Initialize(e.to_string()))
}

/// Re-emits the server's log lines through tracing (target `mcp_server`),
/// at the level each line names, without the server's own timestamp.
async fn forward_stderr(stderr: tokio::process::ChildStderr) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match split_log_line(&line) {
            Some(("ERROR", rest)) => tracing::error!(target: "mcp_server", "{rest}"),
            Some(("WARN", rest)) => tracing::warn!(target: "mcp_server", "{rest}"),
            Some(("DEBUG", rest)) => tracing::debug!(target: "mcp_server", "{rest}"),
            Some(("TRACE", rest)) => tracing::trace!(target: "mcp_server", "{rest}"),
            Some((_, rest)) => tracing::info!(target: "mcp_server", "{rest}"),
            None => tracing::info!(target: "mcp_server", "{line}"),
        }
    }
}

/// `2026-01-01T00:00:00.000000Z  WARN target: message` into its level and
/// the rest; `None` for a line of another shape.
fn split_log_line(line: &str) -> Option<(&str, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    if !stamp.ends_with('Z') || !stamp.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start();
    let (level, message) = rest.split_once(' ')?;
    matches!(level, "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE")
        .then_some((level, message.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_log_lines_are_split() {
        assert_eq!(
            split_log_line("2026-11-25T04:21:17.743349Z  WARN code_interpreter_mcp::cli: careful"),
            Some(("WARN", "code_interpreter_mcp::cli: careful"))
        );
        assert_eq!(split_log_line("Traceback (most recent call last):"), None);
        assert_eq!(split_log_line("2026Z NOTALEVEL x"), None);
    }

    #[test]
    fn an_explicit_server_path_wins() {
        let c = ServerCommand::locate(Some(PathBuf::from("/x/server")), vec!["-v".into()]);
        assert_eq!(c.program, PathBuf::from("/x/server"));
        assert_eq!(c.args, ["-v"]);
    }
}
