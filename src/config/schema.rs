//! The effective configuration as plain Rust values (SPEC §1.2), after defaults and
//! environment expansion. Loading, validation and reporting live in sibling modules;
//! this file only says what a valid configuration is made of and what the defaults are.

use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub providers: Vec<ProviderConfig>,
    pub routing: RoutingConfig,
    pub health: HealthConfig,
    pub cache: CacheConfig,
    pub logging: LoggingConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub timeout_ms: u64,
    pub stream_idle_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub header_timeout_ms: u64,
    /// 0 = unlimited.
    pub max_concurrent: u64,
    pub max_connections: u64,
    pub max_body_bytes: u64,
    pub tls: Option<TlsConfig>,
    pub drain_timeout_ms: u64,
    pub upstream_ca_file: Option<String>,
    pub upstream_ca_only: bool,
    pub resolver: ResolverMode,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverMode {
    Auto,
    System,
    Builtin,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthConfig {
    pub api_key: Option<String>,
    pub bearer_secret: Option<String>,
    pub allow_subscription: bool,
    pub allow_unauthenticated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderType {
    Anthropic,
    Zai,
    Ollama,
    Minimax,
    Bedrock,
    Azure,
    Vertex,
}

impl ProviderType {
    pub const ALL: [ProviderType; 7] = [
        ProviderType::Anthropic,
        ProviderType::Zai,
        ProviderType::Ollama,
        ProviderType::Minimax,
        ProviderType::Bedrock,
        ProviderType::Azure,
        ProviderType::Vertex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Anthropic => "anthropic",
            ProviderType::Zai => "zai",
            ProviderType::Ollama => "ollama",
            ProviderType::Minimax => "minimax",
            ProviderType::Bedrock => "bedrock",
            ProviderType::Azure => "azure",
            ProviderType::Vertex => "vertex",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderType> {
        ProviderType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Anthropic documents thinking signatures as valid across its own platforms.
    pub fn default_signature_family(self) -> Option<&'static str> {
        match self {
            ProviderType::Anthropic
            | ProviderType::Bedrock
            | ProviderType::Vertex
            | ProviderType::Azure => Some("claude"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStrategy {
    LeastLoaded,
    RoundRobin,
    Random,
    Weighted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyConfig {
    pub key: String,
    pub name: Option<String>,
    /// 0 = no limit, for every limit below.
    pub rpm_limit: u64,
    pub tpm_limit: u64,
    pub itpm_limit: u64,
    pub otpm_limit: u64,
    pub weight: u32,
    pub priority: i64,
}

impl KeyConfig {
    pub fn new(key: impl Into<String>) -> KeyConfig {
        KeyConfig {
            key: key.into(),
            name: None,
            rpm_limit: 0,
            tpm_limit: 0,
            itpm_limit: 0,
            otpm_limit: 0,
            weight: 1,
            priority: 1,
        }
    }

    /// What logs, metrics and /v1/providers show instead of the key: its name, else
    /// `…` and the last four characters.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let tail: String = {
            let chars: Vec<char> = self.key.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        format!("…{tail}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureAuth {
    ApiKey,
    XApiKey,
    Bearer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderType,
    pub enabled: bool,
    /// None = the type's default (SPEC §2).
    pub base_url: Option<String>,
    pub keys: Vec<KeyConfig>,
    /// Provider-level values; `effective_weight`/`effective_priority` fall back to keys[0].
    pub weight: Option<u32>,
    pub priority: Option<i64>,
    pub key_strategy: KeyStrategy,
    /// Kept in file order; lookups use longest match (see `provider::map_model`).
    pub model_mapping: Vec<(String, String)>,
    pub models: Vec<String>,
    /// None = the type's built-in default list.
    pub beta_allow: Option<Vec<String>>,
    pub headers: Vec<(String, String)>,
    pub signature_family: Option<String>,
    pub aws_region: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub aws_profile: Option<String>,
    pub azure_resource_name: Option<String>,
    pub azure_api_version: String,
    pub azure_auth: AzureAuth,
    pub gcp_project_id: Option<String>,
    pub gcp_region: Option<String>,
    pub gcp_credentials_file: Option<String>,
}

impl ProviderConfig {
    pub fn new(name: impl Into<String>, kind: ProviderType) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            kind,
            enabled: true,
            base_url: None,
            keys: Vec::new(),
            weight: None,
            priority: None,
            key_strategy: KeyStrategy::LeastLoaded,
            model_mapping: Vec::new(),
            models: Vec::new(),
            beta_allow: None,
            headers: Vec::new(),
            signature_family: None,
            aws_region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            aws_profile: None,
            azure_resource_name: None,
            azure_api_version: "2024-06-01".to_string(),
            azure_auth: AzureAuth::ApiKey,
            gcp_project_id: None,
            gcp_region: None,
            gcp_credentials_file: None,
        }
    }

    pub fn effective_weight(&self) -> u32 {
        self.weight
            .or_else(|| self.keys.first().map(|k| k.weight))
            .unwrap_or(1)
    }

    pub fn effective_priority(&self) -> i64 {
        self.priority
            .or_else(|| self.keys.first().map(|k| k.priority))
            .unwrap_or(1)
    }

    pub fn signature_family(&self) -> String {
        match (&self.signature_family, self.kind.default_signature_family()) {
            (Some(f), _) => f.clone(),
            (None, Some(f)) => f.to_string(),
            (None, None) => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Failover,
    RoundRobin,
    WeightedRoundRobin,
    Shuffle,
    ModelBased,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    Sequential,
    Race,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoutingConfig {
    pub strategy: Strategy,
    pub failover_mode: FailoverMode,
    pub failover_timeout_ms: u64,
    /// 0 = every candidate provider.
    pub max_attempts: u64,
    pub connect_timeout_ms: u64,
    pub first_byte_timeout_ms: u64,
    /// model prefix -> provider name (model_based only).
    pub model_mapping: Vec<(String, String)>,
    pub default_provider: Option<String>,
    pub debug: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub health_check_enabled: bool,
    pub health_check_interval_ms: u64,
    pub failure_threshold: u32,
    pub open_duration_ms: u64,
    pub half_open_probes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    Single,
    Ha,
    Disabled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub mode: CacheMode,
    pub max_bytes: u64,
    pub redis: RedisConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub url: Option<String>,
    pub key_prefix: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    pub level: LogLevel,
    pub format: LogFormat,
    /// None = auto (colour on a TTY).
    pub pretty: Option<bool>,
    /// None = stderr.
    pub file: Option<String>,
    pub log_request_body: bool,
    pub log_response_headers: bool,
    pub log_tls_metrics: bool,
    pub max_body_log_size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub path: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            timeout_ms: 600_000,
            stream_idle_timeout_ms: 120_000,
            idle_timeout_ms: 60_000,
            header_timeout_ms: 10_000,
            max_concurrent: 0,
            max_connections: 1024,
            max_body_bytes: 32 * 1024 * 1024,
            tls: None,
            drain_timeout_ms: 30_000,
            upstream_ca_file: None,
            upstream_ca_only: false,
            resolver: ResolverMode::Auto,
            auth: AuthConfig::default(),
        }
    }
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strategy: Strategy::Failover,
            failover_mode: FailoverMode::Sequential,
            failover_timeout_ms: 5_000,
            max_attempts: 0,
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 60_000,
            model_mapping: Vec::new(),
            default_provider: None,
            debug: false,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            health_check_enabled: true,
            health_check_interval_ms: 10_000,
            failure_threshold: 5,
            open_duration_ms: 30_000,
            half_open_probes: 3,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            mode: CacheMode::Single,
            max_bytes: 104_857_600,
            redis: RedisConfig {
                url: None,
                key_prefix: "cc-relay:".to_string(),
                timeout_ms: 50,
            },
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: LogLevel::Info,
            format: LogFormat::Text,
            pretty: None,
            file: None,
            log_request_body: false,
            log_response_headers: false,
            log_tls_metrics: false,
            max_body_log_size: 1000,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            path: "/metrics".to_string(),
        }
    }
}

impl Config {
    /// A configuration with every default and the given providers (tests build on it).
    pub fn with_providers(providers: Vec<ProviderConfig>) -> Config {
        Config {
            server: ServerConfig::default(),
            providers,
            routing: RoutingConfig::default(),
            health: HealthConfig::default(),
            cache: CacheConfig::default(),
            logging: LoggingConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }

    /// SPEC §1.4: one anthropic provider, keyed by `ANTHROPIC_API_KEY` when set, else
    /// clients' own credentials are forwarded.
    pub fn embedded_default(anthropic_api_key: Option<String>) -> Config {
        let mut provider = ProviderConfig::new("anthropic", ProviderType::Anthropic);
        let mut config = Config::with_providers(Vec::new());
        match anthropic_api_key.filter(|k| !k.is_empty()) {
            Some(key) => provider.keys.push(KeyConfig::new(key)),
            None => config.server.auth.allow_subscription = true,
        }
        config.providers.push(provider);
        config
    }

    pub fn enabled_providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.providers.iter().filter(|p| p.enabled)
    }
}
