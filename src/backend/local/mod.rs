//! The embedded `local` backend: each session is a private working directory
//! plus long-lived interpreters (Python; Node for JavaScript and TypeScript)
//! started on first use, and `bash -c` for commands. Every process starts
//! through [`launcher::launch`].

pub mod command;
pub mod files;
pub mod interpreter;
pub mod launcher;
pub mod sandbox;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

use crate::backend::{
    Backend, CallControl, CodeRequest, CommandRequest, ExecOutcome, FileWrite, Language, LimitHit,
    Listing, ReadFile, Session, SessionOptions, WrittenFile,
};

/// The uid and gid outside the sandbox of a root server's sessions.
const NOBODY: u32 = 65534;

/// How long a call waits for an interpreter busy with another call.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Said in every result of a session that runs without the sandbox.
pub const UNCONFINED_NOTE: &str = "This server runs with --sandbox none: code in this session is NOT isolated and has the server user's full access to the machine and network.";
use crate::error::Error;
use crate::output::{OutputCollector, SpillOpener};
use files::{ConfinedDir, normalize_rel};
use interpreter::{Interpreter, Runtime};
use sandbox::{InitSpec, Limits, Sandbox};

/// Settings of the local backend.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Directory under which each session gets its own directory.
    pub root: PathBuf,
    /// Python to run (a name on PATH or a path).
    pub python: String,
    /// Node.js to run for JavaScript and TypeScript.
    pub node: String,
    /// Bytes of stdout and of stderr returned inline per call.
    pub output_limit: usize,
    /// Largest file `read_files` returns.
    pub max_read_bytes: u64,
    /// Most bytes one `read_files` call returns in all: files past it are
    /// reported as not read, so a call holds at most this much (plus one
    /// file) in memory.
    pub max_read_total: u64,
    /// Most entries `list_files` returns.
    pub max_list_entries: usize,
    /// The sandbox around every session process; None runs code unconfined
    /// (`--sandbox none`).
    pub sandbox: Option<SandboxSettings>,
}

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Keep the host network (off: only a private loopback).
    pub network: bool,
    pub limits: Limits,
    /// Size of the tmpfs holding a session's /work and /tmp.
    pub disk_bytes: u64,
}

/// An interpreter found on this machine.
#[derive(Debug, Clone)]
struct Resolved {
    program: PathBuf,
    /// Its installation, made visible read-only inside the sandbox when it
    /// is outside the system directories (pyenv, a venv, a Node tarball).
    install_dirs: Vec<PathBuf>,
}

fn push_install_dir(dirs: &mut Vec<PathBuf>, p: PathBuf) {
    if p.is_absolute() && p != Path::new("/") && !sandbox::is_system_path(&p) && !dirs.contains(&p)
    {
        dirs.push(p);
    }
}

/// Interpreters and shell, found once per server and shared by sessions.
struct Toolchain {
    python: OnceCell<Result<Resolved, String>>,
    node: OnceCell<Result<Resolved, String>>,
    bash: OnceCell<Result<Resolved, String>>,
}

pub struct LocalBackend {
    cfg: Arc<LocalConfig>,
    tools: Arc<Toolchain>,
}

impl LocalBackend {
    pub fn new(cfg: LocalConfig) -> Result<Self, Error> {
        prepare_root(&cfg.root)?;
        Ok(Self {
            cfg: Arc::new(cfg),
            tools: Arc::new(Toolchain {
                python: OnceCell::new(),
                node: OnceCell::new(),
                bash: OnceCell::new(),
            }),
        })
    }

    /// Finds Python in the background, so the first session does not pay for
    /// it (a pyenv shim, for one, is a shell script that takes a while).
    pub fn prewarm(&self) {
        let tools = self.tools.clone();
        let cfg = self.cfg.clone();
        tokio::spawn(async move {
            let _ = resolve_python(&tools, &cfg).await;
        });
    }
}

/// Creates the sessions' root directory, private to this user.
fn prepare_root(root: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| Error::io(format!("creating the session root {}", root.display()), e))?;
    let meta = std::fs::symlink_metadata(root)
        .map_err(|e| Error::io(format!("checking {}", root.display()), e))?;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != uid {
        return Err(Error::backend(format!(
            "the session root {} is not a directory owned by this user; choose another with --workdir-root",
            root.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

async fn resolve_python(tools: &Toolchain, cfg: &LocalConfig) -> Result<Resolved, String> {
    tools
        .python
        .get_or_init(|| async {
            let Some(found) = launcher::which(&cfg.python) else {
                return Err(format!(
                    "Python was not found ({:?} is not on PATH). Install Python 3 (e.g. `apt-get install python3`) or pass its path with --python / CODE_INTERPRETER_PYTHON.",
                    cfg.python
                ));
            };
            // Ask the interpreter for its real executable: version managers
            // (pyenv, asdf) put slow shell-script shims on PATH.
            let probe = tokio::process::Command::new(&found)
                .args(["-c", "import os, sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix); print(os.path.realpath(sys.executable))"])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .output();
            let mut install_dirs = Vec::new();
            let program = match tokio::time::timeout(Duration::from_secs(30), probe).await {
                Ok(Ok(o)) if o.status.success() => {
                    let out = String::from_utf8_lossy(&o.stdout).to_string();
                    let lines: Vec<&str> = out.lines().collect();
                    for dir in lines.iter().skip(1).take(2) {
                        push_install_dir(&mut install_dirs, PathBuf::from(dir));
                    }
                    if let Some(real) = lines.get(3).map(PathBuf::from)
                        && let Some(prefix) = real.parent().and_then(Path::parent)
                    {
                        push_install_dir(&mut install_dirs, prefix.to_path_buf());
                    }
                    let p = PathBuf::from(lines.first().copied().unwrap_or_default());
                    if p.is_file() { p } else { found }
                }
                _ => {
                    return Err(format!(
                        "{} did not run `python -c 'import sys'`; check the installation or pass another with --python",
                        found.display()
                    ));
                }
            };
            Ok(Resolved { program, install_dirs })
        })
        .await
        .clone()
}

async fn resolve_simple(
    cell: &OnceCell<Result<Resolved, String>>,
    name: &str,
    missing: &str,
) -> Result<Resolved, String> {
    cell.get_or_init(|| async {
        match launcher::which(name) {
            Some(p) => {
                let program = std::fs::canonicalize(&p).unwrap_or(p);
                let mut install_dirs = Vec::new();
                if let Some(prefix) = program.parent().and_then(Path::parent) {
                    push_install_dir(&mut install_dirs, prefix.to_path_buf());
                }
                Ok(Resolved {
                    program,
                    install_dirs,
                })
            }
            None => Err(missing.to_string()),
        }
    })
    .await
    .clone()
}

#[async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn start_session(&self, _opts: SessionOptions) -> Result<Arc<dyn Session>, Error> {
        let id = crate::ids::local_session_id();
        let dir = self.cfg.root.join(&id);
        std::fs::create_dir(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let started = self.start_in(&id, &dir).await;
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let (sandbox, work, tmp, confined) = started?;
        let session = Arc::new(LocalSession {
            id,
            dir,
            work,
            tmp,
            confined,
            sandbox,
            cfg: self.cfg.clone(),
            tools: self.tools.clone(),
            python: AsyncMutex::new(None),
            node: AsyncMutex::new(None),
            command_groups: Mutex::new(HashSet::new()),
            call_seq: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        tracing::info!(session = %session.id, dir = %session.dir.display(), sandboxed = session.sandbox.is_some(), "local session started");
        Ok(session)
    }
}

/// A session's sandbox (if any), its working and temporary directories as
/// its processes see them, and the confined view of its working directory.
type SessionParts = (Option<Sandbox>, PathBuf, PathBuf, Arc<ConfinedDir>);

impl LocalBackend {
    async fn start_in(&self, id: &str, dir: &Path) -> Result<SessionParts, Error> {
        let Some(sb) = &self.cfg.sandbox else {
            let work = dir.join("work");
            let tmp = dir.join("tmp");
            for d in [&work, &tmp] {
                std::fs::create_dir(d)
                    .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
            }
            let confined = Arc::new(ConfinedDir::open(&work)?);
            return Ok((None, work, tmp, confined));
        };
        let root_mount = dir.join("root");
        std::fs::create_dir(&root_mount)
            .map_err(|e| Error::io(format!("creating {}", root_mount.display()), e))?;
        // The interpreters' installations must be visible inside.
        let mut ro_paths = Vec::new();
        if let Ok(p) = resolve_python(&self.tools, &self.cfg).await {
            ro_paths.extend(p.install_dirs);
        }
        if let Ok(n) = resolve_simple(&self.tools.node, &self.cfg.node, "").await {
            ro_paths.extend(n.install_dirs);
        }
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        // Session code never runs as root outside the sandbox: a root server
        // maps it to nobody.
        let (uid, gid) = if uid == 0 {
            (NOBODY, NOBODY)
        } else {
            (uid, gid)
        };
        let spec = InitSpec {
            outer_uid: uid,
            outer_gid: gid,
            root_mount,
            network: sb.network,
            disk_bytes: sb.disk_bytes,
            ro_paths,
        };
        let sandbox = Sandbox::start(&spec, &sb.limits).await?;
        // What the server writes into /work must belong to the sandbox's user.
        let owner = (spec.outer_uid, spec.outer_gid);
        let confined = Arc::new(ConfinedDir::open(&sandbox.work_dir())?.with_owner(owner));
        tracing::debug!(session = id, "sandbox ready");
        Ok((
            Some(sandbox),
            PathBuf::from(sandbox::WORK_DIR),
            PathBuf::from("/tmp"),
            confined,
        ))
    }
}

pub struct LocalSession {
    id: String,
    /// The session's directory on the host.
    dir: PathBuf,
    /// Working and temporary directories as the session's processes see them.
    work: PathBuf,
    tmp: PathBuf,
    confined: Arc<ConfinedDir>,
    sandbox: Option<Sandbox>,
    cfg: Arc<LocalConfig>,
    tools: Arc<Toolchain>,
    python: AsyncMutex<Option<Interpreter>>,
    node: AsyncMutex<Option<Interpreter>>,
    /// Process groups of interpreters and commands, killed when the session stops.
    command_groups: Mutex<HashSet<i32>>,
    call_seq: AtomicU64,
    stopped: AtomicBool,
}

impl LocalSession {
    /// The environment every process of the session starts with: built from
    /// scratch, nothing of the server's own environment.
    fn env(&self, extra_path: &[&Path]) -> Vec<(String, String)> {
        let mut path: Vec<String> = Vec::new();
        for p in extra_path {
            let p = match &self.sandbox {
                Some(sb) => sb.view(p),
                None => p.to_path_buf(),
            };
            let s = p.display().to_string();
            if !path.contains(&s) {
                path.push(s);
            }
        }
        for p in ["/usr/local/bin", "/usr/bin", "/bin"] {
            if !path.iter().any(|x| x == p) {
                path.push(p.to_string());
            }
        }
        let home = self.work.display().to_string();
        let tmp = self.tmp.display().to_string();
        vec![
            ("PATH".into(), path.join(":")),
            ("HOME".into(), home),
            ("TMPDIR".into(), tmp.clone()),
            ("XDG_CACHE_HOME".into(), format!("{tmp}/.cache")),
            ("MPLCONFIGDIR".into(), format!("{tmp}/.matplotlib")),
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("TERM".into(), "dumb".into()),
            ("NO_COLOR".into(), "1".into()),
            ("MPLBACKEND".into(), "Agg".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
        ]
    }

    /// Directories of the interpreters found so far, for PATH.
    fn known_bin_dirs(&self) -> Vec<PathBuf> {
        [&self.tools.python, &self.tools.node]
            .iter()
            .filter_map(|c| c.get().and_then(|r| r.as_ref().ok()))
            .filter_map(|r| r.program.parent().map(Path::to_path_buf))
            .collect()
    }

    fn spill_opener(&self, seq: u64, stream: &'static str) -> SpillOpener {
        let confined = self.confined.clone();
        Box::new(move || {
            let rel = format!(".outputs/call-{seq}-{stream}.txt");
            confined
                .create(Path::new(&rel))
                .map(|f| (f, rel))
                .map_err(|e| format!("the full output could not be saved: {}", e.tool_message()))
        })
    }

    fn collectors(&self, ctl: &CallControl) -> (OutputCollector, OutputCollector) {
        let seq = self.call_seq.fetch_add(1, Ordering::Relaxed) + 1;
        (
            OutputCollector::new(
                self.cfg.output_limit,
                Some(self.spill_opener(seq, "stdout")),
            )
            .with_live(ctl.live.clone()),
            OutputCollector::new(
                self.cfg.output_limit,
                Some(self.spill_opener(seq, "stderr")),
            )
            .with_live(ctl.live.clone()),
        )
    }

    /// Records a process group to kill when the session stops. Commands that
    /// exited normally stay recorded while processes they started in the
    /// background may still run; empty groups are pruned.
    fn track_group(&self, pgid: i32) {
        if let Ok(mut set) = self.command_groups.lock() {
            if set.len() >= 64 {
                // SAFETY: signal 0 only checks whether the group has members.
                set.retain(|&g| unsafe { libc::kill(-g, 0) } == 0);
            }
            set.insert(pgid);
        }
    }

    fn untrack_group(&self, pgid: i32) {
        if let Ok(mut set) = self.command_groups.lock() {
            set.remove(&pgid);
        }
    }

    /// Names the limits a call ran into, so a result never shows only a bare
    /// exit status: memory, processes, storage, file size and CPU time.
    fn name_limits(&self, o: &mut ExecOutcome) {
        let Some(sb) = &self.cfg.sandbox else {
            o.notes.push(UNCONFINED_NOTE.into());
            return;
        };
        let l = &sb.limits;
        let mib = |b: u64| b >> 20;
        let died_of = |sig: &str| {
            o.signal.as_deref() == Some(sig)
                || o.error
                    .as_ref()
                    .is_some_and(|e| e.name == "InterpreterExited" && e.message.contains(sig))
        };
        let hit = if died_of("SIGXFSZ") {
            Some((
                "file_size",
                format!(
                    "a file reached the {} MiB file size limit (--max-file-mb)",
                    mib(l.max_file_bytes)
                ),
            ))
        } else if died_of("SIGXCPU") {
            Some((
                "cpu_time",
                format!(
                    "a process used its {} s of CPU time (--cpu-seconds)",
                    l.cpu_seconds
                ),
            ))
        } else if o.error.as_ref().is_some_and(|e| e.name == "MemoryError") {
            Some((
                "memory",
                format!(
                    "an allocation was refused: each session process may use {} MiB (--memory-mb)",
                    mib(l.memory_bytes)
                ),
            ))
        } else {
            None
        };
        if let Some((limit, detail)) = hit {
            if o.limit.is_none() {
                o.limit = Some(LimitHit {
                    limit: limit.into(),
                    action: if limit == "memory" {
                        "denied"
                    } else {
                        "killed"
                    }
                    .into(),
                    state_lost: o
                        .error
                        .as_ref()
                        .is_some_and(|e| e.name == "InterpreterExited"),
                    detail: detail.clone(),
                });
            } else {
                o.notes.push(format!("Limit reached: {detail}."));
            }
        }
        let text = |needle: &str| {
            o.stderr.text.contains(needle)
                || o.stdout.text.contains(needle)
                || o.error
                    .as_ref()
                    .is_some_and(|e| e.message.contains(needle) || e.traceback.contains(needle))
        };
        if text("No space left on device") {
            o.notes.push(format!(
                "The session's storage is full: /work and /tmp share {} MiB (--disk-mb). Delete files to free space.",
                mib(sb.disk_bytes)
            ));
        }
        if text("Resource temporarily unavailable")
            && (text("fork") || text("BlockingIOError") || text("can't start new thread"))
        {
            o.notes.push(format!(
                "The session's process limit was reached: at most {} processes at once (--max-processes).",
                l.max_processes
            ));
        }
    }

    fn check_alive(&self) -> Result<(), Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::SessionGone(format!(
                "session {} was stopped; start a new one with start_session",
                self.id
            )));
        }
        Ok(())
    }

    async fn runtime_program(&self, runtime: Runtime) -> Result<PathBuf, Error> {
        let r = match runtime {
            Runtime::Python => resolve_python(&self.tools, &self.cfg).await,
            Runtime::Node => {
                resolve_simple(
                    &self.tools.node,
                    &self.cfg.node,
                    &format!(
                        "Node.js was not found ({:?} is not on PATH); JavaScript and TypeScript need it. Install Node.js (e.g. `apt-get install nodejs`; TypeScript needs Node >= 22.13) or pass its path with --node / CODE_INTERPRETER_NODE.",
                        self.cfg.node
                    ),
                )
                .await
            }
        };
        r.map(|r| r.program).map_err(Error::Backend)
    }
}

#[async_trait]
impl Session for LocalSession {
    fn id(&self) -> &str {
        &self.id
    }

    async fn execute_code(&self, req: CodeRequest, ctl: CallControl) -> Result<ExecOutcome, Error> {
        self.check_alive()?;
        let runtime = match req.language {
            Language::Python => Runtime::Python,
            Language::Javascript | Language::Typescript => Runtime::Node,
        };
        let program = self.runtime_program(runtime).await?;
        let slot = match runtime {
            Runtime::Python => &self.python,
            Runtime::Node => &self.node,
        };
        // A background task may hold the interpreter for long: wait a little
        // (two calls at once from one client), then say what is going on.
        let Ok(mut guard) = tokio::time::timeout(BUSY_WAIT, slot.lock()).await else {
            return Err(Error::backend(format!(
                "The {} interpreter of session {} is busy with another call (a background task?). \
Follow it with get_task or end it with stop_task, or run this in another session (start_session).",
                runtime.name(),
                self.id
            )));
        };
        self.check_alive()?;
        let mut notes = Vec::new();
        // Node cannot drop top-level declarations, so a fresh context is a fresh process.
        if runtime == Runtime::Node
            && req.clear_context
            && let Some(mut old) = guard.take()
        {
            self.untrack_group(old.pid());
            old.kill().await;
        }
        if guard.is_none() {
            let mut bins = self.known_bin_dirs();
            if let Some(p) = program.parent() {
                bins.insert(0, p.to_path_buf());
            }
            let bin_refs: Vec<&Path> = bins.iter().map(PathBuf::as_path).collect();
            let env = self.env(&bin_refs);
            let interp =
                Interpreter::start(runtime, &program, &self.work, &env, self.sandbox.as_ref())
                    .await?;
            self.track_group(interp.pid());
            *guard = Some(interp);
        }
        let Some(interp) = guard.as_mut() else {
            return Err(Error::backend("interpreter slot empty"));
        };
        let (mut out, mut err) = self.collectors(&ctl);
        let run = interp.run(&req, &ctl, &mut out, &mut err).await;
        if run.dead {
            if let Some(mut i) = guard.take() {
                self.untrack_group(i.pid());
                i.kill().await;
            }
            notes.push(format!(
                "The {} interpreter was stopped; its variables are gone and the next call starts a fresh one.",
                runtime.name()
            ));
        }
        drop(guard);
        let mut outcome = ExecOutcome {
            stdout: out.finish(),
            stderr: err.finish(),
            exit_code: None,
            signal: None,
            result: run.result,
            error: run.error,
            images: run.images,
            duration: run.duration,
            limit: run.limit,
            notes,
        };
        self.name_limits(&mut outcome);
        Ok(outcome)
    }

    async fn execute_command(
        &self,
        req: CommandRequest,
        ctl: CallControl,
    ) -> Result<ExecOutcome, Error> {
        self.check_alive()?;
        let bash = resolve_simple(
            &self.tools.bash,
            "bash",
            "bash was not found on PATH; install it (e.g. `apt-get install bash`).",
        )
        .await
        .map_err(Error::Backend)?
        .program;
        let bins = self.known_bin_dirs();
        let bin_refs: Vec<&Path> = bins.iter().map(PathBuf::as_path).collect();
        let env = self.env(&bin_refs);
        let (mut out, mut err) = self.collectors(&ctl);
        let mut pgid = 0;
        let shell = command::Shell {
            bash: &bash,
            cwd: &self.work,
            env: &env,
            sandbox: self.sandbox.as_ref(),
        };
        let r = command::run(shell, &req.command, &ctl, &mut out, &mut err, |g| {
            pgid = g;
            self.track_group(g);
        })
        .await?;
        if r.limit.is_some() {
            // The whole group was killed; nothing of it is left to track.
            self.untrack_group(pgid);
        }
        let mut outcome = ExecOutcome {
            stdout: out.finish(),
            stderr: err.finish(),
            exit_code: r.exit_code,
            signal: r.signal,
            result: None,
            error: None,
            images: Vec::new(),
            duration: r.duration,
            limit: r.limit,
            notes: Vec::new(),
        };
        self.name_limits(&mut outcome);
        Ok(outcome)
    }

    async fn write_files(&self, files: Vec<FileWrite>) -> Result<Vec<WrittenFile>, Error> {
        self.check_alive()?;
        let confined = self.confined.clone();
        tokio::task::spawn_blocking(move || {
            // Check every path first so that a bad one changes nothing.
            let mut planned = Vec::with_capacity(files.len());
            for f in &files {
                let rel = normalize_rel(&f.path)?;
                confined.check_writable(&rel)?;
                planned.push(rel);
            }
            let mut written = Vec::with_capacity(files.len());
            for (f, rel) in files.iter().zip(planned) {
                let bytes = f.content.as_bytes();
                confined.write_atomic(&rel, bytes)?;
                written.push(WrittenFile {
                    path: rel.display().to_string(),
                    bytes: bytes.len() as u64,
                    sha256: crate::sha256_hex(bytes),
                });
            }
            Ok(written)
        })
        .await
        .map_err(|e| Error::backend(format!("file writer failed: {e}")))?
    }

    async fn read_files(&self, paths: Vec<String>) -> Result<Vec<ReadFile>, Error> {
        self.check_alive()?;
        let confined = self.confined.clone();
        let (max, max_total) = (self.cfg.max_read_bytes, self.cfg.max_read_total);
        tokio::task::spawn_blocking(move || {
            let mut total = 0u64;
            let over = || {
                format!(
                    "not read: with it this call would return more than {} MiB, the most one call returns; read this file in another call",
                    max_total >> 20
                )
            };
            paths
                .into_iter()
                .map(|p| {
                    let result = normalize_rel(&p)
                        .map_err(|e| e.to_string())
                        .and_then(|rel| confined.read(&rel, max))
                        .and_then(|bytes| {
                            total += bytes.len() as u64;
                            if total > max_total {
                                total -= bytes.len() as u64;
                                Err(over())
                            } else {
                                Ok(bytes)
                            }
                        });
                    ReadFile { path: p, result }
                })
                .collect()
        })
        .await
        .map_err(|e| Error::backend(format!("file reader failed: {e}")))
    }

    async fn list_files(&self, path: &str, recursive: bool) -> Result<Listing, Error> {
        self.check_alive()?;
        let rel = normalize_rel(path)?;
        let confined = self.confined.clone();
        let max = self.cfg.max_list_entries;
        tokio::task::spawn_blocking(move || confined.list(&rel, recursive, max))
            .await
            .map_err(|e| Error::backend(format!("lister failed: {e}")))?
    }

    async fn remove_files(&self, paths: Vec<String>) -> Result<Vec<String>, Error> {
        self.check_alive()?;
        let rels = paths
            .iter()
            .map(|p| normalize_rel(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut removed = Vec::new();
        for rel in rels {
            self.confined.remove(&rel)?;
            removed.push(rel.display().to_string());
        }
        Ok(removed)
    }

    async fn stop(&self) -> Result<(), Error> {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Kill first: a running call holds its interpreter's lock, and it
        // returns as soon as the interpreter is gone.
        let groups: Vec<i32> = self
            .command_groups
            .lock()
            .map(|mut s| s.drain().collect())
            .unwrap_or_default();
        for g in groups {
            launcher::signal_group(g, libc::SIGKILL);
        }
        if let Some(sb) = &self.sandbox {
            // Killing the init ends every process in the session's pid namespace.
            sb.stop();
        }
        for slot in [&self.python, &self.node] {
            if let Some(mut i) = slot.lock().await.take() {
                i.kill().await;
            }
        }
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
        tracing::info!(session = %self.id, "local session stopped");
        Ok(())
    }
}

impl Drop for LocalSession {
    fn drop(&mut self) {
        // Interpreters die with their handles (kill_on_drop); the sandbox and
        // commands' groups are killed here in case stop() never ran.
        if let Some(sb) = &self.sandbox {
            sb.stop();
        }
        if let Ok(mut s) = self.command_groups.lock() {
            for g in s.drain() {
                launcher::signal_group(g, libc::SIGKILL);
            }
        }
    }
}
