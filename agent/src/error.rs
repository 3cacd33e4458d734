//! The library's error types: what went wrong, whose problem it is, and what
//! to do about it.

use std::time::Duration;

/// An error and its sources, each once, as one line of Display text (no
/// Debug dumps, unlike the AWS SDK's `DisplayErrorContext`).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A model request that failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider refused the credentials (401/403 or an AWS auth error).
    #[error("{provider} refused the credentials ({detail}). {hint}")]
    Auth {
        provider: &'static str,
        detail: String,
        hint: &'static str,
    },
    /// Configuration is missing or wrong (no API key, no region, ...).
    #[error("{0}")]
    Config(String),
    /// 429: too many requests.
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 529 or an `overloaded_error` event.
    #[error("overloaded: {message}")]
    Overloaded {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 5xx or an `api_error` event.
    #[error("server error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Server {
        status: Option<u16>,
        message: String,
    },
    /// The connection failed or the stream ended early.
    #[error("connection failed: {0}")]
    Network(String),
    /// The provider rejected the request (4xx other than auth and 429).
    #[error("request rejected{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Rejected {
        status: Option<u16>,
        message: String,
    },
    /// The response could not be understood.
    #[error("unexpected response: {0}")]
    Protocol(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ModelError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Overloaded { .. }
                | Self::Server { .. }
                | Self::Network(_)
        )
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Overloaded { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Classifies an HTTP error status from either provider.
    pub fn from_status(
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        provider: &'static str,
        auth_hint: &'static str,
    ) -> Self {
        match status {
            401 | 403 => Self::Auth {
                provider,
                detail: format!("{status}: {message}"),
                hint: auth_hint,
            },
            429 => Self::RateLimited {
                message,
                retry_after,
            },
            529 => Self::Overloaded {
                message,
                retry_after,
            },
            500..=599 => Self::Server {
                status: Some(status),
                message,
            },
            _ => Self::Rejected {
                status: Some(status),
                message,
            },
        }
    }
}

/// A failure talking to the code-interpreter MCP server.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(
        "cannot start the code-interpreter server `{program}`: {source}. Set --server or CODE_INTERPRETER_MCP_BIN to its path"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the code-interpreter server did not initialize: {0}")]
    Initialize(String),
    /// The server process died; it has been restarted (or could not be).
    #[error("the code-interpreter server exited unexpectedly ({detail}); {outcome}")]
    Died { detail: String, outcome: String },
    #[error("call to `{tool}` failed: {detail}")]
    Call { tool: String, detail: String },
    #[error("call to `{tool}` did not finish within {seconds} s")]
    Timeout { tool: String, seconds: u64 },
}

/// A failure of one conversation turn (prompt to final answer).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Claude ({model}): {source}")]
    Model { model: String, source: ModelError },
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error("code-interpreter session: {0}")]
    Session(String),
    #[error("stopped after {0} model turns without Claude ending its turn; raise --max-turns")]
    MaxTurns(u32),
    #[error("Claude's reply was cut at max_tokens ({0}); raise --max-tokens")]
    MaxTokens(u32),
    #[error("the caller went away")]
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_read_as_one_line() {
        let inner = std::io::Error::other("no credentials found");
        let outer = McpError::Spawn {
            program: "x".into(),
            source: inner,
        };
        assert_eq!(
            chain(&outer),
            "cannot start the code-interpreter server `x`: no credentials found. Set --server or \
             CODE_INTERPRETER_MCP_BIN to its path"
        );
    }

    #[test]
    fn statuses_are_classified() {
        let c = |s| ModelError::from_status(s, "m".into(), None, "Anthropic API", "hint");
        assert!(matches!(c(401), ModelError::Auth { .. }));
        assert!(matches!(c(403), ModelError::Auth { .. }));
        assert!(c(429).is_retryable());
        assert!(c(529).is_retryable());
        assert!(c(500).is_retryable());
        assert!(c(503).is_retryable());
        assert!(!c(400).is_retryable());
        assert!(!c(404).is_retryable());
        assert!(!c(401).is_retryable());
        assert_eq!(
            c(401).to_string(),
            "Anthropic API refused the credentials (401: m). hint"
        );
    }
}
