//! Vertex AI error answers -> Anthropic error JSON. Vertex's front end (quota,
//! permissions, unknown project or model) answers Google-style
//! `{"error":{"code","message","status"}}`, often wrapped in a one-element array; the
//! model itself answers in Anthropic's `{"type":"error",…}` shape. Clients only know the
//! latter, so everything leaves here in that shape. Pure: bytes in, bytes out.

use serde_json::Value;

/// Longest upstream message repeated to the client.
const MAX_MESSAGE_CHARS: usize = 2000;

/// Maps a Vertex error answer to the `(status, body)` an Anthropic client expects.
/// The HTTP status is kept (a non-error status falls back to the body's `code`, else
/// 500); `error.type` follows the status as Anthropic's API assigns it.
pub fn vertex_error_to_anthropic(status: u16, body: &[u8]) -> (u16, String) {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let was_array = matches!(parsed, Some(Value::Array(_)));
    let object = match parsed {
        Some(Value::Array(items)) => items.into_iter().next(),
        other => other,
    };

    if let Some(object) = object.as_ref().filter(|value| is_anthropic_error(value)) {
        let status = if is_error_status(status) { status } else { 500 };
        // Already in the client's shape: relay the original bytes untouched when we can.
        let json = if was_array {
            serde_json::to_string(object).unwrap_or_default()
        } else {
            String::from_utf8_lossy(body).into_owned()
        };
        return (status, json);
    }

    let google = object.as_ref().and_then(|value| value.get("error"));
    let (body_code, message) = match google {
        Some(Value::Object(error)) => {
            let code = error.get("code").and_then(Value::as_u64);
            let text = error.get("message").and_then(Value::as_str).unwrap_or("");
            let message = match error.get("status").and_then(Value::as_str) {
                Some(name) => format!("Vertex AI {name}: {text}"),
                None => format!("Vertex AI: {text}"),
            };
            (code, message)
        }
        // OAuth-style `{"error":"…","error_description":"…"}`.
        Some(Value::String(error)) => {
            let message = match object
                .as_ref()
                .and_then(|value| value.get("error_description"))
            {
                Some(Value::String(description)) => format!("Vertex AI: {error}: {description}"),
                _ => format!("Vertex AI: {error}"),
            };
            (None, message)
        }
        _ => (None, opaque_message(status, body)),
    };

    let status = if is_error_status(status) {
        status
    } else {
        body_code
            .and_then(|code| u16::try_from(code).ok())
            .filter(|&code| is_error_status(code))
            .unwrap_or(500)
    };
    let message = clip(&message);
    (
        status,
        crate::relay::error::error_json(anthropic_error_type(status), &message),
    )
}

/// Anthropic's `error.type` for an HTTP status (PROTOCOLS §7.3).
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        // 400 and every 4xx without a type of its own.
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

fn is_error_status(status: u16) -> bool {
    (400..=599).contains(&status)
}

fn is_anthropic_error(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("error")
        && value
            .get("error")
            .and_then(|error| error.get("type"))
            .and_then(Value::as_str)
            .is_some()
}

/// A body that is not JSON (an HTML page from a load balancer, say): say so, quoting
/// its start so the operator can recognise it.
fn opaque_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("Vertex AI returned HTTP {status}")
    } else {
        format!("Vertex AI returned HTTP {status}: {text}")
    }
}

fn clip(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect()
}
