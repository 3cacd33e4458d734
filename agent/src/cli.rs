//! Command-line interface: `run`, `serve`, `invoke`, `cleanup`, their flags
//! (with environment twins where useful), and `run`, which the thin `main`
//! calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::conversation::{Agent, AgentConfig, Conversation};
use crate::error::AgentError;
use crate::events::{AgentEvent, EventSink};
use crate::mcp::{McpServer, ServerCommand};
use crate::model::anthropic::{self, Anthropic, AnthropicConfig};
use crate::model::bedrock::{self, Bedrock};
use crate::model::{Model, RetryPolicy, Retrying};
use crate::render::Terminal;
use crate::runtime_client::{self, Streamed};

const LONG_ABOUT: &str = "\
Companion agent for code-interpreter-mcp: Claude runs code through the MCP server's isolated,
stateful sessions.

The agent starts `code-interpreter-mcp` as a child over stdio (found beside this executable,
else on PATH; or set --server / CODE_INTERPRETER_MCP_BIN) and runs Claude's tool-use loop
over its tools. One code-interpreter session is kept per conversation; its id is returned.

Claude runs on the Anthropic API (ANTHROPIC_API_KEY; ANTHROPIC_BASE_URL honoured) or on
Amazon Bedrock (--provider bedrock or CLAUDE_CODE_USE_BEDROCK=1; standard AWS credentials and
region; AWS_ENDPOINT_URL_BEDROCK_RUNTIME honoured). Default models:
  Anthropic API:  claude-sonnet-4-6
  Bedrock:        global.anthropic.claude-sonnet-4-6  (global cross-region inference profile)

Commands:
  run      a prompt from the terminal, streamed readably
  serve    the AgentCore Runtime HTTP contract (POST /invocations, GET /ping) on 0.0.0.0:8080
  invoke   call a deployed agent with InvokeAgentRuntime and stream its events
  cleanup  stop an AgentCore code-interpreter session or runtime session

Logs go to stderr (RUST_LOG, e.g. RUST_LOG=debug).";

#[derive(Debug, Parser)]
#[command(name = "code-interpreter-agent", version, about = "Claude + code-interpreter-mcp: run, serve (AgentCore Runtime), invoke, cleanup", long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer one prompt, streaming tool calls and text to the terminal.
    Run(RunArgs),
    /// Serve the AgentCore Runtime HTTP contract (the container's entry point).
    Serve(ServeArgs),
    /// Invoke a deployed agent (InvokeAgentRuntime) and stream its events.
    Invoke(InvokeArgs),
    /// Stop an AgentCore code-interpreter session and/or a runtime session.
    Cleanup(CleanupArgs),
}

impl Command {
    /// The log filter when RUST_LOG is not set: quiet for people's commands.
    pub fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Serve(_) => "info,rmcp=warn",
            _ => "warn,rmcp=error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// The Anthropic Messages API.
    Anthropic,
    /// Amazon Bedrock (InvokeModelWithResponseStream).
    Bedrock,
}

#[derive(Debug, Clone, Args)]
pub struct ClaudeArgs {
    /// Where Claude runs [default: anthropic, or bedrock when CLAUDE_CODE_USE_BEDROCK=1].
    #[arg(long, value_enum)]
    pub provider: Option<Provider>,

    /// Model id [default: claude-sonnet-4-6 on the Anthropic API,
    /// global.anthropic.claude-sonnet-4-6 on Bedrock].
    #[arg(long, env = "ANTHROPIC_MODEL")]
    pub model: Option<String>,

    /// anthropic-version header of the Anthropic API.
    #[arg(long, env = "ANTHROPIC_VERSION", default_value = anthropic::DEFAULT_VERSION)]
    pub anthropic_version: String,

    /// Base URL of the Anthropic API.
    #[arg(long, env = "ANTHROPIC_BASE_URL", default_value = anthropic::DEFAULT_BASE_URL)]
    pub anthropic_base_url: String,

    /// AWS region for Bedrock [default: from the AWS configuration chain].
    #[arg(long)]
    pub region: Option<String>,

    /// Largest reply per model turn, in tokens.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: u32,

    /// Model turns per prompt before giving up.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: u32,

    /// Retries of a model turn on 429, 529, 5xx and dropped connections.
    #[arg(long, default_value_t = 4)]
    pub max_retries: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The code-interpreter-mcp binary [default: beside this executable, else on PATH].
    #[arg(long, env = "CODE_INTERPRETER_MCP_BIN", value_name = "PATH")]
    pub server: Option<PathBuf>,

    /// An argument for the server, e.g. --server-arg=--timeout=600 (repeatable).
    /// The server also reads its CODE_INTERPRETER_* environment variables.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to ask.
    pub prompt: String,

    /// Continue in this code-interpreter session instead of starting one.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Leave the session running at exit (for backends whose sessions outlive
    /// the server process; local sessions end when the server child exits).
    #[arg(long)]
    pub keep_session: bool,

    #[command(flatten)]
    pub claude: ClaudeArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Runtime-session conversations kept in memory (least recently used dropped).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_conversations: u64,

    /// Messages of history kept per conversation (whole exchanges are dropped).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(2..))]
    pub max_history: u64,

    #[command(flatten)]
    pub claude: ClaudeArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The agent runtime's ARN.
    #[arg(long)]
    pub arn: String,

    /// What to ask.
    pub prompt: String,

    /// Code-interpreter session to continue (the `session_id` of an earlier final event).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Runtime session to continue (at least 33 characters) [default: a new one].
    #[arg(long, value_name = "ID")]
    pub runtime_session_id: Option<String>,

    /// Endpoint qualifier.
    #[arg(long, default_value = "DEFAULT")]
    pub qualifier: String,

    /// AWS region [default: from the AWS configuration chain].
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).multiple(true)
    .args(["code_int_session_id", "runtime_session_id"])))]
pub struct CleanupArgs {
    /// Stop this AgentCore code-interpreter session.
    #[arg(long, alias = "code_int_session_id", value_name = "ID")]
    pub code_int_session_id: Option<String>,

    /// The code interpreter the session belongs to.
    #[arg(long, default_value = runtime_client::DEFAULT_CODE_INTERPRETER, value_name = "ID")]
    pub code_interpreter: String,

    /// Stop this runtime session (needs --arn).
    #[arg(
        long,
        alias = "runtime_session_id",
        requires = "arn",
        value_name = "ID"
    )]
    pub runtime_session_id: Option<String>,

    /// The agent runtime's ARN (for --runtime-session-id).
    #[arg(long, alias = "agent_arn")]
    pub arn: Option<String>,

    /// Endpoint qualifier (for --runtime-session-id).
    #[arg(long, default_value = "DEFAULT")]
    pub qualifier: String,

    /// AWS region [default: from the AWS configuration chain].
    #[arg(long)]
    pub region: Option<String>,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run_prompt(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Invoke(args) => invoke(args).await,
        Command::Cleanup(args) => cleanup(args).await,
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Bedrock when asked by flag, or by Claude Code's variable.
fn choose_provider(flag: Option<Provider>) -> Provider {
    flag.unwrap_or_else(|| {
        match env_nonempty("CLAUDE_CODE_USE_BEDROCK")
            .as_deref()
            .map(str::trim)
        {
            Some("1" | "true" | "TRUE" | "True" | "yes") => Provider::Bedrock,
            _ => Provider::Anthropic,
        }
    })
}

async fn build_model(args: &ClaudeArgs) -> anyhow::Result<Arc<dyn Model>> {
    let inner: Box<dyn Model> = match choose_provider(args.provider) {
        Provider::Anthropic => Box::new(Anthropic::new(AnthropicConfig {
            base_url: args.anthropic_base_url.clone(),
            api_key: env_nonempty("ANTHROPIC_API_KEY"),
            auth_token: env_nonempty("ANTHROPIC_AUTH_TOKEN"),
            version: args.anthropic_version.clone(),
            model: args
                .model
                .clone()
                .unwrap_or_else(|| anthropic::DEFAULT_MODEL.into()),
        })?),
        Provider::Bedrock => Box::new(
            Bedrock::new(
                args.model
                    .clone()
                    .unwrap_or_else(|| bedrock::DEFAULT_MODEL.into()),
                args.region.clone(),
            )
            .await?,
        ),
    };
    let policy = RetryPolicy {
        max_retries: args.max_retries,
        ..RetryPolicy::default()
    };
    Ok(Arc::new(Retrying::new(inner, policy)))
}

async fn start_agent(
    claude: &ClaudeArgs,
    server: ServerArgs,
    max_history: usize,
) -> anyhow::Result<Arc<Agent>> {
    let model = build_model(claude).await?;
    let command = ServerCommand::locate(server.server, server.server_args);
    let server = McpServer::start(command).await?;
    let config = AgentConfig {
        max_turns: claude.max_turns,
        max_tokens: claude.max_tokens,
        max_history,
        ..AgentConfig::default()
    };
    Ok(Arc::new(Agent::new(model, Arc::new(server), config)))
}

async fn run_prompt(args: RunArgs) -> anyhow::Result<ExitCode> {
    let agent = start_agent(&args.claude, args.server, usize::MAX).await?;
    let mut conv = Conversation::default();
    let mut term = Terminal::stdio();
    let result = tokio::select! {
        r = agent.ask(&mut conv, &args.prompt, args.session.as_deref(), &mut term) => r,
        _ = tokio::signal::ctrl_c() => Err(AgentError::Cancelled),
    };
    let ok = match result {
        Ok(answer) => {
            term.emit(AgentEvent::Final {
                response: answer.response,
                session_id: answer.session_id,
            });
            true
        }
        Err(e) => {
            term.emit(AgentEvent::Error {
                error: e.to_string(),
                session_id: conv.session_id.clone(),
            });
            false
        }
    };
    if let Some(id) = &conv.session_id {
        if args.keep_session {
            term.line(&format!(
                "\nsession {id} (kept; continue with --session {id})"
            ));
        } else {
            match agent.stop_session(id).await {
                Ok(true) => term.line(&format!("\nsession {id} (stopped)")),
                Ok(false) => term.line(&format!("\nsession {id} (already ended)")),
                Err(e) => term.error_line(&format!("session {id}: stopping it failed: {e}")),
            }
        }
    }
    agent.server().shutdown().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let max_history = usize::try_from(args.max_history).unwrap_or(usize::MAX);
    let agent = start_agent(&args.claude, args.server, max_history).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        "listening on http://{} (POST /invocations, GET /ping)",
        listener.local_addr()?
    );
    let config = crate::http::ServeConfig {
        max_conversations: usize::try_from(args.max_conversations).unwrap_or(usize::MAX),
    };
    let result = crate::http::run(listener, Arc::clone(&agent), config, shutdown_signal()).await;
    agent.server().shutdown().await;
    result.context("serving HTTP")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (what a container runtime sends).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

async fn invoke(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let runtime_session_id = runtime_client::runtime_session_id(args.runtime_session_id)?;
    let client = runtime_client::client(args.region).await?;
    let request = runtime_client::Invoke {
        arn: args.arn.clone(),
        qualifier: args.qualifier,
        runtime_session_id: runtime_session_id.clone(),
        prompt: args.prompt,
        session_id: args.session,
    };
    let mut term = Terminal::stdio();
    let mut last: Option<AgentEvent> = None;
    let mut on_item = |item: Streamed| match item {
        Streamed::Event(event) => {
            if matches!(event, AgentEvent::Final { .. } | AgentEvent::Error { .. }) {
                last = Some(event.clone());
            }
            term.emit(event);
        }
        Streamed::Other(line) => term.line(&line),
    };
    let result = runtime_client::invoke(&client, &request, &mut on_item).await;
    if let Err(e) = result {
        term.error_line(&format!("error: {e}"));
        term.line(&format!("\nruntime session {runtime_session_id}"));
        return Ok(ExitCode::FAILURE);
    }
    term.line(&format!("\nruntime session {runtime_session_id}"));
    let session = match &last {
        Some(AgentEvent::Final { session_id, .. }) => Some(session_id.clone()),
        Some(AgentEvent::Error { session_id, .. }) => session_id.clone(),
        _ => None,
    };
    if let Some(session) = &session {
        term.line(&format!("code-interpreter session {session}"));
        term.line(&format!(
            "continue: code-interpreter-agent invoke --arn {} --runtime-session-id {runtime_session_id} --session {session} \"...\"",
            args.arn
        ));
    }
    Ok(match last {
        Some(AgentEvent::Final { .. }) => ExitCode::SUCCESS,
        Some(_) => ExitCode::FAILURE,
        None => {
            term.error_line("error: the response ended without a final event");
            ExitCode::FAILURE
        }
    })
}

async fn cleanup(args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let client = runtime_client::client(args.region).await?;
    let mut term = Terminal::stdio();
    let mut ok = true;
    if let Some(id) = &args.code_int_session_id {
        match runtime_client::stop_code_interpreter_session(&client, &args.code_interpreter, id)
            .await
        {
            Ok(()) => term.line(&format!("stopped code-interpreter session {id}")),
            Err(e) => {
                term.error_line(&format!("error: {e}"));
                ok = false;
            }
        }
    }
    if let (Some(id), Some(arn)) = (&args.runtime_session_id, &args.arn) {
        match runtime_client::stop_runtime_session(&client, arn, id, &args.qualifier).await {
            Ok(()) => term.line(&format!("stopped runtime session {id}")),
            Err(e) => {
                term.error_line(&format!("error: {e}"));
                ok = false;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses() {
        Cli::command_for_tests().debug_assert();
        let cli = Cli::try_parse_from([
            "a",
            "run",
            "--server-arg",
            "--timeout=5",
            "--server-arg=--backend=local",
            "hi",
        ])
        .unwrap();
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.prompt, "hi");
                assert_eq!(r.server.server_args, ["--timeout=5", "--backend=local"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["a", "cleanup"]).is_err());
        assert!(Cli::try_parse_from(["a", "cleanup", "--runtime-session-id", "x"]).is_err());
        assert!(
            Cli::try_parse_from(["a", "cleanup", "--runtime-session-id", "x", "--arn", "y"])
                .is_ok()
        );
        assert!(Cli::try_parse_from(["a", "cleanup", "--code_int_session_id", "x"]).is_ok());
    }

    impl Cli {
        fn command_for_tests() -> clap::Command {
            <Cli as clap::CommandFactory>::command()
        }
    }
}
