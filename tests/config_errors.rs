//! Broken (and almost broken) configurations and the exact lines a user sees for them:
//! every error at once, with key path and `file:line`, errors before warnings.

use cc_relay::config::{load_str, Format, Loaded};

fn env(name: &str) -> Option<String> {
    match name {
        "ANTHROPIC_API_KEY" => Some("sk-ant-1".to_string()),
        "RPM" => Some("120".to_string()),
        "ON" => Some("true".to_string()),
        _ => None,
    }
}

/// Every diagnostic as the CLI prints it.
fn report(format: Format, name: &str, text: &str) -> Vec<String> {
    let diagnostics = match load_str(text, format, Some(name), &env) {
        Ok(loaded) => loaded.warnings,
        Err(all) => all,
    };
    diagnostics
        .iter()
        .map(|d| {
            let kind = if d.is_error() { "error" } else { "warning" };
            format!("{kind}: {d}")
        })
        .collect()
}

fn yaml(text: &str) -> Vec<String> {
    report(Format::Yaml, "config.yaml", text)
}

fn toml(text: &str) -> Vec<String> {
    report(Format::Toml, "config.toml", text)
}

fn loads(format: Format, text: &str) -> Loaded {
    load_str(text, format, Some("config"), &env)
        .unwrap_or_else(|e| panic!("{:#?}", e.iter().map(|d| d.to_string()).collect::<Vec<_>>()))
}

const ONE_PROVIDER: &str = "providers:\n  - name: a\n    type: ollama\n";

#[test]
fn the_spec_example_line() {
    let text = "\
# line 1
server:
  listen: \"127.0.0.1:8787\"

providers:
  - name: first
    type: anthropic
    keys:
      - key: \"${ANTHROPIC_API_KEY}\"
        rpm_limit: 60

  # The second provider has a broken key below.
  - name: second
    type: zai
    enabled: true
    base_url: \"https://api.z.ai/api/anthropic\"
    model_mapping:
      \"claude-sonnet-4-5\": \"GLM-4.7\"
    models:
      - GLM-4.7
    keys:
      - key: zai-key
        rpm_limit: -5
";
    assert_eq!(
        yaml(text),
        ["error: providers[1].keys[0].rpm_limit: must be >= 0 (config.yaml:23)"]
    );
}

#[test]
fn broken_configs_and_their_exact_lines() {
    let cases: &[(&str, &[&str])] = &[
        // unknown keys, with and without a likely typo
        (
            "routing:\n  stratgy: failover\n  colour: red\nproviders:\n  - name: a\n    type: ollama\n",
            &[
                "error: routing.stratgy: unknown key; did you mean 'strategy'? (config.yaml:2)",
                "error: routing.colour: unknown key (expected one of: strategy, failover_mode, failover_timeout, max_attempts, connect_timeout_ms, first_byte_timeout_ms, model_mapping, default_provider, debug) (config.yaml:3)",
            ],
        ),
        // duplicate names, bad name, unknown type with suggestion
        (
            "providers:\n  - name: a\n    type: ollama\n  - name: a\n    type: ollama\n  - name: Big\n    type: antropic\n",
            &[
                "error: providers[1].name: duplicate provider name 'a' (also providers[0]) (config.yaml:4)",
                "error: providers[2].type: unknown value 'antropic'; did you mean 'anthropic'? (config.yaml:7)",
            ],
        ),
        (
            "providers:\n  - name: Big\n    type: ollama\n",
            &["error: providers[0].name: 'Big' is not a valid provider name (use lowercase letters, digits, '_' and '-') (config.yaml:2)"],
        ),
        // what each cloud type requires
        (
            "providers:\n  - name: b\n    type: bedrock\n  - name: v\n    type: vertex\n    gcp_region: global\n  - name: z\n    type: azure\n    keys: [{key: k}]\n",
            &[
                "error: providers[0]: bedrock needs 'aws_region' (e.g. us-east-1) (config.yaml:2)",
                "error: providers[1]: vertex needs 'gcp_project_id' (config.yaml:4)",
                "error: providers[2]: azure needs 'azure_resource_name' or 'base_url' (config.yaml:7)",
            ],
        ),
        // ...but not while the provider is disabled, and unset variables are fine there
        (
            "providers:\n  - name: a\n    type: ollama\n  - name: b\n    type: bedrock\n    enabled: false\n    aws_access_key_id: ${NOPE}\n",
            &[],
        ),
        // unset variables elsewhere name the variable and the key path
        (
            "server:\n  auth:\n    api_key: \"${PROXY_KEY}\"\nproviders:\n  - name: a\n    type: zai\n    keys:\n      - key: ${ZAI_KEY}\n",
            &[
                "error: server.auth.api_key: environment variable PROXY_KEY is not set (config.yaml:3)",
                "error: providers[0].keys[0].key: environment variable ZAI_KEY is not set (config.yaml:8)",
            ],
        ),
        // model_based routing naming providers that do not exist
        (
            "providers:\n  - name: a\n    type: ollama\nrouting:\n  strategy: model_based\n  model_mapping:\n    claude-opus: nope\n    claude-3.5: a\n  default_provider: also-nope\n",
            &[
                "error: routing.model_mapping.claude-opus: unknown provider 'nope' (config.yaml:7)",
                "error: routing.default_provider: unknown provider 'also-nope' (config.yaml:9)",
            ],
        ),
        // negative and wrongly typed numbers, booleans, enums
        (
            "server:\n  timeout_ms: -1\n  max_connections: 0\n  max_body_bytes: 1.5\n  upstream_ca_only: yes\n  resolver: dns\nlogging:\n  level: verbose\n  format: jsn\nproviders:\n  - name: a\n    type: ollama\n    weight: 5000000000\n    priority: high\n",
            &[
                "error: server.timeout_ms: must be >= 0 (config.yaml:2)",
                "error: server.max_connections: must be > 0 (config.yaml:3)",
                "error: server.max_body_bytes: expected an integer, got a float (config.yaml:4)",
                "error: server.upstream_ca_only: expected true or false, got a string (write true or false) (config.yaml:5)",
                "error: server.resolver: unknown value 'dns' (expected one of: auto, system, builtin) (config.yaml:6)",
                "error: logging.level: unknown value 'verbose' (expected one of: error, warn, info, debug, trace) (config.yaml:8)",
                "error: logging.format: unknown value 'jsn'; did you mean 'json'? (config.yaml:9)",
                "error: providers[0].weight: must be at most 4294967295 (config.yaml:13)",
                "error: providers[0].priority: expected an integer, got a string (config.yaml:14)",
            ],
        ),
        // listen address that does not parse, and one that is unsafe without a secret
        (
            "server:\n  listen: example.com:80\nproviders:\n  - name: a\n    type: ollama\n",
            &["error: server.listen: 'example.com:80' is not an address and port (expected e.g. 127.0.0.1:8787 or [::1]:8787) (config.yaml:2)"],
        ),
        (
            "server:\n  listen: 0.0.0.0:8787\nproviders:\n  - name: a\n    type: ollama\n",
            &["error: server.listen: 0.0.0.0:8787 is not a loopback address and no client secret is set; set server.auth.api_key or server.auth.bearer_secret, or server.auth.allow_unauthenticated: true to serve anyone who can connect (config.yaml:2)"],
        ),
        (
            "server:\n  listen: 0.0.0.0:8787\n  auth:\n    allow_unauthenticated: true\nproviders:\n  - name: a\n    type: ollama\n",
            &[],
        ),
        // TLS files that cannot be read
        (
            "server:\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\nproviders:\n  - name: a\n    type: ollama\n",
            &[
                "error: server.tls.cert_file: cannot read '/nonexistent/cert.pem': No such file or directory (os error 2) (config.yaml:3)",
                "error: server.tls.key_file: cannot read '/nonexistent/key.pem': No such file or directory (os error 2) (config.yaml:4)",
            ],
        ),
        (
            "server:\n  tls:\n    cert_file: a.pem\nproviders:\n  - name: a\n    type: ollama\n",
            &["error: server.tls: missing 'key_file' (TLS needs both cert_file and key_file) (config.yaml:3)"],
        ),
        // no enabled provider
        (
            "providers:\n  - name: a\n    type: ollama\n    enabled: false\n",
            &["error: providers: at least one provider must be enabled (config.yaml:2)"],
        ),
        ("providers: []\n", &["error: providers: at least one provider is required (config.yaml:1)"]),
        // missing required keys
        (
            "providers:\n  - name: a\n  - type: ollama\n    keys:\n      - name: k\n",
            &[
                "error: providers[0]: missing required key 'type' (anthropic, zai, ollama, minimax, bedrock, azure or vertex) (config.yaml:2)",
                "error: providers[1]: missing required key 'name' (config.yaml:3)",
                "error: providers[1].keys[0]: missing required key 'key' (config.yaml:5)",
            ],
        ),
        // wrong shapes
        (
            "server: 8787\nproviders:\n  name: a\n",
            &[
                "error: server: expected a mapping, got an integer (config.yaml:1)",
                "error: providers: expected a list of providers, got a mapping (config.yaml:3)",
                "error: providers: at least one provider is required (config.yaml:3)",
            ],
        ),
        ("- a\n- b\n", &[
            "error: the configuration must be a mapping of sections (server, providers, ...), got a list (config.yaml:1)",
            "warning: providers: no providers configured; using the built-in 'anthropic' provider (config.yaml)",
        ]),
        // YAML outside the subset
        ("a: &x 1\nb: *x\n", &["error: anchors ('&name') are not supported (config.yaml:1)"]),
        ("server:\n\tlisten: x\n", &["error: tab character used for indentation (use spaces) (config.yaml:2)"]),
        (
            "server: {}\n---\nproviders: []\n",
            &["error: multiple documents are not supported (config.yaml:2)"],
        ),
        ("x: !!str 1\n", &["error: tags ('!tag') are not supported (config.yaml:1)"]),
        ("base: &b {a: 1}\nx:\n  <<: *b\n", &["error: anchors ('&name') are not supported (config.yaml:1)"]),
        ("x:\n  <<: {a: 1}\n", &["error: merge keys ('<<') are not supported (config.yaml:2)"]),
        // warnings: Go-only keys, cloud keys on the wrong type, credential-less providers
        (
            "providers:\n  - name: a\n    type: zai\n    aws_region: us-east-1\n  - name: b\n    type: anthropic\nserver:\n  enable_http2: true\ngrpc: {listen: x}\n",
            &[
                "warning: providers[0]: no keys: this provider needs an API key, requests to it will fail (config.yaml:2)",
                "warning: providers[0].aws_region: only used by type bedrock; ignored for type zai (config.yaml:4)",
                "warning: providers[1]: no keys and server.auth.allow_subscription is false: requests to it will fail (add keys, or allow_subscription: true to forward clients' own credentials) (config.yaml:5)",
                "warning: server.enable_http2: ignored: a Go cc-relay setting with no meaning in this cc-relay (config.yaml:8)",
                "warning: grpc: ignored: a Go cc-relay setting with no meaning in this cc-relay (config.yaml:9)",
            ],
        ),
        (
            "providers:\n  - name: a\n    type: ollama\nrouting:\n  default_provider: a\n",
            &["warning: routing.default_provider: only used with strategy: model_based; ignored (config.yaml:5)"],
        ),
        (
            "providers:\n  - name: a\n    type: ollama\ncache:\n  mode: ha\n  redis:\n    url: http://x\n",
            &["error: cache.redis.url: must start with redis:// or rediss:// (config.yaml:7)"],
        ),
        (
            "providers:\n  - name: a\n    type: ollama\n    base_url: localhost:11434\n    headers:\n      \"bad header\": x\n",
            &[
                "error: providers[0].base_url: must start with http:// or https:// (config.yaml:4)",
                "error: providers[0].headers.\"bad header\": 'bad header' is not a valid HTTP header name (config.yaml:6)",
            ],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(yaml(text), *want, "\n--- config:\n{text}");
    }
}

#[test]
fn toml_errors_carry_lines_too() {
    assert_eq!(
        toml("[server]\nlisten = \"127.0.0.1:8787\"\ntimeout_ms = \n"),
        ["error: invalid string; expected `\"`, `'` (config.toml:3)"]
    );
    assert_eq!(
        toml("[[providers]]\nname = \"a\"\ntype = \"ollama\"\n\n[[providers.keys]]\nkey = \"k\"\nrpm_limit = -1\n\n[routing]\nstratgy = \"failover\"\n"),
        [
            "error: providers[0].keys[0].rpm_limit: must be >= 0 (config.toml:7)",
            "error: routing.stratgy: unknown key; did you mean 'strategy'? (config.toml:10)",
        ]
    );
}

#[test]
fn expanded_strings_serve_as_numbers_and_booleans() {
    let text = format!("{ONE_PROVIDER}    keys:\n      - key: k\n        rpm_limit: ${{RPM}}\nrouting:\n  debug: \"${{ON}}\"\n");
    let loaded = loads(Format::Yaml, &text);
    assert_eq!(loaded.config.providers[0].keys[0].rpm_limit, 120);
    assert!(loaded.config.routing.debug);
    // A quoted number that did not come from expansion is still a string.
    let report = yaml(&format!("{ONE_PROVIDER}    weight: \"3\"\n"));
    assert_eq!(
        report,
        ["error: providers[0].weight: expected an integer, got a string (config.yaml:4)"]
    );
}

#[test]
fn defaults_fill_everything_not_written() {
    let loaded = loads(Format::Yaml, ONE_PROVIDER);
    let mut expected =
        cc_relay::config::Config::with_providers(vec![cc_relay::config::ProviderConfig::new(
            "a",
            cc_relay::config::ProviderType::Ollama,
        )]);
    expected.server.upstream_ca_file = None;
    assert_eq!(loaded.config, expected);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn a_file_without_providers_gets_the_built_in_one() {
    let loaded = loads(
        Format::Yaml,
        "server:\n  auth:\n    allow_subscription: true\n",
    );
    assert_eq!(loaded.config.providers.len(), 1);
    assert_eq!(loaded.config.providers[0].name, "anthropic");
    assert_eq!(loaded.config.providers[0].keys.len(), 1);
    assert_eq!(loaded.config.providers[0].keys[0].key, "sk-ant-1");
}
