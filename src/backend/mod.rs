//! The one seam between sessions and where code runs.
//!
//! A [`Backend`] creates [`Session`]s; a session's operations mirror the tools of
//! AgentCore Code Interpreter (executeCode, executeCommand, readFiles, writeFiles,
//! listFiles, removeFiles), so both the embedded `local` backend and the
//! `agentcore` backend implement the same contract and the MCP layer above never
//! knows which one it is talking to.

pub mod agentcore;
pub mod local;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::output::CapturedOutput;

/// Languages `execute_code` understands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Python,
    Javascript,
    Typescript,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Javascript => "javascript",
            Language::Typescript => "typescript",
        }
    }
}

/// How a call may be stopped early: a deadline (the call's timeout) and a
/// cancellation token (the client cancelled the request, or the server is
/// shutting down); and where it reports its output as it runs.
#[derive(Debug, Clone)]
pub struct CallControl {
    pub timeout: Duration,
    pub cancel: CancellationToken,
    /// Output so far, for progress notifications.
    pub live: Option<Arc<crate::output::LiveOutput>>,
}

/// A request to run code in a session's long-lived interpreter.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub code: String,
    pub language: Language,
    pub clear_context: bool,
}

/// A request to run `bash -c <command>` in the session's working directory.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub command: String,
}

/// An exception raised by user code.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct ExecError {
    pub name: String,
    pub message: String,
    pub traceback: String,
}

/// An image produced by a call (a matplotlib figure, for instance).
#[derive(Debug, Clone)]
pub struct Image {
    pub mime_type: String,
    /// Base64 of the image bytes.
    pub data: String,
}

/// Which limit stopped a call, and what was done about it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq)]
pub struct LimitHit {
    /// `wall_time` (the call's timeout) or `cancelled` (the client cancelled).
    pub limit: String,
    /// `interrupted` (SIGINT was enough, state kept), `killed` (the process
    /// tree was killed), `stopped` (an AgentCore task was stopped) or
    /// `abandoned` (AgentCore cannot interrupt: the call stopped waiting).
    pub action: String,
    /// True when the interpreter was killed and its variables are gone.
    pub state_lost: bool,
    pub detail: String,
}

/// What running code or a command produced.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    /// Exit status of a command (None for code, or when killed by a signal).
    pub exit_code: Option<i32>,
    /// Signal that ended a command, e.g. `SIGKILL`.
    pub signal: Option<String>,
    /// Value of the last expression of a code cell.
    pub result: Option<String>,
    pub error: Option<ExecError>,
    pub images: Vec<Image>,
    pub duration: Duration,
    pub limit: Option<LimitHit>,
    /// Something the caller should know, e.g. that the interpreter was restarted.
    pub notes: Vec<String>,
}

/// Content of a file to write: text is written as UTF-8, bytes as they are.
#[derive(Debug, Clone)]
pub enum FileContent {
    Text(String),
    Bytes(Vec<u8>),
}

impl FileContent {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            FileContent::Text(t) => t.as_bytes(),
            FileContent::Bytes(b) => b,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileWrite {
    pub path: String,
    pub content: FileContent,
}

/// A file that was written.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq)]
pub struct WrittenFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A file that was read (or the reason it could not be).
#[derive(Debug, Clone)]
pub struct ReadFile {
    pub path: String,
    pub result: Result<Vec<u8>, String>,
}

#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq)]
pub struct DirEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Listing {
    pub entries: Vec<DirEntry>,
    pub truncated: bool,
}

/// Options for a new session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// A human-readable name (AgentCore shows it in its console).
    pub name: Option<String>,
}

/// Where sessions come from.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `local` or `agentcore`.
    fn kind(&self) -> &'static str;
    /// Starts a new session with a fresh id that cannot be guessed.
    async fn start_session(&self, opts: SessionOptions) -> Result<Arc<dyn Session>, Error>;
    /// Takes over a session that exists outside this process (an AgentCore
    /// session a caller started and keeps), if the backend can and the
    /// session is usable. `Ok(None)` when the backend has no such sessions.
    async fn adopt(&self, _id: &str) -> Result<Option<Arc<dyn Session>>, Error> {
        Ok(None)
    }
}

/// One isolated, stateful session.
#[async_trait]
pub trait Session: Send + Sync + 'static {
    fn id(&self) -> &str;
    /// True when this process started the session (and so stops it when it
    /// shuts down); false for an adopted one, which its owner keeps.
    fn owned(&self) -> bool {
        true
    }
    async fn execute_code(&self, req: CodeRequest, ctl: CallControl) -> Result<ExecOutcome, Error>;
    async fn execute_command(
        &self,
        req: CommandRequest,
        ctl: CallControl,
    ) -> Result<ExecOutcome, Error>;
    /// A command started as a background task (`background: true`): the same
    /// as [`Session::execute_command`] unless the backend has its own task
    /// API (AgentCore's startCommandExecution, getTask and stopTask).
    async fn execute_command_background(
        &self,
        req: CommandRequest,
        ctl: CallControl,
    ) -> Result<ExecOutcome, Error> {
        self.execute_command(req, ctl).await
    }
    /// Writes every file or none: all paths and contents are checked first.
    async fn write_files(&self, files: Vec<FileWrite>) -> Result<Vec<WrittenFile>, Error>;
    async fn read_files(&self, paths: Vec<String>) -> Result<Vec<ReadFile>, Error>;
    async fn list_files(&self, path: &str, recursive: bool) -> Result<Listing, Error>;
    async fn remove_files(&self, paths: Vec<String>) -> Result<Vec<String>, Error>;
    /// Stops every process of the session and frees its resources. An
    /// error means the stop could not be confirmed: the session may go on
    /// until its timeout (the error says so; it is logged already).
    async fn stop(&self) -> Result<(), Error>;
}
