//! Claude through the Anthropic Messages API: `POST {base}/v1/messages` with
//! `stream: true`, read as Server-Sent Events.

use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;

use super::stream::{ErrorBody, TurnAssembler};
use super::{AssistantTurn, Model, TextSink, TurnRequest, messages_body};
use crate::error::{ModelError, chain};

/// Default model on the Anthropic API.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-6";
/// Default `anthropic-version` header.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// Default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

const PROVIDER: &str = "the Anthropic API";
const AUTH_HINT: &str = "Check ANTHROPIC_API_KEY, or use Bedrock with --provider bedrock";

/// How to reach the Anthropic API.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: Option<String>,
    /// Sent as `Authorization: Bearer` when there is no API key.
    pub auth_token: Option<String>,
    pub version: String,
    pub model: String,
}

pub struct Anthropic {
    http: reqwest::Client,
    url: String,
    config: AnthropicConfig,
}

impl Anthropic {
    pub fn new(config: AnthropicConfig) -> Result<Self, ModelError> {
        if config.api_key.is_none() && config.auth_token.is_none() {
            return Err(ModelError::Config(
                "no Anthropic credentials: set ANTHROPIC_API_KEY, or use Amazon Bedrock \
                 (--provider bedrock or CLAUDE_CODE_USE_BEDROCK=1)"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // Between two stream chunks; the API sends pings while it thinks.
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!(
                "code-interpreter-agent/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ModelError::Internal(format!("cannot build the HTTP client: {e}")))?;
        let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
        Ok(Self { http, url, config })
    }
}

#[async_trait]
impl Model for Anthropic {
    fn describe(&self) -> String {
        format!("anthropic {}", self.config.model)
    }

    async fn stream_turn(
        &self,
        req: &TurnRequest<'_>,
        on_text: &mut TextSink<'_>,
    ) -> Result<AssistantTurn, ModelError> {
        let mut body = messages_body(req)?;
        body.insert("model".into(), Value::String(self.config.model.clone()));
        body.insert("stream".into(), Value::Bool(true));
        let mut request = self
            .http
            .post(&self.url)
            .header("anthropic-version", &self.config.version)
            .header("accept", "text/event-stream")
            .json(&body);
        request = match (&self.config.api_key, &self.config.auth_token) {
            (Some(key), _) => request.header("x-api-key", key),
            (None, Some(token)) => request.bearer_auth(token),
            (None, None) => request,
        };
        let response = request.send().await.map_err(network_error)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64);
            let text = response.text().await.unwrap_or_default();
            let message = match serde_json::from_str::<ErrorBody>(&text) {
                Ok(b) => format!("{}: {}", b.error.kind, b.error.message),
                Err(_) => text.chars().take(300).collect(),
            };
            return Err(ModelError::from_status(
                status.as_u16(),
                message,
                retry_after,
                PROVIDER,
                AUTH_HINT,
            ));
        }
        let mut assembler = TurnAssembler::new(PROVIDER, AUTH_HINT);
        let mut events = response.bytes_stream().eventsource();
        while let Some(event) = events.next().await {
            let event =
                event.map_err(|e| ModelError::Network(format!("reading the stream: {e}")))?;
            if event.data.is_empty() {
                continue;
            }
            assembler.push_json(event.data.as_bytes(), on_text)?;
        }
        assembler.finish()
    }
}

fn network_error(e: reqwest::Error) -> ModelError {
    if e.is_builder() {
        return ModelError::Config(format!(
            "cannot build the request (check ANTHROPIC_BASE_URL): {e}"
        ));
    }
    // reqwest's Display omits the cause ("error sending request"); keep it.
    let msg = chain(&e);
    ModelError::Network(msg)
}
