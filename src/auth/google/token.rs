//! Google token-endpoint and metadata-server answers -> an access token or a typed
//! error. Pure: takes the status and body the transport returned plus `now_unix`.
//! A success body holds a live token, so no error built here ever quotes the body.

use serde_json::Value;

use super::{GoogleAuthError, Secret};

/// Used when an answer has no `expires_in`: Google tokens live one hour.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;

/// Longest `error`/`error_description` text kept from an error answer.
const MAX_ERROR_TEXT: usize = 300;

/// An OAuth2 access token and the moment (Unix seconds) it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access_token: Secret,
    /// Almost always `Bearer`.
    pub token_type: String,
    pub expires_at_unix: u64,
}

impl Token {
    /// The `Authorization` header value: `Bearer ya29.…`.
    pub fn authorization_value(&self) -> String {
        format!("{} {}", self.token_type, self.access_token.expose())
    }
}

/// Reads a token answer (`{"access_token","expires_in","token_type"}`) from a token
/// endpoint or the metadata server. Non-2xx statuses become `TokenEndpoint` errors with
/// Google's `error`/`error_description` when present.
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    now_unix: u64,
) -> Result<Token, GoogleAuthError> {
    if !(200..300).contains(&status) {
        return Err(parse_oauth_error(status, body));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(GoogleAuthError::BadTokenResponse(
            "body is not a JSON object",
        ));
    };
    let access_token = match fields.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        Some(_) => {
            return Err(GoogleAuthError::BadTokenResponse(
                "'access_token' is not a non-empty string",
            ))
        }
        None => return Err(GoogleAuthError::BadTokenResponse("no 'access_token' field")),
    };
    // google-auth tolerates `expires_in` as a string; so do we.
    let lifetime = match fields.get("expires_in") {
        None | Some(Value::Null) => DEFAULT_TOKEN_LIFETIME_SECS,
        Some(Value::Number(number)) => number.as_u64().ok_or(GoogleAuthError::BadTokenResponse(
            "'expires_in' is not a whole number of seconds",
        ))?,
        Some(Value::String(text)) => text.trim().parse::<u64>().map_err(|_| {
            GoogleAuthError::BadTokenResponse("'expires_in' is not a whole number of seconds")
        })?,
        Some(_) => {
            return Err(GoogleAuthError::BadTokenResponse(
                "'expires_in' is not a number",
            ))
        }
    };
    let token_type = match fields.get("token_type") {
        Some(Value::String(kind)) if is_token_type(kind) => kind.clone(),
        None | Some(Value::Null) => "Bearer".to_string(),
        Some(_) => {
            return Err(GoogleAuthError::BadTokenResponse(
                "'token_type' is not a valid token type",
            ))
        }
    };
    if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
        // It becomes a header value; anything else would break the request line.
        return Err(GoogleAuthError::BadTokenResponse(
            "'access_token' has characters not allowed in a header",
        ));
    }
    Ok(Token {
        access_token: Secret::new(access_token),
        token_type,
        expires_at_unix: now_unix.saturating_add(lifetime),
    })
}

fn is_token_type(kind: &str) -> bool {
    !kind.is_empty() && kind.len() <= 32 && kind.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Google's OAuth error answer `{"error":"invalid_grant","error_description":"…"}`
/// (the metadata server sometimes answers plain text; then only the status is kept).
pub fn parse_oauth_error(status: u16, body: &[u8]) -> GoogleAuthError {
    let fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Some(fields),
        _ => None,
    };
    let text_field = |name: &str| -> Option<String> {
        match fields.as_ref()?.get(name)? {
            Value::String(text) => Some(clip(text)),
            // Some Google front ends nest `{"error":{"message":…,"status":…}}`.
            Value::Object(inner) => match inner.get("message").or_else(|| inner.get("status"))? {
                Value::String(text) => Some(clip(text)),
                _ => None,
            },
            _ => None,
        }
    };
    let error = text_field("error");
    let description = text_field("error_description");
    let retryable = matches!(status, 408 | 429 | 500 | 503 | 504)
        || [&error, &description].into_iter().flatten().any(|text| {
            matches!(
                text.as_str(),
                "internal_failure" | "server_error" | "temporarily_unavailable"
            )
        });
    GoogleAuthError::TokenEndpoint {
        status,
        error,
        description,
        retryable,
    }
}

fn clip(text: &str) -> String {
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_TEXT)
        .collect();
    printable
}
