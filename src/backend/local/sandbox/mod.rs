//! The local sandbox: kernel isolation around every process of a session,
//! built into this binary so nothing needs installing.
//!
//! Each session gets one *init* process (this binary re-executed as
//! `__sandbox-init`, see [`init`]) that creates new user, mount, pid,
//! network, ipc and uts namespaces, builds a read-only root with only the
//! system directories and the interpreters' installations, mounts a
//! size-limited tmpfs for `/work` and `/tmp`, and then stays as pid 1 of the
//! session. Every process of the session is started through this binary
//! re-executed as `__sandbox-exec` (see [`exec`]): it joins the init's
//! namespaces with `setns(pidfd)`, forks into the session's pid namespace,
//! applies rlimits, `no_new_privs`, Landlock and a seccomp filter, and execs
//! the program. The server itself is never confined; killing the init ends
//! every process of the session at once.

pub mod exec;
pub mod init;
pub mod seccomp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::launcher::{self, LaunchSpec};
use crate::error::Error;

/// The sandboxed processes' user and group inside their user namespace.
pub const INNER_UID: u32 = 1000;
pub const INNER_GID: u32 = 1000;
/// Where the session's working directory is, inside the sandbox.
pub const WORK_DIR: &str = "/work";
/// Where an interpreter installation that lives under the host's `/work`
/// is mounted instead: at its own path it would show up in (and clutter)
/// the session's working directory.
pub const RELOCATED_DIR: &str = "/run/host-tools";
/// Exit status of `__sandbox-exec` when it could not start the program.
pub const EXEC_FAILED: i32 = 125;
/// How long a sandbox may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Resource limits of each process in a session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    /// RLIMIT_DATA: private writable memory of one process.
    pub memory_bytes: u64,
    /// RLIMIT_NPROC: processes of the session's user (per session: each
    /// session has its own user namespace).
    pub max_processes: u64,
    /// RLIMIT_FSIZE: largest file a process may write.
    pub max_file_bytes: u64,
    /// RLIMIT_CPU: CPU seconds of one process.
    pub cpu_seconds: u64,
}

/// Everything the init needs to build a session's sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    /// User and group outside the sandbox that the inside maps to.
    pub outer_uid: u32,
    pub outer_gid: u32,
    /// An empty host directory to mount the new root on.
    pub root_mount: PathBuf,
    /// Keep the host's network (off: a new network namespace with only `lo`).
    pub network: bool,
    /// Size of the tmpfs holding `/work` and `/tmp`.
    pub disk_bytes: u64,
    /// Directories made visible read-only (interpreter installations
    /// outside the system directories, e.g. pyenv or a venv), at the path
    /// [`ro_mounts`] gives each.
    pub ro_paths: Vec<PathBuf>,
}

/// Where each of `ro_paths` is mounted inside the sandbox: at its own path,
/// except under the host's `/work`, which would land in the session's
/// working directory: such a path goes to `RELOCATED_DIR/<index>`.
pub fn ro_mounts(ro_paths: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    ro_paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let inside = if p.starts_with(WORK_DIR) {
                Path::new(RELOCATED_DIR).join(i.to_string())
            } else {
                p.clone()
            };
            (p.clone(), inside)
        })
        .collect()
}

/// What `__sandbox-exec` needs to start a program in a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Pid (in the server's pid namespace) of the session's init.
    pub init_pid: i32,
    pub network: bool,
    pub limits: Limits,
}

/// A running session sandbox.
pub struct Sandbox {
    /// The outer init process; its death takes the whole sandbox with it
    /// (and dropping this handle kills it).
    _child: tokio::process::Child,
    outer_pid: i32,
    /// The init that is pid 1 inside, as the server sees it.
    inner_pid: i32,
    exec_spec_json: String,
    /// Installations mounted away from their host path (see [`ro_mounts`]).
    relocated: Vec<(PathBuf, PathBuf)>,
}

impl Sandbox {
    /// Starts a session's sandbox and waits until it is ready. Fails closed:
    /// the error names the layer that could not be set up and the fix.
    pub async fn start(spec: &InitSpec, limits: &Limits) -> Result<Self, Error> {
        let json = serde_json::to_string(spec)
            .map_err(|e| Error::backend(format!("sandbox spec: {e}")))?;
        let mut launched = launcher::launch(LaunchSpec {
            program: Path::new("/proc/self/exe"),
            args: vec!["__sandbox-init".into(), json.into()],
            cwd: Path::new("/"),
            env: &[],
            control_channel: false,
            sandbox: None,
        })
        .map_err(|e| Error::backend(format!("could not start the sandbox: {e}")))?;
        let mut lines = BufReader::new(launched.stdout).lines();
        let mut inner_pid = None;
        let outcome = tokio::time::timeout(START_TIMEOUT, async {
            // The outer init reports the pid and the inner one says ready;
            // the two lines may come in either order.
            let mut ready = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(pid) = line.strip_prefix("pid ") {
                    inner_pid = pid.trim().parse::<i32>().ok();
                } else if line == "ready" {
                    ready = true;
                } else if let Some(err) = line.strip_prefix("error ") {
                    return Err(err.to_string());
                }
                if ready && inner_pid.is_some() {
                    return Ok(());
                }
            }
            Err("the sandbox init exited without saying why".to_string())
        })
        .await
        .unwrap_or_else(|_| Err("the sandbox did not come up within 10 s".into()));
        if let Err(why) = outcome {
            let mut stderr = String::new();
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                launched.stderr.read_to_string(&mut stderr),
            )
            .await;
            launcher::signal_group(launched.pid, libc::SIGKILL);
            let _ = launched.child.kill().await;
            let extra = if stderr.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", stderr.trim())
            };
            return Err(Error::backend(format!(
                "The local sandbox could not be set up, so no code was run: {why}{extra}. \
Run `code-interpreter-mcp doctor` for details. Only if you accept running code unconfined, start the server with --sandbox none."
            )));
        }
        let inner_pid =
            inner_pid.ok_or_else(|| Error::backend("the sandbox init did not report its pid"))?;
        let exec_spec_json = serde_json::to_string(&ExecSpec {
            init_pid: inner_pid,
            network: spec.network,
            limits: limits.clone(),
        })
        .map_err(|e| Error::backend(format!("sandbox spec: {e}")))?;
        let relocated: Vec<(PathBuf, PathBuf)> = ro_mounts(&spec.ro_paths)
            .into_iter()
            .filter(|(host, inside)| host != inside)
            .collect();
        static RELOCATION_NOTED: std::sync::Once = std::sync::Once::new();
        if let Some((host, inside)) = relocated.first() {
            RELOCATION_NOTED.call_once(|| {
                tracing::warn!(
                    installation = %host.display(),
                    inside = %inside.display(),
                    "an interpreter installation lives under /work, the sessions' own working directory, so sessions see it elsewhere; its scripts with a fixed #! line (pip, ...) need `python -m` there"
                );
            });
        }
        Ok(Self {
            _child: launched.child,
            outer_pid: launched.pid,
            inner_pid,
            exec_spec_json,
            relocated,
        })
    }

    /// Where the host path `p` of an interpreter installation is seen
    /// inside the sandbox (the longest relocated prefix wins).
    pub fn view(&self, p: &Path) -> PathBuf {
        view_in(&self.relocated, p)
    }

    /// The program and arguments that run `program args` inside the sandbox.
    pub fn wrap(&self, program: &Path, args: Vec<OsString>) -> (PathBuf, Vec<OsString>) {
        let mut all: Vec<OsString> = vec![
            "__sandbox-exec".into(),
            self.exec_spec_json.clone().into(),
            "--".into(),
            self.view(program).into(),
        ];
        all.extend(args);
        (PathBuf::from("/proc/self/exe"), all)
    }

    /// The session's working directory, as the server reaches it from outside.
    pub fn work_dir(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{WORK_DIR}", self.inner_pid))
    }

    /// Ends the sandbox and every process in it (the inner init dies with
    /// the outer one, and the kernel kills everything in its pid namespace).
    pub fn stop(&self) {
        launcher::signal_group(self.outer_pid, libc::SIGKILL);
    }
}

fn view_in(relocated: &[(PathBuf, PathBuf)], p: &Path) -> PathBuf {
    relocated
        .iter()
        .filter_map(|(host, inside)| Some((host, inside, p.strip_prefix(host).ok()?)))
        .max_by_key(|(host, _, _)| host.as_os_str().len())
        .map_or_else(|| p.to_path_buf(), |(_, inside, rest)| inside.join(rest))
}

/// Directories under which an interpreter needs nothing extra mounted.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
];

/// Whether `p` is already visible through the system directories.
pub fn is_system_path(p: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| p.starts_with(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installations_under_work_are_mounted_elsewhere() {
        let paths: Vec<PathBuf> = [
            "/root/.pyenv/versions/3.11",
            "/work/p/.venv",
            "/tmp/v",
            "/workshop/x",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let mounts = ro_mounts(&paths);
        let at: Vec<&Path> = mounts.iter().map(|(_, at)| at.as_path()).collect();
        assert_eq!(
            at,
            [
                Path::new("/root/.pyenv/versions/3.11"),
                Path::new("/run/host-tools/1"),
                Path::new("/tmp/v"),
                Path::new("/workshop/x"),
            ]
        );
        let relocated: Vec<_> = mounts.into_iter().filter(|(h, a)| h != a).collect();
        assert_eq!(
            view_in(&relocated, Path::new("/work/p/.venv/bin/python")),
            Path::new("/run/host-tools/1/bin/python")
        );
        assert_eq!(
            view_in(&relocated, Path::new("/usr/bin/bash")),
            Path::new("/usr/bin/bash")
        );
    }
}
