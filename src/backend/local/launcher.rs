//! The one place every process of a local session is started.
//!
//! Interpreters and shell commands alike come through [`launch`], so the
//! isolation of the sandbox wraps all of them here and nowhere else (see
//! [`super::sandbox`]). Each
//! process leads its own process group (so a timeout can signal the whole
//! tree), dies with the server (`PR_SET_PDEATHSIG`), starts from a minimal
//! environment built by the caller, has `/dev/null` as stdin, and never
//! inherits the server's stdout, which is the MCP transport.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

pub struct LaunchSpec<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub cwd: &'a Path,
    /// The whole environment of the process; nothing is inherited.
    pub env: &'a [(String, String)],
    /// Give the process a request pipe on fd 3 and a response pipe on fd 4
    /// (the interpreter drivers' control channel).
    pub control_channel: bool,
    /// Run the process inside this session sandbox (`cwd` is then ignored:
    /// sandboxed processes start in the session's working directory).
    pub sandbox: Option<&'a super::sandbox::Sandbox>,
}

pub struct Launched {
    pub child: Child,
    /// Pid of the process, which is also its process group id.
    pub pid: i32,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Server ends of the control channel: (requests to fd 3, responses from fd 4).
    pub control: Option<(pipe::Sender, pipe::Receiver)>,
}

fn pipe_cloexec() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds are new and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn launch(spec: LaunchSpec<'_>) -> std::io::Result<Launched> {
    let (program, args, cwd) = match spec.sandbox {
        Some(sb) => {
            let (p, a) = sb.wrap(spec.program, spec.args);
            (p, a, Path::new("/"))
        }
        None => (spec.program.to_path_buf(), spec.args, spec.cwd),
    };
    let mut cmd = Command::new(program);
    cmd.args(&args)
        .current_dir(cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    let mut control = None;
    let mut child_ends: Option<(OwnedFd, OwnedFd)> = None;
    if spec.control_channel {
        let (req_r, req_w) = pipe_cloexec()?;
        let (resp_r, resp_w) = pipe_cloexec()?;
        control = Some((req_w, resp_r));
        child_ends = Some((req_r, resp_w));
    }
    let fds = child_ends
        .as_ref()
        .map(|(r, w)| (r.as_raw_fd(), w.as_raw_fd()));

    // SAFETY: the closure only makes async-signal-safe syscalls (setpgid,
    // prctl, fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some((req_r, resp_w)) = fds {
                // Move both ends above 10 first so that placing them on 3 and
                // 4 cannot clobber one with the other; dup2 clears CLOEXEC.
                let a = libc::fcntl(req_r, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(resp_w, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }

    // fork can fail with EAGAIN or ENOMEM while the machine is briefly short
    // of processes or memory (another session's fork bomb hitting its own
    // limit, say): retry a few times before giving up.
    let mut delay = std::time::Duration::from_millis(20);
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOMEM))
                    && delay < std::time::Duration::from_secs(1) =>
            {
                tracing::debug!(error = %e, "spawn failed transiently; retrying");
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    };
    drop(child_ends);
    let pid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| std::io::Error::other("the child exited before it could be tracked"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("child stdout missing"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| std::io::Error::other("child stderr missing"))?;
    let control = match control {
        Some((w, r)) => Some((
            pipe::Sender::from_owned_fd(w)?,
            pipe::Receiver::from_owned_fd(r)?,
        )),
        None => None,
    };
    Ok(Launched {
        child,
        pid,
        stdout,
        stderr,
        control,
    })
}

/// Sends `sig` to the process group `pgid`.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill with a negative pid signals a process group we created.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// Finds `name` on `PATH` (or returns it as is when it contains a slash).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
