//! Starts the real `code-interpreter-mcp` binary and talks to it with the
//! rmcp client, as an MCP client would.

use std::path::PathBuf;

use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

pub fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_code-interpreter-mcp"))
}

/// Python for sessions: `TEST_PYTHON` (CI points it at a venv with
/// matplotlib), else python3 from PATH.
pub fn test_python() -> String {
    std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn test_node() -> String {
    std::env::var("TEST_NODE").unwrap_or_else(|_| "node".into())
}

pub fn require_all() -> bool {
    std::env::var("REQUIRE_ALL_TESTS").as_deref() == Ok("1")
}

/// The binary under test: `RELEASE_BIN` (`.ci/run` builds it with `cargo
/// build --release`); without it, the debug build, except in CI.
pub fn release_bin() -> PathBuf {
    match std::env::var_os("RELEASE_BIN").filter(|p| !p.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "RELEASE_BIN={} is not a file", p.display());
            p
        }
        None => {
            assert!(
                !require_all(),
                "RELEASE_BIN is not set: the interoperability tests run the release binary \
                 (cargo build --release -p code-interpreter-mcp)"
            );
            eprintln!("RELEASE_BIN is not set: testing the debug binary");
            server_bin()
        }
    }
}

/// A test that cannot run here says why; under `REQUIRE_ALL_TESTS=1` (CI)
/// that is a failure instead of a skip.
pub fn skip(reason: &str) {
    if require_all() {
        panic!("required test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Where a test's sessions run: the embedded local backend, or the
/// agentcore backend (the real AWS SDK for Rust) against the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    AgentCore,
}

/// Runs a test body once per backend: `on_both_backends!(name, ...)` makes
/// `name::local` and `name::agentcore` from `async fn name(b: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn local() {
                super::$name($crate::suite::harness::Backend::Local).await
            }
            #[tokio::test]
            async fn agentcore() {
                super::$name($crate::suite::harness::Backend::AgentCore).await
            }
        }
    )*};
}

/// A running `code-interpreter-mcp emulator`, killed when dropped.
pub struct Emulator {
    child: std::process::Child,
    pub url: String,
}

impl Emulator {
    /// Starts the emulator on a free loopback port, with local sessions under
    /// `root` and the given extra flags (e.g. `--fault`).
    pub fn start(root: &std::path::Path, extra: &[&str]) -> Emulator {
        use std::io::BufRead;
        let mut child = std::process::Command::new(server_bin())
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("CODE_INTERPRETER_WORKDIR_ROOT", root)
            .env("CODE_INTERPRETER_PYTHON", test_python())
            .env("CODE_INTERPRETER_NODE", test_node())
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "emulator said {line:?}"
        );
        Emulator { child, url }
    }

    /// The environment that points the server's agentcore backend here.
    pub fn server_env(&self) -> Vec<(String, String)> {
        [
            ("CODE_INTERPRETER_BACKEND", "agentcore"),
            ("CODE_INTERPRETER_ENDPOINT_URL", self.url.as_str()),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Server {
    pub client: RunningService<RoleClient, ()>,
    /// The server process's pid.
    pub pid: u32,
    /// The emulator behind an agentcore server.
    pub emulator: Option<Emulator>,
    /// Holds the sessions' directories; removed when the test ends.
    _root: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server with default settings on `backend`.
    pub async fn on(backend: Backend) -> Self {
        Self::start_on(backend, &[], &[], &[]).await
    }

    pub async fn start_with(args: &[&str]) -> Self {
        Self::start_with_env(args, &[]).await
    }

    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on(Backend::Local, args, env, &[]).await
    }

    /// A server on `backend`; for AgentCore an emulator is started first,
    /// with `emulator_args` (e.g. faults).
    pub async fn start_on(
        backend: Backend,
        args: &[&str],
        env: &[(&str, &str)],
        emulator_args: &[&str],
    ) -> Self {
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let emulator = (backend == Backend::AgentCore)
            .then(|| Emulator::start(&root_path.join("emulator"), emulator_args));
        let mut env_all: Vec<(String, String)> = emulator
            .as_ref()
            .map(|e| e.server_env())
            .unwrap_or_default();
        env_all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let env = env_all;
        let cmd = tokio::process::Command::new(server_bin()).configure(|c| {
            c.args(&args)
                .env("CODE_INTERPRETER_WORKDIR_ROOT", &root_path)
                .env("CODE_INTERPRETER_PYTHON", test_python())
                .env("CODE_INTERPRETER_NODE", test_node())
                .env("RUST_LOG", "warn")
                // The test's own settings win over the defaults above.
                .envs(env.iter().map(|(k, v)| (k, v)));
        });
        let transport = TokioChildProcess::new(cmd).unwrap();
        let pid = transport.id().unwrap();
        let client = ().serve(transport).await.unwrap();
        Server {
            client,
            pid,
            emulator,
            _root: root,
        }
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let params = CallToolRequestParams::new(tool.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        self.client.call_tool(params).await.unwrap()
    }

    /// Calls a tool that must succeed and returns its structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args.clone()).await;
        assert_ne!(r.is_error, Some(true), "{tool} {args} failed: {}", text(&r));
        r.structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool}: no structured content"))
    }

    /// Calls a tool that must fail with isError and returns its message.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args.clone()).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{tool} {args} should have failed: {:?}",
            r.structured_content
        );
        text(&r)
    }

    pub async fn py(&self, code: &str) -> Value {
        self.ok("execute_code", json!({"code": code})).await
    }

    pub async fn sh(&self, command: &str) -> Value {
        self.ok("execute_command", json!({"command": command}))
            .await
    }

    /// The server answers, and a brand-new session runs code.
    pub async fn assert_healthy(&self) {
        let sid = self.ok("start_session", json!({})).await["session_id"].clone();
        let r = self
            .ok("execute_code", json!({"session_id": sid, "code": "6 * 7"}))
            .await;
        assert_eq!(
            value(&r),
            "42",
            "a new session does not work after the attack: {r}"
        );
        self.ok("stop_session", json!({"session_id": sid})).await;
    }
}

pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn images(r: &CallToolResult) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    r.content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Image(i) => Some((
                i.mime_type.clone(),
                base64::engine::general_purpose::STANDARD
                    .decode(&i.data)
                    .unwrap(),
            )),
            _ => None,
        })
        .collect()
}

pub fn python_has(module: &str) -> bool {
    std::process::Command::new(test_python())
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn node_version() -> Option<(u32, u32)> {
    let out = std::process::Command::new(test_node())
        .arg("--version")
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    let mut it = v.trim().trim_start_matches('v').split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// `pid` and every process below it (session processes stay below the
/// server: their sandbox's init is its child and reaps orphans).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(ppid) = after
            .1
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
        {
            children.entry(ppid).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    let mut todo = children.remove(&pid).unwrap_or_default();
    while let Some(p) = todo.pop() {
        out.push(p);
        todo.extend(children.remove(&p).unwrap_or_default());
    }
    out
}

/// The value of a code cell's last expression: `result` on the local
/// backend; AgentCore prints it, notebook style, as the last line of stdout.
pub fn value(r: &Value) -> String {
    if let Some(v) = r["result"].as_str() {
        return v.to_string();
    }
    r["stdout"]
        .as_str()
        .unwrap_or("")
        .trim_end()
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .to_string()
}
