//! Anthropic-compatible upstreams: `anthropic`, `zai`, `minimax`, `ollama` and `azure`
//! (AI Foundry's `/anthropic` endpoint) speak the Messages API themselves, so the request
//! goes to `{base}/v1/messages` with the client's bytes (only `model` replaced when
//! mapped) and the response is relayed byte for byte. What differs per type is the auth
//! header and, for Azure, the `/anthropic` path prefix (SPEC §2 table).

use std::borrow::Cow;

use super::{map_model, Inbound, Operation, Prepared, Provider};
use crate::auth::client::ClientCredential;
use crate::config::{AzureAuth, ProviderConfig, ProviderType};

/// Client headers that describe the request itself and are safe to pass on. Credentials,
/// addresses, cookies and encodings are never in this list.
fn forwardable(name: &str) -> bool {
    const EXACT: [&str; 5] = [
        "content-type",
        "accept",
        "user-agent",
        "anthropic-version",
        "x-app",
    ];
    EXACT.iter().any(|h| h.eq_ignore_ascii_case(name))
        || name
            .as_bytes()
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"x-stainless-"))
}

pub fn prepare<'a>(
    provider: &Provider,
    op: Operation,
    inbound: &Inbound<'a>,
    key: Option<&str>,
    forwarded: Option<&ClientCredential>,
) -> Prepared<'a> {
    let config = &provider.config;
    let upstream_model = map_model(&config.model_mapping, inbound.model).to_string();
    let body: Cow<'a, [u8]> = if upstream_model != inbound.model && op != Operation::Models {
        let encoded = serde_json::to_vec(&upstream_model).unwrap_or_default();
        match crate::codec::json::replace_top_level_value(inbound.body, "model", &encoded) {
            Some(b) => Cow::Owned(b),
            None => Cow::Borrowed(inbound.body),
        }
    } else {
        Cow::Borrowed(inbound.body)
    };

    let path = match op {
        Operation::Messages => "/v1/messages",
        Operation::CountTokens => "/v1/messages/count_tokens",
        Operation::Models => "/v1/models",
    };
    let base = &provider.endpoint.base_path;
    // Foundry serves the Messages API under /anthropic; accept a base_url that already
    // ends there (the form Anthropic's SDK documents) without doubling it.
    let prefix = match config.kind {
        ProviderType::Azure if !base.ends_with("/anthropic") => "/anthropic",
        _ => "",
    };
    let mut target = format!("{base}{prefix}{path}");
    if let Some(q) = inbound.query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }

    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(12);
    let mut has_version = false;
    for (name, value) in inbound.headers.iter() {
        if forwardable(name) {
            has_version |= name.eq_ignore_ascii_case("anthropic-version");
            headers.push((name.to_ascii_lowercase(), value.to_vec()));
        }
    }
    if !has_version {
        headers.push(("anthropic-version".into(), b"2023-06-01".to_vec()));
    }
    if op == Operation::Messages && !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), b"application/json".to_vec()));
    }
    if let Some(betas) = provider.filtered_betas(inbound.headers) {
        headers.push(("anthropic-beta".into(), betas.into_bytes()));
    }
    push_auth(&mut headers, config, key, forwarded);
    for (name, value) in &config.headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.as_bytes().to_vec()));
    }

    Prepared {
        method: if op == Operation::Models {
            "GET"
        } else {
            "POST"
        },
        target,
        headers,
        body,
        upstream_model,
    }
}

fn push_auth(
    headers: &mut Vec<(String, Vec<u8>)>,
    config: &ProviderConfig,
    key: Option<&str>,
    forwarded: Option<&ClientCredential>,
) {
    let bearer = |k: &str| {
        (
            "authorization".to_string(),
            format!("Bearer {k}").into_bytes(),
        )
    };
    let api_key = |k: &str| ("x-api-key".to_string(), k.as_bytes().to_vec());
    match (config.kind, key) {
        // A subscription user's own credential wins: that is what they asked us to forward.
        (ProviderType::Anthropic, _) if forwarded.is_some() => {
            if let Some(c) = forwarded {
                headers.push(c.header());
            }
        }
        (ProviderType::Anthropic, Some(k)) => headers.push(api_key(k)),
        (ProviderType::Zai, Some(k)) => {
            headers.push(api_key(k));
            headers.push(bearer(k));
        }
        (ProviderType::Minimax | ProviderType::Ollama, Some(k)) => headers.push(bearer(k)),
        (ProviderType::Azure, Some(k)) => headers.push(match config.azure_auth {
            AzureAuth::ApiKey => ("api-key".to_string(), k.as_bytes().to_vec()),
            AzureAuth::XApiKey => api_key(k),
            AzureAuth::Bearer => bearer(k),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::http1::Headers;

    fn provider(kind: ProviderType, base: &str) -> Provider {
        let mut c = ProviderConfig::new("p", kind);
        c.base_url = Some(base.into());
        Provider::new(c).unwrap()
    }

    fn anthropic_prepare<'a>(
        p: &Provider,
        inbound: &Inbound<'a>,
        key: Option<&str>,
        forwarded: Option<&ClientCredential>,
    ) -> Prepared<'a> {
        prepare(p, Operation::Messages, inbound, key, forwarded)
    }

    fn header<'h>(p: &'h Prepared<'_>, name: &str) -> Option<&'h [u8]> {
        p.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn zai_gets_both_auth_headers_and_base_path() {
        let p = provider(ProviderType::Zai, "https://api.z.ai/api/anthropic");
        let mut h = Headers::default();
        h.push("x-api-key", b"proxy-secret".to_vec());
        h.push("anthropic-version", b"2023-06-01".to_vec());
        h.push("x-forwarded-for", b"10.0.0.1".to_vec());
        let body = br#"{"model":"m","messages":[]}"#;
        let inbound = Inbound {
            body,
            model: "m",
            stream: false,
            headers: &h,
            query: Some("beta=true"),
        };
        let out = anthropic_prepare(&p, &inbound, Some("zk"), None);
        assert_eq!(out.target, "/api/anthropic/v1/messages?beta=true");
        assert_eq!(header(&out, "x-api-key"), Some(&b"zk"[..]));
        assert_eq!(header(&out, "authorization"), Some(&b"Bearer zk"[..]));
        assert_eq!(header(&out, "x-forwarded-for"), None);
        assert!(matches!(out.body, Cow::Borrowed(_)));
    }

    #[test]
    fn mapped_model_changes_only_the_model_bytes() {
        let mut c = ProviderConfig::new("o", ProviderType::Ollama);
        c.model_mapping = vec![("claude-*".into(), "qwen3:8b".into())];
        let p = Provider::new(c).unwrap();
        let h = Headers::default();
        let body = br#"{"model" : "claude-sonnet-4-5","x_unknown":{"a":[1]}}"#;
        let inbound = Inbound {
            body,
            model: "claude-sonnet-4-5",
            stream: true,
            headers: &h,
            query: None,
        };
        let out = anthropic_prepare(&p, &inbound, None, None);
        assert_eq!(
            &out.body[..],
            br#"{"model" : "qwen3:8b","x_unknown":{"a":[1]}}"#
        );
        assert_eq!(header(&out, "authorization"), None);
        assert_eq!(header(&out, "anthropic-version"), Some(&b"2023-06-01"[..]));
    }

    #[test]
    fn subscription_credential_goes_only_to_anthropic() {
        let cred = ClientCredential::Bearer("sk-ant-oat".into());
        let h = Headers::default();
        let inbound = Inbound {
            body: b"{}",
            model: "m",
            stream: false,
            headers: &h,
            query: None,
        };
        let a = provider(ProviderType::Anthropic, "https://api.anthropic.com");
        let out = anthropic_prepare(&a, &inbound, Some("pool"), Some(&cred));
        assert_eq!(
            header(&out, "authorization"),
            Some(&b"Bearer sk-ant-oat"[..])
        );
        assert_eq!(header(&out, "x-api-key"), None);
        let m = provider(ProviderType::Minimax, "https://api.minimax.io/anthropic");
        let out = anthropic_prepare(&m, &inbound, Some("mk"), Some(&cred));
        assert_eq!(header(&out, "authorization"), Some(&b"Bearer mk"[..]));
    }

    #[test]
    fn azure_path_prefix_and_auth_styles() {
        let h = Headers::default();
        let inbound = Inbound {
            body: b"{}",
            model: "m",
            stream: false,
            headers: &h,
            query: None,
        };
        for (base, auth, header_name, value) in [
            (
                "https://r.services.ai.azure.com",
                AzureAuth::ApiKey,
                "api-key",
                "ak",
            ),
            (
                "https://r.services.ai.azure.com/anthropic/",
                AzureAuth::XApiKey,
                "x-api-key",
                "ak",
            ),
            (
                "https://r.services.ai.azure.com",
                AzureAuth::Bearer,
                "authorization",
                "Bearer ak",
            ),
        ] {
            let mut c = ProviderConfig::new("az", ProviderType::Azure);
            c.base_url = Some(base.into());
            c.azure_auth = auth;
            let p = Provider::new(c).unwrap();
            let out = anthropic_prepare(&p, &inbound, Some("ak"), None);
            assert_eq!(out.target, "/anthropic/v1/messages");
            assert_eq!(header(&out, header_name), Some(value.as_bytes()));
        }
    }
}
