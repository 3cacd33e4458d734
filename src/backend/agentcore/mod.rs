//! The agentcore backend: sessions on Amazon Bedrock AgentCore Code
//! Interpreter (managed microVMs), through the AWS SDK for Rust.
//!
//! Every [`Session`] operation maps onto one `InvokeCodeInterpreter` tool
//! (executeCode, executeCommand, writeFiles, readFiles, listFiles,
//! removeFiles; background commands use startCommandExecution, getTask and
//! stopTask), and the service's results are shaped into the same
//! [`ExecOutcome`], [`ReadFile`] and [`DirEntry`] values the local backend
//! gives, so the MCP layer cannot tell the two apart.
//!
//! Nothing AWS is loaded until the first session starts: the standard
//! credential chain and region are resolved then, once.
//!
//! Retries: reads (readFiles, listFiles, getTask, GetCodeInterpreterSession)
//! are retried on throttling, server errors and broken connections. Anything
//! that runs user code or changes the session (executeCode, executeCommand,
//! startCommandExecution, writeFiles, removeFiles, session start) is retried
//! only on throttling, which the service answers before it accepts the
//! request: user code never runs twice.

mod errors;
mod results;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_bedrockagentcore as ac;
use aws_sdk_bedrockagentcore::types::{
    CodeInterpreterResult, CodeInterpreterSessionStatus, CodeInterpreterStreamOutput,
    InputContentBlock, ProgrammingLanguage, TaskStatus, ToolArguments,
};
use tokio::sync::OnceCell;

use crate::backend::{
    Backend, CallControl, CodeRequest, CommandRequest, DirEntry, EntryKind, ExecOutcome,
    FileContent, FileWrite, Language, LimitHit, Listing, ReadFile, Session, SessionOptions,
    WrittenFile,
};
use crate::cli::AgentCoreArgs;
use crate::error::Error;
use crate::output::{CapturedOutput, OutputCollector};

use errors::{Op, retrying};

/// Most entries a recursive listing gathers.
const MAX_LIST_ENTRIES: usize = 1000;
/// How long stopping a session may take before we give up on it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most payload one answer of the service may carry (its request limit is
/// 100 MB; output and files beyond this are refused, not held).
const MAX_ANSWER_BYTES: usize = 128 << 20;
/// How long a recursive listing may keep calling listFiles.
const LIST_BUDGET: Duration = Duration::from_secs(60);
/// Longest wait for one non-executing service call.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct AgentCoreBackend {
    args: AgentCoreArgs,
    output_limit: usize,
    client: OnceCell<ac::Client>,
}

impl AgentCoreBackend {
    pub fn new(args: AgentCoreArgs, output_limit: usize) -> Self {
        Self {
            args,
            output_limit,
            client: OnceCell::new(),
        }
    }

    /// The SDK client, built on first use from the standard AWS chain.
    async fn client(&self) -> Result<&ac::Client, Error> {
        self.client
            .get_or_try_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = self.args.region.as_ref().filter(|r| !r.is_empty()) {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(url) = &self.args.endpoint_url {
                    loader = loader.endpoint_url(url.clone());
                }
                let conf = loader.load().await;
                if conf.region().is_none() {
                    return Err(Error::backend(
                        "The agentcore backend needs an AWS region: set AWS_REGION, a region in the AWS profile, or pass --region.",
                    ));
                }
                // Retries are ours (see the module doc): the SDK's would
                // re-send an execute after a server error.
                let conf = ac::config::Builder::from(&conf)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build();
                tracing::info!(
                    region = ?conf.region(),
                    endpoint = self.args.endpoint_url.as_deref().unwrap_or("default"),
                    "AgentCore client ready"
                );
                Ok(ac::Client::from_conf(conf))
            })
            .await
    }

    fn session(&self, client: &ac::Client, id: String, owned: bool) -> Arc<dyn Session> {
        Arc::new(AgentCoreSession {
            id,
            interpreter: self.args.code_interpreter_id.clone(),
            client: client.clone(),
            owned,
            output_limit: self.output_limit,
            calls: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl Backend for AgentCoreBackend {
    fn kind(&self) -> &'static str {
        "agentcore"
    }

    async fn start_session(&self, opts: SessionOptions) -> Result<Arc<dyn Session>, Error> {
        let client = self.client().await?;
        let name = session_name(opts.name.as_deref());
        let interpreter = &self.args.code_interpreter_id;
        // One idempotency token for every attempt: a retry after a lost
        // answer gets the session the first attempt started, not a second
        // one that nobody would stop.
        let token = crate::ids::random_token(40);
        let start = retrying(Op::Start, true, || {
            client
                .start_code_interpreter_session()
                .code_interpreter_identifier(interpreter)
                .name(&name)
                .session_timeout_seconds(self.args.session_timeout as i32)
                .client_token(&token)
                .send()
        });
        let out = within(Op::Start, CALL_TIMEOUT, start)
            .await?
            .map_err(|e| errors::to_error(Op::Start, interpreter, "", e))?;
        let id = out.session_id().to_string();
        tracing::info!(session = %id, interpreter = %interpreter, "AgentCore session started");
        Ok(self.session(client, id, true))
    }

    async fn adopt(&self, id: &str) -> Result<Option<Arc<dyn Session>>, Error> {
        if !valid_session_id(id) {
            return Ok(None);
        }
        let client = self.client().await?;
        let interpreter = &self.args.code_interpreter_id;
        let get = retrying(Op::Get, true, || {
            client
                .get_code_interpreter_session()
                .code_interpreter_identifier(interpreter)
                .session_id(id)
                .send()
        });
        let out = within(Op::Get, CALL_TIMEOUT, get)
            .await?
            .map_err(|e| errors::to_error(Op::Get, interpreter, id, e))?;
        match out.status() {
            Some(CodeInterpreterSessionStatus::Ready) => {
                tracing::info!(session = %id, "adopted an existing AgentCore session");
                Ok(Some(self.session(client, id.to_string(), false)))
            }
            other => Err(Error::SessionGone(format!(
                "AgentCore session {id} is {} and cannot be used. Start a new one with start_session, or omit session_id to use the default session.",
                other.map(|s| s.as_str()).unwrap_or("in an unknown state")
            ))),
        }
    }
}

/// `fut` (a call to AgentCore, retries included) bounded by `limit`.
async fn within<T>(op: Op, limit: Duration, fut: impl Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(limit, fut).await.map_err(|_| {
        Error::backend(format!(
            "AgentCore did not answer {} within {} s; try again",
            op.what(),
            limit.as_secs()
        ))
    })
}

/// AgentCore session ids: `[0-9a-zA-Z]{1,40}`.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A session name the service accepts: 1 to 100 characters, kept to
/// letters, digits, `-` and `_`.
fn session_name(given: Option<&str>) -> String {
    let cleaned: String = given
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if cleaned.is_empty() {
        "code-interpreter-mcp".into()
    } else {
        cleaned
    }
}

struct AgentCoreSession {
    id: String,
    interpreter: String,
    client: ac::Client,
    /// Started by this process (stopped when it shuts down), rather than
    /// adopted from a caller who keeps it.
    owned: bool,
    output_limit: usize,
    calls: AtomicU64,
    stopped: AtomicBool,
}

/// How a wait ended early.
enum Cut {
    Timeout(Duration),
    Cancelled,
}

impl Cut {
    /// The `limit` a cut call reports.
    fn limit(&self) -> &'static str {
        match self {
            Cut::Timeout(_) => "wall_time",
            Cut::Cancelled => "cancelled",
        }
    }

    fn reason(&self) -> String {
        match self {
            Cut::Timeout(t) => format!("the call's timeout of {} s passed", t.as_secs()),
            Cut::Cancelled => "the call was cancelled".to_string(),
        }
    }
}

impl AgentCoreSession {
    /// Sends one tool invocation and gathers every result event.
    async fn invoke(
        &self,
        op: Op,
        args: ToolArguments,
        idempotent: bool,
    ) -> Result<Vec<CodeInterpreterResult>, Error> {
        let mut out = retrying(op, idempotent, || {
            self.client
                .invoke_code_interpreter()
                .code_interpreter_identifier(&self.interpreter)
                .session_id(&self.id)
                .name(op.tool())
                .arguments(args.clone())
                .send()
        })
        .await
        .map_err(|e| errors::to_error(op, &self.interpreter, &self.id, e))?;
        let mut results = Vec::new();
        let mut held = 0usize;
        loop {
            match out.stream.recv().await {
                Ok(Some(CodeInterpreterStreamOutput::Result(r))) => {
                    held += results::payload_bytes(&r);
                    if held > MAX_ANSWER_BYTES {
                        return Err(Error::Limit(format!(
                            "AgentCore's answer to {} passed {} MiB, more than this server holds for one call{}",
                            op.what(),
                            MAX_ANSWER_BYTES >> 20,
                            if op.runs_code() {
                                ". The code ran: have it write large output to a file, then read the file in parts"
                            } else {
                                "; ask for less at a time (fewer or smaller files)"
                            }
                        )));
                    }
                    results.push(r);
                }
                Ok(Some(other)) => tracing::debug!(?other, "ignoring an unknown stream event"),
                Ok(None) => break,
                Err(e) => return Err(errors::stream_error(op, &self.id, e)),
            }
        }
        if results.is_empty() {
            return Err(Error::backend(format!(
                "AgentCore returned no result for {}; the session may be in trouble: try again, or start a new session",
                op.tool().as_str()
            )));
        }
        Ok(results)
    }

    /// [`Self::invoke`] bounded by a plain deadline, for calls that run no
    /// user code.
    async fn invoke_quick(
        &self,
        op: Op,
        args: ToolArguments,
        idempotent: bool,
    ) -> Result<Vec<CodeInterpreterResult>, Error> {
        within(op, CALL_TIMEOUT, self.invoke(op, args, idempotent)).await?
    }

    /// Runs an execute call until it is done, its timeout passes, or it is
    /// cancelled. The service cannot interrupt running code, so an early end
    /// abandons the response (the code may still finish in the session); the
    /// request is never sent again.
    async fn run_exec(
        &self,
        op: Op,
        args: ToolArguments,
        ctl: &CallControl,
    ) -> Result<Result<Vec<CodeInterpreterResult>, Cut>, Error> {
        tokio::select! {
            r = self.invoke(op, args, false) => r.map(Ok),
            _ = ctl.cancel.cancelled() => Ok(Err(Cut::Cancelled)),
            _ = tokio::time::sleep(ctl.timeout) => Ok(Err(Cut::Timeout(ctl.timeout))),
        }
    }

    /// Shapes what the service returned into an outcome, capping output
    /// like the local backend; output over the cap is saved in full in the
    /// session, as `.outputs/call-N-stdout.txt`.
    async fn shape(
        &self,
        r: results::Gathered,
        is_code: bool,
        started: Instant,
        ctl: &CallControl,
    ) -> ExecOutcome {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let (stdout, save_out) = self.capture(&r.stdout, n, "stdout", ctl);
        let (stderr, save_err) = self.capture(&r.stderr, n, "stderr", ctl);
        let mut notes = r.notes.clone();
        for (path, bytes) in [save_out, save_err].into_iter().flatten() {
            let w = self
                .write_files(vec![FileWrite {
                    path: path.clone(),
                    content: FileContent::Bytes(bytes),
                }])
                .await;
            if let Err(e) = w {
                notes.push(format!("saving the full output to {path} failed: {e}"));
            }
        }
        let error = (is_code && r.is_error).then(|| results::exec_error(&r));
        ExecOutcome {
            stdout,
            stderr,
            exit_code: (!is_code).then(|| r.exit_code.unwrap_or(if r.is_error { 1 } else { 0 })),
            signal: None,
            result: None,
            error,
            images: r.images,
            duration: started.elapsed(),
            limit: None,
            notes,
        }
    }

    /// Caps one stream; returns what to save in the session when it was cut.
    fn capture(
        &self,
        text: &str,
        call: u64,
        stream: &str,
        ctl: &CallControl,
    ) -> (CapturedOutput, Option<(String, Vec<u8>)>) {
        let path = format!(".outputs/call-{call}-{stream}.txt");
        let report = path.clone();
        // The collector writes its spill to nowhere: the full text is already
        // here and is uploaded to the session below.
        let opener: crate::output::SpillOpener = Box::new(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map(|f| (f, report.clone()))
                .map_err(|e| format!("the full output was not kept: {e}"))
        });
        let mut c =
            OutputCollector::new(self.output_limit, Some(opener)).with_live(ctl.live.clone());
        c.push(text.as_bytes());
        let captured = c.finish();
        let save = captured.truncated.then(|| {
            let max = crate::output::MAX_SPILL_BYTES as usize;
            (path, text.as_bytes()[..text.len().min(max)].to_vec())
        });
        (captured, save)
    }

    fn abandoned(&self, cut: Cut, started: Instant, what: &str) -> ExecOutcome {
        let detail = format!(
            "{}; AgentCore cannot interrupt {what}, so this call stopped waiting and it may still be running in the session",
            cut.reason()
        );
        let limit = cut.limit();
        ExecOutcome {
            stdout: CapturedOutput::default(),
            stderr: CapturedOutput::default(),
            exit_code: None,
            signal: None,
            result: None,
            error: None,
            images: Vec::new(),
            duration: started.elapsed(),
            limit: Some(LimitHit {
                limit: limit.into(),
                action: "abandoned".into(),
                state_lost: false,
                detail,
            }),
            notes: Vec::new(),
        }
    }

    /// Asks for a task's state.
    async fn poll_task(&self, task_id: &str) -> Result<results::TaskState, Error> {
        let args = ToolArguments::builder().task_id(task_id).build();
        let results = self.invoke_quick(Op::GetTask, args, true).await?;
        Ok(results::TaskState::from(&results[..]))
    }

    async fn stop_task(&self, task_id: &str) {
        let args = ToolArguments::builder().task_id(task_id).build();
        if let Err(e) = self.invoke_quick(Op::StopTask, args, true).await {
            tracing::warn!(session = %self.id, task = task_id, error = %e, "stopTask failed");
        }
    }
}

#[async_trait]
impl Session for AgentCoreSession {
    fn id(&self) -> &str {
        &self.id
    }

    fn owned(&self) -> bool {
        self.owned
    }

    async fn execute_code(&self, req: CodeRequest, ctl: CallControl) -> Result<ExecOutcome, Error> {
        let started = Instant::now();
        let language = match req.language {
            Language::Python => ProgrammingLanguage::Python,
            Language::Javascript => ProgrammingLanguage::Javascript,
            Language::Typescript => ProgrammingLanguage::Typescript,
        };
        let args = ToolArguments::builder()
            .code(req.code)
            .language(language)
            .clear_context(req.clear_context)
            .build();
        match self.run_exec(Op::ExecuteCode, args, &ctl).await? {
            Ok(results) => Ok(self
                .shape(results::Gathered::from(&results[..]), true, started, &ctl)
                .await),
            Err(cut) => Ok(self.abandoned(cut, started, "running code")),
        }
    }

    async fn execute_command(
        &self,
        req: CommandRequest,
        ctl: CallControl,
    ) -> Result<ExecOutcome, Error> {
        let started = Instant::now();
        let args = ToolArguments::builder().command(req.command).build();
        match self.run_exec(Op::ExecuteCommand, args, &ctl).await? {
            Ok(results) => Ok(self
                .shape(results::Gathered::from(&results[..]), false, started, &ctl)
                .await),
            Err(cut) => Ok(self.abandoned(
                cut,
                started,
                "a foreground command (start it with background: true to be able to stop it)",
            )),
        }
    }

    /// startCommandExecution, then getTask until the task ends; a timeout or
    /// cancel sends stopTask.
    async fn execute_command_background(
        &self,
        req: CommandRequest,
        ctl: CallControl,
    ) -> Result<ExecOutcome, Error> {
        let started = Instant::now();
        let args = ToolArguments::builder().command(req.command).build();
        let first = match self.run_exec(Op::StartCommand, args, &ctl).await? {
            Ok(r) => r,
            Err(cut) => return Ok(self.abandoned(cut, started, "starting a command")),
        };
        let first = results::TaskState::from(&first[..]);
        let Some(task_id) = first.task_id.clone() else {
            return Err(Error::backend(
                "AgentCore started the command but returned no task id; the command may be running in the session",
            ));
        };
        tracing::debug!(session = %self.id, task = %task_id, "AgentCore task started");
        // Durations are capped at 30 days (the flags), so this cannot overflow.
        let deadline = started + ctl.timeout;
        let mut seen = 0usize;
        let mut pause = Duration::from_millis(100);
        let mut state = first;
        // Set once the call is cut (timeout or cancel) and stopTask was sent:
        // the loop then polls once more for what the task printed, and the
        // result says it was stopped, whatever state the service reports.
        let mut cut: Option<Cut> = None;
        loop {
            // Report new output as it arrives (for progress and get_task).
            if let Some(live) = &ctl.live
                && state.stdout.len() > seen
                && state.stdout.is_char_boundary(seen)
            {
                live.record(&state.stdout.as_bytes()[seen..]);
                seen = state.stdout.len();
            }
            if state.finished() || cut.is_some() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = ctl.cancel.cancelled() => cut = Some(Cut::Cancelled),
                _ = tokio::time::sleep_until(deadline.into()) => cut = Some(Cut::Timeout(ctl.timeout)),
            }
            if cut.is_some() {
                self.stop_task(&task_id).await;
            }
            pause = (pause * 2).min(Duration::from_secs(1));
            state = match self.poll_task(&task_id).await {
                Ok(s) => s,
                Err(e) => {
                    // The task would run on unseen: stop it before giving up.
                    if cut.is_none() {
                        self.stop_task(&task_id).await;
                    }
                    return Err(e);
                }
            };
        }
        let canceled = state.status == Some(TaskStatus::Canceled);
        let mut o = self
            .shape(
                results::Gathered::from_task(&state),
                false,
                started,
                &no_live(&ctl),
            )
            .await;
        if let Some(c) = cut {
            o.exit_code = None;
            o.limit = Some(LimitHit {
                limit: c.limit().into(),
                action: "stopped".into(),
                state_lost: false,
                detail: format!("{}; the task was stopped with stopTask", c.reason()),
            });
        } else if canceled {
            // Stopped from elsewhere (stopTask by another client): no exit code.
            o.exit_code = None;
            o.notes.push("the task was canceled in AgentCore".into());
        }
        Ok(o)
    }

    async fn write_files(&self, files: Vec<FileWrite>) -> Result<Vec<WrittenFile>, Error> {
        let mut blocks = Vec::with_capacity(files.len());
        for f in &files {
            check_path(&f.path)?;
            let b = InputContentBlock::builder().path(&f.path);
            let b = match &f.content {
                FileContent::Text(t) => b.text(t),
                FileContent::Bytes(bytes) => b.blob(aws_smithy_types::Blob::new(bytes.clone())),
            };
            blocks.push(
                b.build()
                    .map_err(|e| Error::invalid(format!("{}: {e}", f.path)))?,
            );
        }
        let args = ToolArguments::builder().set_content(Some(blocks)).build();
        let results = self.invoke_quick(Op::WriteFiles, args, false).await?;
        let r = results::Gathered::from(&results[..]);
        if r.is_error {
            return Err(Error::backend(format!(
                "AgentCore could not write the files: {}",
                r.message()
            )));
        }
        Ok(files
            .iter()
            .map(|f| WrittenFile {
                path: f.path.clone(),
                bytes: f.content.as_bytes().len() as u64,
                sha256: crate::sha256_hex(f.content.as_bytes()),
            })
            .collect())
    }

    async fn read_files(&self, paths: Vec<String>) -> Result<Vec<ReadFile>, Error> {
        for p in &paths {
            check_path(p)?;
        }
        let args = ToolArguments::builder()
            .set_paths(Some(paths.clone()))
            .build();
        let results = self.invoke_quick(Op::ReadFiles, args, true).await?;
        let r = results::Gathered::from(&results[..]);
        if !r.is_error {
            return Ok(results::match_files(&paths, r.files));
        }
        if paths.len() == 1 {
            return Ok(vec![ReadFile {
                path: paths[0].clone(),
                result: Err(r.message()),
            }]);
        }
        // One file failed the whole call: read each one to say which.
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let mut one = Box::pin(self.read_files(vec![p.clone()])).await?;
            out.push(one.pop().unwrap_or(ReadFile {
                path: p,
                result: Err("no result".into()),
            }));
        }
        Ok(out)
    }

    async fn list_files(&self, path: &str, recursive: bool) -> Result<Listing, Error> {
        let root = normalize_dir(path)?;
        let mut entries = Vec::new();
        let mut todo = vec![root];
        let mut truncated = false;
        // A deep tree is one listFiles call per directory: past the budget
        // the walk stops and says the listing is incomplete.
        let started = Instant::now();
        let mut first = true;
        while let Some(dir) = todo.pop() {
            if !std::mem::take(&mut first) && started.elapsed() >= LIST_BUDGET {
                truncated = true;
                break;
            }
            let args = ToolArguments::builder().directory_path(&dir).build();
            let results = self.invoke_quick(Op::ListFiles, args, true).await?;
            let r = results::Gathered::from(&results[..]);
            if r.is_error {
                return Err(Error::invalid(format!("{path}: {}", r.message())));
            }
            for (name, kind, bytes) in &r.listing {
                let p = if dir.is_empty() {
                    name.clone()
                } else {
                    format!("{dir}/{name}")
                };
                if recursive && *kind == EntryKind::Dir {
                    todo.push(p.clone());
                }
                if entries.len() >= MAX_LIST_ENTRIES {
                    truncated = true;
                    todo.clear();
                    break;
                }
                entries.push(DirEntry {
                    path: p,
                    kind: *kind,
                    bytes: *bytes,
                });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Listing { entries, truncated })
    }

    async fn remove_files(&self, paths: Vec<String>) -> Result<Vec<String>, Error> {
        for p in &paths {
            check_path(p)?;
        }
        let args = ToolArguments::builder()
            .set_paths(Some(paths.clone()))
            .build();
        let results = self.invoke_quick(Op::RemoveFiles, args, false).await?;
        let r = results::Gathered::from(&results[..]);
        if r.is_error {
            return Err(Error::backend(format!(
                "AgentCore could not remove the files: {}",
                r.message()
            )));
        }
        Ok(paths)
    }

    async fn stop(&self) -> Result<(), Error> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Stopping is idempotent with one token: retried when throttled (a
        // shutdown stops every session at once) or when the answer is lost.
        let token = crate::ids::random_token(40);
        let stop = retrying(Op::Stop, true, || {
            self.client
                .stop_code_interpreter_session()
                .code_interpreter_identifier(&self.interpreter)
                .session_id(&self.id)
                .client_token(&token)
                .send()
        });
        let failed = match tokio::time::timeout(STOP_TIMEOUT, stop).await {
            Ok(Ok(_)) => {
                tracing::info!(session = %self.id, "AgentCore session stopped");
                return Ok(());
            }
            Ok(Err(e)) => match errors::to_error(Op::Stop, &self.interpreter, &self.id, e) {
                Error::SessionGone(_) => {
                    tracing::info!(session = %self.id, "AgentCore session had already ended");
                    return Ok(());
                }
                e => e.tool_message(),
            },
            Err(_) => format!("no answer within {} s", STOP_TIMEOUT.as_secs()),
        };
        tracing::warn!(session = %self.id, error = %failed, "stopping the AgentCore session failed; it ends at its session timeout");
        Err(Error::backend(format!(
            "stopping AgentCore session {} failed ({failed}); it ends at its session timeout",
            self.id
        )))
    }
}

/// A copy of `ctl` that reports no live output (it was reported already).
fn no_live(ctl: &CallControl) -> CallControl {
    CallControl {
        live: None,
        ..ctl.clone()
    }
}

/// Paths are relative to the session's working directory and stay in it,
/// as with the local backend.
fn check_path(p: &str) -> Result<(), Error> {
    if p.is_empty() {
        return Err(Error::invalid("a path is empty"));
    }
    if p.starts_with('/') {
        return Err(Error::invalid(format!(
            "{p}: absolute paths are not allowed; give a path relative to the session's working directory"
        )));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(Error::invalid(format!(
            "{p}: `..` is not allowed; paths stay inside the session's working directory"
        )));
    }
    if p.contains('\0') {
        return Err(Error::invalid(format!("{p:?}: NUL in path")));
    }
    Ok(())
}

/// `.`, `./x/` and `x//y` as the service wants them: "" for the working
/// directory, no trailing slash.
fn normalize_dir(p: &str) -> Result<String, Error> {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if !joined.is_empty() {
        check_path(&joined)?;
    }
    if p.starts_with('/') {
        check_path(p)?;
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_follow_the_service_pattern() {
        assert!(valid_session_id("01KATMYCCH9ZMPTV7KQHRWV3GK"));
        assert!(!valid_session_id(""));
        assert!(!valid_session_id("a-b"));
        assert!(!valid_session_id(&"a".repeat(41)));
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(session_name(None), "code-interpreter-mcp");
        assert_eq!(session_name(Some("my job!")), "my_job_");
        assert_eq!(session_name(Some(&"x".repeat(150))).len(), 100);
    }

    #[test]
    fn paths_stay_relative() {
        assert!(check_path("a/b.txt").is_ok());
        assert!(check_path("/etc/passwd").is_err());
        assert!(check_path("a/../../b").is_err());
        assert_eq!(normalize_dir(".").unwrap(), "");
        assert_eq!(normalize_dir("./a//b/").unwrap(), "a/b");
        assert!(normalize_dir("../x").is_err());
        assert!(normalize_dir("/x").is_err());
    }
}
