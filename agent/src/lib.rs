//! code-interpreter-agent: Claude's tool-use loop over the code-interpreter
//! MCP server, served on the AgentCore Runtime HTTP contract and driven from
//! a CLI.
//!
//! # Layout
//!
//! - [`cli`]: commands (`run`, `serve`, `invoke`, `cleanup`) and their flags;
//!   `run`, which the thin `main` calls.
//! - [`conversation`]: the tool-use loop, the system prompt, the
//!   conversation's code-interpreter session and its bounded history.
//! - [`model`]: the one seam for where Claude runs (the [`model::Model`]
//!   trait and the Messages-API types), with [`model::anthropic`] (Messages
//!   API over SSE) and [`model::bedrock`] (InvokeModelWithResponseStream);
//!   [`model::stream`] assembles the stream events both send; retries live
//!   in [`model::Retrying`].
//! - [`mcp`]: the `code-interpreter-mcp` child over stdio: spawn, tool
//!   calls, restart once when it dies.
//! - [`tools`]: MCP tools and results mapped to Claude's (hidden
//!   `session_id`, images, structured content).
//! - [`events`]: the events an invocation streams (`tool_use`,
//!   `tool_result`, `text`, `final`, `error`).
//! - [`http`]: `serve`: `POST /invocations` (SSE), `GET /ping`, runtime
//!   session conversations.
//! - [`runtime_client`]: `invoke` and `cleanup` against the AgentCore data
//!   plane.
//! - [`render`]: the terminal view of events; the only writer to stdout.
//! - [`aws`]: AWS configuration, loaded only when needed.
//! - [`error`]: the library's error types.

pub mod aws;
pub mod cli;
pub mod conversation;
pub mod error;
pub mod events;
pub mod http;
pub mod mcp;
pub mod model;
pub mod render;
pub mod runtime_client;
pub mod tools;
