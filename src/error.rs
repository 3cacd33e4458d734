//! The one error type, and the one place that decides how a failure reaches
//! the client: as a tool error the model reads (`isError: true`) or as a
//! JSON-RPC protocol error.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The caller sent something we cannot act on. Nothing was changed.
    #[error("{0}")]
    InvalidInput(String),
    /// The session id is unknown, or the session ended.
    #[error("{0}")]
    SessionGone(String),
    /// A limit of the server was reached (too many sessions, file too large).
    #[error("{0}")]
    Limit(String),
    /// The backend could not do what was asked (an interpreter is missing,
    /// the sandbox could not start, a service call failed).
    #[error("{0}")]
    Backend(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    pub fn backend(msg: impl Into<String>) -> Self {
        Error::Backend(msg.into())
    }

    /// The text shown to the model in an `isError` result: what happened and
    /// what to do next.
    pub fn tool_message(&self) -> String {
        match self {
            Error::InvalidInput(m) => format!("Invalid arguments: {m}. Nothing was changed."),
            Error::SessionGone(m) | Error::Limit(m) | Error::Backend(m) => m.clone(),
            Error::Io { .. } => format!("{self}"),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
