//! AWS Bedrock Runtime (InvokeModel family): the model moves into the path, the body
//! loses `model` and `stream` and gains `anthropic_version: bedrock-2023-05-31` and the
//! allowed betas as an `anthropic_beta` array; the request is SigV4-signed (service
//! `bedrock`) over the exact bytes sent. Streams come back as AWS event-stream frames,
//! which `bedrock_stream` turns into Anthropic SSE (PROTOCOLS.md §1–§3).

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{map_model, Inbound, Operation, Prepared, Provider};
use crate::auth::aws_credentials::{
    resolve_credentials, AwsCredentials, ConfiguredAws, CredentialSources, FetchRequest,
    FetchResponse,
};
use crate::auth::sigv4::{
    bedrock_count_tokens_path, bedrock_model_path, sign, SignableRequest, SigningParams,
    UtcDateTime,
};
use crate::codec::json;
use crate::config::ProviderConfig;
use crate::net::client::HttpClient;
use crate::relay::error::ApiError;

pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Container and instance metadata endpoints answer fast or not at all.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// The credentials chain of SPEC §2, resolved on first use and again shortly before
/// temporary credentials expire; one refresh at a time (the lock is held while fetching).
#[derive(Debug)]
pub struct AwsAuth {
    configured: ConfiguredAws,
    cached: Mutex<Option<AwsCredentials>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AwsAuth {
    pub fn new(config: &ProviderConfig) -> AwsAuth {
        AwsAuth {
            configured: ConfiguredAws {
                access_key_id: config.aws_access_key_id.clone(),
                secret_access_key: config.aws_secret_access_key.clone(),
                session_token: config.aws_session_token.clone(),
                profile: config.aws_profile.clone(),
            },
            cached: Mutex::new(None),
        }
    }

    pub fn credentials(&self, client: &HttpClient) -> Result<AwsCredentials, ApiError> {
        let mut cached = match self.cached.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = cached.as_ref().filter(|c| !c.needs_refresh(now_unix())) {
            return Ok(c.clone());
        }
        let env = |name: &str| std::env::var(name).ok();
        let read_file = |path: &str| std::fs::read_to_string(path).ok();
        let mut fetch = |req: &FetchRequest| -> Result<FetchResponse, String> {
            let headers = req
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect();
            client
                .fetch(
                    req.method,
                    &req.url,
                    headers,
                    b"",
                    METADATA_TIMEOUT,
                    64 * 1024,
                )
                .map(|(status, body)| FetchResponse { status, body })
                .map_err(|e| e.to_string())
        };
        let mut sources = CredentialSources {
            env: &env,
            read_file: &read_file,
            fetch: &mut fetch,
        };
        let resolved = resolve_credentials(&self.configured, &mut sources)
            .map_err(|e| ApiError::new(502, format!("AWS credentials: {e}")))?;
        *cached = Some(resolved.credentials.clone());
        Ok(resolved.credentials)
    }

    /// After an upstream 403/401: resolve again on the next request.
    pub fn invalidate(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = None;
        }
    }
}

/// The InvokeModel body: the client's bytes without `model`/`stream`, with the Bedrock
/// version (unless the client set one) and the allowed betas as a body array.
fn invoke_body(provider: &Provider, inbound: &Inbound<'_>) -> Result<Vec<u8>, ApiError> {
    let not_object = || ApiError::invalid_request("request body must be a JSON object");
    let mut body = json::remove_top_level_field(inbound.body, "model").ok_or_else(not_object)?;
    body = json::remove_top_level_field(&body, "stream").ok_or_else(not_object)?;
    if json::top_level_value_span(&body, "anthropic_version").is_none() {
        let version = serde_json::to_vec(BEDROCK_ANTHROPIC_VERSION).unwrap_or_default();
        body = json::insert_top_level_field(&body, "anthropic_version", &version)
            .ok_or_else(not_object)?;
    }
    if let Some(betas) = provider.filtered_betas(inbound.headers) {
        let list: Vec<&str> = betas.split(',').collect();
        let encoded = serde_json::to_vec(&list).unwrap_or_default();
        body = json::insert_top_level_field(&body, "anthropic_beta", &encoded)
            .ok_or_else(not_object)?;
    }
    Ok(body)
}

pub fn prepare<'a>(
    provider: &Provider,
    aws: &AwsAuth,
    op: Operation,
    inbound: &Inbound<'a>,
    client: &HttpClient,
) -> Result<Prepared<'a>, ApiError> {
    let config = &provider.config;
    let region = config.aws_region.as_deref().unwrap_or("us-east-1");
    let upstream_model = map_model(&config.model_mapping, inbound.model).to_string();
    let invoke = invoke_body(provider, inbound)?;
    let (path, body, accept) = match op {
        Operation::CountTokens => {
            let wrapped = serde_json::json!({
                "input": {"invokeModel": {"body": crate::codec::base64::encode(&invoke)}}
            });
            (
                bedrock_count_tokens_path(&upstream_model),
                wrapped.to_string().into_bytes(),
                "application/json",
            )
        }
        _ if inbound.stream => (
            bedrock_model_path(&upstream_model, true),
            invoke,
            "application/vnd.amazon.eventstream",
        ),
        _ => (
            bedrock_model_path(&upstream_model, false),
            invoke,
            "application/json",
        ),
    };
    let target = format!("{}{}", provider.endpoint.base_path, path);
    let host = provider.endpoint.authority();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        ("content-type".into(), "application/json".into()),
        ("accept".into(), accept.into()),
    ];
    for (name, value) in &config.headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_ascii_lowercase(), value.clone()));
    }
    let credentials = aws.credentials(client)?;
    let to_sign: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed = sign(
        &SignableRequest {
            method: "POST",
            path: &target,
            query: "",
            headers: &to_sign,
            body: &body,
        },
        &SigningParams::new(
            &credentials,
            region,
            "bedrock",
            UtcDateTime::from_unix_seconds(now_unix() as i64),
        ),
    );
    let mut wire_headers: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .filter(|(n, _)| n != "host")
        .map(|(n, v)| (n, v.into_bytes()))
        .collect();
    for (name, value) in signed.headers {
        wire_headers.push((name.to_string(), value.into_bytes()));
    }
    Ok(Prepared {
        method: "POST",
        target,
        headers: wire_headers,
        body: Cow::Owned(body),
        upstream_model,
    })
}

/// Bedrock's CountTokens answer `{"inputTokens":N}` in Anthropic's shape.
pub fn count_tokens_to_anthropic(body: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Counted {
        #[serde(rename = "inputTokens")]
        input_tokens: u64,
    }
    let counted: Counted = serde_json::from_slice(body).ok()?;
    Some(
        serde_json::json!({"input_tokens": counted.input_tokens})
            .to_string()
            .into_bytes(),
    )
}
