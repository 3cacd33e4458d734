//! Wire-level pieces of the AgentCore API: errors (HTTP and event-stream
//! exception frames), event-stream framing, ISO-8601 timestamps, and ids.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue, Message};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Value, json};

/// The exceptions of the Code Interpreter data-plane API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    AccessDenied,
    ResourceNotFound,
    #[allow(dead_code)]
    Conflict,
    ServiceQuotaExceeded,
    Throttling,
    InternalServer,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation => StatusCode::BAD_REQUEST,
            ErrorKind::AccessDenied => StatusCode::FORBIDDEN,
            ErrorKind::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::ServiceQuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            ErrorKind::Throttling => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The shape name, sent in `x-amzn-errortype`.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Conflict => "ConflictException",
            ErrorKind::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::InternalServer => "InternalServerException",
        }
    }

    /// The member name of the event-stream union, sent in `:exception-type`.
    pub fn member_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validationException",
            ErrorKind::AccessDenied => "accessDeniedException",
            ErrorKind::ResourceNotFound => "resourceNotFoundException",
            ErrorKind::Conflict => "conflictException",
            ErrorKind::ServiceQuotaExceeded => "serviceQuotaExceededException",
            ErrorKind::Throttling => "throttlingException",
            ErrorKind::InternalServer => "internalServerException",
        }
    }
}

/// An API error: before the event stream starts it is an HTTP error response,
/// afterwards an exception frame.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// `ValidationExceptionReason` (ValidationException only).
    pub reason: &'static str,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            reason: "FieldValidationFailed",
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    /// A body that is not JSON of the expected shape.
    pub fn cannot_parse(message: impl Into<String>) -> Self {
        Self {
            reason: "CannotParse",
            ..Self::validation(message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalServer, message)
    }

    fn body(&self) -> Value {
        if self.kind == ErrorKind::Validation {
            json!({"message": self.message, "reason": self.reason})
        } else {
            json!({"message": self.message})
        }
    }

    /// The error as an event-stream exception frame.
    pub fn frame(&self) -> Bytes {
        let payload = Bytes::from(self.body().to_string());
        let msg = Message::new(payload)
            .add_header(str_header(":message-type", "exception"))
            .add_header(str_header(":exception-type", self.kind.member_name()))
            .add_header(str_header(":content-type", "application/json"));
        encode(&msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(error = self.kind.type_name(), message = %self.message, "request refused");
        let mut r = Response::new(Body::from(self.body().to_string()));
        *r.status_mut() = self.kind.status();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.kind.type_name()),
        );
        r
    }
}

fn str_header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, FrameValue::String(value.into()))
}

fn encode(msg: &Message) -> Bytes {
    let mut buf = Vec::new();
    match aws_smithy_eventstream::frame::write_message_to(msg, &mut buf) {
        Ok(()) => Bytes::from(buf),
        Err(e) => {
            // Only a header too large for the format fails; ours are fixed.
            tracing::error!("event-stream framing failed: {e}");
            Bytes::new()
        }
    }
}

/// A `result` event frame carrying a `CodeInterpreterResult`.
pub fn result_frame(result: &Value) -> Bytes {
    let msg = Message::new(Bytes::from(result.to_string()))
        .add_header(str_header(":message-type", "event"))
        .add_header(str_header(":event-type", "result"))
        .add_header(str_header(":content-type", "application/json"));
    encode(&msg)
}

/// How long a cut response waits after its partial bytes before failing, so
/// that the partial bytes reach the client first.
pub const CUT_FLUSH: Duration = Duration::from_millis(150);

/// A body that sends `bytes` whole, or (cut) only their first half and then
/// breaks the connection: the client sees a truncated response, never a
/// clean end.
pub fn body_of(bytes: Bytes, cut: bool) -> Body {
    if !cut {
        return Body::from(bytes);
    }
    let half = bytes.slice(..bytes.len() / 2);
    Body::from_stream(cut_stream(half))
}

/// The partial bytes, a pause, then an error (hyper then closes the
/// connection without ending the chunked body).
pub fn cut_stream(
    partial: Bytes,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some(partial), |state| async move {
        match state {
            Some(b) => Some((Ok(b), None)),
            None => {
                tokio::time::sleep(CUT_FLUSH).await;
                None
            }
        }
    })
    .chain(futures::stream::once(async {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault injection: response cut",
        ))
    }))
}

/// A 200 JSON response (cut when a fault says so).
pub fn json_response(value: &Value, cut: bool) -> Response {
    let mut r = Response::new(body_of(Bytes::from(value.to_string()), cut));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// ISO-8601 UTC with milliseconds, e.g. `2026-11-25T10:00:00.123Z`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        // Ids here only need to be unique, not secret: fall back to the clock.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i * 7) % 120)) as u8;
        }
    }
    b
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Session ids: ULIDs (48-bit millisecond time, 80 random bits) as 26
/// uppercase Crockford base32 characters, strictly increasing within this
/// process so that sorting by id sorts by creation.
#[derive(Debug, Default)]
pub struct UlidGen {
    last: Mutex<u128>,
}

impl UlidGen {
    pub fn next(&self) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
            & ((1 << 48) - 1);
        let rand = random_bytes::<10>()
            .iter()
            .fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
        let mut v = (u128::from(ms) << 80) | rand;
        if let Ok(mut last) = self.last.lock() {
            if v <= *last {
                v = *last + 1;
            }
            *last = v;
        }
        (0..26)
            .map(|i| CROCKFORD[((v >> (125 - 5 * i)) & 31) as usize] as char)
            .collect()
    }
}

/// A request id in UUID form, for `x-amzn-RequestId`.
pub fn request_id() -> String {
    let b = random_bytes::<16>();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A task id (startCommandExecution).
pub fn task_id() -> String {
    request_id()
}

/// `CodeInterpreterSessionId`: the same rule the backend checks ids with.
pub use crate::backend::agentcore::valid_session_id;

/// Code interpreter identifiers: `aws.codeinterpreter.v1`, a custom
/// interpreter's id, or an ARN.
pub fn valid_identifier(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;

    #[test]
    fn timestamps_are_iso8601_with_millis() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(iso8601(t), "2023-11-14T22:13:20.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_600_800); // 2026-11-25T10:00:00Z
        assert_eq!(iso8601(t), "2026-11-25T10:00:00.000Z");
        // The Rust SDK's parser accepts what we send.
        let parsed = aws_smithy_types::DateTime::from_str(
            &iso8601(t),
            aws_smithy_types::date_time::Format::DateTimeWithOffset,
        )
        .unwrap();
        assert_eq!(parsed.secs(), 1_795_600_800);
    }

    #[test]
    fn ulids_are_well_formed_and_increasing() {
        let g = UlidGen::default();
        let ids: Vec<String> = (0..100).map(|_| g.next()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        for id in &ids {
            assert_eq!(id.len(), 26);
            assert!(id.bytes().all(|b| CROCKFORD.contains(&b)), "{id}");
            assert!(valid_session_id(id));
        }
    }

    #[test]
    fn frames_decode() {
        let f = result_frame(&json!({"content": []}));
        let m = read_message_from(&mut f.clone()).unwrap();
        assert_eq!(m.payload().as_ref(), br#"{"content":[]}"#);
        let e = ApiError::not_found("gone").frame();
        let m = read_message_from(&mut e.clone()).unwrap();
        let types: Vec<_> = m
            .headers()
            .iter()
            .map(|h| {
                (
                    h.name().as_str().to_string(),
                    h.value().as_string().unwrap().as_str().to_string(),
                )
            })
            .collect();
        assert!(types.contains(&(":exception-type".into(), "resourceNotFoundException".into())));
    }

    #[test]
    fn id_patterns() {
        assert!(valid_identifier("aws.codeinterpreter.v1"));
        assert!(valid_identifier("myInterpreter-a1b2c3d4e5"));
        assert!(!valid_identifier("bad id"));
        assert!(!valid_session_id("01KAT-MYCC"));
        assert!(!valid_session_id(""));
        assert_eq!(request_id().len(), 36);
    }
}
