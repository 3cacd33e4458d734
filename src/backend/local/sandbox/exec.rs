//! `__sandbox-exec`: starts one program inside a session's sandbox.
//!
//! Joins the session init's namespaces (`setns` on its pidfd), forks so the
//! program is inside the session's pid namespace, and in the child applies
//! the rlimits, `no_new_privs`, Landlock and the seccomp filter before
//! `execvp`. The parent stays as a relay (re-executed as `__sandbox-wait`,
//! to shed its memory): it exits with the program's status (or dies of the
//! same signal), so the server sees the program's outcome.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use super::{EXEC_FAILED, ExecSpec, INNER_GID, INNER_UID, WORK_DIR, seccomp};

fn die(layer: &str, msg: impl std::fmt::Display) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "sandbox: {layer}: {msg}");
    std::process::exit(EXEC_FAILED)
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Entry point of `__sandbox-exec <spec> -- program args...`. Never returns.
pub fn main(args: &[OsString]) -> ! {
    let (spec, cmd) = match args {
        [spec, sep, cmd @ ..] if sep == "--" && !cmd.is_empty() => (spec, cmd),
        _ => die("usage", "__sandbox-exec <spec> -- program [args...]"),
    };
    let spec: ExecSpec = match serde_json::from_slice(spec.as_bytes()) {
        Ok(s) => s,
        Err(e) => die("spec", e),
    };
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();

    // This binary, to re-execute the relay as a small waiting process once
    // the program is started (its path is not visible after setns).
    let exe = CString::new("/proc/self/exe").unwrap_or_default();
    // SAFETY: open with O_PATH on a valid C string; -1 is handled by the caller.
    let exe_fd = unsafe { libc::open(exe.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };

    // SAFETY: pidfd_open on a pid; the fd is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, spec.init_pid, 0) } as i32;
    if pidfd < 0 {
        die(
            "session",
            format!(
                "the session's sandbox (pid {}) is gone: {}",
                spec.init_pid,
                errno()
            ),
        );
    }
    let mut ns = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if !spec.network {
        ns |= libc::CLONE_NEWNET;
    }
    // Supplementary groups cannot be changed inside the sandbox (setgroups is
    // denied there); drop them while we still may (as root, the server's
    // groups would otherwise come along).
    // SAFETY: geteuid has no preconditions; setgroups with an empty list.
    if unsafe { libc::geteuid() } == 0 && unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        die(
            "user namespace",
            format!("dropping supplementary groups: {}", errno()),
        );
    }
    // SAFETY: setns on a valid pidfd in a single-threaded process.
    if unsafe { libc::setns(pidfd, ns) } != 0 {
        die(
            "namespaces",
            format!("joining the session's namespaces failed: {}", errno()),
        );
    }
    // Become the sandbox's user (uid 1000 inside; an unprivileged uid outside).
    // SAFETY: setresgid/setresuid with ids mapped in the joined namespace.
    unsafe {
        if libc::setresgid(INNER_GID, INNER_GID, INNER_GID) != 0
            || libc::setresuid(INNER_UID, INNER_UID, INNER_UID) != 0
        {
            die(
                "user namespace",
                format!("switching to the sandbox user: {}", errno()),
            );
        }
    }
    // SAFETY: closing our own fd.
    unsafe { libc::close(pidfd) };
    let work = CString::new(WORK_DIR).unwrap_or_default();
    // SAFETY: chdir to a valid C string.
    if unsafe { libc::chdir(work.as_ptr()) } != 0 {
        die("mount namespace", format!("chdir {WORK_DIR}: {}", errno()));
    }
    let filters = match seccomp::filters() {
        Ok(f) => f,
        Err(e) => die("seccomp", e),
    };
    let landlock = landlock_ruleset();

    // Ignored by the relay from before the fork, so that no window is left
    // where a SIGINT to the group would kill it (the child restores it).
    // SAFETY: setting a signal disposition.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    // SAFETY: the process is single-threaded; fork is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        die("pid namespace", format!("fork failed: {}", errno()));
    }
    if pid == 0 {
        child(&spec, &argv, landlock, &filters);
    }
    lean_relay(exe_fd, pid)
}

/// Becomes the relay in a fresh image of this binary (`__sandbox-wait`):
/// the pages this process touched to set the program up (the spec, the
/// seccomp compiler, Landlock) are given back, which keeps each session
/// process's relay about 1.7 MB smaller. The program stays this process's
/// child across the exec. Where the exec fails, this process relays itself.
fn lean_relay(exe_fd: i32, pid: i32) -> ! {
    if exe_fd >= 0 {
        let args = [
            CString::new("code-interpreter-mcp").unwrap_or_default(),
            CString::new("__sandbox-wait").unwrap_or_default(),
            CString::new(pid.to_string()).unwrap_or_default(),
        ];
        let argv: [*const libc::c_char; 4] = [
            args[0].as_ptr(),
            args[1].as_ptr(),
            args[2].as_ptr(),
            std::ptr::null(),
        ];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let empty = CString::default();
        // SAFETY: execveat on our own O_PATH fd with null-terminated argv and
        // envp; it returns only on failure.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                exe_fd,
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
    }
    relay(pid)
}

/// Entry point of `__sandbox-wait <pid>`: the relay after [`lean_relay`].
pub fn wait_main(args: &[OsString]) -> ! {
    match args.first().and_then(|a| a.to_str()?.parse::<i32>().ok()) {
        Some(pid) if pid > 0 => relay(pid),
        _ => die("usage", "__sandbox-wait <pid>"),
    }
}

/// Waits for the program and mirrors how it ended. SIGINT, which reaches
/// the whole process group, is ignored (since before the fork, and across
/// the exec): the program decides.
fn relay(pid: i32) -> ! {
    // SAFETY: signal dispositions and waits on our own child.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                std::process::exit(EXEC_FAILED);
            }
        }
        if libc::WIFEXITED(status) {
            std::process::exit(libc::WEXITSTATUS(status));
        }
        let sig = libc::WTERMSIG(status);
        libc::signal(sig, libc::SIG_DFL);
        libc::kill(libc::getpid(), sig);
        std::process::exit(128 + sig);
    }
}

fn set_rlimit(res: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(res, &lim) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn child(
    spec: &ExecSpec,
    argv: &[CString],
    landlock: Option<landlock::RulesetCreated>,
    filters: &[seccompiler::BpfProgram],
) -> ! {
    // SAFETY: prctl/signal with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let l = &spec.limits;
    for (name, res, value) in [
        ("memory", libc::RLIMIT_DATA, l.memory_bytes),
        ("processes", libc::RLIMIT_NPROC, l.max_processes),
        ("file size", libc::RLIMIT_FSIZE, l.max_file_bytes),
        ("cpu time", libc::RLIMIT_CPU, l.cpu_seconds),
        ("core dumps", libc::RLIMIT_CORE, 0),
    ] {
        if let Err(e) = set_rlimit(res, value) {
            die("resource limits", format!("{name}: {e}"));
        }
    }
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        die("no_new_privs", errno());
    }
    if let Some(ruleset) = landlock
        && let Err(e) = ruleset.restrict_self()
    {
        die("landlock", e);
    }
    if let Err(e) = seccomp::apply(filters) {
        die("seccomp", e);
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: a null-terminated argv of valid C strings.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    die(
        "exec",
        format!("{}: {}", argv[0].to_string_lossy(), errno()),
    )
}

/// Landlock, where the kernel has it: read and execute anywhere in the
/// sandbox's view, write only in the session's storage and a few devices.
/// Returns None when the kernel has no Landlock (the other layers still hold).
fn landlock_ruleset() -> Option<landlock::RulesetCreated> {
    use landlock::{
        ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, path_beneath_rules,
    };
    let abi = ABI::V5;
    let all = AccessFs::from_all(abi);
    let read = AccessFs::from_read(abi);
    let ruleset = Ruleset::default().handle_access(all).ok()?.create().ok()?;
    ruleset
        .add_rules(path_beneath_rules(["/"], read))
        .ok()?
        .add_rules(path_beneath_rules([WORK_DIR, "/tmp", "/dev/shm"], all))
        .ok()?
        .add_rules(path_beneath_rules(
            ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"],
            all,
        ))
        .ok()
}

/// The Landlock ABI the kernel supports (0: none), for `doctor`.
pub fn landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset with the version flag only queries.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        ) as i32
    }
    .max(0)
}
