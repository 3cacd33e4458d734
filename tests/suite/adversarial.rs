//! Attacks from code running in a session. Each test asserts that the attack
//! failed *and* that the server and a brand-new session still work. No test
//! sends traffic anywhere but the host's loopback. Destructive attacks (fork
//! bomb, memory bomb, disk fill, `kill -9 -1`) run only after a check inside
//! the sandbox shows the pid namespace and the limits in force.

use std::net::TcpListener;

use serde_json::{Value, json};

use super::harness::*;

/// Python prelude for raw system calls (x86_64 and aarch64 numbers).
const SYS: &str = r#"
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
NR = {'x86_64': dict(keyctl=250, bpf=321, io_uring_setup=425, finit_module=313, init_module=175, clone=56, ptrace=101),
      'aarch64': dict(keyctl=219, bpf=280, io_uring_setup=425, finit_module=273, init_module=105, clone=220, ptrace=117)}[platform.machine()]
def raw(name, *args):
    r = libc.syscall(NR[name], *args)
    return r, ctypes.get_errno()
"#;

/// Runs Python that prints exactly `blocked` when the attack failed as it
/// must, and asserts that it did.
async fn expect_blocked(s: &Server, code: &str) -> Value {
    let r = s.py(&format!("{SYS}\n{code}")).await;
    assert_eq!(r["stdout"], "blocked\n", "attack not blocked: {r}");
    r
}

/// Refuses to go on unless the sandbox is in force: pid namespace (our init
/// is pid 1) and the limits the destructive test relies on.
async fn assert_confined(s: &Server, nproc: u64, data: u64) {
    let r = s
        .py("import os, resource\nprint(open('/proc/1/cmdline','rb').read().split(b'\\0')[1].decode(), os.getpid() < 1000, resource.getrlimit(resource.RLIMIT_NPROC)[1], resource.getrlimit(resource.RLIMIT_DATA)[1])")
        .await;
    let want = format!("__sandbox-init True {nproc} {data}\n");
    assert_eq!(
        r["stdout"], want,
        "refusing to run a destructive test: the sandbox is not in force ({r})"
    );
}

#[tokio::test]
async fn planted_aws_credentials_in_home_are_unreadable() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let creds = home.path().join(".aws/credentials");
    std::fs::write(
        &creds,
        "[default]\naws_secret_access_key = PLANTED-SECRET-1\n",
    )
    .unwrap();
    let s = Server::start_with_env(&[], &[("HOME", home.path().to_str().unwrap())]).await;
    let code = format!(
        "found = []\nfor p in [os.path.expanduser('~/.aws/credentials'), {path:?}]:\n    try:\n        found.append(open(p).read())\n    except OSError:\n        pass\nprint('blocked' if not found else 'ESCAPED', end='\\n')",
        path = creds.to_str().unwrap()
    );
    expect_blocked(&s, &code).await;
    let r = s.sh(&format!("cat ~/.aws/credentials {} 2>&1; grep -rs PLANTED-SECRET /work /tmp /root /home || true", creds.display())).await;
    assert!(
        !r["stdout"].as_str().unwrap().contains("PLANTED-SECRET"),
        "{r}"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn server_environment_is_not_visible() {
    let s = Server::start_with_env(
        &[],
        &[
            ("SERVER_SECRET_TOKEN", "sk-PLANTED-2"),
            ("AWS_SECRET_ACCESS_KEY", "PLANTED-3"),
        ],
    )
    .await;
    let code = "import glob\nleaks = [k for k, v in os.environ.items() if 'PLANTED' in v]\nfor f in glob.glob('/proc/*/environ'):\n    try:\n        if b'PLANTED' in open(f, 'rb').read(): leaks.append(f)\n    except OSError:\n        pass\nprint('blocked' if not leaks else f'ESCAPED {leaks}')";
    expect_blocked(&s, code).await;
    let r = s
        .sh("env; cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n'")
        .await;
    assert!(!r["stdout"].as_str().unwrap().contains("PLANTED"), "{r}");
    s.assert_healthy().await;
}

#[tokio::test]
async fn server_process_is_invisible_in_proc() {
    let s = Server::start_with_env(&[], &[("SERVER_SECRET_TOKEN", "sk-PLANTED-4")]).await;
    let code = format!(
        "pid = {pid}\nok = True\nfor f in ['environ', 'cmdline', 'mem', 'root']:\n    try:\n        os.stat(f'/proc/{{pid}}/{{f}}'); ok = False\n    except OSError:\n        pass\nprint('blocked' if ok and len([p for p in os.listdir('/proc') if p.isdigit()]) < 50 else 'ESCAPED')",
        pid = s.pid
    );
    expect_blocked(&s, &code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn system_directories_are_read_only() {
    let s = Server::start().await;
    let code = "bad = []\nfor p in ['/etc/evil', '/usr/evil', '/usr/local/bin/evil', '/bin/evil', '/evil', '/proc/sys/kernel/hostname']:\n    try:\n        open(p, 'w').write('x'); bad.append(p)\n    except OSError:\n        pass\nprint('blocked' if not bad else f'ESCAPED {bad}')";
    expect_blocked(&s, code).await;
    for p in ["/etc/evil", "/usr/evil", "/usr/local/bin/evil", "/evil"] {
        assert!(
            !std::path::Path::new(p).exists(),
            "{p} was created on the host"
        );
    }
    s.assert_healthy().await;
}

#[tokio::test]
async fn server_state_directory_is_out_of_reach() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start_with_env(
        &[],
        &[(
            "CODE_INTERPRETER_WORKDIR_ROOT",
            root.path().to_str().unwrap(),
        )],
    )
    .await;
    // The session's own directory on the host, as the server made it.
    let mut entries: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().collect();
    if entries.is_empty() {
        s.py("1").await;
        entries = std::fs::read_dir(root.path()).unwrap().flatten().collect();
    }
    let code = format!(
        "bad = []\nfor p in [{root:?} + '/evil', {root:?} + '/x/evil']:\n    try:\n        open(p, 'w').write('x'); bad.append(p)\n    except OSError:\n        pass\nprint('blocked' if not bad and not os.path.exists({root:?}) else f'ESCAPED {{bad}}')",
        root = root.path().to_str().unwrap()
    );
    expect_blocked(&s, &code).await;
    assert!(!root.path().join("evil").exists());
    assert!(!entries.is_empty());
    s.assert_healthy().await;
}

#[tokio::test]
async fn another_sessions_files_are_out_of_reach() {
    let s = Server::start().await;
    let a = s.ok("start_session", json!({})).await["session_id"].clone();
    let b = s.ok("start_session", json!({})).await["session_id"].clone();
    s.ok(
        "write_files",
        json!({"session_id": a, "files": [{"path": "secret.txt", "text": "SESSION-A-PLANTED"}]}),
    )
    .await;
    let code = format!(
        "{SYS}\nimport glob\nhits = [p for p in glob.glob('/proc/*/root/work/*') + glob.glob('/work/*') + glob.glob('/tmp/*')]\nprint('blocked' if not any('secret' in h for h in hits) else f'ESCAPED {{hits}}')"
    );
    let r = s
        .ok("execute_code", json!({"session_id": b, "code": code}))
        .await;
    assert_eq!(r["stdout"], "blocked\n", "{r}");
    let r = s
        .ok(
            "execute_command",
            json!({"session_id": b, "command": "echo tampered > /work/secret.txt; ls /work"}),
        )
        .await;
    assert_eq!(
        r["stdout"], "secret.txt\n",
        "B wrote its own /work, not A's: {r}"
    );
    let r = s
        .ok(
            "read_files",
            json!({"session_id": a, "paths": ["secret.txt"]}),
        )
        .await;
    assert_eq!(r["files"][0]["text"], "SESSION-A-PLANTED");
    s.assert_healthy().await;
}

#[tokio::test]
async fn symlinks_made_by_code_cannot_lead_file_tools_outside() {
    let s = Server::start().await;
    s.py("import os\nfor name, target in [('pw', '/etc/passwd'), ('env', '/proc/self/environ'), ('up', '../..'), ('root', '/'), ('init', '/proc/1/root')]:\n    os.symlink(target, '/work/' + name)").await;
    let r = s
        .ok(
            "read_files",
            json!({"paths": ["pw", "env", "up/etc/passwd", "root/etc/passwd", "init/etc/passwd"]}),
        )
        .await;
    for f in r["files"].as_array().unwrap() {
        assert!(
            f.get("text").is_none() && f.get("base64").is_none(),
            "read through a symlink: {f}"
        );
        assert!(f["error"].as_str().unwrap().contains("outside"), "{f}");
    }
    let msg = s
        .err(
            "write_files",
            json!({"files": [{"path": "up/evil.txt", "text": "x"}]}),
        )
        .await;
    assert!(msg.contains("outside"), "{msg}");
    let msg = s.err("list_files", json!({"path": "root"})).await;
    assert!(msg.contains("outside"), "{msg}");
    s.assert_healthy().await;
}

#[tokio::test]
async fn tool_paths_cannot_escape() {
    let s = Server::start().await;
    for bad in ["../evil", "/etc/evil", "a/../../evil", "/proc/1/root/evil"] {
        let msg = s
            .err(
                "write_files",
                json!({"files": [{"path": bad, "text": "x"}]}),
            )
            .await;
        assert!(msg.contains("Nothing was changed"), "{bad}: {msg}");
    }
    let r = s
        .ok(
            "read_files",
            json!({"paths": ["../../../etc/passwd", "/etc/passwd", "/proc/self/environ"]}),
        )
        .await;
    for f in r["files"].as_array().unwrap() {
        assert!(f["error"].is_string() && f.get("text").is_none(), "{f}");
    }
    assert!(!std::path::Path::new("/etc/evil").exists());
    s.assert_healthy().await;
}

#[tokio::test]
async fn host_loopback_listener_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = Server::start().await;
    let code = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('ESCAPED')\nexcept OSError:\n    print('blocked')"
    );
    expect_blocked(&s, &code).await;
    let r = s
        .sh(&format!(
            "(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo ESCAPED || echo blocked"
        ))
        .await;
    assert_eq!(r["stdout"], "blocked\n");
    assert!(
        listener.accept().is_err(),
        "the listener received a connection"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn only_the_loopback_interface_exists() {
    let s = Server::start().await;
    let r = s
        .py("import socket\n[name for _, name in socket.if_nameindex()]")
        .await;
    assert_eq!(r["result"], "['lo']", "{r}");
    s.assert_healthy().await;
}

#[tokio::test]
async fn fork_bomb_is_contained() {
    let s = Server::start_with(&["--max-processes", "64"]).await;
    assert_confined(&s, 64, 2048 << 20).await;
    // Count the server's processes while the bomb runs: the session's limit,
    // not the machine, must stop it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let pid = s.pid;
        std::thread::spawn(move || {
            let mut most = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(descendants(pid).len());
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            most
        })
    };
    let r = s
        .ok("execute_command", json!({"command": "bomb() { bomb | bomb & }; bomb; sleep 2; echo done", "timeout_seconds": 6}))
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = sampler.join().unwrap();
    // 64 processes in the session, plus its init pair, the relays and the
    // interpreter: far below what an unbounded bomb reaches in 6 s.
    assert!(most <= 64 + 16, "the fork bomb grew to {most} processes");
    eprintln!("fork bomb peaked at {most} processes under the server");
    let notes = r["notes"].to_string() + &r["limit"].to_string();
    assert!(
        notes.contains("process limit"),
        "the process limit is not named: {r}"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn memory_bomb_is_contained_and_state_survives() {
    let s = Server::start_with(&["--memory-mb", "256"]).await;
    assert_confined(&s, 256, 256 << 20).await;
    s.py("kept = 'yes'").await;
    let r = s.py("hog = bytearray(1024 * 1024 * 1024)").await;
    assert_eq!(r["error"]["name"], "MemoryError", "{r}");
    assert_eq!(r["limit"]["limit"], "memory", "{r}");
    let r = s.py("kept").await;
    assert_eq!(r["result"], "'yes'");
    s.assert_healthy().await;
}

#[tokio::test]
async fn disk_fill_is_contained() {
    let s = Server::start_with(&["--disk-mb", "32"]).await;
    assert_confined(&s, 256, 2048 << 20).await;
    let r = s
        .sh("dd if=/dev/zero of=/work/fill bs=1M count=100 2>&1; df -m /work | tail -1")
        .await;
    let out = r["stdout"].as_str().unwrap();
    assert!(out.contains("No space left on device"), "{r}");
    assert!(
        r["notes"].to_string().contains("disk"),
        "the disk limit is not named: {r}"
    );
    // The session still works, and freeing space works too.
    let r = s.sh("rm /work/fill && echo freed").await;
    assert_eq!(r["stdout"], "freed\n");
    s.assert_healthy().await;
}

#[tokio::test]
async fn endless_output_is_capped() {
    let s = Server::start().await;
    let r = s
        .ok(
            "execute_command",
            json!({"command": "yes", "timeout_seconds": 2}),
        )
        .await;
    assert_eq!(r["limit"]["limit"], "wall_time");
    assert!(r["stdout"].as_str().unwrap().len() < 25_000);
    assert!(
        r["truncated"]["stdout_bytes"].as_u64().unwrap() > 1_000_000,
        "{}",
        r["truncated"]
    );
    let file = r["truncated"]["stdout_file"].as_str().unwrap();
    let r = s.sh(&format!("stat -c %s {file}")).await;
    let size: u64 = r["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(size <= 64 << 20, "spill file grew to {size}");
    s.assert_healthy().await;
}

#[tokio::test]
async fn sleeping_forever_is_interrupted() {
    let s = Server::start().await;
    let r = s
        .ok(
            "execute_code",
            json!({"code": "import time\ntime.sleep(10**9)", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(r["limit"]["limit"], "wall_time", "{r}");
    assert_eq!(r["limit"]["state_lost"], false);
    s.assert_healthy().await;
}

#[tokio::test]
async fn kill_all_from_inside_spares_the_server() {
    let s = Server::start().await;
    assert_confined(&s, 256, 2048 << 20).await;
    let r = s.sh("kill -9 -1; echo after").await;
    // The command itself may be among the killed; the server must not be.
    assert!(r.is_object());
    assert!(
        std::path::Path::new(&format!("/proc/{}", s.pid)).exists(),
        "the server died"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn ptrace_is_denied() {
    let s = Server::start().await;
    let code = "import subprocess\np = subprocess.Popen(['sleep', '30'])\nr, e = raw('ptrace', 16, p.pid, 0, 0)\nr2 = libc.ptrace(0, 0, 0, 0)\np.kill()\nprint('blocked' if r == -1 and e == 1 and r2 == -1 else f'ESCAPED {r} {e} {r2}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn mount_is_denied() {
    let s = Server::start().await;
    let code = "r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\ne = ctypes.get_errno()\nprint('blocked' if r == -1 and e == 1 else f'ESCAPED {r} {e}')";
    expect_blocked(&s, code).await;
    let r = s
        .sh("mount -t tmpfs none /tmp 2>&1 && echo ESCAPED || echo blocked")
        .await;
    assert!(r["stdout"].as_str().unwrap().ends_with("blocked\n"), "{r}");
    s.assert_healthy().await;
}

#[tokio::test]
async fn unshare_and_setns_are_denied() {
    let s = Server::start().await;
    let code = "bad = []\nfor flag in [0x10000000, 0x20000, 0x40000000, 0x20000000]:\n    if libc.unshare(flag) != -1: bad.append(flag)\nfd = os.open('/proc/self/ns/net', os.O_RDONLY)\nif libc.setns(fd, 0) != -1: bad.append('setns')\nprint('blocked' if not bad else f'ESCAPED {bad}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn clone_into_new_namespaces_is_denied() {
    let s = Server::start().await;
    // clone(CLONE_NEWUSER|SIGCHLD): were it to succeed, the child exits at once.
    let code = "r, e = raw('clone', 0x10000000 | 17, 0, 0, 0, 0)\nif r == 0: os._exit(0)\nprint('blocked' if r == -1 and e == 1 else f'ESCAPED {r} {e}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn rlimits_cannot_be_raised() {
    let s = Server::start().await;
    let code = "import resource\nbad = []\nfor res in [resource.RLIMIT_NPROC, resource.RLIMIT_DATA, resource.RLIMIT_FSIZE, resource.RLIMIT_CPU]:\n    soft, hard = resource.getrlimit(res)\n    try:\n        resource.setrlimit(res, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)); bad.append(res)\n    except (ValueError, OSError):\n        pass\n    if resource.getrlimit(res) != (soft, hard): bad.append(res)\nprint('blocked' if not bad else f'ESCAPED {bad}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn home_directories_are_hidden() {
    let s = Server::start().await;
    let code = "bad = [p for p in ['/home', '/root/.bashrc', '/root/.cargo', '/root/.ssh', '/root/.aws', '/etc/shadow', '/etc/pip.conf', '/etc/npmrc', '/etc/ssl/private'] if os.path.exists(p)]\nprint('blocked' if not bad else f'ESCAPED {bad}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn kernel_keyring_is_denied() {
    let s = Server::start().await;
    // KEYCTL_GET_KEYRING_ID of KEY_SPEC_USER_KEYRING.
    let code = "r, e = raw('keyctl', 0, ctypes.c_long(-4), 0)\nprint('blocked' if r == -1 and e == 1 else f'ESCAPED {r} {e}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn bpf_and_io_uring_are_denied() {
    let s = Server::start().await;
    let code = "params = ctypes.create_string_buffer(120)\nr1, e1 = raw('bpf', 0, 0, 0)\nr2, e2 = raw('io_uring_setup', 4, params)\nprint('blocked' if (r1, e1, r2, e2) == (-1, 1, -1, 1) else f'ESCAPED {r1} {e1} {r2} {e2}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn module_loading_is_denied() {
    let s = Server::start().await;
    let code = "r1, e1 = raw('finit_module', 0, b'', 0)\nr2, e2 = raw('init_module', 0, 0, b'')\nprint('blocked' if (r1, e1, r2, e2) == (-1, 1, -1, 1) else f'ESCAPED {r1} {e1} {r2} {e2}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn the_server_cannot_be_signalled() {
    let s = Server::start().await;
    let code = format!(
        "try:\n    os.kill({pid}, 9); print('ESCAPED')\nexcept ProcessLookupError:\n    print('blocked')",
        pid = s.pid
    );
    expect_blocked(&s, &code).await;
    assert!(std::path::Path::new(&format!("/proc/{}", s.pid)).exists());
    s.assert_healthy().await;
}

#[tokio::test]
async fn hostname_and_devices_are_off_limits() {
    let s = Server::start().await;
    let code = "import socket\nbad = []\ntry:\n    socket.sethostname('evil'); bad.append('hostname')\nexcept OSError:\n    pass\nbad += [d for d in ['/dev/sda', '/dev/vda', '/dev/mem', '/dev/kmsg', '/dev/kvm'] if os.path.exists(d)]\nprint('blocked' if not bad and socket.gethostname() == 'sandbox' else f'ESCAPED {bad}')";
    expect_blocked(&s, code).await;
    s.assert_healthy().await;
}

#[tokio::test]
async fn setuid_binaries_grant_nothing() {
    let s = Server::start().await;
    // no_new_privs: a setuid program runs with the caller's ids.
    let r = s.sh("for b in /usr/bin/su /usr/bin/passwd /usr/bin/mount; do [ -u $b ] && echo has-setuid; done; id -u; (su -c id root </dev/null 2>&1 || true) | grep -c 'uid=0' || true").await;
    let out = r["stdout"].as_str().unwrap();
    assert!(out.contains("1000\n"), "{r}");
    assert!(out.trim_end().ends_with('0'), "su gave root: {r}");
    s.assert_healthy().await;
}
