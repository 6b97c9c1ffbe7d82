//! `cc-relay config show`: the effective configuration as pretty JSON, in the same shape
//! and key order as the file schema, with every secret replaced by `"***"`: key-pool
//! keys, client secrets, AWS credentials, secret-looking extra headers, and passwords
//! inside URLs. It must never print a secret; it does no I/O.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::schema::*;

pub const REDACTED: &str = "***";

/// A JSON value whose objects keep the order they were built in.
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Int(i) => s.serialize_i64(*i),
            Json::UInt(u) => s.serialize_u64(*u),
            Json::Str(v) => s.serialize_str(v),
            Json::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Obj(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn obj(entries: Vec<(&str, Json)>) -> Json {
    Json::Obj(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn s(v: &str) -> Json {
    Json::Str(v.to_string())
}

fn opt(v: &Option<String>) -> Json {
    v.as_deref().map_or(Json::Null, s)
}

fn secret(v: &Option<String>) -> Json {
    v.as_ref().map_or(Json::Null, |_| s(REDACTED))
}

fn url(v: &Option<String>) -> Json {
    v.as_deref()
        .map_or(Json::Null, |u| Json::Str(redact_url(u)))
}

fn strings(v: &[String]) -> Json {
    Json::Arr(v.iter().map(|x| s(x)).collect())
}

fn pairs(v: &[(String, String)]) -> Json {
    Json::Obj(v.iter().map(|(k, x)| (k.clone(), s(x))).collect())
}

/// `scheme://user:password@host/...` -> `scheme://user:***@host/...`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = &url[scheme_end + 3..];
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let user = match userinfo.find(':') {
        Some(colon) => &userinfo[..colon],
        None => return url.to_string(),
    };
    format!(
        "{}{user}:{REDACTED}{}",
        &url[..scheme_end + 3],
        &after[at..]
    )
}

/// Extra upstream headers whose value is likely a credential.
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "cookie",
        "password",
        "signature",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn listen(config: &Config) -> String {
    config.server.listen.to_string()
}

fn level(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    }
}

fn provider(p: &ProviderConfig) -> Json {
    let keys = p
        .keys
        .iter()
        .map(|k| {
            obj(vec![
                ("key", s(REDACTED)),
                ("name", opt(&k.name)),
                ("rpm_limit", Json::UInt(k.rpm_limit)),
                ("tpm_limit", Json::UInt(k.tpm_limit)),
                ("itpm_limit", Json::UInt(k.itpm_limit)),
                ("otpm_limit", Json::UInt(k.otpm_limit)),
                ("weight", Json::UInt(u64::from(k.weight))),
                ("priority", Json::Int(k.priority)),
            ])
        })
        .collect();
    let headers = Json::Obj(
        p.headers
            .iter()
            .map(|(k, v)| {
                let shown = if secret_header(k) {
                    REDACTED
                } else {
                    v.as_str()
                };
                (k.clone(), s(shown))
            })
            .collect(),
    );
    let mut fields = vec![
        ("name", s(&p.name)),
        ("type", s(p.kind.as_str())),
        ("enabled", Json::Bool(p.enabled)),
        ("base_url", url(&p.base_url)),
        ("keys", Json::Arr(keys)),
        (
            "weight",
            p.weight.map_or(Json::Null, |w| Json::UInt(u64::from(w))),
        ),
        ("priority", p.priority.map_or(Json::Null, Json::Int)),
        (
            "key_strategy",
            s(match p.key_strategy {
                KeyStrategy::LeastLoaded => "least_loaded",
                KeyStrategy::RoundRobin => "round_robin",
                KeyStrategy::Random => "random",
                KeyStrategy::Weighted => "weighted",
            }),
        ),
        ("model_mapping", pairs(&p.model_mapping)),
        ("models", strings(&p.models)),
        (
            "beta_allow",
            p.beta_allow.as_deref().map_or(Json::Null, strings),
        ),
        ("headers", headers),
        ("signature_family", s(&p.signature_family())),
    ];
    match p.kind {
        ProviderType::Bedrock => fields.extend([
            ("aws_region", opt(&p.aws_region)),
            ("aws_access_key_id", secret(&p.aws_access_key_id)),
            ("aws_secret_access_key", secret(&p.aws_secret_access_key)),
            ("aws_session_token", secret(&p.aws_session_token)),
            ("aws_profile", opt(&p.aws_profile)),
        ]),
        ProviderType::Azure => fields.extend([
            ("azure_resource_name", opt(&p.azure_resource_name)),
            ("azure_api_version", s(&p.azure_api_version)),
            (
                "azure_auth",
                s(match p.azure_auth {
                    AzureAuth::ApiKey => "api_key",
                    AzureAuth::XApiKey => "x_api_key",
                    AzureAuth::Bearer => "bearer",
                }),
            ),
        ]),
        ProviderType::Vertex => fields.extend([
            ("gcp_project_id", opt(&p.gcp_project_id)),
            ("gcp_region", opt(&p.gcp_region)),
            ("gcp_credentials_file", opt(&p.gcp_credentials_file)),
        ]),
        _ => {}
    }
    obj(fields)
}

fn tree(config: &Config) -> Json {
    let sv = &config.server;
    let server = obj(vec![
        ("listen", Json::Str(listen(config))),
        ("timeout_ms", Json::UInt(sv.timeout_ms)),
        (
            "stream_idle_timeout_ms",
            Json::UInt(sv.stream_idle_timeout_ms),
        ),
        ("idle_timeout_ms", Json::UInt(sv.idle_timeout_ms)),
        ("header_timeout_ms", Json::UInt(sv.header_timeout_ms)),
        ("max_concurrent", Json::UInt(sv.max_concurrent)),
        ("max_connections", Json::UInt(sv.max_connections)),
        ("max_body_bytes", Json::UInt(sv.max_body_bytes)),
        (
            "tls",
            sv.tls.as_ref().map_or(Json::Null, |t| {
                obj(vec![
                    ("cert_file", s(&t.cert_file)),
                    ("key_file", s(&t.key_file)),
                ])
            }),
        ),
        ("drain_timeout_ms", Json::UInt(sv.drain_timeout_ms)),
        ("upstream_ca_file", opt(&sv.upstream_ca_file)),
        ("upstream_ca_only", Json::Bool(sv.upstream_ca_only)),
        (
            "resolver",
            s(match sv.resolver {
                ResolverMode::Auto => "auto",
                ResolverMode::System => "system",
                ResolverMode::Builtin => "builtin",
            }),
        ),
        (
            "auth",
            obj(vec![
                ("api_key", secret(&sv.auth.api_key)),
                ("bearer_secret", secret(&sv.auth.bearer_secret)),
                ("allow_subscription", Json::Bool(sv.auth.allow_subscription)),
                (
                    "allow_unauthenticated",
                    Json::Bool(sv.auth.allow_unauthenticated),
                ),
            ]),
        ),
    ]);
    let r = &config.routing;
    let routing = obj(vec![
        (
            "strategy",
            s(match r.strategy {
                Strategy::Failover => "failover",
                Strategy::RoundRobin => "round_robin",
                Strategy::WeightedRoundRobin => "weighted_round_robin",
                Strategy::Shuffle => "shuffle",
                Strategy::ModelBased => "model_based",
            }),
        ),
        (
            "failover_mode",
            s(match r.failover_mode {
                FailoverMode::Sequential => "sequential",
                FailoverMode::Race => "race",
            }),
        ),
        ("failover_timeout", Json::UInt(r.failover_timeout_ms)),
        ("max_attempts", Json::UInt(r.max_attempts)),
        ("connect_timeout_ms", Json::UInt(r.connect_timeout_ms)),
        ("first_byte_timeout_ms", Json::UInt(r.first_byte_timeout_ms)),
        ("model_mapping", pairs(&r.model_mapping)),
        ("default_provider", opt(&r.default_provider)),
        ("debug", Json::Bool(r.debug)),
    ]);
    let h = &config.health;
    let health = obj(vec![
        (
            "health_check",
            obj(vec![
                ("enabled", Json::Bool(h.health_check_enabled)),
                ("interval_ms", Json::UInt(h.health_check_interval_ms)),
            ]),
        ),
        (
            "circuit_breaker",
            obj(vec![
                (
                    "failure_threshold",
                    Json::UInt(u64::from(h.failure_threshold)),
                ),
                ("open_duration_ms", Json::UInt(h.open_duration_ms)),
                (
                    "half_open_probes",
                    Json::UInt(u64::from(h.half_open_probes)),
                ),
            ]),
        ),
    ]);
    let c = &config.cache;
    let cache = obj(vec![
        (
            "mode",
            s(match c.mode {
                CacheMode::Single => "single",
                CacheMode::Ha => "ha",
                CacheMode::Disabled => "disabled",
            }),
        ),
        ("max_bytes", Json::UInt(c.max_bytes)),
        (
            "redis",
            obj(vec![
                ("url", url(&c.redis.url)),
                ("key_prefix", s(&c.redis.key_prefix)),
                ("timeout_ms", Json::UInt(c.redis.timeout_ms)),
            ]),
        ),
    ]);
    let l = &config.logging;
    let logging = obj(vec![
        ("level", s(level(l.level))),
        (
            "format",
            s(match l.format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }),
        ),
        ("pretty", l.pretty.map_or(s("auto"), Json::Bool)),
        ("file", opt(&l.file)),
        (
            "debug_options",
            obj(vec![
                ("log_request_body", Json::Bool(l.log_request_body)),
                ("log_response_headers", Json::Bool(l.log_response_headers)),
                ("log_tls_metrics", Json::Bool(l.log_tls_metrics)),
                ("max_body_log_size", Json::UInt(l.max_body_log_size)),
            ]),
        ),
    ]);
    let metrics = obj(vec![
        ("enabled", Json::Bool(config.metrics.enabled)),
        ("path", s(&config.metrics.path)),
    ]);
    obj(vec![
        ("server", server),
        (
            "providers",
            Json::Arr(config.providers.iter().map(provider).collect()),
        ),
        ("routing", routing),
        ("health", health),
        ("cache", cache),
        ("logging", logging),
        ("metrics", metrics),
    ])
}

/// The effective configuration as pretty JSON (two-space indent, schema order), secrets
/// redacted.
pub fn to_json(config: &Config) -> String {
    serde_json::to_string_pretty(&tree(config)).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden() {
        assert_eq!(
            redact_url("redis://:pw@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact_url("rediss://user:pw@h"), "rediss://user:***@h");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("https://a.b/x@y"), "https://a.b/x@y");
    }
}
