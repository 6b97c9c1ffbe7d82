//! The file `cc-relay config init` writes: the embedded default (SPEC §1.4) spelled out
//! with every key, its default and a comment, in YAML or TOML. Loading either template
//! gives exactly `Config::embedded_default(None)` with no warnings (tested), so the
//! written file always passes `config validate`. Text only; writing is the CLI's job.
//!
//! The embedded default uses `ANTHROPIC_API_KEY` when set; a file cannot say "this key
//! if the variable exists", so the template forwards clients' own credentials
//! (`allow_subscription: true`) and shows the key-pool lines commented out.

use super::value::Format;

pub fn template(format: Format) -> &'static str {
    match format {
        Format::Yaml => YAML,
        Format::Toml => TOML,
    }
}

pub const YAML: &str = r#"# cc-relay configuration, written by `cc-relay config init`.
# Every setting is shown with its default; delete what you do not need.
# Any string may use ${VAR}, ${VAR:-default} and $$ (a literal $).
# Check it with `cc-relay config validate`; see docs/config.md for every key.

server:
  # Address to listen on. A non-loopback address (e.g. 0.0.0.0:8787) needs
  # auth.api_key or auth.bearer_secret, or auth.allow_unauthenticated: true.
  listen: "127.0.0.1:8787"
  timeout_ms: 600000             # whole-request deadline, streams included
  stream_idle_timeout_ms: 120000 # an upstream stream silent this long is reported as an error
  idle_timeout_ms: 60000         # keep-alive idle time between requests
  header_timeout_ms: 10000       # time allowed to receive a request head
  max_concurrent: 0              # requests in flight (0 = unlimited); over it -> 503
  max_connections: 1024          # open client connections
  max_body_bytes: 33554432       # larger request bodies get 413
  drain_timeout_ms: 30000        # on SIGTERM/SIGINT, time in-flight requests get to finish
  resolver: auto                 # auto | system | builtin
  upstream_ca_only: false        # true: trust only upstream_ca_file for upstreams
  # upstream_ca_file: "/etc/ssl/certs/company-ca.pem"  # extra CA roots for upstreams
  # tls:                         # serve HTTPS; the files are re-read on reload
  #   cert_file: "/etc/cc-relay/cert.pem"
  #   key_file: "/etc/cc-relay/key.pem"
  auth:
    # Secrets clients must send (x-api-key or Authorization: Bearer); never sent upstream.
    # api_key: "${CC_RELAY_API_KEY}"
    # bearer_secret: "${CC_RELAY_BEARER_SECRET}"
    # Forward clients' own Claude credentials (subscription) to anthropic providers.
    allow_subscription: true
    allow_unauthenticated: false # true: allow a non-loopback listen without a secret

providers:
  - name: anthropic
    type: anthropic              # anthropic | zai | ollama | minimax | bedrock | azure | vertex
    enabled: true
    # base_url: "https://api.anthropic.com"
    key_strategy: least_loaded   # least_loaded | round_robin | random | weighted
    # To use your own API keys (a pool) instead of the client's credential:
    # keys:
    #   - key: "${ANTHROPIC_API_KEY}"
    #     name: main             # shown in logs instead of the key
    #     rpm_limit: 0           # requests per minute (0 = no limit)
    #     tpm_limit: 0           # tokens per minute
    #     itpm_limit: 0          # input tokens per minute
    #     otpm_limit: 0          # output tokens per minute
    #     weight: 1
    #     priority: 1            # higher is tried first
    # model_mapping:             # exact names; a key ending in '*' matches a prefix
    #   "claude-3-5-haiku*": "claude-haiku-4-5"
    # models: []                 # advertised in /v1/models

  # Another provider, tried when the first fails:
  # - name: zai
  #   type: zai
  #   keys:
  #     - key: "${ZAI_API_KEY}"
  #   model_mapping:
  #     "claude-sonnet-*": "GLM-4.7"

routing:
  strategy: failover             # failover | round_robin | weighted_round_robin | shuffle | model_based
  failover_mode: sequential      # sequential | race
  failover_timeout: 5000         # ms for trying further providers after the first fails
  max_attempts: 0                # providers tried per request (0 = all)
  connect_timeout_ms: 5000
  first_byte_timeout_ms: 60000
  debug: false                   # X-CC-Relay-* response headers
  # model_mapping:               # model_based only: model prefix -> provider name
  #   "claude-opus": anthropic
  # default_provider: anthropic

health:
  health_check:
    enabled: true
    interval_ms: 10000
  circuit_breaker:
    failure_threshold: 5
    open_duration_ms: 30000
    half_open_probes: 3

cache:
  mode: single                   # single | ha (shared through Redis) | disabled
  max_bytes: 104857600
  redis:
    # url: "redis://localhost:6379"   # needed for mode: ha; rediss:// for TLS
    key_prefix: "cc-relay:"
    timeout_ms: 50

logging:
  level: info                    # error | warn | info | debug | trace
  format: text                   # text | json
  pretty: auto                   # colours: auto | true | false
  # file: "/var/log/cc-relay.log"  # default: stderr
  debug_options:
    log_request_body: false
    log_response_headers: false
    log_tls_metrics: false
    max_body_log_size: 1000

metrics:
  enabled: true
  path: /metrics
"#;

pub const TOML: &str = r#"# cc-relay configuration, written by `cc-relay config init --format toml`.
# Every setting is shown with its default; delete what you do not need.
# Any string may use ${VAR}, ${VAR:-default} and $$ (a literal $).
# Check it with `cc-relay config validate`; see docs/config.md for every key.

[server]
# Address to listen on. A non-loopback address (e.g. 0.0.0.0:8787) needs
# auth.api_key or auth.bearer_secret, or auth.allow_unauthenticated = true.
listen = "127.0.0.1:8787"
timeout_ms = 600000             # whole-request deadline, streams included
stream_idle_timeout_ms = 120000 # an upstream stream silent this long is reported as an error
idle_timeout_ms = 60000         # keep-alive idle time between requests
header_timeout_ms = 10000       # time allowed to receive a request head
max_concurrent = 0              # requests in flight (0 = unlimited); over it -> 503
max_connections = 1024          # open client connections
max_body_bytes = 33554432       # larger request bodies get 413
drain_timeout_ms = 30000        # on SIGTERM/SIGINT, time in-flight requests get to finish
resolver = "auto"               # auto | system | builtin
upstream_ca_only = false        # true: trust only upstream_ca_file for upstreams
# upstream_ca_file = "/etc/ssl/certs/company-ca.pem"  # extra CA roots for upstreams

# Serve HTTPS; the files are re-read on reload.
# [server.tls]
# cert_file = "/etc/cc-relay/cert.pem"
# key_file = "/etc/cc-relay/key.pem"

[server.auth]
# Secrets clients must send (x-api-key or Authorization: Bearer); never sent upstream.
# api_key = "${CC_RELAY_API_KEY}"
# bearer_secret = "${CC_RELAY_BEARER_SECRET}"
# Forward clients' own Claude credentials (subscription) to anthropic providers.
allow_subscription = true
allow_unauthenticated = false   # true: allow a non-loopback listen without a secret

[[providers]]
name = "anthropic"
type = "anthropic"              # anthropic | zai | ollama | minimax | bedrock | azure | vertex
enabled = true
# base_url = "https://api.anthropic.com"
key_strategy = "least_loaded"   # least_loaded | round_robin | random | weighted
# models = []                   # advertised in /v1/models (keep it above the tables below)

# To use your own API keys (a pool) instead of the client's credential:
# [[providers.keys]]
# key = "${ANTHROPIC_API_KEY}"
# name = "main"                 # shown in logs instead of the key
# rpm_limit = 0                 # requests per minute (0 = no limit)
# tpm_limit = 0                 # tokens per minute
# itpm_limit = 0                # input tokens per minute
# otpm_limit = 0                # output tokens per minute
# weight = 1
# priority = 1                  # higher is tried first

# [providers.model_mapping]     # exact names; a key ending in '*' matches a prefix
# "claude-3-5-haiku*" = "claude-haiku-4-5"

# Another provider, tried when the first fails:
# [[providers]]
# name = "zai"
# type = "zai"
# [[providers.keys]]
# key = "${ZAI_API_KEY}"
# [providers.model_mapping]
# "claude-sonnet-*" = "GLM-4.7"

[routing]
strategy = "failover"           # failover | round_robin | weighted_round_robin | shuffle | model_based
failover_mode = "sequential"    # sequential | race
failover_timeout = 5000         # ms for trying further providers after the first fails
max_attempts = 0                # providers tried per request (0 = all)
connect_timeout_ms = 5000
first_byte_timeout_ms = 60000
debug = false                   # X-CC-Relay-* response headers
# default_provider = "anthropic"  # model_based only
# [routing.model_mapping]       # model_based only: model prefix -> provider name
# "claude-opus" = "anthropic"

[health.health_check]
enabled = true
interval_ms = 10000

[health.circuit_breaker]
failure_threshold = 5
open_duration_ms = 30000
half_open_probes = 3

[cache]
mode = "single"                 # single | ha (shared through Redis) | disabled
max_bytes = 104857600

[cache.redis]
# url = "redis://localhost:6379"  # needed for mode = "ha"; rediss:// for TLS
key_prefix = "cc-relay:"
timeout_ms = 50

[logging]
level = "info"                  # error | warn | info | debug | trace
format = "text"                 # text | json
pretty = "auto"                 # colours: auto | true | false
# file = "/var/log/cc-relay.log"  # default: stderr

[logging.debug_options]
log_request_body = false
log_response_headers = false
log_tls_metrics = false
max_body_log_size = 1000

[metrics]
enabled = true
path = "/metrics"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, Config};

    #[test]
    fn both_templates_are_the_embedded_default_and_load_cleanly() {
        let no_env = |_: &str| None;
        for format in [Format::Yaml, Format::Toml] {
            let loaded = load_str(template(format), format, Some("config"), &no_env)
                .unwrap_or_else(|errors| {
                    panic!(
                        "{format:?}: {:?}",
                        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
                    )
                });
            assert_eq!(loaded.config, Config::embedded_default(None), "{format:?}");
            assert!(
                loaded.warnings.is_empty(),
                "{format:?}: {:?}",
                loaded.warnings
            );
        }
    }
}
