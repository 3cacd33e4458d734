//! Command-line interface: `serve` (the default) and its flags, each with an
//! environment-variable twin.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::backend::local::sandbox::Limits;
use crate::backend::local::{LocalBackend, LocalConfig, SandboxSettings};
use crate::server::{CodeInterpreterServer, ServerSettings};
use crate::session::{SessionLimits, Sessions};

const ABOUT: &str =
    "MCP server (stdio) giving LLM agents isolated, stateful code-execution sessions";

const LONG_ABOUT: &str =
    "MCP server (stdio) giving LLM agents isolated, stateful code-execution sessions.

With no subcommand it serves MCP over stdin/stdout (the same as `serve`): register it
with an MCP client such as Claude Code:

    claude mcp add code-interpreter -- code-interpreter-mcp

Tools: execute_code (Python, JavaScript, TypeScript, with state kept between calls),
execute_command (bash), write_files, read_files, list_files, start_session, stop_session.
Logs go to stderr (set RUST_LOG, e.g. RUST_LOG=debug); stdout carries only MCP messages.";

/// The longest duration any flag takes: 30 days (far beyond any real
/// call or session, and safe to add to a clock reading).
const MAX_SECONDS: u64 = 30 * 24 * 3600;
#[derive(Debug, Parser)]
#[command(
    name = "code-interpreter-mcp",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdio (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Serve an offline emulator of the AgentCore Code Interpreter data-plane
    /// API over HTTP, backed by local sandboxed sessions. For loopback
    /// development and tests: it accepts any SigV4 signature and is not a
    /// security boundary.
    Emulator(EmulatorArgs),
    /// Check what is in force: each sandbox layer (from inside a session), the
    /// interpreters, and a smoke run. Exits non-zero when the local backend
    /// cannot run code.
    Doctor(ServeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    /// Every session process runs in new user, mount, pid, network, ipc and uts
    /// namespaces with a read-only system view, seccomp, Landlock and limits.
    Namespaces,
    /// No isolation: code runs as this user with full access to the machine.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkMode {
    /// Sessions have only a private loopback interface.
    Off,
    /// Sessions share the host's network.
    On,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Sessions run on this machine, in a private working directory per session.
    Local,
    /// Sessions run on Amazon Bedrock AgentCore Code Interpreter (managed microVMs).
    Agentcore,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where sessions run.
    #[arg(
        long,
        env = "CODE_INTERPRETER_BACKEND",
        value_enum,
        default_value = "local"
    )]
    pub backend: BackendKind,

    /// Default time limit of one execute_code / execute_command call, in seconds.
    /// The code is interrupted (SIGINT) first; if it does not stop, its process
    /// tree is killed.
    #[arg(long, env = "CODE_INTERPRETER_TIMEOUT", default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub timeout: u64,

    /// Seconds a call may run before it returns a task_id and goes on in the
    /// background (followed with get_task). Calls from Claude Desktop, which
    /// cancels after about 60 s, use at most 45.
    #[arg(long, env = "CODE_INTERPRETER_FOREGROUND_BUDGET", default_value_t = 45, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub foreground_budget: u64,

    /// Seconds between progress notifications of a running call (sent when
    /// the client asks for progress; Claude Code shows them and keeps waiting).
    #[arg(long, env = "CODE_INTERPRETER_PROGRESS_INTERVAL", default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub progress_interval: u64,

    /// Largest timeout_seconds a call may ask for.
    #[arg(long, env = "CODE_INTERPRETER_MAX_TIMEOUT", default_value_t = 3600, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub max_timeout: u64,

    /// A session unused for this long is stopped.
    #[arg(long, env = "CODE_INTERPRETER_IDLE_TIMEOUT", default_value_t = 900, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub idle_timeout: u64,

    /// A session is stopped this long after it started, busy or not.
    #[arg(long, env = "CODE_INTERPRETER_MAX_LIFETIME", default_value_t = 28800, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub max_lifetime: u64,

    /// Most sessions running at once.
    #[arg(long, env = "CODE_INTERPRETER_MAX_SESSIONS", default_value_t = 16, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_sessions: u64,

    /// Bytes of stdout, and of stderr, returned inline per call; beyond it the
    /// head and tail are kept and the full output is saved in the session.
    #[arg(long, env = "CODE_INTERPRETER_OUTPUT_LIMIT", default_value_t = 20_000, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(200..=10_000_000))]
    pub output_limit: u64,

    /// Options of the embedded local backend.
    #[command(flatten)]
    pub local: LocalArgs,

    /// Options of the agentcore backend.
    #[command(flatten)]
    pub agentcore: AgentCoreArgs,
}

/// Options of the embedded local backend (also what the emulator runs on).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Local backend")]
pub struct LocalArgs {
    /// Directory under which each local session gets its own directory
    /// [default: $XDG_RUNTIME_DIR/code-interpreter-mcp, or
    /// $TMPDIR/code-interpreter-mcp-<uid>].
    #[arg(long, env = "CODE_INTERPRETER_WORKDIR_ROOT", value_name = "DIR")]
    pub workdir_root: Option<PathBuf>,

    /// Python interpreter for execute_code (a name on PATH or a path; a venv's
    /// python works and brings its packages).
    #[arg(
        long,
        env = "CODE_INTERPRETER_PYTHON",
        default_value = "python3",
        value_name = "PATH"
    )]
    pub python: String,

    /// Node.js for JavaScript and TypeScript (TypeScript needs Node >= 22.13).
    #[arg(
        long,
        env = "CODE_INTERPRETER_NODE",
        default_value = "node",
        value_name = "PATH"
    )]
    pub node: String,

    /// Isolation of local sessions. `none` runs code unconfined and says so in
    /// every result; it is the only way to run without the sandbox.
    #[arg(
        long,
        env = "CODE_INTERPRETER_SANDBOX",
        value_enum,
        default_value = "namespaces"
    )]
    pub sandbox: SandboxMode,

    /// Network access of local sessions.
    #[arg(
        long,
        env = "CODE_INTERPRETER_NETWORK",
        value_enum,
        default_value = "off"
    )]
    pub network: NetworkMode,

    /// Memory of each session process (RLIMIT_DATA), in MiB.
    #[arg(long, env = "CODE_INTERPRETER_MEMORY_MB", default_value_t = 2048, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(64..))]
    pub memory_mb: u64,

    /// Processes a session may run at once.
    #[arg(long, env = "CODE_INTERPRETER_MAX_PROCESSES", default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u64).range(8..))]
    pub max_processes: u64,

    /// Largest file a session process may write, in MiB.
    #[arg(long, env = "CODE_INTERPRETER_MAX_FILE_MB", default_value_t = 1024, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_file_mb: u64,

    /// Storage of a session's /work and /tmp together (a tmpfs), in MiB.
    #[arg(long, env = "CODE_INTERPRETER_DISK_MB", default_value_t = 1024, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(16..))]
    pub disk_mb: u64,

    /// CPU seconds each session process may use in all.
    #[arg(long, env = "CODE_INTERPRETER_CPU_SECONDS", default_value_t = 28800, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cpu_seconds: u64,
}

/// Options of the agentcore backend (Amazon Bedrock AgentCore Code Interpreter).
/// Credentials come from the standard AWS chain: environment, profile, SSO,
/// container and instance roles; they are loaded when the first session starts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "AgentCore backend")]
pub struct AgentCoreArgs {
    /// AWS region [default: from AWS_REGION or the profile].
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Code interpreter to start sessions on: the managed one, or the id of
    /// one you created.
    #[arg(
        long,
        env = "CODE_INTERPRETER_AGENTCORE_ID",
        default_value = "aws.codeinterpreter.v1",
        value_name = "ID"
    )]
    pub code_interpreter_id: String,

    /// Lifetime of an AgentCore session, in seconds, at most 28800 (the
    /// service ends it then, busy or not).
    #[arg(long, env = "CODE_INTERPRETER_SESSION_TIMEOUT", default_value_t = 900, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=28800))]
    pub session_timeout: u64,

    /// Endpoint of the service, e.g. the emulator's base URL
    /// (AWS_ENDPOINT_URL_BEDROCK_AGENTCORE and AWS_ENDPOINT_URL are honoured too).
    #[arg(long, env = "CODE_INTERPRETER_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Options of `emulator`.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port. The base URL is printed
    /// as the first line of stdout.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,

    /// Inject faults, for tests: OPERATION:FAULT[:COUNT], repeatable.
    /// OPERATION is a tool name (executeCode, writeFiles, ...), `start`,
    /// `stop`, `get`, `list`, or `*`. FAULT is `throttle`, `internal`,
    /// `cut` (run the call, then cut the response stream midway) or
    /// `delay-MS`. COUNT is how many calls get it (default 1).
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,

    #[command(flatten)]
    pub local: LocalArgs,
}

impl LocalArgs {
    /// The local backend's configuration; `output_limit` is the inline output
    /// cap per stream.
    pub fn local_config(&self, output_limit: usize) -> LocalConfig {
        LocalConfig {
            root: self.workdir_root.clone().unwrap_or_else(default_root),
            python: self.python.clone(),
            node: self.node.clone(),
            output_limit,
            max_read_bytes: 8 * 1024 * 1024,
            max_read_total: crate::server::MAX_READ_TOTAL,
            max_list_entries: 1000,
            sandbox: (self.sandbox == SandboxMode::Namespaces).then(|| SandboxSettings {
                network: self.network == NetworkMode::On,
                limits: Limits {
                    memory_bytes: self.memory_mb << 20,
                    max_processes: self.max_processes,
                    max_file_bytes: self.max_file_mb << 20,
                    cpu_seconds: self.cpu_seconds,
                },
                disk_bytes: self.disk_mb << 20,
            }),
        }
    }
}

fn default_root() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("code-interpreter-mcp");
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    std::env::temp_dir().join(format!("code-interpreter-mcp-{uid}"))
}

/// Runs the command line; returns when the server has stopped, or false
/// when `doctor` found that the local backend cannot run code.
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Some(Command::Serve(args)) => serve(args).await.map(|()| true),
        Some(Command::Doctor(args)) => crate::doctor::run(args).await,
        Some(Command::Emulator(args)) => crate::emulator::run(args).await.map(|()| true),
        None => serve(cli.serve).await.map(|()| true),
    }
}

/// Serves MCP over stdio until stdin closes or SIGTERM/SIGINT arrives, then
/// stops every session.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let backend = match args.backend {
        BackendKind::Local => {
            let local = LocalBackend::new(args.local.local_config(args.output_limit as usize))?;
            local.prewarm();
            match (args.local.sandbox, args.local.network) {
                (SandboxMode::None, _) => tracing::warn!(
                    "--sandbox none: session code runs UNCONFINED, as this user, with full access to this machine and its network"
                ),
                (SandboxMode::Namespaces, NetworkMode::On) => {
                    tracing::warn!("--network on: sessions can reach the network")
                }
                _ => {}
            }
            Arc::new(local) as Arc<dyn crate::backend::Backend>
        }
        BackendKind::Agentcore => Arc::new(crate::backend::agentcore::AgentCoreBackend::new(
            args.agentcore.clone(),
            args.output_limit as usize,
        )),
    };
    // AgentCore ends a session at its session timeout: expire it here a
    // little before that, so the default session is replaced with a note
    // instead of failing.
    let max_lifetime = match args.backend {
        BackendKind::Local => Duration::from_secs(args.max_lifetime),
        BackendKind::Agentcore => {
            let t = Duration::from_secs(args.agentcore.session_timeout);
            Duration::from_secs(args.max_lifetime).min(t - (t / 10).min(Duration::from_secs(5)))
        }
    };
    let sessions = Sessions::new(
        backend,
        SessionLimits {
            idle_timeout: Duration::from_secs(args.idle_timeout),
            max_lifetime,
            max_sessions: args.max_sessions as usize,
        },
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(sessions.clone().reap_forever(shutdown.clone()));

    let server = CodeInterpreterServer::new(
        sessions.clone(),
        ServerSettings {
            foreground_budget: Duration::from_secs(args.foreground_budget),
            page_bytes: args.output_limit as usize,
            default_timeout: Duration::from_secs(args.timeout),
            max_timeout: Duration::from_secs(args.max_timeout.max(args.timeout)),
            progress_interval: Duration::from_secs(args.progress_interval),
        },
    );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    let serving = async {
        match server.serve(rmcp::transport::stdio_pipes()).await {
            Ok(running) => {
                let reason = running.waiting().await;
                tracing::info!(?reason, "MCP connection closed");
            }
            Err(e) => tracing::info!(error = %e, "MCP connection ended before initialization"),
        }
    };
    tokio::select! {
        _ = serving => {},
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    let n = sessions.live_count();
    // Long enough for an AgentCore stop that is throttled and retried (each
    // is bounded at 10 s); local sessions stop at once.
    if tokio::time::timeout(Duration::from_secs(12), sessions.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("stopping sessions took longer than 12 s; exiting anyway");
    }
    tracing::info!(sessions = n, "stopped");
    Ok(())
}
