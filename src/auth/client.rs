//! Who is calling: checks a client's credential against the proxy's own secrets
//! (`server.auth`), in constant time, and tells the relay whether a credential that is not
//! ours may be forwarded upstream (subscription pass-through, SPEC §3 "Auth").

use crate::codec::http1::Headers;
use crate::config::AuthConfig;

/// The credential a client presented, in the header style it used.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredential {
    ApiKey(String),
    Bearer(String),
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::ApiKey(_) => f.write_str("ApiKey(***)"),
            ClientCredential::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl ClientCredential {
    pub fn secret(&self) -> &str {
        match self {
            ClientCredential::ApiKey(s) | ClientCredential::Bearer(s) => s,
        }
    }

    /// The header that carries it upstream, unchanged.
    pub fn header(&self) -> (String, Vec<u8>) {
        match self {
            ClientCredential::ApiKey(k) => ("x-api-key".into(), k.as_bytes().to_vec()),
            ClientCredential::Bearer(t) => {
                ("authorization".into(), format!("Bearer {t}").into_bytes())
            }
        }
    }
}

/// `x-api-key` wins over `Authorization: Bearer` when a client sends both.
pub fn credential_of(headers: &Headers) -> Option<ClientCredential> {
    if let Some(k) = headers.get_str("x-api-key").filter(|k| !k.is_empty()) {
        return Some(ClientCredential::ApiKey(k.to_string()));
    }
    let auth = headers.get_str("authorization")?;
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .then(|| ClientCredential::Bearer(token.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// The client proved it knows one of our secrets; nothing of it goes upstream.
    Proxy,
    /// No secret is configured, so everyone may use the relay; no credential to forward.
    Open,
    /// A credential that is not ours, accepted to be forwarded to anthropic-type upstreams.
    PassThrough(ClientCredential),
    Rejected(&'static str),
}

impl AuthDecision {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, AuthDecision::Rejected(_))
    }

    pub fn forwarded_credential(&self) -> Option<&ClientCredential> {
        match self {
            AuthDecision::PassThrough(c) => Some(c),
            _ => None,
        }
    }
}

/// Prefix of the tokens `cc-relay config cc init` generates.
pub const RELAY_TOKEN_PREFIX: &str = "ccr-";

/// Compares without an early exit, so timing does not reveal how much of a guess matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

pub fn authenticate(auth: &AuthConfig, headers: &Headers) -> AuthDecision {
    let presented = credential_of(headers);
    let secrets: Vec<&str> = [auth.api_key.as_deref(), auth.bearer_secret.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(cred) = &presented {
        // Check every secret, matched or not, to keep the timing flat.
        let mut ours = false;
        for s in &secrets {
            ours |= constant_time_eq(cred.secret().as_bytes(), s.as_bytes());
        }
        if ours {
            return AuthDecision::Proxy;
        }
    }
    // `config cc init` writes tokens starting `ccr-`: they belong to a relay, so one we do
    // not know is a misconfiguration, never a credential to forward upstream.
    if presented
        .as_ref()
        .is_some_and(|c| c.secret().starts_with(RELAY_TOKEN_PREFIX))
    {
        return AuthDecision::Rejected(
            "this cc-relay token is not configured here (server.auth.api_key or bearer_secret)",
        );
    }
    match (presented, secrets.is_empty(), auth.allow_subscription) {
        (Some(cred), _, true) => AuthDecision::PassThrough(cred),
        (_, true, _) => AuthDecision::Open,
        (Some(_), false, false) => AuthDecision::Rejected("invalid x-api-key or bearer token"),
        (None, false, _) => {
            AuthDecision::Rejected("missing x-api-key or Authorization: Bearer header")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in list {
            h.push(*n, v.as_bytes());
        }
        h
    }

    fn auth(api_key: Option<&str>, bearer: Option<&str>, sub: bool) -> AuthConfig {
        AuthConfig {
            api_key: api_key.map(String::from),
            bearer_secret: bearer.map(String::from),
            allow_subscription: sub,
            allow_unauthenticated: false,
        }
    }

    #[test]
    fn both_header_styles_authenticate() {
        let a = auth(Some("s1"), Some("s2"), false);
        assert_eq!(
            authenticate(&a, &headers(&[("x-api-key", "s1")])),
            AuthDecision::Proxy
        );
        assert_eq!(
            authenticate(&a, &headers(&[("authorization", "Bearer s1")])),
            AuthDecision::Proxy
        );
        assert_eq!(
            authenticate(&a, &headers(&[("Authorization", "bearer s2")])),
            AuthDecision::Proxy
        );
        assert!(!authenticate(&a, &headers(&[("x-api-key", "s3")])).is_allowed());
        assert!(!authenticate(&a, &headers(&[])).is_allowed());
    }

    #[test]
    fn subscription_credentials_pass_through_only_when_allowed() {
        let a = auth(Some("ours"), None, true);
        let d = authenticate(&a, &headers(&[("authorization", "Bearer sk-ant-oat-x")]));
        assert_eq!(
            d,
            AuthDecision::PassThrough(ClientCredential::Bearer("sk-ant-oat-x".into()))
        );
        assert_eq!(
            authenticate(&a, &headers(&[("x-api-key", "ours")])),
            AuthDecision::Proxy
        );
        let open = auth(None, None, false);
        assert_eq!(
            authenticate(&open, &headers(&[("x-api-key", "anything")])),
            AuthDecision::Open
        );
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = ClientCredential::Bearer("topsecret".into());
        assert!(!format!("{c:?}").contains("topsecret"));
    }

    #[test]
    fn unknown_relay_tokens_are_never_forwarded() {
        let a = auth(None, Some("ccr-known"), true);
        assert_eq!(
            authenticate(&a, &headers(&[("authorization", "Bearer ccr-known")])),
            AuthDecision::Proxy
        );
        let d = authenticate(&a, &headers(&[("authorization", "Bearer ccr-stale")]));
        assert!(!d.is_allowed());
        assert!(d.forwarded_credential().is_none());
    }
}
