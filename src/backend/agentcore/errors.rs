//! Retries, and service errors turned into messages that say what to do.

use std::future::Future;
use std::time::Duration;

use aws_sdk_bedrockagentcore::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockagentcore::types::ToolName;
use aws_sdk_bedrockagentcore::types::error::CodeInterpreterStreamOutputError;

use crate::error::Error;

/// Attempts of one call, the first included.
pub const MAX_ATTEMPTS: u32 = 5;

/// One kind of service call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Get,
    ExecuteCode,
    ExecuteCommand,
    StartCommand,
    GetTask,
    StopTask,
    WriteFiles,
    ReadFiles,
    ListFiles,
    RemoveFiles,
}

impl Op {
    /// The InvokeCodeInterpreter tool of this call.
    pub fn tool(self) -> ToolName {
        match self {
            Op::ExecuteCode => ToolName::ExecuteCode,
            Op::ExecuteCommand => ToolName::ExecuteCommand,
            Op::StartCommand => ToolName::StartCommandExecution,
            Op::GetTask => ToolName::GetTask,
            Op::StopTask => ToolName::StopTask,
            Op::WriteFiles => ToolName::WriteFiles,
            Op::ReadFiles => ToolName::ReadFiles,
            Op::ListFiles => ToolName::ListFiles,
            Op::RemoveFiles => ToolName::RemoveFiles,
            // Not invoke calls; never sent as a tool.
            Op::Start | Op::Stop | Op::Get => ToolName::ExecuteCode,
        }
    }

    /// The IAM action the call needs.
    fn action(self) -> &'static str {
        match self {
            Op::Start => "StartCodeInterpreterSession",
            Op::Stop => "StopCodeInterpreterSession",
            Op::Get => "GetCodeInterpreterSession",
            _ => "InvokeCodeInterpreter",
        }
    }

    pub(super) fn what(self) -> String {
        match self {
            Op::Start => "starting a session".into(),
            Op::Stop => "stopping the session".into(),
            Op::Get => "looking up the session".into(),
            op => op.tool().as_str().to_string(),
        }
    }

    /// Runs user code (so it must never be sent twice).
    pub(super) fn runs_code(self) -> bool {
        matches!(
            self,
            Op::ExecuteCode | Op::ExecuteCommand | Op::StartCommand
        )
    }
}

/// Sends a call, retrying with backoff where that cannot repeat its effect:
/// throttling always (the service refuses before accepting the request);
/// server errors and broken connections only for `idempotent` calls.
pub async fn retrying<T, E, R, F, Fut>(
    op: Op,
    idempotent: bool,
    mut send: F,
) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < MAX_ATTEMPTS && retryable(&e, idempotent) => {
                let wait = backoff(attempt);
                tracing::info!(
                    call = %op.what(),
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "AgentCore call refused; retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The HTTP status of a raw response, where there is one.
pub trait HttpStatus {
    fn status_code(&self) -> Option<u16>;
}

impl HttpStatus for aws_sdk_bedrockagentcore::config::http::HttpResponse {
    fn status_code(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

fn retryable<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>, idempotent: bool) -> bool {
    let status = e.raw_response().and_then(HttpStatus::status_code);
    let code = e.as_service_error().and_then(|s| s.code());
    if code == Some("ThrottlingException") || status == Some(429) {
        return true;
    }
    idempotent
        && (status.is_some_and(|s| s >= 500)
            || matches!(
                e,
                SdkError::DispatchFailure(_)
                    | SdkError::TimeoutError(_)
                    | SdkError::ResponseError(_)
            ))
}

/// 200 ms doubling per attempt, at most 3.2 s, plus up to half again of jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << (attempt - 1).min(4);
    let mut b = [0u8; 2];
    let jitter = match getrandom::fill(&mut b) {
        Ok(()) => u64::from(u16::from_le_bytes(b)) % (base / 2 + 1),
        Err(_) => 0,
    };
    Duration::from_millis(base + jitter)
}

/// A failed call as a message for the model or user.
pub fn to_error<E, R>(op: Op, interpreter: &str, session: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            by_code(
                op,
                interpreter,
                session,
                err.code().unwrap_or("UnknownError"),
                err.message().unwrap_or(""),
                true,
            )
        }
        // The request could not be built: nothing was sent.
        SdkError::ConstructionFailure(_) => Error::backend(format!(
            "The request for {} could not be built ({}); nothing was sent. Check the AWS configuration (region, endpoint).",
            op.what(),
            chain(&e)
        )),
        _ => {
            tracing::debug!(error = ?e, "AgentCore call failed");
            transport(op, &chain(&e))
        }
    }
}

/// An error that arrived inside a response stream.
pub fn stream_error<R: std::fmt::Debug + 'static>(
    op: Op,
    session: &str,
    e: SdkError<CodeInterpreterStreamOutputError, R>,
) -> Error {
    match &e {
        SdkError::ServiceError(se) => {
            use CodeInterpreterStreamOutputError as S;
            let err = se.err();
            let code = match err {
                S::AccessDeniedException(_) => "AccessDeniedException",
                S::ConflictException(_) => "ConflictException",
                S::InternalServerException(_) => "InternalServerException",
                S::ResourceNotFoundException(_) => "ResourceNotFoundException",
                S::ServiceQuotaExceededException(_) => "ServiceQuotaExceededException",
                S::ThrottlingException(_) => "ThrottlingException",
                S::ValidationException(_) => "ValidationException",
                _ => "UnknownError",
            };
            let mut out = by_code(op, "", session, code, err.message().unwrap_or(""), false);
            if op.runs_code()
                && matches!(code, "ThrottlingException" | "InternalServerException")
                && let Error::Backend(m) = &mut out
            {
                m.push_str(
                    " This happened after the call was accepted, so it was not sent again: the code may have run.",
                );
            }
            out
        }
        _ => {
            tracing::debug!(error = ?e, "AgentCore stream failed");
            let detail = chain(&e);
            if op.runs_code() {
                Error::backend(format!(
                    "The connection to AgentCore broke while {} was running ({detail}). The call was not sent again, so the code ran at most once, and it may or may not have finished: check the session (for example with list_files or a quick execute_code) before running it again.",
                    op.what()
                ))
            } else {
                Error::backend(format!(
                    "The connection to AgentCore broke during {} ({detail}); try again.",
                    op.what()
                ))
            }
        }
    }
}

/// `retried`: the error answered the request itself, which [`retrying`]
/// sent again where that was safe (not an error inside the response stream).
fn by_code(
    op: Op,
    interpreter: &str,
    session: &str,
    code: &str,
    msg: &str,
    retried: bool,
) -> Error {
    let msg = if msg.is_empty() {
        "no details".to_string()
    } else {
        msg.trim_end_matches('.').to_string()
    };
    match code {
        "ResourceNotFoundException" => match op {
            Op::Start => Error::backend(format!(
                "AgentCore has no code interpreter {interpreter:?} ({msg}). Use aws.codeinterpreter.v1 or the id of one created in this account and region (--code-interpreter-id)."
            )),
            Op::GetTask | Op::StopTask => {
                Error::invalid(format!("AgentCore does not know this task ({msg})"))
            }
            _ => Error::SessionGone(format!(
                "AgentCore session {session} has ended or does not exist ({msg}); sessions end at their session timeout (--session-timeout). Start a new one with start_session, or omit session_id to use the default session."
            )),
        },
        "AccessDeniedException" => Error::backend(format!(
            "AgentCore denied {} ({msg}). The AWS identity in use needs the IAM permission bedrock-agentcore:{} on arn:aws:bedrock-agentcore:<region>:aws:code-interpreter/aws.codeinterpreter.v1 (or on arn:aws:bedrock-agentcore:<region>:<account>:code-interpreter/* for your own interpreters); the README lists the whole policy.",
            op.what(),
            op.action()
        )),
        "ThrottlingException" if retried => Error::backend(format!(
            "AgentCore is throttling requests ({msg}); {} was tried {MAX_ATTEMPTS} times with backoff. Wait a few seconds and try again.",
            op.what()
        )),
        "ThrottlingException" => Error::backend(format!(
            "AgentCore is throttling requests ({msg}) during {}. Wait a few seconds and try again.",
            op.what()
        )),
        "ValidationException" => {
            Error::invalid(format!("AgentCore rejected {} ({msg})", op.what()))
        }
        "ServiceQuotaExceededException" => Error::Limit(format!(
            "AgentCore quota reached ({msg}). Stop sessions you no longer need with stop_session, or ask AWS for a higher quota."
        )),
        "ConflictException" => Error::backend(format!(
            "AgentCore reported a conflict during {} ({msg}); another operation on the session may be in progress. Try again.",
            op.what()
        )),
        "InternalServerException" if op.runs_code() => Error::backend(format!(
            "AgentCore had an internal error during {} ({msg}). It was not sent again, because the code may have run: check the session before running it again.",
            op.what()
        )),
        "InternalServerException" => Error::backend(format!(
            "AgentCore had an internal error during {} ({msg}). Try again later.",
            op.what()
        )),
        other => Error::backend(format!(
            "AgentCore error during {}: {other}: {msg}",
            op.what()
        )),
    }
}

/// The request never got an answer: no network, no credentials, bad endpoint.
fn transport(op: Op, detail: &str) -> Error {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("credential") {
        return Error::backend(format!(
            "No usable AWS credentials for AgentCore ({detail}). Set AWS_PROFILE (then `aws sso login` for SSO profiles), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a container or instance role is available."
        ));
    }
    if op.runs_code() {
        return Error::backend(format!(
            "AgentCore could not be reached for {} ({detail}). It was not sent again, because the code may have run: check the session before running it again. Check the network, AWS_REGION and --endpoint-url.",
            op.what()
        ));
    }
    Error::backend(format!(
        "AgentCore could not be reached for {} ({detail}). Check the network, AWS_REGION and --endpoint-url.",
        op.what()
    ))
}

/// An error and its causes, each said once: `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
