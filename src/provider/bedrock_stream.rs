//! Bedrock `InvokeModelWithResponseStream` response body (AWS event-stream) -> Anthropic
//! SSE bytes, and Bedrock HTTP error responses -> Anthropic error JSON (PROTOCOLS §2.3–2.5).
//!
//! This module owns the meaning of Bedrock's frames: `chunk` events carry one Anthropic
//! streaming event as base64 JSON; `exception` and `error` frames end the stream and
//! become one Anthropic `event: error`. It is sans-IO: it never reads sockets, flushes or
//! looks at a clock; the relay pushes each upstream read through
//! [`BedrockStreamTranscoder::feed`] and writes (and flushes) whatever was appended to
//! `out`. It must not alter an event's JSON beyond removing line breaks, so the client
//! receives Anthropic's bytes as Bedrock relayed them (including Bedrock's extra
//! `amazon-bedrock-invocationMetrics` key on `message_stop`).
//!
//! Call order:
//! 1. `feed(read, &mut out)` for every read of the upstream body. On `Ok(())`, `out`
//!    gained zero or more complete SSE events (never a partial one) — write and flush.
//!    On `Err(failure)` the stream is over: `out` gained the events that preceded the
//!    failure and then exactly one `event: error`; write it, stop reading upstream.
//! 2. `finish(&mut out)` at upstream end of body: `Ok(())` if the stream ended cleanly
//!    after `message_stop`; otherwise an `Err` with an `event: error` appended (unless
//!    one was already written).
//!
//! ```
//! use cc_relay::codec::{base64, eventstream::{encode_message, Header, HeaderValue}};
//! use cc_relay::provider::bedrock_stream::BedrockStreamTranscoder;
//!
//! let event = br#"{"type":"message_stop"}"#;
//! let payload = format!(r#"{{"bytes":"{}","p":"abc"}}"#, base64::encode(event));
//! let headers = [
//!     Header::new(":event-type", HeaderValue::String("chunk".into())),
//!     Header::new(":message-type", HeaderValue::String("event".into())),
//! ];
//! let mut body = Vec::new();
//! encode_message(&headers, payload.as_bytes(), &mut body).unwrap();
//!
//! let mut transcoder = BedrockStreamTranscoder::new();
//! let mut out = Vec::new();
//! transcoder.feed(&body[..10], &mut out).unwrap();
//! assert!(out.is_empty());
//! transcoder.feed(&body[10..], &mut out).unwrap();
//! assert_eq!(out, b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
//! assert!(transcoder.saw_message_stop());
//! assert!(transcoder.finish(&mut out).is_ok());
//! ```

use std::fmt;

use serde::Deserialize;

use crate::codec::base64;
use crate::codec::eventstream::{EventStreamDecoder, EventStreamError, Message};

/// Longest stretch of a non-JSON upstream body quoted in an error message.
const MAX_QUOTED_BODY: usize = 512;

/// Why a Bedrock stream ended without completing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFailure {
    /// A modelled exception frame (`:message-type exception`), e.g. `throttlingException`.
    Exception {
        exception_type: String,
        message: String,
    },
    /// An unmodelled error frame (`:message-type error` with `:error-code`).
    ErrorFrame { code: String, message: String },
    /// The body is not a valid event stream (bad CRC, bad header, cut mid-frame...).
    Framing(EventStreamError),
    /// A `chunk` whose payload is not `{"bytes": <base64 of one JSON event>}`.
    BadChunk(String),
    /// The body ended on a frame boundary but before `message_stop`.
    EndedBeforeMessageStop,
}

impl StreamFailure {
    /// The Anthropic `error.type` the client is shown.
    pub fn anthropic_error_type(&self) -> &'static str {
        match self {
            StreamFailure::Exception { exception_type, .. } => {
                anthropic_error_type_for_exception(exception_type).unwrap_or("api_error")
            }
            StreamFailure::ErrorFrame { code, .. } => {
                anthropic_error_type_for_exception(code).unwrap_or("api_error")
            }
            StreamFailure::Framing(_)
            | StreamFailure::BadChunk(_)
            | StreamFailure::EndedBeforeMessageStop => "api_error",
        }
    }

    /// The Anthropic `error.message` the client is shown.
    pub fn message(&self) -> String {
        match self {
            StreamFailure::Exception { message, .. }
            | StreamFailure::ErrorFrame { message, .. } => message.clone(),
            StreamFailure::Framing(error) => format!("malformed upstream event stream: {error}"),
            StreamFailure::BadChunk(reason) => format!("malformed upstream event: {reason}"),
            StreamFailure::EndedBeforeMessageStop => {
                "upstream stream ended before message_stop".to_owned()
            }
        }
    }
}

impl fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamFailure::Exception { exception_type, .. } => {
                write!(f, "Bedrock {exception_type}: {}", self.message())
            }
            StreamFailure::ErrorFrame { code, .. } => {
                write!(f, "Bedrock error {code}: {}", self.message())
            }
            _ => f.write_str(&self.message()),
        }
    }
}

impl std::error::Error for StreamFailure {}

/// Turns the event-stream body into Anthropic SSE; see the module doc for call order.
#[derive(Debug, Default)]
pub struct BedrockStreamTranscoder {
    decoder: EventStreamDecoder,
    saw_message_stop: bool,
    events_written: u64,
    /// Set once the stream is over in error; its `event: error` has been written.
    failure: Option<StreamFailure>,
}

/// The JSON payload of a `chunk` event; `p` (padding) and unknown keys are ignored.
#[derive(Deserialize)]
struct ChunkPayload {
    bytes: String,
}

/// Only the `type` of an Anthropic event is needed; the rest is passed through as bytes.
#[derive(Deserialize)]
struct EventType {
    #[serde(rename = "type", default)]
    kind: Option<serde_json::Value>,
}

/// Payload of an exception frame.
#[derive(Deserialize, Default)]
struct ExceptionPayload {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "originalStatusCode")]
    original_status_code: Option<i64>,
    #[serde(rename = "originalMessage")]
    original_message: Option<String>,
}

impl BedrockStreamTranscoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes` (any split of the body) and appends every SSE event they
    /// complete to `out`. See the module doc for what `Err` means.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFailure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        self.decoder.push(bytes);
        loop {
            let step = match self.decoder.next_message() {
                Ok(Some(message)) => self.transcode(&message, out),
                Ok(None) => return Ok(()),
                Err(error) => Err(StreamFailure::Framing(error)),
            };
            if let Err(failure) = step {
                return Err(self.fail(failure, out));
            }
        }
    }

    /// Call at upstream end of body. `Ok` only for a stream that reached `message_stop`
    /// and ended on a frame boundary; otherwise the failure, with its `event: error`
    /// appended to `out` if none was written before.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFailure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        if let Err(error) = self.decoder.finish() {
            return Err(self.fail(StreamFailure::Framing(error), out));
        }
        if !self.saw_message_stop {
            return Err(self.fail(StreamFailure::EndedBeforeMessageStop, out));
        }
        Ok(())
    }

    /// Whether a `message_stop` event has been written: the stream is complete, even if
    /// the connection then breaks.
    pub fn saw_message_stop(&self) -> bool {
        self.saw_message_stop
    }

    /// The failure that ended the stream, if it ended in error.
    pub fn failure(&self) -> Option<&StreamFailure> {
        self.failure.as_ref()
    }

    /// SSE events appended so far (the error event included).
    pub fn events_written(&self) -> u64 {
        self.events_written
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<u8>) -> StreamFailure {
        write_error_event(failure.anthropic_error_type(), &failure.message(), out);
        self.events_written += 1;
        self.failure = Some(failure.clone());
        failure
    }

    fn transcode(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), StreamFailure> {
        match message.header_str(":message-type") {
            Some("event") => match message.header_str(":event-type") {
                Some("chunk") => self.transcode_chunk(&message.payload, out),
                // Unknown event types are skipped, as the AWS SDKs do (PROTOCOLS §2.4).
                _ => Ok(()),
            },
            Some("exception") => {
                let exception_type = message
                    .header_str(":exception-type")
                    .unwrap_or("unknownException")
                    .to_owned();
                let message = exception_message(&message.payload, &exception_type);
                Err(StreamFailure::Exception {
                    exception_type,
                    message,
                })
            }
            Some("error") => {
                let code = message
                    .header_str(":error-code")
                    .unwrap_or("UnknownError")
                    .to_owned();
                let text = message
                    .header_str(":error-message")
                    .filter(|text| !text.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| code.clone());
                Err(StreamFailure::ErrorFrame {
                    code,
                    message: text,
                })
            }
            // A message type this protocol does not define carries nothing for us.
            _ => Ok(()),
        }
    }

    fn transcode_chunk(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFailure> {
        let chunk: ChunkPayload = serde_json::from_slice(payload).map_err(|_| {
            StreamFailure::BadChunk("chunk payload is not JSON with a string \"bytes\"".into())
        })?;
        let event = base64::decode(chunk.bytes.as_bytes())
            .map_err(|error| StreamFailure::BadChunk(format!("chunk bytes: {error}")))?;
        // serde would also read a struct from a JSON array; an event must be an object.
        let head: EventType = starts_json_object(&event)
            .then(|| serde_json::from_slice(&event).ok())
            .flatten()
            .ok_or_else(|| StreamFailure::BadChunk("chunk bytes are not a JSON object".into()))?;
        // Events without a string type are gateway keep-alives; Anthropic's SDK drops
        // them too (PROTOCOLS §2.5).
        let Some(serde_json::Value::String(kind)) = head.kind else {
            return Ok(());
        };
        if kind.is_empty() || kind.contains(['\r', '\n']) {
            return Err(StreamFailure::BadChunk(format!(
                "event type {kind:?} cannot be an SSE event name"
            )));
        }
        out.reserve(kind.len() + event.len() + 16);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Valid JSON has no raw CR/LF inside strings, so any line break is whitespace
        // between tokens; dropping it keeps `data:` on one line without re-serialising.
        out.extend(event.iter().filter(|&&byte| byte != b'\n' && byte != b'\r'));
        out.extend_from_slice(b"\n\n");
        self.events_written += 1;
        if kind == "message_stop" {
            self.saw_message_stop = true;
        }
        Ok(())
    }
}

fn starts_json_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&byte| byte == b'{')
}

fn exception_message(payload: &[u8], exception_type: &str) -> String {
    let parsed: ExceptionPayload = serde_json::from_slice(payload).unwrap_or_default();
    let mut message = match parsed.message.filter(|text| !text.is_empty()) {
        Some(text) => text,
        None => quoted_body(payload).unwrap_or_else(|| exception_type.to_owned()),
    };
    if let Some(original) = parsed.original_message.filter(|text| !text.is_empty()) {
        match parsed.original_status_code {
            Some(status) => message.push_str(&format!(" (model returned {status}: {original})")),
            None => message.push_str(&format!(" (model said: {original})")),
        }
    }
    message
}

/// A short, printable rendering of a body that is not the JSON we expected.
fn quoted_body(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('{') {
        return None;
    }
    let mut end = text.len().min(MAX_QUOTED_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

/// `{"type":"error","error":{"type":<error_type>,"message":<message>}}`
fn anthropic_error_json(error_type: &str, message: &str) -> String {
    crate::relay::error::error_json(error_type, message)
}

fn write_error_event(error_type: &str, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(anthropic_error_json(error_type, message).as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The Anthropic `error.type` for a Bedrock exception name, in any of the spellings AWS
/// uses (`ThrottlingException`, `throttlingException`, with or without the suffix).
/// `None` for names this table does not know.
pub fn anthropic_error_type_for_exception(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    let base = lower.strip_suffix("exception").unwrap_or(&lower);
    Some(match base {
        "throttling" | "servicequotaexceeded" | "toomanyrequests" => "rate_limit_error",
        "serviceunavailable" | "modelnotready" => "overloaded_error",
        "validation" => "invalid_request_error",
        "accessdenied" => "permission_error",
        "resourcenotfound" => "not_found_error",
        "invalidsignature"
        | "unrecognizedclient"
        | "expiredtoken"
        | "incompletesignature"
        | "missingauthenticationtoken"
        | "invalidclienttokenid" => "authentication_error",
        "modeltimeout" | "modelerror" | "modelstreamerror" | "internalserver"
        | "internalfailure" => "api_error",
        _ => return None,
    })
}

/// The Anthropic `error.type` a bare HTTP status stands for.
fn anthropic_error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Body shape of a Bedrock (restJson1) error.
#[derive(Deserialize, Default)]
struct BedrockErrorBody {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(rename = "__type")]
    error_type: Option<String>,
}

/// Converts a non-stream Bedrock HTTP error (PROTOCOLS §2.3) into the status and
/// Anthropic error JSON the client receives.
///
/// The exception name comes from `x-amzn-ErrorType` (the part before `:`), else the
/// body's `__type` (the part after `#`); the message from the body's `message`. The
/// status is kept, so clients' retry rules see what AWS said, with two exceptions:
/// `ServiceQuotaExceededException` (AWS: 400) becomes 429, because it is a rate limit a
/// client should back off from; and a non-error status (below 400 or above 599) becomes
/// 502.
pub fn bedrock_error_to_anthropic(
    status: u16,
    x_amzn_error_type: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let parsed: BedrockErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let from_header = x_amzn_error_type
        .and_then(|value| value.split(':').next())
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let from_body = parsed.error_type.as_deref().and_then(|value| {
        let after_namespace = value.rsplit('#').next().unwrap_or(value);
        after_namespace
            .split(':')
            .next()
            .map(str::trim)
            .filter(|name| !name.is_empty())
    });
    let exception = from_header.or(from_body);

    let upstream_status = status;
    let status = match exception.map(str::to_ascii_lowercase).as_deref() {
        Some("servicequotaexceededexception") => 429,
        _ if !(400..=599).contains(&status) => 502,
        _ => status,
    };
    let error_type = exception
        .and_then(anthropic_error_type_for_exception)
        .unwrap_or_else(|| anthropic_error_type_for_status(status));
    let message = parsed
        .message
        .filter(|text| !text.is_empty())
        .or_else(|| quoted_body(body))
        .or_else(|| exception.map(str::to_owned))
        .unwrap_or_else(|| format!("Bedrock returned HTTP {upstream_status}"));
    (status, anthropic_error_json(error_type, &message))
}

/// Fuzz entry (`fuzz/fuzz_targets/bedrock_stream.rs`): arbitrary body bytes never
/// panic, the output is whole SSE events, and it does not depend on how the body was
/// split into reads. The error mapper takes the same bytes as header and body.
pub fn fuzz_entry(data: &[u8]) {
    let run = |pieces: &[&[u8]]| {
        let mut transcoder = BedrockStreamTranscoder::new();
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in pieces {
            result = transcoder.feed(piece, &mut out);
            assert!(out.is_empty() || out.ends_with(b"\n\n"));
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = transcoder.finish(&mut out);
        }
        assert!(out.is_empty() || out.ends_with(b"\n\n"));
        (out, result, transcoder.saw_message_stop())
    };
    let split = usize::from(data.first().copied().unwrap_or_default()) % (data.len() + 1);
    let (first, second) = data.split_at(split);
    let whole = run(&[data]);
    assert_eq!(whole, run(&[first, second]));
    let (header, body) = data.split_at(data.len() / 2);
    let status = u16::from(data.last().copied().unwrap_or_default()) * 3;
    let (status, json) = bedrock_error_to_anthropic(status, std::str::from_utf8(header).ok(), body);
    assert!((400..=599).contains(&status));
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_names_in_every_spelling() {
        for name in ["throttlingException", "ThrottlingException", "throttling"] {
            assert_eq!(
                anthropic_error_type_for_exception(name),
                Some("rate_limit_error")
            );
        }
        assert_eq!(
            anthropic_error_type_for_exception("modelNotReadyException"),
            Some("overloaded_error")
        );
        assert_eq!(anthropic_error_type_for_exception("Exception"), None);
        assert_eq!(anthropic_error_type_for_exception(""), None);
    }

    #[test]
    fn error_json_escapes_the_message() {
        assert_eq!(
            anthropic_error_json("api_error", "a \"quoted\"\nline"),
            r#"{"type":"error","error":{"type":"api_error","message":"a \"quoted\"\nline"}}"#
        );
    }
}
