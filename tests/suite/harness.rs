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

/// A test that cannot run here says why; under `REQUIRE_ALL_TESTS=1` (CI)
/// that is a failure instead of a skip.
pub fn skip(reason: &str) {
    if std::env::var("REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
        panic!("required test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

pub struct Server {
    pub client: RunningService<RoleClient, ()>,
    /// The server process's pid.
    pub pid: u32,
    /// Holds the sessions' directories; removed when the test ends.
    _root: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(args: &[&str]) -> Self {
        Self::start_with_env(args, &[]).await
    }

    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
            r["result"], "42",
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
