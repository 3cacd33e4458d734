//! Independent MCP clients against the release binary: the MCP Inspector CLI,
//! Claude Code (`claude mcp list`), and the MCP conformance suite through a
//! stdio-to-HTTP bridge; and `mcp.json.example`, checked against `--help` and
//! loaded by those clients. (The official Python SDK is in interop.rs.)
//!
//! `.ci/run` installs pinned versions of the clients with Node 22's npm into
//! `.ci/cache/clients`, builds the release binary, and points the tests at
//! them: `RELEASE_BIN`, `INSPECTOR_CLI`, `CLAUDE_CLI`, `CONFORMANCE_CLI`,
//! `SUPERGATEWAY_CLI`, and `TEST_NODE` (its directory goes first on the
//! clients' PATH). A test whose client is not set says so and skips, or fails
//! under `REQUIRE_ALL_TESTS=1`. Each test prints the client's version and its
//! result on stderr, uncaptured, so that they show in CI's log.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp.json.example");
const PLACEHOLDER: &str = "/absolute/path/to/code-interpreter-mcp";
const REQUIRED_TOOLS: [&str; 6] = [
    "start_session",
    "stop_session",
    "execute_code",
    "execute_command",
    "write_files",
    "read_files",
];

/// A client named by an environment variable, or None after `skip`.
fn client(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|p| !p.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.exists(), "{var}={} does not exist", p.display());
            Some(p)
        }
        None => {
            skip(&format!("{var} ({what}) is not set; .ci/run installs it"));
            None
        }
    }
}

/// PATH for the clients: Node 22 (TEST_NODE's directory) first, since the
/// npm launchers run `node` from PATH and these versions need Node 22.
fn client_path() -> String {
    let base = std::env::var("PATH").unwrap_or_default();
    match std::env::var("TEST_NODE") {
        Ok(node) if Path::new(&node).is_absolute() => match Path::new(&node).parent() {
            Some(dir) => format!("{}:{base}", dir.display()),
            None => base,
        },
        _ => base,
    }
}

/// A line in the test output that `cargo test` does not capture.
fn record(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs `cmd` with no stdin, killing it after `limit`.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

fn version(tool: &Path) -> String {
    let out = run(
        Command::new(tool)
            .arg("--version")
            .env("PATH", client_path()),
        Duration::from_secs(60),
    );
    // "2.1.331 (Claude Code)" -> "2.1.331"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ------------------------------------------------------------ MCP Inspector

/// `-e` flags giving the server what it needs: Inspector 2.x starts servers
/// with a minimal environment, not its own.
fn inspector_env(workdir: &Path) -> Vec<String> {
    vec![
        "-e".into(),
        format!("CODE_INTERPRETER_WORKDIR_ROOT={}", workdir.display()),
        "-e".into(),
        format!("CODE_INTERPRETER_PYTHON={}", test_python()),
        "-e".into(),
        "RUST_LOG=warn".into(),
    ]
}

fn inspector(insp: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(insp);
    cmd.env("PATH", client_path())
        .env("HOME", home)
        .current_dir(home)
        .arg("--cli");
    cmd
}

#[test]
fn inspector_strict_tools_list_has_no_warnings() {
    let Some(insp) = client("INSPECTOR_CLI", "the MCP Inspector CLI") else {
        return;
    };
    let bin = release_bin();
    let (home, wd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let v = version(&insp);
    let out = run(
        inspector(&insp, home.path())
            .arg("--strict")
            .args(inspector_env(wd.path()))
            .arg(&bin)
            .args(["--method", "tools/list"]),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "MCP Inspector {v} --strict tools/list failed ({}; 6 = an error-severity schema problem):\n{stderr}\n{stdout}",
        out.status
    );
    // --strict prints each problem as "Warning: …" or "Error: …" and a
    // summary "N errors, M warnings across K tools."; nothing when clean.
    let findings: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Warning") || l.starts_with("Error") || l.contains(" across ")
        })
        .collect();
    let clean_summary = |l: &&str| l.trim_start().starts_with("0 errors, 0 warnings");
    assert!(
        findings.iter().all(clean_summary),
        "MCP Inspector {v} --strict found schema problems:\n{stderr}"
    );
    let listed: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("tools/list output is not JSON ({e}):\n{stdout}"));
    let tools = listed["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for required in REQUIRED_TOOLS {
        assert!(
            names.contains(&required),
            "{required} missing from {names:?}"
        );
    }
    for t in tools {
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{t}"
        );
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    record(&format!(
        "client: MCP Inspector CLI {v}: tools/list --strict: {} tools, no warnings ({})",
        names.len(),
        bin.display()
    ));
}

/// One `tools/call` through the Inspector; returns the result object.
fn inspector_call(insp: &Path, extra: &[&str], tool: &str, args: Value) -> Value {
    let (home, wd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = run(
        inspector(insp, home.path())
            .args(["-q", "--format", "json"])
            .args(extra)
            .args(inspector_env(wd.path()))
            .arg(release_bin())
            .args(["--method", "tools/call", "--tool-name", tool])
            .arg("--tool-args-json")
            .arg(args.to_string()),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 1 includes structuredContent that fails the tool's outputSchema;
    // 5 is isError.
    assert!(
        out.status.success(),
        "inspector tools/call {tool} {extra:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    v["result"].clone()
}

#[test]
fn inspector_calls_execute_code_and_execute_command() {
    let Some(insp) = client("INSPECTOR_CLI", "the MCP Inspector CLI") else {
        return;
    };
    let v = version(&insp);
    let r = inspector_call(
        &insp,
        &[],
        "execute_code",
        json!({"code": "x = 6 * 7\nprint('answer', x)\nx"}),
    );
    let s = &r["structuredContent"];
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(s["success"], true, "{r}");
    assert_eq!(s["stdout"], "answer 42\n", "{r}");
    assert_eq!(s["result"], "42", "{r}");

    // The same through the 2026 protocol era's `server/discover` probe,
    // which newer clients send before `initialize`. A non-zero exit code is
    // data, not a tool error.
    let start = Instant::now();
    let r = inspector_call(
        &insp,
        &["--protocol-era", "auto"],
        "execute_command",
        json!({"command": "echo hello-from-inspector; exit 3"}),
    );
    let s = &r["structuredContent"];
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(s["stdout"], "hello-from-inspector\n", "{r}");
    assert_eq!(s["exit_code"], 3, "{r}");
    assert_eq!(s["success"], false, "{r}");
    record(&format!(
        "client: MCP Inspector CLI {v}: tools/call execute_code ok; execute_command with --protocol-era auto ok ({} ms)",
        start.elapsed().as_millis()
    ));
}

// -------------------------------------------------------------- Claude Code

/// `claude` with a throwaway HOME and no credentials: `claude mcp …` needs
/// no API key and must not touch the real ~/.claude.json.
fn claude(cli: &Path, home: &Path, project: &Path) -> Command {
    let mut cmd = Command::new(cli);
    cmd.current_dir(project)
        .env("PATH", client_path())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("MCP_TIMEOUT", "30000")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN");
    cmd
}

/// `claude mcp list`'s line for `name`, asserting it is connected.
fn assert_connected(list: &str, name: &str, v: &str) -> String {
    let prefix = format!("{name}: ");
    let line = list
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("claude mcp list does not show {name}:\n{list}"));
    assert!(
        line.contains("✔ Connected"),
        "Claude Code {v} does not report {name} connected: {line}\n{list}"
    );
    line.to_string()
}

#[test]
fn claude_code_reports_the_server_connected() {
    let Some(cli) = client("CLAUDE_CLI", "the Claude Code CLI") else {
        return;
    };
    let bin = release_bin();
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let wd = home.path().join("sessions");
    let v = version(&cli);

    // The README's command (local scope: no approval step).
    let add = run(
        claude(&cli, home.path(), &project)
            .args(["mcp", "add", "code-interpreter", "-e"])
            .arg(format!("CODE_INTERPRETER_WORKDIR_ROOT={}", wd.display()))
            .arg("-e")
            .arg(format!("CODE_INTERPRETER_PYTHON={}", test_python()))
            .arg("--")
            .arg(&bin),
        Duration::from_secs(60),
    );
    assert!(
        add.status.success(),
        "claude mcp add failed: {}{}",
        String::from_utf8_lossy(&add.stdout),
        String::from_utf8_lossy(&add.stderr)
    );
    // `claude mcp list` really starts the server and initializes it; it
    // exits 0 even when a server fails, so read the line.
    let list = run(
        claude(&cli, home.path(), &project).args(["mcp", "list"]),
        Duration::from_secs(90),
    );
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let line = assert_connected(&text, "code-interpreter", &v);
    let get = run(
        claude(&cli, home.path(), &project).args(["mcp", "get", "code-interpreter"]),
        Duration::from_secs(90),
    );
    let get_text = String::from_utf8_lossy(&get.stdout);
    assert!(
        get.status.success() && get_text.contains("Status: ✔ Connected"),
        "{get_text}"
    );
    record(&format!("client: Claude Code {v}: claude mcp list: {line}"));
}

// --------------------------------------------------------- mcp.json.example

fn example() -> Value {
    serde_json::from_str(&std::fs::read_to_string(EXAMPLE).unwrap())
        .unwrap_or_else(|e| panic!("mcp.json.example is not valid JSON: {e}"))
}

/// The help text of one flag: from its `--flag` line to the next flag.
fn flag_help<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    let start = help.find(&format!("      {flag} "))?;
    let rest = &help[start + flag.len() + 6..];
    let end = rest
        .find("\n      --")
        .or_else(|| rest.find("\n  -"))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Variables the AWS SDK reads itself (credential chain), not clap twins.
const AWS_SDK_VARS: [&str; 1] = ["AWS_PROFILE"];

#[test]
fn mcp_json_example_uses_only_real_flags_and_variables() {
    let ex = example();
    let help_out = Command::new(release_bin()).arg("--help").output().unwrap();
    assert!(help_out.status.success());
    let help = String::from_utf8_lossy(&help_out.stdout).into_owned();

    let code = ex["mcpServers"]
        .as_object()
        .expect("top-level mcpServers (Claude Code's .mcp.json)");
    let desktop = ex["claudeDesktop"]["mcpServers"]
        .as_object()
        .expect("claudeDesktop.mcpServers (claude_desktop_config.json)");
    assert_eq!(
        code.keys().collect::<Vec<_>>(),
        desktop.keys().collect::<Vec<_>>(),
        "the Claude Code and Claude Desktop examples should offer the same servers"
    );
    let mut backends = Vec::new();
    for (client, servers, typed) in [
        ("Claude Code", code, true),
        ("Claude Desktop", desktop, false),
    ] {
        for (name, entry) in servers {
            let what = format!("{client} entry {name}");
            assert_eq!(entry["command"], PLACEHOLDER, "{what}: command");
            if typed {
                assert_eq!(
                    entry["type"], "stdio",
                    "{what}: .mcp.json entries say type stdio"
                );
            } else {
                assert!(
                    entry.get("type").is_none(),
                    "{what}: Claude Desktop entries have no type"
                );
            }
            let args: Vec<&str> = entry["args"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: args"))
                .iter()
                .map(|a| a.as_str().expect("string args"))
                .collect();
            let env = entry["env"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: env"));
            for (i, arg) in args.iter().enumerate() {
                let Some(flag) = arg
                    .strip_prefix("--")
                    .map(|f| f.split('=').next().unwrap_or(f))
                else {
                    continue;
                };
                let block = flag_help(&help, &format!("--{flag}")).unwrap_or_else(|| {
                    panic!("{what}: --{flag} is not in code-interpreter-mcp --help")
                });
                let value = arg
                    .split_once('=')
                    .map(|(_, v)| v)
                    .or_else(|| args.get(i + 1).copied().filter(|v| !v.starts_with("--")));
                if let (Some(value), true) = (value, block.contains("Possible values:")) {
                    assert!(
                        block.contains(&format!("- {value}:")),
                        "{what}: --{flag} {value} is not one of its possible values:\n{block}"
                    );
                }
            }
            for key in env.keys() {
                assert!(
                    help.contains(&format!("[env: {key}=")) || AWS_SDK_VARS.contains(&key.as_str()),
                    "{what}: {key} is not a variable of code-interpreter-mcp --help"
                );
            }
            let agentcore = args.windows(2).any(|w| w == ["--backend", "agentcore"])
                || env.get("CODE_INTERPRETER_BACKEND") == Some(&json!("agentcore"));
            if agentcore {
                for key in ["AWS_PROFILE", "AWS_REGION"] {
                    assert!(
                        env.contains_key(key),
                        "{what}: the AgentCore entry needs {key}"
                    );
                }
            }
            backends.push((client, agentcore));
        }
    }
    for client in ["Claude Code", "Claude Desktop"] {
        for agentcore in [false, true] {
            assert!(
                backends.contains(&(client, agentcore)),
                "mcp.json.example has no {client} entry for the {} backend",
                if agentcore { "agentcore" } else { "local" }
            );
        }
    }
}

/// mcp.json.example with the real binary and a private sessions directory.
fn example_for_test(bin: &Path, sessions: &Path) -> Value {
    let mut ex = example();
    for pointer in ["/mcpServers", "/claudeDesktop/mcpServers"] {
        let servers = ex.pointer_mut(pointer).unwrap().as_object_mut().unwrap();
        for (_, entry) in servers {
            entry["command"] = json!(bin);
            entry["env"]["CODE_INTERPRETER_WORKDIR_ROOT"] = json!(sessions);
            if entry["env"].get("CODE_INTERPRETER_PYTHON").is_some() {
                entry["env"]["CODE_INTERPRETER_PYTHON"] = json!(test_python());
            }
        }
    }
    ex
}

/// The example, saved as a project's `.mcp.json`, works in Claude Code as
/// it is (the `_readme` and `claudeDesktop` keys are ignored): both servers
/// connect. The AgentCore one reads credentials only when a session starts.
#[test]
fn mcp_json_example_connects_in_claude_code() {
    let Some(cli) = client("CLAUDE_CLI", "the Claude Code CLI") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("project");
    std::fs::create_dir_all(home.path().join(".claude")).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    // Approve the project's servers without the interactive prompt.
    std::fs::write(
        home.path().join(".claude/settings.json"),
        r#"{"enableAllProjectMcpServers": true}"#,
    )
    .unwrap();
    let ex = example_for_test(&release_bin(), &home.path().join("sessions"));
    std::fs::write(
        project.join(".mcp.json"),
        serde_json::to_vec_pretty(&ex).unwrap(),
    )
    .unwrap();
    let v = version(&cli);
    let list = run(
        claude(&cli, home.path(), &project).args(["mcp", "list"]),
        Duration::from_secs(90),
    );
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    for name in ex["mcpServers"].as_object().unwrap().keys() {
        assert_connected(&text, name, &v);
    }
    record(&format!(
        "client: Claude Code {v}: mcp.json.example as .mcp.json: {} servers connected",
        ex["mcpServers"].as_object().unwrap().len()
    ));
}

/// The Inspector loads the example with `--config … --server …`.
#[test]
fn mcp_json_example_works_with_the_inspector() {
    let Some(insp) = client("INSPECTOR_CLI", "the MCP Inspector CLI") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("mcp.json");
    let ex = example_for_test(&release_bin(), &home.path().join("sessions"));
    std::fs::write(&cfg, serde_json::to_vec_pretty(&ex).unwrap()).unwrap();
    let out = run(
        inspector(&insp, home.path())
            .args(["-q", "--format", "json", "--config"])
            .arg(&cfg)
            .args(["--server", "code-interpreter", "--method", "tools/call"])
            .args(["--tool-name", "execute_command", "--tool-args-json"])
            .arg(json!({"command": "echo from-mcp-json"}).to_string()),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["result"]["structuredContent"]["stdout"], "from-mcp-json\n",
        "{v}"
    );
}

// ------------------------------------------------------ conformance suite

/// LISTEN sockets on `port` whose address is not loopback, from
/// /proc/net/tcp and tcp6.
fn non_loopback_listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (f.get(1), f.get(3)) else {
                continue;
            };
            let Some((addr, p)) = local.split_once(':') else {
                continue;
            };
            if *state != "0A" || u16::from_str_radix(p, 16) != Ok(port) {
                continue;
            }
            let loopback = addr == "0100007F" // 127.0.0.1
                || addr == "00000000000000000000000001000000" // ::1
                || addr == "0000000000000000FFFF00000100007F"; // ::ffff:127.0.0.1
            if !loopback {
                out.push(format!("{table}: {local}"));
            }
        }
    }
    out
}

struct Bridge {
    child: std::process::Child,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // SIGTERM lets supergateway stop the server it started.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: a plain signal to the child this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn conformance_suite_server_scenarios_pass() {
    let Some(conformance) = client("CONFORMANCE_CLI", "the MCP conformance suite") else {
        return;
    };
    let Some(gateway) = client("SUPERGATEWAY_CLI", "supergateway, a stdio-to-HTTP bridge") else {
        return;
    };
    let bin = release_bin();
    let dir = tempfile::tempdir().unwrap();
    let (vc, vg) = (version(&conformance), version(&gateway));

    // The suite speaks Streamable HTTP only: bridge the stdio server on a
    // free port of 127.0.0.1 (loopback.cjs pins the bridge's listener there).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let loopback = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/loopback.cjs");
    let log = File::create(dir.path().join("bridge.log")).unwrap();
    let child = Command::new(&gateway)
        .args(["--stdio", &shell_quote(&bin)])
        .args(["--outputTransport", "streamableHttp", "--stateful"])
        .args(["--port", &port.to_string(), "--logLevel", "none"])
        .env("PATH", client_path())
        .env("NODE_OPTIONS", format!("--require {loopback}"))
        .env("CODE_INTERPRETER_WORKDIR_ROOT", dir.path().join("sessions"))
        .env("CODE_INTERPRETER_PYTHON", test_python())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _bridge = Bridge { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "supergateway {vg} did not listen on 127.0.0.1:{port}: {}",
            std::fs::read_to_string(dir.path().join("bridge.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let elsewhere = non_loopback_listeners(port);
    assert!(
        elsewhere.is_empty(),
        "the bridge listens beyond loopback: {elsewhere:?}"
    );

    // The whole server suite, with the scenarios that cannot apply listed
    // as expected failures: any other failure, or a listed one that now
    // passes, fails the run.
    let baseline = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/conformance-baseline.yml"
    );
    let out = run(
        Command::new(&conformance)
            .args(["server", "--url", &format!("http://127.0.0.1:{port}/mcp")])
            .arg("--expected-failures")
            .arg(baseline)
            .arg("-o")
            .arg(dir.path().join("results"))
            .env("PATH", client_path())
            .env("NO_COLOR", "1")
            .current_dir(dir.path()),
        Duration::from_secs(300),
    );
    let text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    let summary = text
        .find("=== SUMMARY ===")
        .map(|i| text[i..].to_string())
        .unwrap_or_else(|| text.clone());
    assert!(
        out.status.success(),
        "MCP conformance {vc} (through supergateway {vg}) failed beyond its baseline ({}):\n{summary}\n{}",
        out.status,
        strip_ansi(&String::from_utf8_lossy(&out.stderr))
    );
    for scenario in ["server-initialize", "ping", "tools-list"] {
        assert!(
            summary.contains(&format!("✓ {scenario}:")),
            "conformance {vc}: {scenario} did not pass:\n{summary}"
        );
    }
    let count = |mark: &str| summary.lines().filter(|l| l.starts_with(mark)).count();
    record(&format!(
        "client: MCP conformance {vc} via supergateway {vg}: server-initialize, ping, tools-list ok; \
         scenarios passing {}, failing {} (all listed in the baseline)",
        count("✓ "),
        count("✗ ")
    ));
}
