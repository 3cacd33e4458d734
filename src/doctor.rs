//! `code-interpreter-mcp doctor`: what is in force and what is missing.
//!
//! Starts a real session with the configuration `serve` would use, checks
//! each isolation layer from inside it, finds the interpreters, and runs a
//! smoke execution. Prints a report for people on stdout (doctor is not an
//! MCP server, so stdout is free) and returns whether the local backend can
//! run code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backend::local::LocalBackend;
use crate::backend::local::sandbox::exec::landlock_abi;
use crate::backend::{
    Backend, CallControl, CodeRequest, CommandRequest, Language, Session, SessionOptions,
};
use crate::cli::{BackendKind, NetworkMode, SandboxMode, ServeArgs};

/// Shell run inside the sandbox to see each layer from the inside.
const PROBE: &str = r#"
echo "uid=$(id -u)"
echo "outer=$(awk '$1 == 1000 {print $2}' /proc/self/uid_map)"
echo "init=$(tr '\0' ' ' </proc/1/cmdline | cut -d' ' -f2)"
echo "pids=$(ls /proc | grep -c '^[0-9]')"
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ',')"
grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):' /proc/self/status | tr -d '\t ' | tr ':' '='
(: > /probe-root-write) 2>/dev/null && echo "rootwrite=yes" || echo "rootwrite=no"
(: > /usr/probe-write) 2>/dev/null && echo "usrwrite=yes" || echo "usrwrite=no"
(: > /work/.probe && rm /work/.probe) && echo "workwrite=yes" || echo "workwrite=no"
echo "home=$(ls -A /root 2>/dev/null | tr '\n' ',')"
echo "nproc=$(ulimit -u)"
echo "data=$(ulimit -d)"
echo "fsize=$(ulimit -f)"
echo "cpu=$(ulimit -t)"
echo "hostname=$(hostname)"
"#;

struct Report {
    text: String,
    ok: bool,
}

impl Report {
    fn line(&mut self, status: &str, what: &str, detail: impl AsRef<str>) {
        let _ = writeln!(self.text, "  [{status:^4}] {what:<20} {}", detail.as_ref());
        if status == "FAIL" {
            self.ok = false;
        }
    }
    fn head(&mut self, s: &str) {
        let _ = writeln!(self.text, "\n{s}");
    }
}

fn ctl() -> CallControl {
    CallControl {
        timeout: Duration::from_secs(60),
        cancel: CancellationToken::new(),
        live: None,
    }
}

async fn version_of(program: &str, arg: &str) -> Option<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(program)
            .arg(arg)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let v = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .to_string();
    (!v.is_empty()).then_some(v)
}

/// Runs the checks; returns true when the local backend can run code.
pub async fn run(args: ServeArgs) -> anyhow::Result<bool> {
    if args.backend == BackendKind::Agentcore {
        return agentcore(args).await;
    }
    let cfg = args.local.local_config(args.output_limit as usize);
    let mut r = Report {
        text: String::new(),
        ok: true,
    };
    let uname = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(
        r.text,
        "code-interpreter-mcp {} doctor\nkernel: Linux {} ({})",
        env!("CARGO_PKG_VERSION"),
        uname.trim(),
        std::env::consts::ARCH
    );
    let _ = writeln!(
        r.text,
        "backend: local; sessions under {}; sandbox {}; network {}",
        cfg.root.display(),
        if args.local.sandbox == SandboxMode::Namespaces {
            "namespaces"
        } else {
            "NONE (unconfined)"
        },
        if args.local.network == NetworkMode::On {
            "on"
        } else {
            "off"
        },
    );
    if let Some(sb) = &cfg.sandbox {
        let l = &sb.limits;
        let _ = writeln!(
            r.text,
            "limits: memory {} MiB per process, {} processes, files up to {} MiB, /work+/tmp {} MiB, {} CPU s per process; timeout {} s",
            l.memory_bytes >> 20,
            l.max_processes,
            l.max_file_bytes >> 20,
            sb.disk_bytes >> 20,
            l.cpu_seconds,
            args.timeout
        );
    }

    r.head("interpreters:");
    let python = crate::backend::local::launcher::which(&args.local.python);
    match &python {
        Some(p) => {
            let v = version_of(&p.display().to_string(), "--version")
                .await
                .unwrap_or_else(|| "did not run".into());
            r.line(" ok ", "python", format!("{} ({v})", p.display()));
        }
        None => r.line(
            "FAIL",
            "python",
            format!(
                "{:?} not found: install Python 3 or pass --python",
                args.local.python
            ),
        ),
    }
    let node = crate::backend::local::launcher::which(&args.local.node);
    match &node {
        Some(p) => {
            let v = version_of(&p.display().to_string(), "--version")
                .await
                .unwrap_or_default();
            let ts = v
                .trim_start_matches('v')
                .split('.')
                .take(2)
                .filter_map(|x| x.parse::<u32>().ok())
                .collect::<Vec<_>>();
            let ts_ok = ts.len() == 2 && (ts[0], ts[1]) >= (22, 13);
            r.line(
                " ok ",
                "node",
                format!(
                    "{} ({v}); TypeScript {}",
                    p.display(),
                    if ts_ok {
                        "available"
                    } else {
                        "needs Node >= 22.13"
                    }
                ),
            );
        }
        None => r.line(
            "warn",
            "node",
            "not found: JavaScript and TypeScript are unavailable (install Node.js or pass --node)",
        ),
    }
    match crate::backend::local::launcher::which("deno") {
        Some(p) => {
            let v = version_of(&p.display().to_string(), "--version")
                .await
                .unwrap_or_default();
            r.line(
                "info",
                "deno",
                format!("{} ({v}); not used (TypeScript runs on Node)", p.display()),
            );
        }
        None => r.line("info", "deno", "not found (not needed)"),
    }

    r.head("sandbox layers (checked from inside a session):");
    let backend = LocalBackend::new(cfg.clone())?;
    let t = Instant::now();
    let session = match backend.start_session(SessionOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            r.line("FAIL", "sandbox", e.tool_message());
            r.head("result: the local backend CANNOT run code (see above)");
            let _ = std::io::stdout().lock().write_all(r.text.as_bytes());
            return Ok(false);
        }
    };
    let start_ms = t.elapsed().as_millis();
    if cfg.sandbox.is_none() {
        r.line(
            "FAIL",
            "isolation",
            "--sandbox none: code runs unconfined as this user",
        );
        r.ok = true; // Unconfined still runs code; the report says what is missing.
    } else {
        probe_layers(
            &mut r,
            session.as_ref(),
            args.local.network == NetworkMode::On,
        )
        .await;
    }

    r.head("smoke execution:");
    let _ = writeln!(r.text, "  session started in {start_ms} ms");
    smoke(
        &mut r,
        session.as_ref(),
        Language::Python,
        "print(6 * 7)",
        true,
    )
    .await;
    if node.is_some() {
        smoke(
            &mut r,
            session.as_ref(),
            Language::Javascript,
            "console.log(6 * 7)",
            false,
        )
        .await;
    }
    let _ = session.stop().await;

    r.head(if r.ok {
        "result: the local backend is ready"
    } else {
        "result: the local backend CANNOT run code safely (see FAIL above)"
    });
    let _ = std::io::stdout().lock().write_all(r.text.as_bytes());
    Ok(r.ok)
}

async fn probe_layers(r: &mut Report, session: &dyn Session, network: bool) {
    let out = match session
        .execute_command(
            CommandRequest {
                command: PROBE.into(),
            },
            ctl(),
        )
        .await
    {
        Ok(o) if o.exit_code == Some(0) => o.stdout.text,
        Ok(o) => {
            r.line(
                "FAIL",
                "probe",
                format!("the probe failed: {}", o.stderr.text.trim()),
            );
            return;
        }
        Err(e) => {
            r.line("FAIL", "probe", e.tool_message());
            return;
        }
    };
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let check = |r: &mut Report, ok: bool, what: &str, good: String, bad: String| {
        r.line(
            if ok { " ok " } else { "FAIL" },
            what,
            if ok { good } else { bad },
        );
    };
    let uid = get("uid");
    let outer = get("outer");
    check(
        r,
        uid == "1000" && outer != "0" && !outer.is_empty(),
        "user namespace",
        format!("code runs as uid 1000 (uid {outer} outside), without capabilities"),
        format!("uid inside is {uid:?}, outside {outer:?}: session code must not be root outside"),
    );
    let init = get("init");
    check(
        r,
        init == "__sandbox-init",
        "pid namespace",
        format!(
            "the session's init is pid 1; {} processes visible",
            get("pids")
        ),
        format!("pid 1 is {init:?}"),
    );
    let ifaces = get("ifaces");
    if network {
        r.line(
            "warn",
            "network namespace",
            format!("--network on: the host's network is shared ({ifaces})"),
        );
    } else {
        check(
            r,
            ifaces.trim_end_matches(',') == "lo",
            "network namespace",
            "only lo: no network".into(),
            format!("interfaces visible: {ifaces}"),
        );
    }
    let ro = get("rootwrite") == "no" && get("usrwrite") == "no" && get("workwrite") == "yes";
    check(
        r,
        ro,
        "mount namespace",
        "read-only system view; /work and /tmp writable".into(),
        format!(
            "root write {}, /usr write {}, /work write {}",
            get("rootwrite"),
            get("usrwrite"),
            get("workwrite")
        ),
    );
    let home = get("home");
    check(
        r,
        home.split(',')
            .all(|e| e.is_empty() || e == ".pyenv" || e == ".local"),
        "home directories",
        format!(
            "hidden (visible under /root: {:?})",
            home.trim_end_matches(',')
        ),
        format!("visible under /root: {home}"),
    );
    check(
        r,
        get("hostname") == "sandbox",
        "uts/ipc namespaces",
        "own hostname and IPC".into(),
        format!("hostname {:?}", get("hostname")),
    );
    let filters: u32 = get("Seccomp_filters").parse().unwrap_or(0);
    check(
        r,
        get("Seccomp") == "2" && filters >= 1,
        "seccomp",
        format!(
            "{filters} filters: ptrace, mount, unshare, setns, bpf, io_uring, keyring, modules, ... denied"
        ),
        format!("Seccomp={} filters={filters}", get("Seccomp")),
    );
    check(
        r,
        get("NoNewPrivs") == "1",
        "no_new_privs",
        "setuid programs grant nothing".into(),
        "not set".into(),
    );
    let abi = landlock_abi();
    if abi > 0 {
        r.line(
            " ok ",
            "landlock",
            format!("ABI {abi}: writes limited to /work, /tmp, /dev/shm"),
        );
    } else {
        r.line(
            "warn",
            "landlock",
            "not available in this kernel; the other layers still apply",
        );
    }
    let limits = format!(
        "processes {}, data {} KiB, file size {} KiB, cpu {} s",
        get("nproc"),
        get("data"),
        get("fsize"),
        get("cpu")
    );
    check(
        r,
        !get("nproc").contains("unlimited") && !get("data").contains("unlimited"),
        "rlimits",
        limits.clone(),
        limits,
    );
}

async fn smoke(
    r: &mut Report,
    session: &dyn Session,
    language: Language,
    code: &str,
    required: bool,
) {
    let t = Instant::now();
    let res = session
        .execute_code(
            CodeRequest {
                code: code.into(),
                language,
                clear_context: false,
            },
            ctl(),
        )
        .await;
    let ms = t.elapsed().as_millis();
    let (ok, detail) = match res {
        Ok(o) if o.stdout.text.trim() == "42" => (
            true,
            format!("printed 42 in {ms} ms (interpreter start included)"),
        ),
        Ok(o) => (
            false,
            format!(
                "unexpected result: {:?} {:?}",
                o.stdout.text,
                o.error.map(|e| e.message)
            ),
        ),
        Err(e) => (false, e.tool_message()),
    };
    let status = match (ok, required) {
        (true, _) => " ok ",
        (false, true) => "FAIL",
        (false, false) => "warn",
    };
    r.line(status, language.as_str(), detail);
}

/// `doctor --backend agentcore`: the AWS configuration in force, then a
/// session started, a smoke run, and the session stopped.
async fn agentcore(args: ServeArgs) -> anyhow::Result<bool> {
    use crate::backend::Backend;
    let mut r = Report {
        text: String::new(),
        ok: true,
    };
    let a = &args.agentcore;
    let _ = writeln!(
        r.text,
        "code-interpreter-mcp {} doctor\nbackend: agentcore; code interpreter {}; region {}; endpoint {}; session timeout {} s",
        env!("CARGO_PKG_VERSION"),
        a.code_interpreter_id,
        a.region
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("from the AWS chain"),
        a.endpoint_url
            .as_deref()
            .unwrap_or("the service's (or AWS_ENDPOINT_URL_BEDROCK_AGENTCORE)"),
        a.session_timeout,
    );
    r.head("checks:");
    let backend = crate::backend::agentcore::AgentCoreBackend::new(
        args.agentcore.clone(),
        args.output_limit as usize,
    );
    let started = std::time::Instant::now();
    match backend.start_session(Default::default()).await {
        Ok(session) => {
            r.line(
                " ok ",
                "start session",
                format!(
                    "session {} in {} ms",
                    session.id(),
                    started.elapsed().as_millis()
                ),
            );
            smoke(
                &mut r,
                session.as_ref(),
                Language::Python,
                "print(6 * 7)",
                true,
            )
            .await;
            match session.stop().await {
                Ok(()) => r.line(" ok ", "stop session", "stopped"),
                Err(e) => r.line("FAIL", "stop session", e.tool_message()),
            }
        }
        Err(e) => r.line("FAIL", "start session", e.tool_message()),
    }
    r.head(if r.ok {
        "result: the agentcore backend is ready"
    } else {
        "result: the agentcore backend cannot run code (see FAIL above)"
    });
    let _ = std::io::stdout().lock().write_all(r.text.as_bytes());
    Ok(r.ok)
}
