//! The relay's one error type and its only rendering: Anthropic error JSON
//! `{"type":"error","error":{"type":..,"message":..}}` with the matching HTTP status
//! (PROTOCOLS.md §7.3). Every layer below converts into `ApiError` once, here at the edge.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    /// Seconds for a `retry-after` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: kind_for_status(status),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn body(&self) -> Vec<u8> {
        error_json(self.kind, &self.message).into_bytes()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The Anthropic `error.type` for an HTTP status.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[derive(serde::Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorBody<'a>,
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// `{"type":"error","error":{"type":..,"message":..}}`, fields in Anthropic's order.
pub fn error_json(kind: &str, message: &str) -> String {
    let envelope = ErrorEnvelope {
        kind: "error",
        error: ErrorBody { kind, message },
    };
    // Two string fields always serialise; the fallback only keeps this total.
    serde_json::to_string(&envelope).unwrap_or_else(|_| {
        r#"{"type":"error","error":{"type":"api_error","message":"error"}}"#.into()
    })
}

/// The in-stream form used after a 200 head was sent (PROTOCOLS.md §7.2).
pub fn error_event(kind: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    crate::codec::sse::write_event(&mut out, "error", &error_json(kind, message));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropic_types() {
        assert_eq!(kind_for_status(400), "invalid_request_error");
        assert_eq!(kind_for_status(418), "invalid_request_error");
        assert_eq!(kind_for_status(429), "rate_limit_error");
        assert_eq!(kind_for_status(502), "api_error");
        assert_eq!(kind_for_status(529), "overloaded_error");
    }

    #[test]
    fn body_is_anthropic_json() {
        let e = ApiError::new(404, "no \"route\"");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "not_found_error");
        assert_eq!(v["error"]["message"], "no \"route\"");
    }
}
