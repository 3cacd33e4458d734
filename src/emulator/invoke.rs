//! `POST /code-interpreters/{id}/tools/invoke`: InvokeCodeInterpreter.
//!
//! The session id comes in the `x-amzn-code-interpreter-session-id` header
//! (required here) and is echoed in the response. Everything that can be
//! checked up front is an HTTP error: a malformed body, an unknown tool name,
//! a missing or ill-typed argument (400 ValidationException), an unknown or
//! terminated session or task (404 ResourceNotFoundException), too many
//! running tasks (402 ServiceQuotaExceededException). Then the response
//! starts (200, `application/vnd.amazon.eventstream`) and the tool runs; its
//! answer is one `result` event, or a `resourceNotFoundException` frame when
//! the session ended while it ran. If the client goes away, the call is
//! cancelled (interrupted, then killed). A call may run for 15 minutes, the
//! service's request timeout.
//!
//! Tools, mapped onto the local session:
//! - `executeCode {code, language = python|javascript|typescript, clearContext}`:
//!   `structuredContent {stdout, stderr, exitCode, executionTime (ms)}`. The
//!   value of a last expression is printed to stdout as a line of its own (as
//!   a notebook shows it); an exception's traceback goes to stderr, with `exitCode` 1 and
//!   `isError` true. The text block is stdout, then stderr; images (figures)
//!   follow as `image` blocks. `runtime` is accepted; JavaScript and
//!   TypeScript run on Node.js.
//! - `executeCommand {command}`: the same shape; `exitCode` is the command's
//!   (128 + signal when killed by one), `isError` is true when it is not 0.
//! - `writeFiles {content: [{path, text | blob}]}`: "Successfully wrote all N
//!   files". A block without `path`, without `text` or `blob`, or with a blob
//!   that is not base64 is a ValidationException; a path the session refuses
//!   (absolute, `..`, through a symlink out) is an `isError` result and no
//!   file is written.
//! - `readFiles {paths}`: one `resource` block per file (`text` when UTF-8,
//!   else base64 `blob`); a file that cannot be read adds a text block saying
//!   why and sets `isError`.
//! - `listFiles {directoryPath | path}` (default: the working directory):
//!   `resource_link` blocks (`uri`, `name`, `description` File|Directory,
//!   `size`, `mimeType` when known).
//! - `removeFiles {paths}`: the removed paths; failures set `isError`.
//! - `startCommandExecution {command}`: runs it in the background (up to 8
//!   hours) and returns at once with `structuredContent {taskId, taskStatus:
//!   "working"}`.
//! - `getTask {taskId}`: `{taskId, taskStatus, stdout, stderr, exitCode,
//!   executionTime}`. While `working`, stdout holds all output so far (stdout
//!   and stderr interleaved); once done they are separate. `completed` means
//!   exit code 0, `failed` any other end, `canceled` stopped by stopTask.
//! - `stopTask {taskId}`: cancels it (interrupt, then kill) and answers as
//!   getTask does. Tasks belong to their session and end with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::wire::{self, ApiError, ErrorKind};
use super::{EmuSession, Emulator, check_session_id, faults_for, identifier, json_body};
use crate::backend::local::UNCONFINED_NOTE;
use crate::backend::{
    CallControl, CodeRequest, CommandRequest, EntryKind, ExecOutcome, FileContent, FileWrite,
    Language, Session,
};
use crate::error::Error;
use crate::output::LiveOutput;

/// The service's request timeout: the longest one call may run.
const CALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The service's limit for an asynchronous command.
const TASK_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// Most tasks running at once in a session.
const MAX_RUNNING_TASKS: usize = 16;
/// Most tasks remembered per session (finished ones are forgotten first).
const MAX_TASKS: usize = 100;
/// How long stopTask waits for the task to end.
const STOP_WAIT: Duration = Duration::from_secs(10);

const SESSION_HEADER: &str = "x-amzn-code-interpreter-session-id";

const TOOL_NAMES: &[&str] = &[
    "executeCode",
    "executeCommand",
    "readFiles",
    "listFiles",
    "removeFiles",
    "writeFiles",
    "startCommandExecution",
    "getTask",
    "stopTask",
];

#[derive(Debug, Deserialize)]
struct InvokeRequest {
    name: Option<String>,
    arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolArgs {
    code: Option<String>,
    language: Option<String>,
    clear_context: Option<bool>,
    command: Option<String>,
    path: Option<String>,
    paths: Option<Vec<String>>,
    content: Option<Vec<InputBlock>>,
    directory_path: Option<String>,
    task_id: Option<String>,
    runtime: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InputBlock {
    path: Option<String>,
    text: Option<String>,
    blob: Option<String>,
}

/// A checked call, ready to run.
enum Call {
    Code(CodeRequest),
    Command(String),
    Write(Vec<FileWrite>),
    Read(Vec<String>),
    List(String),
    Remove(Vec<String>),
    StartTask(String),
    GetTask(Arc<Task>),
    StopTask(Arc<Task>),
}

pub(crate) async fn invoke(
    State(emu): State<Arc<Emulator>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match prepare(&emu, path, &headers, body).await {
        Ok((session, backend, call, cut)) => stream_response(session, backend, call, cut),
        Err(e) => e.into_response(),
    }
}

fn required<T>(v: Option<T>, tool: &str, arg: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::validation(format!("{tool} requires the `{arg}` argument")))
}

async fn prepare(
    emu: &Emulator,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Arc<EmuSession>, Arc<dyn Session>, Call, bool), ApiError> {
    let ident = identifier(path)?;
    let req: InvokeRequest = json_body(body)?;
    let name = req
        .name
        .ok_or_else(|| ApiError::validation("`name` (the tool to invoke) is required"))?;
    if !TOOL_NAMES.contains(&name.as_str()) {
        return Err(ApiError::validation(format!(
            "Unknown tool name {name:?}; valid names are {}",
            TOOL_NAMES.join(", ")
        )));
    }
    let cut = faults_for(emu, &name).await?;
    let sid = headers
        .get(SESSION_HEADER)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "The {SESSION_HEADER} header (sessionId) is required: start a session with StartCodeInterpreterSession"
            ))
        })?
        .to_str()
        .map_err(|_| ApiError::validation("sessionId is not valid"))?;
    check_session_id(sid)?;
    let session = emu.find(&ident, sid)?;
    let backend = session.live()?;
    let args: ToolArgs = match req.arguments {
        None | Some(Value::Null) => ToolArgs::default(),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ApiError::validation(format!("Invalid arguments for {name}: {e}")))?,
    };
    let call = match name.as_str() {
        "executeCode" => {
            let code = required(args.code, &name, "code")?;
            let language = match args.language.as_deref().unwrap_or("python") {
                "python" => Language::Python,
                "javascript" => Language::Javascript,
                "typescript" => Language::Typescript,
                other => {
                    return Err(ApiError::validation(format!(
                        "language {other:?} is not supported: use python, javascript or typescript"
                    )));
                }
            };
            if let Some(rt) = args.runtime.as_deref()
                && !["python", "nodejs", "deno"].contains(&rt)
            {
                return Err(ApiError::validation(format!(
                    "runtime {rt:?} is not valid: use nodejs, deno or python"
                )));
            }
            Call::Code(CodeRequest {
                code,
                language,
                clear_context: args.clear_context.unwrap_or(false),
            })
        }
        "executeCommand" => Call::Command(required(args.command, &name, "command")?),
        "startCommandExecution" => {
            let command = required(args.command, &name, "command")?;
            let running = session
                .lock()
                .tasks
                .values()
                .filter(|t| !t.is_done())
                .count();
            if running >= MAX_RUNNING_TASKS {
                return Err(ApiError::new(
                    ErrorKind::ServiceQuotaExceeded,
                    format!(
                        "At most {MAX_RUNNING_TASKS} tasks can run at once in a session; stop one with stopTask"
                    ),
                ));
            }
            Call::StartTask(command)
        }
        "writeFiles" => {
            let blocks = required(args.content, &name, "content")?;
            if blocks.is_empty() {
                return Err(ApiError::validation(
                    "writeFiles needs at least one file in `content`",
                ));
            }
            let mut files = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.into_iter().enumerate() {
                let path = b
                    .path
                    .ok_or_else(|| ApiError::validation(format!("content[{i}] has no `path`")))?;
                let content = match (b.text, b.blob) {
                    (Some(t), None) => FileContent::Text(t),
                    (None, Some(blob)) => FileContent::Bytes(
                        base64::engine::general_purpose::STANDARD
                            .decode(blob.trim())
                            .map_err(|e| {
                                ApiError::validation(format!(
                                    "content[{i}] ({path}): `blob` is not valid base64: {e}"
                                ))
                            })?,
                    ),
                    (Some(_), Some(_)) => {
                        return Err(ApiError::validation(format!(
                            "content[{i}] ({path}) has both `text` and `blob`; give one"
                        )));
                    }
                    (None, None) => {
                        return Err(ApiError::validation(format!(
                            "content[{i}] ({path}) has neither `text` nor `blob`"
                        )));
                    }
                };
                files.push(FileWrite { path, content });
            }
            Call::Write(files)
        }
        "readFiles" | "removeFiles" => {
            let paths = required(args.paths, &name, "paths")?;
            if paths.is_empty() {
                return Err(ApiError::validation(format!(
                    "{name} needs at least one path in `paths`"
                )));
            }
            if name == "readFiles" {
                Call::Read(paths)
            } else {
                Call::Remove(paths)
            }
        }
        "listFiles" => Call::List(args.directory_path.or(args.path).unwrap_or_default()),
        _ => {
            // getTask / stopTask
            let task_id = required(args.task_id, &name, "taskId")?;
            let task = session.lock().tasks.get(&task_id).cloned().ok_or_else(|| {
                ApiError::not_found(format!("Task {task_id} not found in session {sid}"))
            })?;
            if name == "getTask" {
                Call::GetTask(task)
            } else {
                Call::StopTask(task)
            }
        }
    };
    Ok((session, backend, call, cut))
}

/// Starts the call and answers with its event stream. Dropping the body (the
/// client went away) cancels the call.
fn stream_response(
    session: Arc<EmuSession>,
    backend: Arc<dyn Session>,
    call: Call,
    cut: bool,
) -> Response {
    let token = session.cancel.child_token();
    let guard = token.clone().drop_guard();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let sid = session.id.clone();
    tokio::spawn(async move {
        let result = run(&session, backend, call, token).await;
        let frame = match result {
            Ok(v) => wire::result_frame(&v),
            Err(e) => e.frame(),
        };
        if cut {
            let _ = tx.send(Ok(frame.slice(..frame.len() / 2))).await;
            tokio::time::sleep(wire::CUT_FLUSH).await;
            let _ = tx
                .send(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "fault injection: response cut",
                )))
                .await;
        } else {
            let _ = tx.send(Ok(frame)).await;
        }
    });
    let stream = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|item| (item, (rx, guard)))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    if let Ok(v) = HeaderValue::from_str(&sid) {
        h.insert(SESSION_HEADER, v);
    }
    r
}

fn text_block(text: impl Into<String>) -> Value {
    json!({"type": "text", "text": text.into()})
}

/// A result that reports a failure of the tool itself.
fn error_result(message: impl Into<String>) -> Value {
    json!({"content": [text_block(message)], "isError": true})
}

/// A backend failure: a session that ended is a ResourceNotFound exception;
/// anything else is reported in an `isError` result.
fn backend_failure(sid: &str, what: &str, e: Error) -> Result<Value, ApiError> {
    match e {
        Error::SessionGone(_) => Err(ApiError::not_found(format!(
            "Session {sid} is terminated; start a new session"
        ))),
        other => Ok(error_result(format!("{what}: {other}"))),
    }
}

/// Appends `line` to `s`, on a line of its own.
fn push_line(s: &mut String, line: &str) {
    if line.is_empty() {
        return;
    }
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(line);
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn exec_value(
    stdout: String,
    stderr: String,
    exit_code: i32,
    is_error: bool,
    duration: Duration,
    o: &ExecOutcome,
) -> Value {
    let mut text = stdout.clone();
    push_line(&mut text, &stderr);
    let mut content = vec![text_block(text)];
    for img in &o.images {
        content.push(json!({"type": "image", "data": img.data, "mimeType": img.mime_type}));
    }
    json!({
        "content": content,
        "structuredContent": {
            "stdout": stdout,
            "stderr": stderr,
            "exitCode": exit_code,
            "executionTime": millis(duration),
        },
        "isError": is_error,
    })
}

/// Notes and limits of an outcome, for stderr.
fn push_notes(stderr: &mut String, o: &ExecOutcome) {
    if let Some(l) = &o.limit {
        push_line(stderr, &l.detail);
    }
    for n in o.notes.iter().filter(|n| n.as_str() != UNCONFINED_NOTE) {
        push_line(stderr, n);
    }
}

fn code_value(o: &ExecOutcome) -> Value {
    let mut stdout = o.stdout.text.clone();
    if let Some(r) = &o.result {
        push_line(&mut stdout, r);
        stdout.push('\n');
    }
    let mut stderr = o.stderr.text.clone();
    if let Some(e) = &o.error {
        if e.traceback.trim().is_empty() {
            push_line(&mut stderr, &format!("{}: {}", e.name, e.message));
        } else {
            push_line(&mut stderr, &e.traceback);
        }
    }
    push_notes(&mut stderr, o);
    let is_error = o.error.is_some() || o.limit.is_some();
    exec_value(stdout, stderr, i32::from(is_error), is_error, o.duration, o)
}

fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "SIGKILL" => libc::SIGKILL,
        "SIGTERM" => libc::SIGTERM,
        "SIGINT" => libc::SIGINT,
        "SIGSEGV" => libc::SIGSEGV,
        "SIGABRT" => libc::SIGABRT,
        "SIGXCPU" => libc::SIGXCPU,
        "SIGXFSZ" => libc::SIGXFSZ,
        "SIGPIPE" => libc::SIGPIPE,
        "SIGHUP" => libc::SIGHUP,
        "SIGBUS" => libc::SIGBUS,
        other => return other.strip_prefix("signal ")?.parse().ok(),
    })
}

/// A command's exit code: its status, 128 + the signal that killed it, or
/// -1 when unknown.
fn command_exit(o: &ExecOutcome) -> i32 {
    o.exit_code
        .or_else(|| o.signal.as_deref().and_then(signal_number).map(|n| 128 + n))
        .unwrap_or(-1)
}

/// A command's stderr as the service reports it (a signal and the notes
/// appended) and its exit code.
fn command_stderr_and_exit(o: &ExecOutcome) -> (String, i32) {
    let mut stderr = o.stderr.text.clone();
    if let Some(sig) = &o.signal {
        push_line(&mut stderr, &format!("(killed by {sig})"));
    }
    push_notes(&mut stderr, o);
    (stderr, command_exit(o))
}

fn command_value(o: &ExecOutcome) -> Value {
    let (stderr, exit) = command_stderr_and_exit(o);
    exec_value(
        o.stdout.text.clone(),
        stderr,
        exit,
        exit != 0 || o.limit.is_some(),
        o.duration,
        o,
    )
}

fn mime_of(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "json" => "application/json",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "py" => "text/x-python",
        "js" | "mjs" => "text/javascript",
        "ts" => "application/typescript",
        "sh" => "application/x-sh",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "parquet" => "application/vnd.apache.parquet",
        _ => return None,
    })
}

fn file_uri(path: &str) -> String {
    format!("file://{path}")
}

async fn run(
    session: &EmuSession,
    backend: Arc<dyn Session>,
    call: Call,
    cancel: CancellationToken,
) -> Result<Value, ApiError> {
    let sid = session.id.as_str();
    let ctl = CallControl {
        timeout: CALL_TIMEOUT,
        cancel,
        live: None,
    };
    let ended_meanwhile = || {
        session
            .live()
            .is_err()
            .then(|| ApiError::not_found(format!("Session {sid} was stopped while the call ran")))
    };
    match call {
        Call::Code(req) => match backend.execute_code(req, ctl).await {
            Ok(o) => ended_meanwhile().map_or(Ok(code_value(&o)), Err),
            Err(e) => backend_failure(sid, "The code could not run", e),
        },
        Call::Command(command) => match backend
            .execute_command(CommandRequest { command }, ctl)
            .await
        {
            Ok(o) => ended_meanwhile().map_or(Ok(command_value(&o)), Err),
            Err(e) => backend_failure(sid, "The command could not run", e),
        },
        Call::Write(files) => {
            let n = files.len();
            match backend.write_files(files).await {
                Ok(_) => Ok(json!({
                    "content": [text_block(format!("Successfully wrote all {n} files"))],
                    "isError": false,
                })),
                Err(e) => backend_failure(sid, "Failed to write files (none were written)", e),
            }
        }
        Call::Read(paths) => {
            let files = match backend.read_files(paths).await {
                Ok(f) => f,
                Err(e) => return backend_failure(sid, "Failed to read files", e),
            };
            let mut content = Vec::new();
            let mut failures = Vec::new();
            for f in files {
                match f.result {
                    Ok(bytes) => {
                        let mime = mime_of(&f.path);
                        let resource = match String::from_utf8(bytes) {
                            Ok(text) => json!({
                                "type": "text",
                                "uri": file_uri(&f.path),
                                "mimeType": mime.unwrap_or("text/plain"),
                                "text": text,
                            }),
                            Err(e) => json!({
                                "type": "blob",
                                "uri": file_uri(&f.path),
                                "mimeType": mime.unwrap_or("application/octet-stream"),
                                "blob": base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                            }),
                        };
                        content.push(json!({"type": "resource", "resource": resource}));
                    }
                    // The reason usually starts with the path already.
                    Err(why) if why.starts_with(&f.path) => {
                        failures.push(format!("Failed to read {why}"))
                    }
                    Err(why) => failures.push(format!("Failed to read {}: {why}", f.path)),
                }
            }
            let is_error = !failures.is_empty();
            if is_error {
                content.push(text_block(failures.join("\n")));
            }
            Ok(json!({"content": content, "isError": is_error}))
        }
        Call::List(path) => match backend.list_files(&path, false).await {
            Ok(listing) => {
                let mut content: Vec<Value> = listing
                    .entries
                    .iter()
                    .map(|e| {
                        let name = e.path.rsplit('/').next().unwrap_or(&e.path);
                        let dir = e.kind == EntryKind::Dir;
                        let mut v = json!({
                            "type": "resource_link",
                            "uri": file_uri(&e.path),
                            "name": name,
                            "description": if dir { "Directory" } else { "File" },
                            "size": e.bytes,
                        });
                        if !dir && let Some(m) = mime_of(&e.path) {
                            v["mimeType"] = json!(m);
                        }
                        v
                    })
                    .collect();
                if listing.truncated {
                    content.push(text_block(format!(
                        "Only the first {} entries are listed",
                        listing.entries.len()
                    )));
                }
                Ok(json!({"content": content, "isError": false}))
            }
            Err(e) => backend_failure(sid, "Failed to list files", e),
        },
        Call::Remove(paths) => {
            let mut removed = Vec::new();
            let mut failures = Vec::new();
            for p in paths {
                match backend.remove_files(vec![p.clone()]).await {
                    Ok(r) => removed.extend(r),
                    Err(Error::SessionGone(_)) => {
                        return backend_failure(sid, "", Error::SessionGone(String::new()));
                    }
                    Err(e) => failures.push(format!("Failed to remove {p}: {e}")),
                }
            }
            let mut text = if removed.is_empty() {
                "No files were removed".to_string()
            } else {
                format!("Removed {} files: {}", removed.len(), removed.join(", "))
            };
            for f in &failures {
                push_line(&mut text, f);
            }
            Ok(json!({"content": [text_block(text)], "isError": !failures.is_empty()}))
        }
        Call::StartTask(command) => {
            let task = Task::start(session, backend, command);
            Ok(json!({
                "content": [text_block(format!("Started task {}", task.id))],
                "structuredContent": {"taskId": task.id, "taskStatus": "working"},
                "isError": false,
            }))
        }
        Call::GetTask(task) => Ok(task.snapshot()),
        Call::StopTask(task) => {
            if !task.is_done() {
                task.stop_requested.store(true, Ordering::Release);
                task.cancel.cancel();
                let _ = tokio::time::timeout(STOP_WAIT, task.finished.cancelled()).await;
            }
            Ok(task.snapshot())
        }
    }
}

/// A background command (startCommandExecution).
pub(crate) struct Task {
    id: String,
    started: Instant,
    live: Arc<LiveOutput>,
    cancel: CancellationToken,
    /// Cancelled once `end` is set.
    finished: CancellationToken,
    stop_requested: AtomicBool,
    end: Mutex<Option<TaskEnd>>,
}

struct TaskEnd {
    status: &'static str,
    stdout: String,
    stderr: String,
    exit_code: Option<i32>,
    duration: Duration,
}

impl Task {
    fn start(session: &EmuSession, backend: Arc<dyn Session>, command: String) -> Arc<Task> {
        let task = Arc::new(Task {
            id: wire::task_id(),
            started: Instant::now(),
            live: Arc::new(LiveOutput::with_log()),
            cancel: session.cancel.child_token(),
            finished: CancellationToken::new(),
            stop_requested: AtomicBool::new(false),
            end: Mutex::new(None),
        });
        {
            let mut inner = session.lock();
            forget_old(&mut inner.tasks);
            inner.tasks.insert(task.id.clone(), task.clone());
        }
        tracing::info!(session = %session.id, task = %task.id, "task started");
        let t = task.clone();
        tokio::spawn(async move {
            let ctl = CallControl {
                timeout: TASK_TIMEOUT,
                cancel: t.cancel.clone(),
                live: Some(t.live.clone()),
            };
            let r = backend
                .execute_command(CommandRequest { command }, ctl)
                .await;
            let stopped = t.stop_requested.load(Ordering::Acquire);
            let end = match r {
                Ok(o) => {
                    let (stderr, exit) = command_stderr_and_exit(&o);
                    TaskEnd {
                        status: if stopped {
                            "canceled"
                        } else if exit == 0 && o.limit.is_none() {
                            "completed"
                        } else {
                            "failed"
                        },
                        stdout: o.stdout.text,
                        stderr,
                        exit_code: Some(exit),
                        duration: o.duration,
                    }
                }
                Err(e) => TaskEnd {
                    status: if stopped { "canceled" } else { "failed" },
                    stdout: String::new(),
                    stderr: e.to_string(),
                    exit_code: None,
                    duration: t.started.elapsed(),
                },
            };
            tracing::info!(task = %t.id, status = end.status, "task ended");
            if let Ok(mut slot) = t.end.lock() {
                *slot = Some(end);
            }
            t.finished.cancel();
        });
        task
    }

    fn is_done(&self) -> bool {
        self.finished.is_cancelled()
    }

    fn snapshot(&self) -> Value {
        let end = self.end.lock().ok();
        let (status, stdout, stderr, exit, ms) = match end.as_ref().and_then(|e| e.as_ref()) {
            Some(e) => (
                e.status,
                e.stdout.clone(),
                e.stderr.clone(),
                e.exit_code,
                millis(e.duration),
            ),
            None => (
                "working",
                self.live.log_page(0, self.live.log_len() as usize).0,
                String::new(),
                None,
                millis(self.started.elapsed()),
            ),
        };
        let mut text = match exit {
            Some(c) => format!("Task {} {status} (exit code {c})", self.id),
            None => format!("Task {} {status}", self.id),
        };
        push_line(&mut text, &stdout);
        push_line(&mut text, &stderr);
        let mut sc = json!({
            "taskId": self.id,
            "taskStatus": status,
            "stdout": stdout,
            "stderr": stderr,
            "executionTime": ms,
        });
        if let Some(c) = exit {
            sc["exitCode"] = json!(c);
        }
        json!({
            "content": [text_block(text)],
            "structuredContent": sc,
            "isError": status == "failed",
        })
    }
}

/// Keeps a session's task table under [`MAX_TASKS`] by forgetting the
/// oldest finished tasks.
fn forget_old(tasks: &mut HashMap<String, Arc<Task>>) {
    if tasks.len() < MAX_TASKS {
        return;
    }
    let mut done: Vec<(Instant, String)> = tasks
        .values()
        .filter(|t| t.is_done())
        .map(|t| (t.started, t.id.clone()))
        .collect();
    done.sort();
    let excess = tasks.len() + 1 - MAX_TASKS;
    for (_, id) in done.into_iter().take(excess) {
        tasks.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_exit_codes() {
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("signal 12"), Some(12));
        assert_eq!(signal_number("weird"), None);
    }

    #[test]
    fn lines_are_joined() {
        let mut s = String::from("a");
        push_line(&mut s, "b");
        push_line(&mut s, "");
        assert_eq!(s, "a\nb");
        let mut s = String::from("a\n");
        push_line(&mut s, "b\n");
        assert_eq!(s, "a\nb\n");
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_of("x/plot.PNG"), Some("image/png"));
        assert_eq!(mime_of("noext"), None);
    }
}
