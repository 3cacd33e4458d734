//! Claude on Amazon Bedrock: InvokeModelWithResponseStream with the
//! Anthropic-native body, whose chunks are the Messages-API stream events.
//! AWS credentials and region come from the standard chain; the endpoint
//! honours `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use serde_json::Value;

use super::stream::TurnAssembler;
use super::{AssistantTurn, Model, TextSink, TurnRequest, messages_body};
use crate::error::{ModelError, chain};

/// Default model on Bedrock: the global cross-region inference profile of
/// Claude Sonnet 4.6 (Claude 4.x models need a profile id, not the bare one).
pub const DEFAULT_MODEL: &str = "global.anthropic.claude-sonnet-4-6";
/// The `anthropic_version` Bedrock expects in the body.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

const PROVIDER: &str = "Amazon Bedrock";
const AUTH_HINT: &str = "Check the AWS credentials (environment, profile/SSO or role), \
    that the region is right, and that the model is enabled for this account";

pub struct Bedrock {
    client: aws_sdk_bedrockruntime::Client,
    model: String,
}

impl Bedrock {
    /// Loads the AWS configuration (standard chain; `region` overrides it).
    pub async fn new(model: String, region: Option<String>) -> Result<Self, ModelError> {
        let conf = crate::aws::load_config(region)
            .await
            .map_err(ModelError::Config)?;
        // Retries are done uniformly for both providers by `Retrying`.
        let conf = aws_sdk_bedrockruntime::config::Builder::from(&conf)
            .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
            .build();
        Ok(Self {
            client: aws_sdk_bedrockruntime::Client::from_conf(conf),
            model,
        })
    }
}

#[async_trait]
impl Model for Bedrock {
    fn describe(&self) -> String {
        format!("bedrock {}", self.model)
    }

    async fn stream_turn(
        &self,
        req: &TurnRequest<'_>,
        on_text: &mut TextSink<'_>,
    ) -> Result<AssistantTurn, ModelError> {
        let mut body = messages_body(req)?;
        body.insert(
            "anthropic_version".into(),
            Value::String(BEDROCK_ANTHROPIC_VERSION.into()),
        );
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ModelError::Internal(format!("cannot serialize the request: {e}")))?;
        let mut output = self
            .client
            .invoke_model_with_response_stream()
            .model_id(&self.model)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(bytes))
            .send()
            .await
            .map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                sdk_error(&e, status, &self.model)
            })?;
        let mut assembler = TurnAssembler::new(PROVIDER, AUTH_HINT);
        loop {
            match output.body.recv().await {
                Ok(Some(ResponseStream::Chunk(part))) => {
                    if let Some(bytes) = part.bytes() {
                        assembler.push_json(bytes.as_ref(), on_text)?;
                    }
                }
                Ok(Some(other)) => tracing::debug!("ignoring Bedrock stream event {other:?}"),
                Ok(None) => break,
                Err(e) => return Err(stream_error(&e, &self.model)),
            }
        }
        assembler.finish()
    }
}

/// Maps an error carried inside the event stream.
fn stream_error<R: std::fmt::Debug + 'static>(
    e: &SdkError<ResponseStreamError, R>,
    model: &str,
) -> ModelError {
    if let Some(service) = e.as_service_error() {
        let code = match service {
            ResponseStreamError::ThrottlingException(_) => "ThrottlingException",
            ResponseStreamError::ServiceUnavailableException(_) => "ServiceUnavailableException",
            ResponseStreamError::InternalServerException(_) => "InternalServerException",
            ResponseStreamError::ModelStreamErrorException(_) => "ModelStreamErrorException",
            ResponseStreamError::ModelTimeoutException(_) => "ModelTimeoutException",
            ResponseStreamError::ValidationException(_) => "ValidationException",
            other => other.code().unwrap_or("UnknownStreamError"),
        };
        let message = service.message().unwrap_or_default().to_owned();
        return classify(Some(code), message, None, model);
    }
    sdk_error(e, None, model)
}

fn sdk_error<E, R>(e: &SdkError<E, R>, status: Option<u16>, model: &str) -> ModelError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match e {
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            classify(
                err.code(),
                err.message().unwrap_or_default().to_owned(),
                status,
                model,
            )
        }
        SdkError::DispatchFailure(d) => {
            let text = chain(e);
            if !(d.is_io() || d.is_timeout()) && text.to_ascii_lowercase().contains("credentials") {
                ModelError::Config(format!(
                    "no usable AWS credentials for Amazon Bedrock: set them in the environment, \
                     a profile (AWS_PROFILE, SSO) or the container/instance role ({text})"
                ))
            } else {
                ModelError::Network(text)
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ModelError::Network(chain(e)),
        _ => ModelError::Config(chain(e)),
    }
}

/// Bedrock error codes onto the classes the retry policy understands.
fn classify(code: Option<&str>, message: String, status: Option<u16>, model: &str) -> ModelError {
    let detail = format!("{}: {message}", code.unwrap_or("error"));
    match code {
        Some(
            "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException",
        ) => ModelError::RateLimited {
            message: detail,
            retry_after: None,
        },
        Some("ServiceUnavailableException" | "ModelNotReadyException") => ModelError::Overloaded {
            message: detail,
            retry_after: None,
        },
        Some("InternalServerException" | "ModelStreamErrorException" | "ModelTimeoutException") => {
            ModelError::Server {
                status,
                message: detail,
            }
        }
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "MissingAuthenticationTokenException"
            | "IncompleteSignature",
        ) => ModelError::Auth {
            provider: PROVIDER,
            detail,
            hint: AUTH_HINT,
        },
        Some("ResourceNotFoundException") => ModelError::Rejected {
            status,
            message: format!(
                "{detail} (is `{model}` a model or inference-profile id available in this region? set --model)"
            ),
        },
        _ => match status {
            Some(s) => ModelError::from_status(s, detail, None, PROVIDER, AUTH_HINT),
            None => ModelError::Rejected {
                status: None,
                message: detail,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_codes_are_classified() {
        let c = |code| classify(Some(code), "m".into(), Some(400), "x");
        assert!(matches!(
            c("ThrottlingException"),
            ModelError::RateLimited { .. }
        ));
        assert!(c("ServiceUnavailableException").is_retryable());
        assert!(c("ModelStreamErrorException").is_retryable());
        assert!(matches!(
            c("AccessDeniedException"),
            ModelError::Auth { .. }
        ));
        assert!(matches!(
            c("ExpiredTokenException"),
            ModelError::Auth { .. }
        ));
        assert!(!c("ValidationException").is_retryable());
        assert!(
            c("ResourceNotFoundException")
                .to_string()
                .contains("--model")
        );
        assert!(classify(None, "m".into(), Some(503), "x").is_retryable());
    }
}
