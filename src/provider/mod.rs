//! Providers: one file per upstream type. Each turns an Anthropic request into an
//! upstream request (`prepare`) and says how to read the upstream's answer back into
//! Anthropic bytes (`ResponseShape`). Nothing here does I/O.

pub mod anthropic;
pub mod bedrock;
pub mod bedrock_stream;
pub mod vertex;

use std::borrow::Cow;
use std::sync::Arc;

use crate::auth::client::ClientCredential;
use crate::auth::google::{find_credentials_in_process, GoogleTokenProvider};
use crate::codec::http1::Headers;
use crate::config::{ProviderConfig, ProviderType};
use crate::net::client::{Endpoint, HttpClient};
use crate::relay::error::ApiError;
use bedrock::AwsAuth;

/// What the relay parsed out of the client's request: only what routing and the
/// providers need. The body bytes are kept as received.
pub struct Inbound<'a> {
    pub body: &'a [u8],
    pub model: &'a str,
    pub stream: bool,
    pub headers: &'a Headers,
    pub query: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Messages,
    CountTokens,
    Models,
}

/// An upstream request ready for `net::client`.
pub struct Prepared<'a> {
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Cow<'a, [u8]>,
    pub upstream_model: String,
}

/// How the upstream's response body must be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseShape {
    /// Anthropic JSON or SSE, relayed byte for byte.
    PassThrough,
    /// Bedrock: AWS event-stream frames for streams, JSON otherwise.
    Bedrock,
}

/// Credentials a provider type signs or authorises its requests with, beyond pool keys.
#[derive(Debug, Clone)]
pub enum UpstreamAuth {
    /// Pool keys or forwarded client credentials only.
    Keys,
    Google(Arc<GoogleTokenProvider>),
    Aws(Arc<AwsAuth>),
}

/// A configured provider, ready to prepare requests.
#[derive(Debug, Clone)]
pub struct Provider {
    pub config: ProviderConfig,
    pub endpoint: Endpoint,
    pub auth: UpstreamAuth,
}

/// anthropic-beta values non-Anthropic upstreams are known to accept or ignore safely.
pub const DEFAULT_BETA_ALLOW: &[&str] = &[
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
    "token-efficient-tools-2025-02-19",
    "output-128k-2025-02-19",
    "context-1m-2025-08-07",
];

pub fn default_base_url(config: &ProviderConfig) -> String {
    match config.kind {
        ProviderType::Anthropic => "https://api.anthropic.com".into(),
        ProviderType::Zai => "https://api.z.ai/api/anthropic".into(),
        ProviderType::Minimax => "https://api.minimax.io/anthropic".into(),
        ProviderType::Ollama => "http://localhost:11434".into(),
        ProviderType::Bedrock => format!(
            "https://bedrock-runtime.{}.amazonaws.com",
            config.aws_region.as_deref().unwrap_or("us-east-1")
        ),
        ProviderType::Vertex => match config.gcp_region.as_deref() {
            Some("global") | None => "https://aiplatform.googleapis.com".into(),
            Some(multi @ ("us" | "eu")) => format!("https://aiplatform.{multi}.rep.googleapis.com"),
            Some(r) => format!("https://{r}-aiplatform.googleapis.com"),
        },
        ProviderType::Azure => format!(
            "https://{}.services.ai.azure.com",
            config.azure_resource_name.as_deref().unwrap_or("")
        ),
    }
}

/// Maps a client model name: exact keys first, then the longest `prefix*` key; an
/// unmapped name passes unchanged.
pub fn map_model<'m>(mapping: &'m [(String, String)], model: &'m str) -> &'m str {
    let mut best: Option<(usize, &str)> = None;
    for (from, to) in mapping {
        if let Some(prefix) = from.strip_suffix('*') {
            if model.starts_with(prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), to));
            }
        } else if from == model {
            return to;
        }
    }
    best.map_or(model, |(_, to)| to)
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Provider, String> {
        let url = config
            .base_url
            .clone()
            .unwrap_or_else(|| default_base_url(&config));
        let endpoint = Endpoint::parse(&url).map_err(|e| format!("base_url: {e}"))?;
        let auth = match config.kind {
            ProviderType::Vertex if config.enabled => {
                let explicit = config
                    .gcp_credentials_file
                    .as_deref()
                    .map(std::path::Path::new);
                let (credentials, _source) = find_credentials_in_process(explicit)
                    .map_err(|e| format!("Google credentials: {e}"))?;
                UpstreamAuth::Google(Arc::new(GoogleTokenProvider::new(credentials)))
            }
            ProviderType::Bedrock => UpstreamAuth::Aws(Arc::new(AwsAuth::new(&config))),
            _ => UpstreamAuth::Keys,
        };
        Ok(Provider {
            config,
            endpoint,
            auth,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// A cheap URL whose answer proves the upstream reachable: the base URL itself.
    pub fn health_url(&self) -> String {
        let ep = &self.endpoint;
        let scheme = if ep.https { "https" } else { "http" };
        format!("{scheme}://{}{}/", ep.authority(), ep.base_path)
    }

    /// Whether this provider's upstream understands `op` itself (else the relay answers).
    pub fn supports(&self, op: Operation) -> bool {
        match op {
            Operation::Messages => true,
            Operation::CountTokens => {
                matches!(
                    self.config.kind,
                    ProviderType::Anthropic | ProviderType::Vertex | ProviderType::Bedrock
                )
            }
            Operation::Models => self.config.kind == ProviderType::Anthropic,
        }
    }

    pub fn response_shape(&self) -> ResponseShape {
        match self.config.kind {
            ProviderType::Bedrock => ResponseShape::Bedrock,
            _ => ResponseShape::PassThrough,
        }
    }

    /// Builds the upstream request for `op`. `key` is the pool key chosen for this
    /// attempt; `forwarded` a client credential allowed to go to anthropic-type upstreams;
    /// `client` carries token-flow calls (Vertex) when a token must be fetched first.
    pub fn prepare<'a>(
        &self,
        op: Operation,
        inbound: &Inbound<'a>,
        key: Option<&str>,
        forwarded: Option<&ClientCredential>,
        client: &HttpClient,
    ) -> Result<Prepared<'a>, ApiError> {
        match &self.auth {
            UpstreamAuth::Google(tokens) => vertex::prepare(self, tokens, op, inbound, client),
            UpstreamAuth::Aws(aws) => bedrock::prepare(self, aws, op, inbound, client),
            UpstreamAuth::Keys => Ok(anthropic::prepare(self, op, inbound, key, forwarded)),
        }
    }

    /// After an upstream 401/403: forget cached tokens and credentials so the next
    /// attempt fetches new ones.
    pub fn on_unauthorized(&self) {
        match &self.auth {
            UpstreamAuth::Google(tokens) => tokens.invalidate(),
            UpstreamAuth::Aws(aws) => aws.invalidate(),
            UpstreamAuth::Keys => {}
        }
    }

    /// Turns an upstream error body into Anthropic error JSON when the provider type has
    /// its own error shape; None means the generic handling applies.
    pub fn normalize_error(
        &self,
        status: u16,
        headers: &Headers,
        body: &[u8],
    ) -> Option<(u16, Vec<u8>)> {
        match self.config.kind {
            ProviderType::Bedrock => {
                let error_type = headers.get_str("x-amzn-errortype");
                let (status, json) =
                    bedrock_stream::bedrock_error_to_anthropic(status, error_type, body);
                Some((status, json.into_bytes()))
            }
            ProviderType::Vertex => {
                let (status, json) = crate::auth::google::vertex_error_to_anthropic(status, body);
                Some((status, json.into_bytes()))
            }
            _ => None,
        }
    }

    pub fn beta_allowed(&self, beta: &str) -> bool {
        match &self.config.beta_allow {
            Some(list) => list.iter().any(|b| b == beta || b == "*"),
            None if self.config.kind == ProviderType::Anthropic => true,
            None => DEFAULT_BETA_ALLOW.contains(&beta),
        }
    }

    /// The client's anthropic-beta values this provider may receive, comma-joined.
    pub fn filtered_betas(&self, headers: &Headers) -> Option<String> {
        let kept: Vec<&str> = headers
            .get_all("anthropic-beta")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|b| !b.is_empty() && self.beta_allowed(b))
            .collect();
        (!kept.is_empty()).then(|| kept.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_mapping_exact_then_longest_prefix() {
        let m: Vec<(String, String)> = [
            ("claude-*", "a"),
            ("claude-sonnet-*", "b"),
            ("claude-sonnet-4-5", "exact"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(map_model(&m, "claude-sonnet-4-5"), "exact");
        assert_eq!(map_model(&m, "claude-sonnet-4"), "b");
        assert_eq!(map_model(&m, "claude-opus"), "a");
        assert_eq!(map_model(&m, "glm-4.6"), "glm-4.6");
    }

    #[test]
    fn default_urls() {
        let mut c = ProviderConfig::new("v", ProviderType::Vertex);
        c.gcp_region = Some("global".into());
        assert_eq!(default_base_url(&c), "https://aiplatform.googleapis.com");
        c.gcp_region = Some("us-east5".into());
        assert_eq!(
            default_base_url(&c),
            "https://us-east5-aiplatform.googleapis.com"
        );
        let mut b = ProviderConfig::new("b", ProviderType::Bedrock);
        b.aws_region = Some("eu-west-1".into());
        assert_eq!(
            default_base_url(&b),
            "https://bedrock-runtime.eu-west-1.amazonaws.com"
        );
    }
}
