//! A long-lived interpreter process (Python or Node) driven over a control
//! channel, keeping its state between calls.
//!
//! The driver scripts are embedded in the binary and passed with `-c`/`-e`.
//! Requests go to the driver's fd 3 and responses come back on fd 4, one JSON
//! object per line. User output flows through the process's real stdout and
//! stderr; after each call the driver writes a sentinel to both, so the bytes
//! before it are exactly that call's output (even output of subprocesses).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};

use super::launcher::{self, LaunchSpec};
use crate::backend::{CallControl, CodeRequest, ExecError, Image, LimitHit};
use crate::error::Error;
use crate::output::OutputCollector;

pub const PYTHON_DRIVER: &str = include_str!("drivers/python_driver.py");
pub const NODE_DRIVER: &str = include_str!("drivers/node_driver.js");

/// How long an interrupted call may take to stop before its process is killed.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(3);
/// How long a driver may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Python,
    Node,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Node => "node",
        }
    }
}

#[derive(Serialize)]
struct DriverRequest<'a> {
    id: u64,
    code: &'a str,
    language: &'a str,
    clear_context: bool,
}

#[derive(Deserialize)]
struct DriverReady {
    ready: bool,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct DriverImage {
    mime_type: String,
    data: String,
}

#[derive(Deserialize)]
struct DriverResponse {
    id: Option<u64>,
    ok: bool,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    error: Option<ExecError>,
    #[serde(default)]
    images: Vec<DriverImage>,
}

/// What one call produced, before it is shaped for the caller.
pub struct RunOutcome {
    pub result: Option<String>,
    pub error: Option<ExecError>,
    pub images: Vec<Image>,
    pub limit: Option<LimitHit>,
    /// The process is gone (killed or crashed): its state is lost.
    pub dead: bool,
    pub duration: Duration,
}

/// Finds the sentinel in a stream and splits the bytes around it.
struct SentinelScanner {
    marker: Vec<u8>,
    pending: Vec<u8>,
}

impl SentinelScanner {
    fn new(marker: Vec<u8>) -> Self {
        Self {
            marker,
            pending: Vec::new(),
        }
    }

    /// Feeds `chunk`; output before the marker goes to `out`. Returns the
    /// bytes after the marker once it is found.
    fn feed(&mut self, chunk: &[u8], out: &mut OutputCollector) -> Option<Vec<u8>> {
        self.pending.extend_from_slice(chunk);
        if let Some(pos) = find(&self.pending, &self.marker) {
            out.push(&self.pending[..pos]);
            let rest = self.pending[pos + self.marker.len()..].to_vec();
            self.pending.clear();
            return Some(rest);
        }
        // Keep a tail that could be the start of the marker.
        let keep = (self.marker.len() - 1).min(self.pending.len());
        let emit = self.pending.len() - keep;
        out.push(&self.pending[..emit]);
        self.pending.drain(..emit);
        None
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub struct Interpreter {
    pub runtime: Runtime,
    pub version: String,
    child: Child,
    pid: i32,
    requests: pipe::Sender,
    responses: BufReader<pipe::Receiver>,
    stdout: ChildStdout,
    stderr: ChildStderr,
    token: String,
    next_id: u64,
    /// Output read after a sentinel: it belongs to the next call.
    carry_out: Vec<u8>,
    carry_err: Vec<u8>,
}

impl Interpreter {
    pub async fn start(
        runtime: Runtime,
        program: &Path,
        cwd: &Path,
        env: &[(String, String)],
        sandbox: Option<&super::sandbox::Sandbox>,
    ) -> Result<Self, Error> {
        let token = crate::ids::random_token(24);
        let mut env = env.to_vec();
        env.push(("CI_DRIVER_SENTINEL".into(), token.clone()));
        let args = match runtime {
            Runtime::Python => vec!["-u".into(), "-c".into(), PYTHON_DRIVER.into()],
            Runtime::Node => vec!["-e".into(), NODE_DRIVER.into()],
        };
        let launched = launcher::launch(LaunchSpec {
            program,
            args,
            cwd,
            env: &env,
            control_channel: true,
            sandbox,
        })
        .map_err(|e| {
            Error::backend(format!(
                "could not start the {} interpreter {}: {e}",
                runtime.name(),
                program.display()
            ))
        })?;
        let Some((requests, responses)) = launched.control else {
            return Err(Error::backend("interpreter control channel missing"));
        };
        let mut interp = Interpreter {
            runtime,
            version: String::new(),
            child: launched.child,
            pid: launched.pid,
            requests,
            responses: BufReader::new(responses),
            stdout: launched.stdout,
            stderr: launched.stderr,
            token,
            next_id: 1,
            carry_out: Vec::new(),
            carry_err: Vec::new(),
        };
        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, interp.responses.read_line(&mut line)).await;
        let ready: Option<DriverReady> = match read {
            Ok(Ok(n)) if n > 0 => serde_json::from_str(&line).ok(),
            _ => None,
        };
        match ready {
            Some(r) if r.ready => {
                interp.version = r.version;
                Ok(interp)
            }
            _ => {
                let stderr = interp.drain_stderr_now().await;
                interp.kill().await;
                Err(Error::backend(format!(
                    "the {} interpreter {} did not start: {}",
                    runtime.name(),
                    program.display(),
                    if stderr.trim().is_empty() {
                        "no output".to_string()
                    } else {
                        stderr.trim().to_string()
                    }
                )))
            }
        }
    }

    async fn drain_stderr_now(&mut self) -> String {
        let mut buf = vec![0u8; 8192];
        match tokio::time::timeout(Duration::from_millis(200), self.stderr.read(&mut buf)).await {
            Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            _ => String::new(),
        }
    }

    /// Kills the whole process group and reaps the process.
    pub async fn kill(&mut self) {
        launcher::signal_group(self.pid, libc::SIGKILL);
        let _ = self.child.kill().await;
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Runs one request. Output goes to the collectors; the deadline and the
    /// cancellation token interrupt the code (SIGINT), then kill the process
    /// group if it does not stop within [`INTERRUPT_GRACE`].
    pub async fn run(
        &mut self,
        req: &CodeRequest,
        ctl: &CallControl,
        out: &mut OutputCollector,
        err: &mut OutputCollector,
    ) -> RunOutcome {
        let started = Instant::now();
        let id = self.next_id;
        self.next_id += 1;
        let marker = format!("\x1e{}:{}\x1e", self.token, id).into_bytes();
        let mut scan_out = SentinelScanner::new(marker.clone());
        let mut scan_err = SentinelScanner::new(marker);
        let mut out_done = false;
        let mut err_done = false;
        for (carry, scan, done, col) in [
            (
                std::mem::take(&mut self.carry_out),
                &mut scan_out,
                &mut out_done,
                &mut *out,
            ),
            (
                std::mem::take(&mut self.carry_err),
                &mut scan_err,
                &mut err_done,
                &mut *err,
            ),
        ] {
            if !carry.is_empty() && scan.feed(&carry, col).is_some() {
                *done = true;
            }
        }

        let dead = |limit, error, started: Instant| RunOutcome {
            result: None,
            error,
            images: Vec::new(),
            limit,
            dead: true,
            duration: started.elapsed(),
        };

        let line = match serde_json::to_string(&DriverRequest {
            id,
            code: &req.code,
            language: req.language.as_str(),
            clear_context: req.clear_context,
        }) {
            Ok(l) => l + "\n",
            Err(e) => {
                return RunOutcome {
                    result: None,
                    error: Some(ExecError {
                        name: "DriverError".into(),
                        message: format!("could not encode the request: {e}"),
                        traceback: String::new(),
                    }),
                    images: Vec::new(),
                    limit: None,
                    dead: false,
                    duration: started.elapsed(),
                };
            }
        };
        if let Err(e) = self.requests.write_all(line.as_bytes()).await {
            return dead(
                None,
                Some(
                    self.exited_error(format!("writing to it failed: {e}"))
                        .await,
                ),
                started,
            );
        }

        let mut response: Option<DriverResponse> = None;
        let mut resp_line = String::new();
        let mut buf_out = vec![0u8; 64 * 1024];
        let mut buf_err = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + ctl.timeout;
        let sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(sleep);
        // Set once the call was interrupted: (which limit, when to kill).
        let mut interrupted: Option<(&'static str, String)> = None;
        let mut cancelled_seen = false;
        let mut eof_out = false;
        let mut eof_err = false;

        loop {
            if response.is_some() && (out_done || eof_out) && (err_done || eof_err) {
                break;
            }
            tokio::select! {
                r = self.stdout.read(&mut buf_out), if !out_done && !eof_out => match r {
                    Ok(0) | Err(_) => eof_out = true,
                    Ok(n) => if let Some(rest) = scan_out.feed(&buf_out[..n], out) {
                        out_done = true;
                        self.carry_out = rest;
                    },
                },
                r = self.stderr.read(&mut buf_err), if !err_done && !eof_err => match r {
                    Ok(0) | Err(_) => eof_err = true,
                    Ok(n) => if let Some(rest) = scan_err.feed(&buf_err[..n], err) {
                        err_done = true;
                        self.carry_err = rest;
                    },
                },
                r = self.responses.read_line(&mut resp_line), if response.is_none() => match r {
                    Ok(0) | Err(_) => {
                        // The driver is gone: flush what it printed, report why.
                        self.drain_rest(out, err, &mut scan_out, &mut scan_err).await;
                        let limit = interrupted.as_ref().map(|(l, d)| LimitHit {
                            limit: (*l).into(), action: "killed".into(), state_lost: true, detail: d.clone(),
                        });
                        let error = if limit.is_some() { None } else {
                            Some(self.exited_error("it exited while running the code".into()).await)
                        };
                        return dead(limit, error, started);
                    }
                    Ok(_) => match serde_json::from_str::<DriverResponse>(&resp_line) {
                        Ok(r) if r.id == Some(id) => response = Some(r),
                        // A stale or forged line (user code can write to fd 4): ignore it.
                        _ => resp_line.clear(),
                    },
                },
                _ = &mut sleep => {
                    if interrupted.is_some() {
                        self.kill().await;
                        self.drain_rest(out, err, &mut scan_out, &mut scan_err).await;
                        let (l, d) = interrupted.take().unwrap_or(("wall_time", String::new()));
                        return dead(Some(LimitHit {
                            limit: l.into(), action: "killed".into(), state_lost: true,
                            detail: format!("{d}; it did not stop within {}s of SIGINT, so the {} process was killed and its state is lost", INTERRUPT_GRACE.as_secs(), self.runtime.name()),
                        }), None, started);
                    }
                    launcher::signal_group(self.pid, libc::SIGINT);
                    interrupted = Some(("wall_time", format!("the call ran past its {}s timeout", ctl.timeout.as_secs())));
                    sleep.as_mut().reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
                },
                _ = ctl.cancel.cancelled(), if !cancelled_seen => {
                    cancelled_seen = true;
                    if interrupted.is_none() {
                        launcher::signal_group(self.pid, libc::SIGINT);
                        interrupted = Some(("cancelled", "the request was cancelled".into()));
                        sleep.as_mut().reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
                    }
                },
            }
        }

        let Some(resp) = response else {
            return dead(
                None,
                Some(self.exited_error("no response".into()).await),
                started,
            );
        };
        let limit = interrupted.map(|(l, d)| LimitHit {
            limit: l.into(),
            action: "interrupted".into(),
            state_lost: false,
            detail: format!("{d}; SIGINT stopped it and the interpreter's state was kept"),
        });
        let _ = resp.ok;
        RunOutcome {
            result: resp.result,
            error: resp.error,
            images: resp
                .images
                .into_iter()
                .map(|i| Image {
                    mime_type: i.mime_type,
                    data: i.data,
                })
                .collect(),
            limit,
            dead: false,
            duration: started.elapsed(),
        }
    }

    /// After the driver died: collect whatever output is still in the pipes.
    async fn drain_rest(
        &mut self,
        out: &mut OutputCollector,
        err: &mut OutputCollector,
        scan_out: &mut SentinelScanner,
        scan_err: &mut SentinelScanner,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        let mut buf = vec![0u8; 64 * 1024];
        for (stream, scan, col) in [
            (
                &mut self.stdout as &mut (dyn tokio::io::AsyncRead + Unpin + Send),
                scan_out,
                &mut *out,
            ),
            (
                &mut self.stderr as &mut (dyn tokio::io::AsyncRead + Unpin + Send),
                scan_err,
                &mut *err,
            ),
        ] {
            loop {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {
                        scan.feed(&buf[..n], col);
                    }
                    _ => break,
                }
            }
            col.push(&std::mem::take(&mut scan.pending));
        }
    }

    async fn exited_error(&mut self, why: String) -> ExecError {
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        let how = match status {
            Ok(Ok(s)) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(sig)) => format!("killed by {}", signal_name(sig)),
                    _ => "unknown status".into(),
                }
            }
            _ => "still running".into(),
        };
        ExecError {
            name: "InterpreterExited".into(),
            message: format!(
                "the {} interpreter stopped ({why}; {how}); its state is lost and the next call starts a fresh one",
                self.runtime.name()
            ),
            traceback: String::new(),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGXCPU => "SIGXCPU".into(),
        libc::SIGXFSZ => "SIGXFSZ".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGBUS => "SIGBUS".into(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_marker_split_across_chunks() {
        let mut col = OutputCollector::new(1000, None);
        let mut s = SentinelScanner::new(b"\x1eTOK:1\x1e".to_vec());
        assert!(s.feed(b"hello \x1eTO", &mut col).is_none());
        let rest = s.feed(b"K:1\x1eafter", &mut col).unwrap();
        assert_eq!(rest, b"after");
        assert_eq!(col.finish().text, "hello ");
    }
}
