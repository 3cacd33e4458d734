//! `__sandbox-init`: builds a session's sandbox and stays as its pid 1.
//!
//! Runs in a fresh process (this binary re-executed), single-threaded, so it
//! may create namespaces. It reports on stdout, one line each: `pid N` (the
//! inner init as the server sees it), then `ready`, or `error <layer>: <why
//! and the fix>`.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{INNER_GID, INNER_UID, InitSpec, SYSTEM_DIRS, WORK_DIR};

/// Files of /etc a program may need, copied into the sandbox (nothing else of
/// /etc is visible: no shadow, no package-manager credentials).
const ETC_FILES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "protocols",
    "services",
    "networks",
    "localtime",
    "timezone",
    "mime.types",
    "os-release",
    "debian_version",
    "inputrc",
    "magic",
    "magic.mime",
    "resolv.conf",
    "shells",
];
/// Directories of /etc made visible read-only.
const ETC_DIRS: &[&str] = &[
    "ld.so.conf.d",
    "ssl/certs",
    "ca-certificates",
    "alternatives",
    "fonts",
    "python3",
    "terminfo",
];

const PASSWD: &str = "root:x:0:0:root:/:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/work:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";

/// A failed layer: which one, and what went wrong with what to do.
pub struct LayerError {
    pub layer: &'static str,
    pub message: String,
}

fn fail(layer: &'static str, message: impl Into<String>) -> LayerError {
    LayerError {
        layer,
        message: message.into(),
    }
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Entry point of `__sandbox-init`. Never returns.
pub fn main(spec_json: &str) -> ! {
    let spec: InitSpec = match serde_json::from_str(spec_json) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("error spec: {e}"));
            std::process::exit(2);
        }
    };
    match outer(&spec) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            say(&format!("error {}: {}", e.layer, e.message));
            std::process::exit(1);
        }
    }
}

/// Explains why a user namespace could not be created.
fn userns_hint(e: &std::io::Error) -> String {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let mut hint = format!("unshare(CLONE_NEWUSER) failed: {e}. ");
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        hint.push_str("Unprivileged user namespaces are disabled: `sysctl -w kernel.unprivileged_userns_clone=1`. ");
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        hint.push_str("AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+): `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile allowing `userns` for this binary. ");
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        hint.push_str(
            "user.max_user_namespaces is 0: `sysctl -w user.max_user_namespaces=15000`. ",
        );
    }
    hint.push_str("In a container, allow namespaces (e.g. Docker `--security-opt seccomp=unconfined`, or run the server outside the container).");
    hint
}

/// The outer half: new user namespace and the others, then fork into the new
/// pid namespace and wait for the inner init (which never exits on its own).
fn outer(spec: &InitSpec) -> Result<i32, LayerError> {
    // SAFETY: geteuid/getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if (euid, egid) == (spec.outer_uid, spec.outer_gid) {
        // An ordinary user maps the sandbox's uid to itself.
        // SAFETY: plain syscall in a single-threaded process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(fail("user namespace", userns_hint(&errno())));
        }
        write_maps("self", spec)?;
    } else if let Some(code) = privileged_userns(spec)? {
        // The privileged parent is done: it mirrors the sandbox's exit.
        return Ok(code);
    }

    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if !spec.network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: plain syscall.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(fail(
            "mount/pid/network/ipc/uts namespaces",
            format!("unshare failed: {}", errno()),
        ));
    }
    // SAFETY: the process is single-threaded, so fork is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(fail("pid namespace", format!("fork failed: {}", errno())));
    }
    if pid == 0 {
        inner(spec);
    }
    say(&format!("pid {pid}"));
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    })
}

/// Writes the uid and gid maps of the user namespace of process `pid`
/// (`self` or a pid): the sandbox's uid 1000 is `spec.outer_uid` outside.
/// A privileged writer also maps root to root, for the init alone: it builds
/// the file system view as root (reaching root-only directories such as a
/// pyenv under /root), while every session process runs as uid 1000.
fn write_maps(pid: &str, spec: &InitSpec) -> Result<(), LayerError> {
    let write = |name: &str, data: String| {
        let path = format!("/proc/{pid}/{name}");
        fs::write(&path, data).map_err(|e| fail("user namespace", format!("writing {path}: {e}")))
    };
    let root_too = pid != "self";
    let map = |outer: u32, inner: u32| {
        if root_too {
            format!("0 0 1\n{inner} {outer} 1\n")
        } else {
            format!("{inner} {outer} 1")
        }
    };
    write("setgroups", "deny".into())?;
    write("uid_map", map(spec.outer_uid, INNER_UID))?;
    write("gid_map", map(spec.outer_gid, INNER_GID))
}

/// When the server runs as root, session code must not be root outside: the
/// kernel does not enforce RLIMIT_NPROC for root's user, and root owns files
/// a sandbox could otherwise read. Mapping to another uid needs CAP_SETUID
/// in the parent namespace, which a process loses by unsharing; so this
/// process forks, the child unshares and waits, and this parent writes the
/// child's maps. Returns None in the child (which goes on to build the
/// sandbox), and the child's exit status in the parent.
fn privileged_userns(spec: &InitSpec) -> Result<Option<i32>, LayerError> {
    let mut ready = [0i32; 2];
    let mut go = [0i32; 2];
    // SAFETY: setgroups with an empty list; pipe() fills the arrays; fork in
    // a single-threaded process.
    let pid = unsafe {
        // Root's supplementary groups must not come along into the sandbox.
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(fail(
                "user namespace",
                format!("dropping supplementary groups: {}", errno()),
            ));
        }
        if libc::pipe(ready.as_mut_ptr()) != 0 || libc::pipe(go.as_mut_ptr()) != 0 {
            return Err(fail("user namespace", format!("pipe: {}", errno())));
        }
        libc::fork()
    };
    if pid < 0 {
        return Err(fail("user namespace", format!("fork: {}", errno())));
    }
    let mut byte = [0u8; 1];
    if pid == 0 {
        // SAFETY: pipe fds of our own; prctl with constant arguments.
        unsafe {
            libc::close(ready[0]);
            libc::close(go[1]);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(fail("user namespace", userns_hint(&errno())));
            }
            libc::write(ready[1], b"u".as_ptr().cast(), 1);
            libc::close(ready[1]);
            if libc::read(go[0], byte.as_mut_ptr().cast(), 1) != 1 {
                return Err(fail(
                    "user namespace",
                    "the parent did not write the uid map",
                ));
            }
            libc::close(go[0]);
        }
        return Ok(None);
    }
    // SAFETY: pipe fds of our own.
    let child_ready = unsafe {
        libc::close(ready[1]);
        libc::close(go[0]);
        libc::read(ready[0], byte.as_mut_ptr().cast(), 1) == 1
    };
    if child_ready {
        write_maps(&pid.to_string(), spec)?;
        // SAFETY: writing one byte to our pipe.
        unsafe { libc::write(go[1], b"g".as_ptr().cast(), 1) };
    }
    // SAFETY: closing our fd and waiting for our own child.
    let mut status = 0;
    unsafe {
        libc::close(go[1]);
        libc::waitpid(pid, &mut status, 0);
    }
    Ok(Some(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    }))
}

/// The inner init: pid 1 of the session. Builds the file system view, then
/// reaps orphans until it is killed.
fn inner(spec: &InitSpec) -> ! {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if let Err(e) = build_root(spec) {
        say(&format!("error {}: {}", e.layer, e.message));
        std::process::exit(1);
    }
    let host = b"sandbox";
    // SAFETY: valid buffer and length.
    unsafe { libc::sethostname(host.as_ptr().cast(), host.len()) };
    if !spec.network
        && let Err(e) = loopback_up()
    {
        say(&format!(
            "error network namespace: bringing up lo failed: {e}"
        ));
        std::process::exit(1);
    }
    say("ready");
    reap_forever()
}

fn reap_forever() -> ! {
    // SAFETY: signal mask manipulation and waits on our own children; the
    // standard streams are pointed at /dev/null so the init holds no pipe
    // of the server's.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info);
        }
    }
}

fn cstr(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::io::Result<()> {
    let src = src.map(cstr);
    let dst = cstr(dst);
    let fstype = fstype.map(|s| CString::new(s).unwrap_or_default());
    let data = data.map(|s| CString::new(s).unwrap_or_default());
    // SAFETY: valid C strings or null pointers.
    let r = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            dst.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// Bind-mounts `src` on `dst` read-only, keeping the flags the kernel locks
/// for mounts inherited into a user namespace (nosuid, nodev, noexec).
fn bind_ro(src: &Path, dst: &Path) -> Result<(), LayerError> {
    let layer = "read-only file system view";
    mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(|e| fail(layer, format!("bind {}: {e}", src.display())))?;
    // SAFETY: statvfs into a zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = cstr(dst);
    unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    mount(None, dst, None, flags, None)
        .map_err(|e| fail(layer, format!("make {} read-only: {e}", dst.display())))
}

fn mkdir_p(p: &Path, mode: u32) -> Result<(), LayerError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .map_err(|e| {
            fail(
                "read-only file system view",
                format!("mkdir {}: {e}", p.display()),
            )
        })
}

fn inside(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Makes `host` (a system directory or a symlink to one) visible in `root`.
fn expose(root: &Path, host: &Path) -> Result<(), LayerError> {
    let Ok(meta) = fs::symlink_metadata(host) else {
        return Ok(());
    };
    let target = inside(root, host);
    if meta.file_type().is_symlink() {
        if let Ok(link) = fs::read_link(host) {
            if let Some(parent) = target.parent() {
                mkdir_p(parent, 0o755)?;
            }
            let _ = std::os::unix::fs::symlink(link, &target);
        }
        return Ok(());
    }
    if meta.is_dir() {
        mkdir_p(&target, 0o755)?;
        return bind_ro(host, &target);
    }
    Ok(())
}

/// Copies small /etc files (or recreates their symlinks into /usr).
fn copy_etc(root: &Path) -> Result<(), LayerError> {
    let etc = root.join("etc");
    mkdir_p(&etc, 0o755)?;
    for name in ETC_FILES {
        let host = Path::new("/etc").join(name);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        let dst = etc.join(name);
        if meta.file_type().is_symlink()
            && let Ok(link) = fs::read_link(&host)
        {
            let resolved = host.parent().unwrap_or(Path::new("/")).join(&link);
            if SYSTEM_DIRS
                .iter()
                .any(|d| resolved.starts_with(d) || link.to_string_lossy().contains("usr/"))
            {
                let _ = std::os::unix::fs::symlink(&link, &dst);
                continue;
            }
        }
        // A regular file, or a symlink elsewhere (resolv.conf into /run): copy the content.
        if let Ok(data) = fs::read(&host)
            && data.len() <= 1 << 20
        {
            let _ = fs::write(&dst, data);
        }
    }
    for (name, content) in [
        ("passwd", PASSWD),
        ("group", GROUP),
        ("hostname", "sandbox\n"),
    ] {
        fs::write(etc.join(name), content).map_err(|e| {
            fail(
                "read-only file system view",
                format!("writing /etc/{name}: {e}"),
            )
        })?;
    }
    for name in ETC_DIRS {
        let host = Path::new("/etc").join(name);
        if host.is_dir() {
            let dst = etc.join(name);
            mkdir_p(&dst, 0o755)?;
            bind_ro(&host, &dst)?;
        }
    }
    Ok(())
}

fn build_root(spec: &InitSpec) -> Result<(), LayerError> {
    let layer = "read-only file system view";
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
    .map_err(|e| fail("mount namespace", format!("making mounts private: {e}")))?;
    let root = spec.root_mount.as_path();
    mount(
        Some(Path::new("sandbox")),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=16m,mode=0755"),
    )
    .map_err(|e| {
        fail(
            "mount namespace",
            format!("tmpfs root at {}: {e}", root.display()),
        )
    })?;

    for d in SYSTEM_DIRS {
        expose(root, Path::new(d))?;
    }
    copy_etc(root)?;

    // The session's own storage: one size-limited tmpfs for /work and /tmp.
    let data = root.join(".session");
    mkdir_p(&data, 0o755)?;
    let opts = format!(
        "size={},mode=0755,uid={INNER_UID},gid={INNER_GID}",
        spec.disk_bytes.max(1 << 20)
    );
    mount(
        Some(Path::new("session")),
        &data,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&opts),
    )
    .map_err(|e| fail("session storage", format!("tmpfs for /work and /tmp: {e}")))?;
    for (sub, at, mode) in [("work", WORK_DIR, 0o755), ("tmp", "/tmp", 0o1777)] {
        let src = data.join(sub);
        mkdir_p(&src, 0o755)?;
        let _ = fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(mode));
        // The init may be the namespace's root; the storage is the session user's.
        std::os::unix::fs::chown(&src, Some(INNER_UID), Some(INNER_GID))
            .map_err(|e| fail("session storage", format!("chown {at}: {e}")))?;
        let dst = inside(root, Path::new(at));
        mkdir_p(&dst, 0o755)?;
        mount(Some(&src), &dst, None, libc::MS_BIND, None)
            .map_err(|e| fail("session storage", format!("bind {at}: {e}")))?;
    }
    // SAFETY: detach the staging mount; the binds keep the tmpfs alive.
    unsafe { libc::umount2(cstr(&data).as_ptr(), libc::MNT_DETACH) };
    let _ = fs::remove_dir(&data);

    // Interpreter installations, after /work and /tmp so that one living
    // under /tmp on the host (a scratch venv) is not hidden by the private
    // /tmp; one under the host's /work is mounted elsewhere (see ro_mounts).
    for (p, at) in super::ro_mounts(&spec.ro_paths) {
        if p.is_dir() && !super::is_system_path(&p) {
            let dst = inside(root, &at);
            mkdir_p(&dst, 0o755)?;
            bind_ro(&p, &dst)?;
        }
    }

    // /dev: a few safe devices, shm, and the usual symlinks.
    let dev = root.join("dev");
    mkdir_p(&dev, 0o755)?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let dst = dev.join(name);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o666)
            .open(&dst)
            .map_err(|e| fail(layer, format!("/dev/{name}: {e}")))?;
        mount(
            Some(&Path::new("/dev").join(name)),
            &dst,
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| fail(layer, format!("bind /dev/{name}: {e}")))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(target, dev.join(name));
    }
    let shm = dev.join("shm");
    mkdir_p(&shm, 0o1777)?;
    mount(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=64m,mode=1777"),
    )
    .map_err(|e| fail(layer, format!("/dev/shm: {e}")))?;

    let proc_dir = root.join("proc");
    mkdir_p(&proc_dir, 0o555)?;
    mount(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
    .map_err(|e| {
        fail(
            "pid namespace",
            format!("mounting /proc for the session: {e}"),
        )
    })?;

    // Switch to the new root and drop every trace of the host's.
    let old = root.join(".oldroot");
    mkdir_p(&old, 0o700)?;
    let c_root = cstr(root);
    let c_old = cstr(&old);
    // SAFETY: plain syscalls with valid paths.
    unsafe {
        if libc::syscall(libc::SYS_pivot_root, c_root.as_ptr(), c_old.as_ptr()) != 0 {
            return Err(fail("mount namespace", format!("pivot_root: {}", errno())));
        }
        libc::chdir(c"/".as_ptr());
        if libc::umount2(c"/.oldroot".as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(fail(
                "mount namespace",
                format!("detaching the host root: {}", errno()),
            ));
        }
        libc::rmdir(c"/.oldroot".as_ptr());
    }
    // The root itself becomes read-only: only /work, /tmp and /dev/shm take writes.
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )
    .map_err(|e| fail(layer, format!("remounting / read-only: {e}")))?;
    Ok(())
}

/// Brings up `lo` in the new network namespace, so servers a session starts
/// on localhost can be reached from its other processes.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: an ioctl on a socket we own, with a zeroed ifreq naming "lo".
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) < 0 {
            let e = errno();
            libc::close(s);
            return Err(e);
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let r = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        let e = errno();
        libc::close(s);
        if r < 0 { Err(e) } else { Ok(()) }
    }
}
