//! The MCP face: maps tool calls onto sessions and shapes the results for a
//! model: structured content holding everything, a short text beside it,
//! native image blocks, and `isError` only for infrastructure problems.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::{
    CallControl, CodeRequest, CommandRequest, ExecOutcome, FileContent, FileWrite, SessionOptions,
};
use crate::error::Error;
use crate::output::LiveOutput;
use crate::session::Sessions;
use crate::tasks::{Task, Tasks};
use crate::tools::*;

/// Largest total of file bytes one `write_files` call may carry.
pub const MAX_WRITE_BYTES: usize = 64 * 1024 * 1024;
/// Largest total of file bytes one `read_files` call returns.
pub const MAX_READ_TOTAL: u64 = 16 * 1024 * 1024;
/// Largest image returned as an image block (Claude takes up to 5 MB of base64).
const MAX_IMAGE_BLOCK: usize = 3_500_000;
/// Most paths in one `read_files` call.
const MAX_PATHS: usize = 100;
/// Claude Desktop cancels a tool call after about 60 s whatever the server
/// does; calls from it go to the background before that.
const DESKTOP_BUDGET: Duration = Duration::from_secs(45);
/// Characters of output shown in the short text beside the structured result.
const SUMMARY_CHARS: usize = 1500;

const INSTRUCTIONS: &str = "Runs code in isolated, stateful sessions. \
Every tool takes an optional session_id; without one, calls share a default session started on first use. \
Variables persist between execute_code calls; files persist in the session's working directory (paths are relative to it). \
Long output is cut (head and tail kept) and saved in full to the file named in `truncated`. \
Sessions end after 15 minutes idle by default.";

pub struct ServerSettings {
    /// How long a call holds the client before going on in the background.
    pub foreground_budget: Duration,
    /// Bytes of output one get_task returns.
    pub page_bytes: usize,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// How often a running call reports progress (when the client asked for
    /// it with a progress token).
    pub progress_interval: Duration,
}

/// Aborts the progress reporter when the call it reports on is done.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

#[derive(Clone)]
pub struct CodeInterpreterServer {
    state: Arc<State>,
}

struct State {
    sessions: Arc<Sessions>,
    tasks: Tasks,
    tools: Vec<Tool>,
    settings: ServerSettings,
}

fn parse<T: DeserializeOwned>(args: Option<rmcp::model::JsonObject>) -> Result<T, Error> {
    serde_json::from_value(Value::Object(args.unwrap_or_default()))
        .map_err(|e| Error::invalid(e.to_string()))
}

fn structured<T: Serialize>(
    value: &T,
    mut content: Vec<ContentBlock>,
    summary: String,
) -> Result<CallToolResult, Error> {
    let v = serde_json::to_value(value)
        .map_err(|e| Error::backend(format!("encoding the result: {e}")))?;
    content.insert(0, ContentBlock::text(summary));
    let mut r = CallToolResult::success(content);
    r.structured_content = Some(v);
    Ok(r)
}

fn head(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!(
            "{}… [{} more bytes in structured content]",
            &s[..i],
            s.len() - i
        ),
        None => s.to_string(),
    }
}

impl CodeInterpreterServer {
    pub fn new(sessions: Arc<Sessions>, settings: ServerSettings) -> Self {
        Self {
            state: Arc::new(State {
                sessions,
                tasks: Tasks::default(),
                tools: all_tools(),
                settings,
            }),
        }
    }

    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.state.sessions
    }

    /// While a call runs, sends `notifications/progress` every interval when the
    /// client gave a progress token: elapsed time, output so far, last line.
    fn progress_reporter(
        &self,
        ctx: &RequestContext<RoleServer>,
        what: &'static str,
        live: Arc<LiveOutput>,
    ) -> Option<AbortOnDrop> {
        let token = ctx.meta.get_progress_token()?;
        let peer = ctx.peer.clone();
        let interval = self.state.settings.progress_interval;
        let started = std::time::Instant::now();
        Some(AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let elapsed = started.elapsed().as_secs_f64();
                let line = live.last_line();
                let mut message = format!(
                    "{what} running for {elapsed:.0} s; {} of output",
                    human_bytes(live.bytes())
                );
                if !line.is_empty() {
                    message.push_str(&format!("; last line: {line}"));
                }
                let param =
                    ProgressNotificationParam::new(token.clone(), elapsed).with_message(message);
                if peer.notify_progress(param).await.is_err() {
                    return;
                }
            }
        })))
    }

    /// The call's timeout: its own `timeout_seconds` within the server's
    /// bounds, or the default.
    fn timeout(&self, timeout_seconds: Option<u64>) -> Result<Duration, Error> {
        let s = &self.state.settings;
        let timeout = match timeout_seconds {
            None => s.default_timeout,
            Some(0) => return Err(Error::invalid("timeout_seconds must be at least 1")),
            Some(t) if Duration::from_secs(t) > s.max_timeout => {
                return Err(Error::invalid(format!(
                    "timeout_seconds {t} is more than the server's maximum of {}",
                    s.max_timeout.as_secs()
                )));
            }
            Some(t) => Duration::from_secs(t),
        };
        Ok(timeout)
    }

    async fn start_session(&self, a: StartSessionArgs) -> Result<CallToolResult, Error> {
        let sessions = &self.state.sessions;
        let started = sessions.start(SessionOptions { name: a.name }).await?;
        let limits = sessions.limits();
        let out = StartSessionOutput {
            session_id: started.session_id.clone(),
            backend: sessions.backend_kind().to_string(),
            idle_timeout_seconds: limits.idle_timeout.as_secs(),
            max_lifetime_seconds: limits.max_lifetime.as_secs(),
        };
        structured(
            &out,
            vec![],
            format!("Started session {}", started.session_id),
        )
    }

    async fn stop_session(&self, a: StopSessionArgs) -> Result<CallToolResult, Error> {
        let id = self.state.sessions.stop(a.session_id.as_deref()).await?;
        let out = StopSessionOutput {
            session_id: id.clone(),
            stopped: true,
        };
        structured(&out, vec![], format!("Stopped session {id}"))
    }

    async fn execute_code(
        &self,
        a: ExecuteCodeArgs,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, Error> {
        let what = a.language.as_str();
        let work = Work::Code(CodeRequest {
            code: a.code,
            language: a.language,
            clear_context: a.clear_context,
        });
        self.run_exec(what, work, a.session_id, a.timeout_seconds, false, ctx)
            .await
    }

    async fn execute_command(
        &self,
        a: ExecuteCommandArgs,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, Error> {
        let work = Work::Command(CommandRequest { command: a.command });
        self.run_exec(
            "command",
            work,
            a.session_id,
            a.timeout_seconds,
            a.background,
            ctx,
        )
        .await
    }

    /// How long a call may hold the client before it continues as a
    /// background task: the configured budget, kept under Claude Desktop's
    /// cancel limit when that is the client.
    fn foreground_budget(&self, ctx: &RequestContext<RoleServer>) -> Duration {
        let budget = self.state.settings.foreground_budget;
        let desktop = ctx.peer.peer_info().is_some_and(|i| {
            i.client_info
                .name
                .to_ascii_lowercase()
                .contains("claude-ai")
        });
        if desktop {
            budget.min(DESKTOP_BUDGET)
        } else {
            budget
        }
    }

    /// Runs code or a command as a task; waits for it up to the foreground
    /// budget (not at all with `background`), then hands back a task id.
    async fn run_exec(
        &self,
        what: &'static str,
        work: Work,
        session_id: Option<String>,
        timeout_seconds: Option<u64>,
        background: bool,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, Error> {
        let timeout = self.timeout(timeout_seconds)?;
        let lease = self.state.sessions.acquire(session_id.as_deref()).await?;
        let live = Arc::new(LiveOutput::with_log());
        let task = Task::new(lease.session.id().to_string(), what, live.clone());
        // The work stops on its own timeout or stop_task, not when the client
        // stops waiting; a cancel while it is in the foreground is passed on
        // below.
        let ctl = CallControl {
            timeout,
            cancel: task.cancel.clone(),
            live: Some(live.clone()),
        };
        let runner = task.clone();
        tokio::spawn(async move {
            let session = lease.session.clone();
            let notes = lease.notes.clone();
            let r = match work {
                Work::Code(req) => session.execute_code(req, ctl).await.map(|o| {
                    let ok = o.error.is_none() && o.limit.is_none();
                    (o, ok)
                }),
                Work::Command(req) if background => {
                    session.execute_command_background(req, ctl).await.map(|o| {
                        let ok = o.exit_code == Some(0) && o.limit.is_none();
                        (o, ok)
                    })
                }
                Work::Command(req) => session.execute_command(req, ctl).await.map(|o| {
                    let ok = o.exit_code == Some(0) && o.limit.is_none();
                    (o, ok)
                }),
            };
            let r = lease.seen(r);
            let result = r
                .and_then(|(o, ok)| exec_result(session.id(), o, ok, notes))
                .unwrap_or_else(|e| {
                    CallToolResult::error(vec![ContentBlock::text(e.tool_message())])
                });
            // The session counts as busy until the work is done.
            drop(lease);
            runner.finish(result);
        });
        if background {
            self.state.tasks.insert(task.clone());
            return running_result(&task, "Started in the background");
        }
        let budget = self.foreground_budget(&ctx);
        let _progress = self.progress_reporter(&ctx, what, live);
        tokio::select! {
            r = task.wait() => Ok(r),
            _ = tokio::time::sleep(budget) => {
                self.state.tasks.insert(task.clone());
                running_result(&task, &format!("Still running after {} s", budget.as_secs()))
            }
            _ = ctx.ct.cancelled() => {
                task.cancel.cancel();
                Ok(task.wait().await)
            }
        }
    }

    async fn get_task(&self, a: GetTaskArgs) -> Result<CallToolResult, Error> {
        let task = self.task(&a.task_id)?;
        let cursor = a.cursor.unwrap_or(0);
        let (output, next) = task.live.log_page(cursor, self.state.settings.page_bytes);
        let done = task.result();
        let out = GetTaskOutput {
            task_id: task.id.clone(),
            session_id: task.session_id.clone(),
            status: if done.is_some() { "done" } else { "running" }.into(),
            elapsed_ms: task.started.elapsed().as_millis() as u64,
            cursor: next,
            more: next < task.live.log_len(),
            output,
            result: done.as_ref().and_then(|r| r.structured_content.clone()),
        };
        let mut summary = format!(
            "Task {} is {} after {} s; output bytes {cursor}..{}",
            out.task_id,
            out.status,
            out.elapsed_ms / 1000,
            out.cursor
        );
        if out.more {
            summary.push_str(" (more: call get_task again with this cursor)");
        }
        // A finished execute_code's images come along.
        let images = done
            .map(|r| {
                r.content
                    .into_iter()
                    .filter(|c| matches!(c, ContentBlock::Image(_)))
                    .collect()
            })
            .unwrap_or_default();
        structured(&out, images, summary)
    }

    async fn stop_task(&self, a: StopTaskArgs) -> Result<CallToolResult, Error> {
        let task = self.task(&a.task_id)?;
        task.cancel.cancel();
        // Interrupt, then kill after the grace period: wait a little longer.
        let wait = crate::backend::local::interpreter::INTERRUPT_GRACE + Duration::from_secs(2);
        let stopped = tokio::time::timeout(wait, task.wait()).await.is_ok();
        let out = StopTaskOutput {
            task_id: task.id.clone(),
            status: if stopped { "done" } else { "stopping" }.into(),
        };
        let summary = format!(
            "Task {} {}",
            out.task_id,
            if stopped { "stopped" } else { "is stopping" }
        );
        structured(&out, vec![], summary)
    }

    fn task(&self, id: &str) -> Result<Arc<Task>, Error> {
        self.state.tasks.get(id).ok_or_else(|| {
            Error::invalid(format!(
                "unknown task_id {id:?}: use one returned by execute_code or execute_command (finished tasks are kept for an hour)"
            ))
        })
    }

    async fn write_files(&self, a: WriteFilesArgs) -> Result<CallToolResult, Error> {
        if a.files.is_empty() {
            return Err(Error::invalid(
                "files is empty; give at least one {path, text | base64}",
            ));
        }
        let mut files = Vec::with_capacity(a.files.len());
        let mut total = 0usize;
        for f in a.files {
            let content = match (f.text, f.base64) {
                (Some(t), None) => FileContent::Text(t),
                (None, Some(b)) => FileContent::Bytes(
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|e| {
                            Error::invalid(format!("{}: base64 is not valid ({e})", f.path))
                        })?,
                ),
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(format!(
                        "{}: give either text or base64, not both",
                        f.path
                    )));
                }
                (None, None) => {
                    return Err(Error::invalid(format!(
                        "{}: give its content as text or base64",
                        f.path
                    )));
                }
            };
            total += content.as_bytes().len();
            if total > MAX_WRITE_BYTES {
                return Err(Error::Limit(format!(
                    "write_files takes at most {} MiB per call; split the files over several calls. Nothing was written.",
                    MAX_WRITE_BYTES / (1024 * 1024)
                )));
            }
            files.push(FileWrite {
                path: f.path,
                content,
            });
        }
        let lease = self.state.sessions.acquire(a.session_id.as_deref()).await?;
        let written = lease.seen(lease.session.write_files(files).await)?;
        let summary = format!(
            "Wrote {} file(s): {}",
            written.len(),
            written
                .iter()
                .map(|w| format!("{} ({} bytes)", w.path, w.bytes))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let out = WriteFilesOutput {
            session_id: lease.session.id().to_string(),
            files: written,
        };
        structured(&out, vec![], summary)
    }

    async fn read_files(&self, a: ReadFilesArgs) -> Result<CallToolResult, Error> {
        if a.paths.is_empty() {
            return Err(Error::invalid("paths is empty; give at least one path"));
        }
        if a.paths.len() > MAX_PATHS {
            return Err(Error::invalid(format!(
                "at most {MAX_PATHS} paths per call"
            )));
        }
        let lease = self.state.sessions.acquire(a.session_id.as_deref()).await?;
        let read = lease.seen(lease.session.read_files(a.paths).await)?;
        let mut images = Vec::new();
        let mut files = Vec::with_capacity(read.len());
        let mut total = 0u64;
        for f in read {
            let mut o = ReadFileOutput {
                path: f.path,
                ..Default::default()
            };
            match f.result {
                Err(e) => o.error = Some(e),
                Ok(bytes) => {
                    if total + bytes.len() as u64 > MAX_READ_TOTAL {
                        o.error = Some(format!(
                            "not read: with it this call would return more than {} MiB, the most one call returns; read this file in another call",
                            MAX_READ_TOTAL >> 20
                        ));
                        files.push(o);
                        continue;
                    }
                    total += bytes.len() as u64;
                    o.bytes = Some(bytes.len() as u64);
                    o.sha256 = Some(crate::sha256_hex(&bytes));
                    let b64 = || base64::engine::general_purpose::STANDARD.encode(&bytes);
                    match (image_mime(&bytes), bytes.len() <= MAX_IMAGE_BLOCK) {
                        (Some(mime), true) => {
                            images.push(ContentBlock::image(b64(), mime));
                            o.image = Some(mime.to_string());
                        }
                        _ => match std::str::from_utf8(&bytes) {
                            Ok(t) => o.text = Some(t.to_string()),
                            Err(_) => o.base64 = Some(b64()),
                        },
                    }
                }
            }
            files.push(o);
        }
        let summary = files
            .iter()
            .map(|f| match (&f.error, f.bytes) {
                (Some(e), _) => format!("{}: {e}", f.path),
                (None, Some(b)) => format!("{}: {b} bytes", f.path),
                _ => f.path.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let out = ReadFilesOutput {
            session_id: lease.session.id().to_string(),
            files,
        };
        structured(&out, images, summary)
    }

    async fn list_files(&self, a: ListFilesArgs) -> Result<CallToolResult, Error> {
        let path = a.path.unwrap_or_else(|| ".".into());
        let lease = self.state.sessions.acquire(a.session_id.as_deref()).await?;
        let listing = lease.seen(lease.session.list_files(&path, a.recursive).await)?;
        let summary = format!(
            "{} entr{} in {path}{}",
            listing.entries.len(),
            if listing.entries.len() == 1 {
                "y"
            } else {
                "ies"
            },
            if listing.truncated {
                " (truncated)"
            } else {
                ""
            }
        );
        let out = ListFilesOutput {
            session_id: lease.session.id().to_string(),
            path,
            entries: listing.entries,
            truncated: listing.truncated,
        };
        structured(&out, vec![], summary)
    }
}

fn image_mime(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() > 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// What runs in a task.
enum Work {
    Code(CodeRequest),
    Command(CommandRequest),
}

/// The result of a call that goes on as a background task.
fn running_result(task: &Task, why: &str) -> Result<CallToolResult, Error> {
    let (stdout, _) = task.live.log_page(0, 20_000);
    let note = format!(
        "{why}: it continues as background task {id}. Call get_task with task_id {id:?} to see its output and result (pass the returned cursor to read on), or stop_task to stop it.",
        id = task.id
    );
    let out = ExecOutput {
        session_id: task.session_id.clone(),
        success: false,
        stdout,
        stderr: String::new(),
        exit_code: None,
        signal: None,
        result: None,
        error: None,
        duration_ms: task.started.elapsed().as_millis() as u64,
        images: 0,
        limit: None,
        truncated: None,
        notes: vec![note.clone()],
        task_id: Some(task.id.clone()),
        status: Some("running".into()),
    };
    structured(&out, vec![], note)
}

fn exec_result(
    session_id: &str,
    o: ExecOutcome,
    success: bool,
    mut notes: Vec<String>,
) -> Result<CallToolResult, Error> {
    notes.extend(o.notes);
    let truncated = (o.stdout.truncated || o.stderr.truncated).then(|| Truncation {
        stdout_bytes: o.stdout.total_bytes,
        stderr_bytes: o.stderr.total_bytes,
        stdout_file: o.stdout.saved_to.clone(),
        stderr_file: o.stderr.saved_to.clone(),
    });
    let images: Vec<ContentBlock> = o
        .images
        .iter()
        .map(|i| ContentBlock::image(i.data.clone(), i.mime_type.clone()))
        .collect();
    let out = ExecOutput {
        session_id: session_id.to_string(),
        success,
        stdout: o.stdout.text,
        stderr: o.stderr.text,
        exit_code: o.exit_code,
        signal: o.signal,
        result: o.result,
        error: o.error,
        duration_ms: o.duration.as_millis() as u64,
        images: images.len() as u32,
        limit: o.limit,
        truncated,
        notes,
        task_id: None,
        status: None,
    };
    let summary = exec_summary(&out);
    structured(&out, images, summary)
}

/// A short, readable account of a run for clients that show text only.
fn exec_summary(o: &ExecOutput) -> String {
    let mut s = match (&o.limit, &o.error, o.exit_code, &o.signal) {
        (Some(l), _, _, _) => format!("Stopped ({}, {}): {}", l.limit, l.action, l.detail),
        (None, Some(e), _, _) => format!("{}: {}", e.name, e.message),
        (None, None, Some(c), _) => format!("Exit code {c}"),
        (None, None, None, Some(sig)) => format!("Killed by {sig}"),
        _ => "OK".to_string(),
    };
    s.push_str(&format!(" ({} ms)", o.duration_ms));
    if let Some(r) = &o.result {
        s.push_str(&format!("\nresult: {}", head(r, 300)));
    }
    if !o.stdout.is_empty() {
        s.push_str(&format!("\nstdout:\n{}", head(&o.stdout, SUMMARY_CHARS)));
    }
    if !o.stderr.is_empty() {
        s.push_str(&format!(
            "\nstderr:\n{}",
            head(&o.stderr, SUMMARY_CHARS / 2)
        ));
    }
    if let Some(e) = &o.error
        && !e.traceback.is_empty()
    {
        s.push_str(&format!("\n{}", head(&e.traceback, SUMMARY_CHARS / 2)));
    }
    if o.images > 0 {
        s.push_str(&format!("\n{} image(s) attached", o.images));
    }
    for n in &o.notes {
        s.push_str(&format!("\nNote: {n}"));
    }
    s
}

impl ServerHandler for CodeInterpreterServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "code-interpreter-mcp",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.state.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments;
        let name = request.name.as_ref();
        let started = std::time::Instant::now();
        if !self.state.tools.iter().any(|t| t.name == name) {
            return Err(McpError::invalid_params(
                format!("unknown tool {name:?}; call tools/list for the tools this server has"),
                None,
            ));
        }
        let result = async {
            match name {
                "execute_code" => self.execute_code(parse(args)?, context).await,
                "execute_command" => self.execute_command(parse(args)?, context).await,
                "get_task" => self.get_task(parse(args)?).await,
                "stop_task" => self.stop_task(parse(args)?).await,
                "write_files" => self.write_files(parse(args)?).await,
                "read_files" => self.read_files(parse(args)?).await,
                "list_files" => self.list_files(parse(args)?).await,
                "start_session" => self.start_session(parse(args)?).await,
                "stop_session" => self.stop_session(parse(args)?).await,
                other => Err(Error::backend(format!("the tool {other} has no handler"))),
            }
        }
        .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(tool = name, error = %e, "tool call failed");
                CallToolResult::error(vec![ContentBlock::text(e.tool_message())])
            }
        };
        tracing::debug!(
            tool = name,
            elapsed_us = started.elapsed().as_micros() as u64,
            "tool call done"
        );
        Ok(result.into())
    }
}
