//! Google Vertex AI (Claude partner models): the model moves from the body into the URL
//! (`…/publishers/anthropic/models/{model}:rawPredict` or `:streamRawPredict`), the body
//! gains `anthropic_version: vertex-2023-10-16` and keeps `stream`; auth is a Google
//! OAuth2 bearer token from `auth::google`. Responses are Anthropic JSON/SSE already;
//! Google's own error JSON is mapped to Anthropic's (PROTOCOLS.md §4).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{map_model, Inbound, Operation, Prepared, Provider};
use crate::auth::google::{GoogleTokenProvider, TokenTransport};
use crate::net::client::HttpClient;
use crate::relay::error::ApiError;

pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

const TOKEN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
const TOKEN_BODY_LIMIT: usize = 1024 * 1024;

/// The token flow's HTTP calls go through the same client (proxy, CA file, pool).
impl TokenTransport for HttpClient {
    fn post_form(&self, url: &str, body: &str) -> Result<(u16, Vec<u8>), String> {
        let headers = vec![(
            "content-type".to_string(),
            b"application/x-www-form-urlencoded".to_vec(),
        )];
        self.fetch(
            "POST",
            url,
            headers,
            body.as_bytes(),
            TOKEN_CALL_TIMEOUT,
            TOKEN_BODY_LIMIT,
        )
        .map_err(|e| e.to_string())
    }

    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        self.fetch(
            "GET",
            url,
            headers,
            b"",
            TOKEN_CALL_TIMEOUT,
            TOKEN_BODY_LIMIT,
        )
        .map_err(|e| e.to_string())
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Model ids go into one path segment: keep them to the characters Vertex ids use.
fn path_segment(model: &str) -> Result<&str, ApiError> {
    let ok = !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(model)
    } else {
        Err(ApiError::invalid_request(format!(
            "model {model:?} is not a valid Vertex AI model id"
        )))
    }
}

pub fn prepare<'a>(
    provider: &Provider,
    tokens: &GoogleTokenProvider,
    op: Operation,
    inbound: &Inbound<'a>,
    client: &HttpClient,
) -> Result<Prepared<'a>, ApiError> {
    let config = &provider.config;
    let project = config.gcp_project_id.as_deref().unwrap_or_default();
    let region = config.gcp_region.as_deref().unwrap_or("global");
    let upstream_model = map_model(&config.model_mapping, inbound.model).to_string();
    let base = format!(
        "{}/v1/projects/{project}/locations/{region}/publishers/anthropic/models",
        provider.endpoint.base_path
    );
    let (target, body) = match op {
        Operation::CountTokens => {
            // count-tokens keeps `model` in the body (as the SDK sends it).
            let mut body = inbound.body.to_vec();
            if upstream_model != inbound.model {
                let encoded = serde_json::to_vec(&upstream_model).unwrap_or_default();
                body = crate::codec::json::replace_top_level_value(&body, "model", &encoded)
                    .unwrap_or(body);
            }
            (format!("{base}/count-tokens:rawPredict"), body)
        }
        _ => {
            let method = if inbound.stream {
                "streamRawPredict"
            } else {
                "rawPredict"
            };
            let segment = path_segment(&upstream_model)?;
            let without_model = crate::codec::json::remove_top_level_field(inbound.body, "model")
                .ok_or_else(|| {
                ApiError::invalid_request("request body must be a JSON object")
            })?;
            (format!("{base}/{segment}:{method}"), without_model)
        }
    };
    let version = serde_json::to_vec(VERTEX_ANTHROPIC_VERSION).unwrap_or_default();
    let body = crate::codec::json::insert_top_level_field(&body, "anthropic_version", &version)
        .ok_or_else(|| ApiError::invalid_request("request body must be a JSON object"))?;

    let token = tokens
        .token(now_unix(), client)
        .map_err(|e| ApiError::new(502, format!("Vertex AI credentials: {e}")))?;
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        (
            "authorization".to_string(),
            format!("Bearer {}", token.access_token.expose()).into_bytes(),
        ),
    ];
    if let Some(betas) = provider.filtered_betas(inbound.headers) {
        headers.push(("anthropic-beta".into(), betas.into_bytes()));
    }
    if let Some(quota) = tokens.credentials().quota_project_id() {
        headers.push(("x-goog-user-project".into(), quota.as_bytes().to_vec()));
    }
    for (name, value) in &config.headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.as_bytes().to_vec()));
    }
    Ok(Prepared {
        method: "POST",
        target,
        headers,
        body: Cow::Owned(body),
        upstream_model,
    })
}
