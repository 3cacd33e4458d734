//! Starting the real agent binary (with the real server as its child) the way
//! a person or a container would, with a hermetic environment.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// Generous bound on any one step, so a broken test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(120);

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_code-interpreter-agent"))
}

/// The server binary: `CODE_INTERPRETER_MCP_BIN`, else the one built into the
/// same target directory as this test (`cargo test --workspace` builds it).
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CODE_INTERPRETER_MCP_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/all-xxxx -> target/<profile>/code-interpreter-mcp
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("code-interpreter-mcp");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p code-interpreter-mcp` (or `cargo test --workspace`), \
         or set CODE_INTERPRETER_MCP_BIN",
        bin.display()
    );
    bin
}

/// Python for sessions: `TEST_PYTHON` (CI points it at a venv with
/// matplotlib), else python3 from PATH.
pub fn test_python() -> String {
    std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A test that cannot run here says why; under `REQUIRE_ALL_TESTS=1` (CI)
/// that is a failure instead of a skip.
pub fn skip(reason: &str) {
    if std::env::var("REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
        panic!("required test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Variables that would make a test depend on the machine it runs on.
const SCRUBBED: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_VERSION",
    "CLAUDE_CODE_USE_BEDROCK",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "RUST_LOG",
];

/// The agent binary with a clean environment: its server child, Python,
/// a private work root, no credentials, and no AWS config files.
pub struct AgentCommand {
    pub cmd: Command,
    root: tempfile::TempDir,
}

impl AgentCommand {
    pub fn new(args: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(agent_bin());
        cmd.args(args);
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        cmd.env("CODE_INTERPRETER_MCP_BIN", server_bin())
            .env("CODE_INTERPRETER_PYTHON", test_python())
            .env("CODE_INTERPRETER_WORKDIR_ROOT", root.path())
            .env("AWS_CONFIG_FILE", root.path().join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                root.path().join("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        Self { cmd, root }
    }

    /// Claude on the fake Anthropic API at `url`, with the key it expects.
    pub fn anthropic(self, url: &str) -> Self {
        self.env("ANTHROPIC_API_KEY", crate::suite::fake_model::API_KEY)
            .env("ANTHROPIC_BASE_URL", url)
    }

    /// AWS credentials that only a fake accepts.
    pub fn fake_aws(self) -> Self {
        self.env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_REGION", "us-east-1")
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Runs to completion.
    pub async fn output(self) -> Output {
        self.spawn().output().await
    }

    /// Starts it with output piped, for tests that act while it runs.
    pub fn spawn(mut self) -> Running {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self.cmd.spawn().unwrap();
        Running {
            child,
            _root: self.root,
        }
    }
}

pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

pub struct Running {
    pub child: Child,
    _root: tempfile::TempDir,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub async fn output(self) -> Output {
        let out = tokio::time::timeout(STEP, self.child.wait_with_output())
            .await
            .expect("the agent did not finish in time")
            .unwrap();
        let output = Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "--- agent stdout\n{}--- agent stderr\n{}---",
            output.stdout, output.stderr
        );
        output
    }
}

/// The pids of a process's children (from every thread's `children` list).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// The agent's `code-interpreter-mcp` child, waiting for it to appear.
pub async fn server_child_of(agent: u32) -> u32 {
    tokio::time::timeout(STEP, async {
        loop {
            for pid in children_of(agent) {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe.file_name().is_some_and(|n| n == "code-interpreter-mcp") {
                    return pid;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the agent has no code-interpreter-mcp child")
}

/// Sends `signal` to a process this test started (directly or as the
/// agent's child).
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

/// `code-interpreter-agent serve` on 127.0.0.1 with an OS-chosen port.
pub struct Serve {
    pub base: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    _root: tempfile::TempDir,
}

impl Serve {
    pub async fn start(command: AgentCommand) -> Self {
        let AgentCommand { mut cmd, root } = command;
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info,rmcp=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let base = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                logs.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap();
                    return format!("http://{addr}");
                }
            }
            panic!(
                "serve exited before listening:\n{}",
                logs.lock().unwrap().join("\n")
            );
        })
        .await
        .expect("serve did not start listening");
        let sink = Arc::clone(&logs);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            base,
            child,
            logs,
            http: reqwest::Client::new(),
            _root: root,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub async fn ping(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/ping", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Starts an invocation; the response's headers have arrived when this
    /// returns, its body streams on.
    pub async fn start_invocation(
        &self,
        body: &str,
        runtime_session: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/invocations", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(id) = runtime_session {
            req = req.header("X-Amzn-Bedrock-AgentCore-Runtime-Session-Id", id);
        }
        tokio::time::timeout(STEP, req.send())
            .await
            .expect("no response headers in time")
            .unwrap()
    }

    /// Posts an invocation and reads its whole event stream.
    pub async fn invoke(&self, body: &str, runtime_session: Option<&str>) -> Vec<Value> {
        let response = self.start_invocation(body, runtime_session).await;
        assert_eq!(response.status(), 200, "{}", self.logs());
        read_events(response).await
    }

    /// SIGTERM, as a container runtime sends; returns whether it exited 0.
    pub async fn stop(mut self) -> bool {
        signal(self.pid(), libc::SIGTERM);
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("serve did not stop on SIGTERM")
            .unwrap();
        status.success()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        eprintln!("--- serve log\n{}\n---", self.logs());
    }
}

/// Reads an SSE body to its end: one JSON value per `data:` line.
pub async fn read_events(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "text/event-stream"
    );
    let text = tokio::time::timeout(STEP, response.text())
        .await
        .expect("the event stream did not end in time")
        .unwrap();
    parse_events(&text)
}

pub fn parse_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect()
}

/// The types of events, in order, with consecutive `text` events merged.
pub fn event_types(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let t = e["type"].as_str().unwrap().to_owned();
        if t == "text" && out.last().map(String::as_str) == Some("text") {
            continue;
        }
        out.push(t);
    }
    out
}

/// The streamed text of all `text` events.
pub fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}
