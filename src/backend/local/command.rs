//! One shell command: `bash -c` in the session's working directory, with its
//! output captured and capped, and its process tree interrupted then killed
//! when the call's time runs out or the request is cancelled.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::interpreter::{INTERRUPT_GRACE, signal_name};
use super::launcher::{self, LaunchSpec};
use crate::backend::{CallControl, LimitHit};
use crate::error::Error;
use crate::output::OutputCollector;

/// How long output is still read after the shell exits, for processes it
/// left running in the background that still hold the pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

pub struct CommandOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub limit: Option<LimitHit>,
    pub duration: Duration,
}

/// Where and how a command runs.
pub struct Shell<'a> {
    pub bash: &'a Path,
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    pub sandbox: Option<&'a super::sandbox::Sandbox>,
}

/// Runs `command`; `on_start` learns the process group id (so the session
/// can kill what the command leaves behind when it stops).
pub async fn run(
    shell: Shell<'_>,
    command: &str,
    ctl: &CallControl,
    out: &mut OutputCollector,
    err: &mut OutputCollector,
    on_start: impl FnOnce(i32),
) -> Result<CommandOutcome, Error> {
    let started = Instant::now();
    let mut launched = launcher::launch(LaunchSpec {
        program: shell.bash,
        args: vec!["-c".into(), command.into()],
        cwd: shell.cwd,
        env: shell.env,
        control_channel: false,
        sandbox: shell.sandbox,
    })
    .map_err(|e| Error::backend(format!("could not start {}: {e}", shell.bash.display())))?;
    let pgid = launched.pid;
    on_start(pgid);

    let mut buf_out = vec![0u8; 64 * 1024];
    let mut buf_err = vec![0u8; 64 * 1024];
    let mut eof_out = false;
    let mut eof_err = false;
    let mut status = None;
    let deadline = tokio::time::Instant::now() + ctl.timeout;
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    let mut interrupted: Option<(&'static str, String)> = None;
    let mut killed = false;
    let mut cancelled_seen = false;

    while status.is_none() || !(eof_out && eof_err) {
        tokio::select! {
            r = launched.stdout.read(&mut buf_out), if !eof_out => match r {
                Ok(0) | Err(_) => eof_out = true,
                Ok(n) => out.push(&buf_out[..n]),
            },
            r = launched.stderr.read(&mut buf_err), if !eof_err => match r {
                Ok(0) | Err(_) => eof_err = true,
                Ok(n) => err.push(&buf_err[..n]),
            },
            s = launched.child.wait(), if status.is_none() => {
                status = Some(s);
                // Background processes may keep the pipes open: read what is
                // there for a moment, then stop waiting for them.
                sleep.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            },
            _ = &mut sleep => {
                if status.is_some() {
                    break;
                }
                if interrupted.is_some() {
                    launcher::signal_group(pgid, libc::SIGKILL);
                    killed = true;
                    sleep.as_mut().reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
                } else {
                    launcher::signal_group(pgid, libc::SIGINT);
                    interrupted = Some(("wall_time", format!("the command ran past its {}s timeout", ctl.timeout.as_secs())));
                    sleep.as_mut().reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
                }
            },
            _ = ctl.cancel.cancelled(), if !cancelled_seen && status.is_none() => {
                cancelled_seen = true;
                if interrupted.is_none() {
                    launcher::signal_group(pgid, libc::SIGINT);
                    interrupted = Some(("cancelled", "the request was cancelled".into()));
                    sleep.as_mut().reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
                }
            },
        }
    }

    let (exit_code, signal) = match status {
        Some(Ok(s)) => {
            use std::os::unix::process::ExitStatusExt;
            (s.code(), s.signal().map(signal_name))
        }
        Some(Err(e)) => return Err(Error::io("waiting for the command", e)),
        None => (None, None),
    };
    if interrupted.is_some() {
        // Whatever the interrupted command left behind goes too.
        launcher::signal_group(pgid, libc::SIGKILL);
    }
    let limit = interrupted.map(|(l, d)| LimitHit {
        limit: l.into(),
        action: if killed { "killed" } else { "interrupted" }.into(),
        state_lost: false,
        detail: if killed {
            format!(
                "{d}; it ignored SIGINT for {}s and its process group was killed",
                INTERRUPT_GRACE.as_secs()
            )
        } else {
            format!("{d}; SIGINT was sent to its process group")
        },
    });
    Ok(CommandOutcome {
        exit_code,
        signal,
        limit,
        duration: started.elapsed(),
    })
}
