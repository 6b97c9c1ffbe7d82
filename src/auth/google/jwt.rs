//! RS256 JWS signing and the two OAuth2 grant bodies Google's token endpoint takes:
//! the JWT-bearer assertion of a service account (RFC 7523) and the refresh-token grant
//! of an authorized user. Pure: the clock arrives as `now_unix`, the result is bytes to
//! send. It must not perform I/O or decide when to refresh (see `token_cache`).

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::RSA_PKCS1_SHA256;
use serde::Serialize;

use super::b64;
use super::pem::RsaSigningKey;

/// The one scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// google-auth always puts this in `aud`, even when a key file's `token_uri` differs.
pub const GOOGLE_TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// Google rejects assertions that live longer than one hour.
pub const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// `grant_type` of the service-account exchange (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// ring could not produce a signature (its random source for blinding failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignError;

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RSA signing failed")
    }
}

impl std::error::Error for SignError {}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `signing_input`. Deterministic: the same key and
/// input always give the same bytes (ring's randomness only blinds the computation).
pub fn sign_rs256(key: &RsaSigningKey, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut signature = vec![0u8; key.pair.public().modulus_len()];
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input,
            &mut signature,
        )
        .map_err(|_| SignError)?;
    Ok(signature)
}

/// `base64url(header) "." base64url(payload)`, the bytes a JWS signature covers.
pub fn signing_input(header: &[u8], payload: &[u8]) -> String {
    let mut out = b64::encode_url_no_pad(header);
    out.push('.');
    out.push_str(&b64::encode_url_no_pad(payload));
    out
}

/// A compact JWS: `signing_input "." base64url(signature)`. `header` and `payload` are
/// signed exactly as given (no re-serialisation).
pub fn sign_compact_rs256(
    key: &RsaSigningKey,
    header: &[u8],
    payload: &[u8],
) -> Result<String, SignError> {
    let mut compact = signing_input(header, payload);
    let signature = sign_rs256(key, compact.as_bytes())?;
    compact.push('.');
    compact.push_str(&b64::encode_url_no_pad(&signature));
    Ok(compact)
}

// Field order is the serialised order; the synthetic vector pins it.
#[derive(Serialize)]
struct AssertionHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'static str,
    iat: u64,
    exp: u64,
}

/// `{"alg":"RS256","typ":"JWT","kid":…}`; `kid` (the key file's `private_key_id`) lets
/// Google pick the public key without trying each one.
pub fn assertion_header_json(key_id: Option<&str>) -> String {
    let header = AssertionHeader {
        alg: "RS256",
        typ: "JWT",
        kid: key_id,
    };
    // Serialising plain strings and integers cannot fail.
    serde_json::to_string(&header).unwrap_or_default()
}

/// `{"iss","scope","aud","iat","exp"}` with `aud` fixed to Google's token endpoint and
/// `exp = iat + 3600`.
pub fn assertion_claims_json(client_email: &str, scope: &str, now_unix: u64) -> String {
    let claims = AssertionClaims {
        iss: client_email,
        scope,
        aud: GOOGLE_TOKEN_AUDIENCE,
        iat: now_unix,
        exp: now_unix.saturating_add(ASSERTION_LIFETIME_SECS),
    };
    serde_json::to_string(&claims).unwrap_or_default()
}

/// The signed JWT-bearer assertion a service account trades for an access token.
pub fn jwt_bearer_assertion(
    key: &RsaSigningKey,
    key_id: Option<&str>,
    client_email: &str,
    scope: &str,
    now_unix: u64,
) -> Result<String, SignError> {
    let header = assertion_header_json(key_id);
    let claims = assertion_claims_json(client_email, scope, now_unix);
    sign_compact_rs256(key, header.as_bytes(), claims.as_bytes())
}

/// `grant_type=urn%3A…jwt-bearer&assertion=<jwt>` for `POST token_uri`.
pub fn jwt_bearer_form_body(assertion: &str) -> String {
    form_urlencode(&[
        ("grant_type", JWT_BEARER_GRANT_TYPE),
        ("assertion", assertion),
    ])
}

/// The refresh-token grant of an `authorized_user` (gcloud ADC) credential, in
/// google-auth's field order. The result holds the client secret and refresh token:
/// send it, never log it.
pub fn refresh_token_form_body(
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
    scope: Option<&str>,
) -> String {
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("refresh_token", refresh_token),
    ];
    if let Some(scope) = scope {
        pairs.push(("scope", scope));
    }
    form_urlencode(&pairs)
}

/// `application/x-www-form-urlencoded` as browsers and Python's `urlencode` write it:
/// unreserved bytes stay, space becomes `+`, every other byte becomes `%XX` (upper case).
pub fn form_urlencode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        encode_form_component(name, &mut out);
        out.push('=');
        encode_form_component(value, &mut out);
    }
    out
}

fn encode_form_component(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_bytes_like_urlencode() {
        assert_eq!(
            form_urlencode(&[("a b", "x:y/z+1&=é~._-")]),
            "a+b=x%3Ay%2Fz%2B1%26%3D%C3%A9~._-"
        );
        assert_eq!(form_urlencode(&[]), "");
    }

    #[test]
    fn header_without_key_id_omits_kid() {
        assert_eq!(
            assertion_header_json(None),
            r#"{"alg":"RS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn claims_escape_json_specials_in_email() {
        assert_eq!(
            assertion_claims_json("a\"b@x", "s", 10),
            r#"{"iss":"a\"b@x","scope":"s","aud":"https://oauth2.googleapis.com/token","iat":10,"exp":3610}"#
        );
    }
}
