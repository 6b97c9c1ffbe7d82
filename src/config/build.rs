//! Value tree -> `Config`: walks the tree section by section, applies the SPEC defaults
//! for everything absent, and reports every problem it meets — unknown keys (with a
//! "did you mean"), wrong types, out-of-range numbers, unknown enum values — instead of
//! stopping at the first. It also records the line of every key path so the semantic
//! checks of `validate.rs` can point at the file. It does no I/O and reads no
//! environment; cross-field rules (duplicate names, required per-type fields, listen
//! safety) belong to `validate.rs`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::diagnostic::{child_path, index_path, Diagnostic};
use super::schema::*;
use super::value::{Entry, Format, Node, Value};

/// Key path -> line of its value; how later checks find a line for a path.
#[derive(Debug, Default, Clone)]
pub struct LineIndex(HashMap<String, u32>);

impl LineIndex {
    /// The line of `path`, else of its nearest recorded parent.
    pub fn line_of(&self, path: &str) -> Option<u32> {
        let mut p = path;
        loop {
            if let Some(&line) = self.0.get(p) {
                return Some(line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    fn record(&mut self, path: &str, line: u32) {
        self.0.entry(path.to_string()).or_insert(line);
    }
}

/// What building found besides the config itself.
pub struct Built {
    pub config: Config,
    pub lines: LineIndex,
    pub diagnostics: Vec<Diagnostic>,
    /// The file had a `providers` key (else the loader adds the built-in provider).
    pub providers_given: bool,
    /// The file set `server.auth.allow_subscription` itself.
    pub allow_subscription_given: bool,
    /// Providers whose own entries had errors; semantic checks skip them to avoid noise.
    pub broken_providers: HashSet<usize>,
}

const TOP_KEYS: &[&str] = &[
    "server",
    "providers",
    "routing",
    "health",
    "cache",
    "logging",
    "metrics",
];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "timeout_ms",
    "stream_idle_timeout_ms",
    "idle_timeout_ms",
    "header_timeout_ms",
    "max_concurrent",
    "max_connections",
    "max_body_bytes",
    "tls",
    "drain_timeout_ms",
    "upstream_ca_file",
    "upstream_ca_only",
    "resolver",
    "auth",
];
const TLS_KEYS: &[&str] = &["cert_file", "key_file"];
const AUTH_KEYS: &[&str] = &[
    "api_key",
    "bearer_secret",
    "allow_subscription",
    "allow_unauthenticated",
];
const PROVIDER_KEYS: &[&str] = &[
    "name",
    "type",
    "enabled",
    "base_url",
    "keys",
    "weight",
    "priority",
    "key_strategy",
    "model_mapping",
    "models",
    "beta_allow",
    "headers",
    "signature_family",
    "aws_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile",
    "azure_resource_name",
    "azure_api_version",
    "azure_auth",
    "gcp_project_id",
    "gcp_region",
    "gcp_credentials_file",
];
const KEY_KEYS: &[&str] = &[
    "key",
    "name",
    "rpm_limit",
    "tpm_limit",
    "itpm_limit",
    "otpm_limit",
    "weight",
    "priority",
];
const ROUTING_KEYS: &[&str] = &[
    "strategy",
    "failover_mode",
    "failover_timeout",
    "max_attempts",
    "connect_timeout_ms",
    "first_byte_timeout_ms",
    "model_mapping",
    "default_provider",
    "debug",
];
const HEALTH_KEYS: &[&str] = &["health_check", "circuit_breaker"];
const HEALTH_CHECK_KEYS: &[&str] = &["enabled", "interval_ms"];
const BREAKER_KEYS: &[&str] = &["failure_threshold", "open_duration_ms", "half_open_probes"];
const CACHE_KEYS: &[&str] = &["mode", "max_bytes", "redis"];
const REDIS_KEYS: &[&str] = &["url", "key_prefix", "timeout_ms"];
const LOGGING_KEYS: &[&str] = &["level", "format", "pretty", "file", "debug_options"];
const DEBUG_OPTION_KEYS: &[&str] = &[
    "log_request_body",
    "log_response_headers",
    "log_tls_metrics",
    "max_body_log_size",
];
const METRICS_KEYS: &[&str] = &["enabled", "path"];

/// Keys of the Go cc-relay with no meaning here: accepted with one warning each so its
/// files load unchanged.
const GO_ONLY_TOP: &[&str] = &["grpc"];
const GO_ONLY_SERVER: &[&str] = &["enable_http2"];
const GO_ONLY_CACHE: &[&str] = &["ristretto", "olric"];

const BEDROCK_ONLY: &[&str] = &[
    "aws_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile",
];
const AZURE_ONLY: &[&str] = &["azure_resource_name", "azure_api_version", "azure_auth"];
const VERTEX_ONLY: &[&str] = &["gcp_project_id", "gcp_region", "gcp_credentials_file"];

pub fn build(
    root: &Node,
    format: Format,
    file: Option<&str>,
    quiet_paths: &HashSet<String>,
) -> Built {
    let mut b = Builder {
        file,
        format,
        diagnostics: Vec::new(),
        lines: LineIndex::default(),
        quiet_paths,
        broken_providers: HashSet::new(),
    };
    let mut config = Config::with_providers(Vec::new());
    let mut providers_given = false;
    let mut allow_subscription_given = false;
    match &root.value {
        Value::Null => {}
        Value::Map(_) => {
            if let Some(top) = b.section(root, "", TOP_KEYS, GO_ONLY_TOP) {
                if let Some(n) = field(top, "server") {
                    allow_subscription_given = n
                        .get("auth")
                        .and_then(|a| a.get("allow_subscription"))
                        .is_some_and(|v| v.value != Value::Null);
                    config.server = b.server(n, "server");
                }
                if let Some(entry) = top.iter().find(|e| e.key == "providers") {
                    providers_given = true;
                    config.providers = b.providers(&entry.value, "providers");
                }
                if let Some(n) = field(top, "routing") {
                    config.routing = b.routing(n, "routing");
                }
                if let Some(n) = field(top, "health") {
                    config.health = b.health(n, "health");
                }
                if let Some(n) = field(top, "cache") {
                    config.cache = b.cache(n, "cache");
                }
                if let Some(n) = field(top, "logging") {
                    config.logging = b.logging(n, "logging");
                }
                if let Some(n) = field(top, "metrics") {
                    config.metrics = b.metrics(n, "metrics");
                }
            }
        }
        _ => b.error(
            "",
            root.line,
            format!(
                "the configuration must be a mapping of sections (server, providers, ...), got {}",
                root.kind_name()
            ),
        ),
    }
    Built {
        config,
        lines: b.lines,
        diagnostics: b.diagnostics,
        providers_given,
        allow_subscription_given,
        broken_providers: b.broken_providers,
    }
}

/// The value under `key`, `None` when absent or empty (`key:` with nothing = default).
fn field<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| &e.value)
        .filter(|n| n.value != Value::Null)
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate, when it is close enough to be a likely typo.
pub fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word_lower = word.to_ascii_lowercase().replace('-', "_");
    candidates
        .iter()
        .map(|c| (edit_distance(&word_lower, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

struct Builder<'a> {
    file: Option<&'a str>,
    format: Format,
    diagnostics: Vec<Diagnostic>,
    lines: LineIndex,
    quiet_paths: &'a HashSet<String>,
    broken_providers: HashSet<usize>,
}

impl Builder<'_> {
    fn error(&mut self, path: &str, line: u32, message: impl Into<String>) {
        if self.quiet_paths.contains(path) {
            return;
        }
        self.diagnostics
            .push(Diagnostic::error(path, message).at(self.file, Some(line)));
    }

    fn warn(&mut self, path: &str, line: u32, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(path, message).at(self.file, Some(line)));
    }

    /// A mapping section: reports unknown keys (and warns about Go-only ones), records
    /// lines, and returns its entries. `None` when it is not a mapping (reported).
    fn section<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
        go_only: &[&str],
    ) -> Option<&'n [Entry]> {
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.error(
                    path,
                    node.line,
                    format!("expected a mapping, got {}", node.kind_name()),
                );
            }
            return None;
        };
        self.lines.record(path, node.line);
        for entry in entries {
            let key_path = child_path(path, &entry.key);
            self.lines.record(&key_path, entry.value.line);
            if known.contains(&entry.key.as_str()) {
                continue;
            }
            if go_only.contains(&entry.key.as_str()) {
                self.warn(
                    &key_path,
                    entry.key_line,
                    "ignored: a Go cc-relay setting with no meaning in this cc-relay",
                );
                continue;
            }
            if self.format == Format::Toml && entry.key == "models" && misplaced_models_parent(path)
            {
                continue; // handled by `providers`
            }
            let message = match suggest(&entry.key, known) {
                Some(s) => format!("unknown key; did you mean '{s}'?"),
                None => format!("unknown key (expected one of: {})", known.join(", ")),
            };
            self.error(&key_path, entry.key_line, message);
        }
        Some(entries)
    }

    // ----- scalar conversions ---------------------------------------------------------

    /// An expanded string standing where a number or boolean belongs (`${RPM}`).
    fn expanded_text(node: &Node) -> Option<&str> {
        match &node.value {
            Value::String(s) if node.expanded => Some(s.trim()),
            _ => None,
        }
    }

    fn i64_value(&mut self, path: &str, node: &Node) -> Option<i64> {
        match &node.value {
            Value::Int(i) => return Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                self.error(
                    path,
                    node.line,
                    "expected an integer, got a float (remove the '.0')",
                );
                return None;
            }
            _ => {}
        }
        if let Some(text) = Self::expanded_text(node) {
            if let Ok(i) = text.parse::<i64>() {
                return Some(i);
            }
            self.error(
                path,
                node.line,
                "expected an integer (after environment expansion)",
            );
            return None;
        }
        self.error(
            path,
            node.line,
            format!("expected an integer, got {}", node.kind_name()),
        );
        None
    }

    fn u64_value(&mut self, path: &str, node: &Node) -> Option<u64> {
        let i = self.i64_value(path, node)?;
        if i < 0 {
            self.error(path, node.line, "must be >= 0");
            return None;
        }
        Some(i as u64)
    }

    /// A duration or size where 0 makes no sense.
    fn positive_u64(&mut self, path: &str, node: &Node) -> Option<u64> {
        let v = self.u64_value(path, node)?;
        if v == 0 {
            self.error(path, node.line, "must be > 0");
            return None;
        }
        Some(v)
    }

    fn u32_value(&mut self, path: &str, node: &Node) -> Option<u32> {
        let v = self.u64_value(path, node)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(path, node.line, format!("must be at most {}", u32::MAX));
                None
            }
        }
    }

    fn positive_u32(&mut self, path: &str, node: &Node) -> Option<u32> {
        let v = self.u32_value(path, node)?;
        if v == 0 {
            self.error(path, node.line, "must be > 0");
            return None;
        }
        Some(v)
    }

    fn bool_value(&mut self, path: &str, node: &Node) -> Option<bool> {
        if let Value::Bool(b) = node.value {
            return Some(b);
        }
        match Self::expanded_text(node) {
            Some("true") => return Some(true),
            Some("false") => return Some(false),
            _ => {}
        }
        let hint = match &node.value {
            Value::String(s) if matches!(s.as_str(), "yes" | "no" | "on" | "off") => {
                " (write true or false)"
            }
            _ => "",
        };
        self.error(
            path,
            node.line,
            format!("expected true or false, got {}{hint}", node.kind_name()),
        );
        None
    }

    fn string_value(&mut self, path: &str, node: &Node) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => {
                self.error(
                    path,
                    node.line,
                    format!(
                        "expected a string, got {} (put it in quotes)",
                        node.kind_name()
                    ),
                );
                None
            }
        }
    }

    /// An optional string; an empty string counts as not set.
    fn opt_string(&mut self, entries: &[Entry], path: &str, key: &str) -> Option<String> {
        let node = field(entries, key)?;
        self.string_value(&child_path(path, key), node)
            .filter(|s| !s.is_empty())
    }

    fn string_list(&mut self, path: &str, node: &Node) -> Option<Vec<String>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                path,
                node.line,
                format!("expected a list of strings, got {}", node.kind_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index_path(path, i);
            self.lines.record(&item_path, item.line);
            if let Some(s) = self.string_value(&item_path, item) {
                out.push(s);
            }
        }
        Some(out)
    }

    /// A mapping of strings to strings, in file order.
    fn string_map(&mut self, path: &str, node: &Node) -> Option<Vec<(String, String)>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                path,
                node.line,
                format!(
                    "expected a mapping of names to strings, got {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry_path = child_path(path, &entry.key);
            self.lines.record(&entry_path, entry.value.line);
            if let Some(s) = self.string_value(&entry_path, &entry.value) {
                out.push((entry.key.clone(), s));
            }
        }
        Some(out)
    }

    fn enum_value<T: Copy>(&mut self, path: &str, node: &Node, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let Value::String(s) = &node.value else {
            self.error(
                path,
                node.line,
                format!(
                    "expected one of {}, got {}",
                    names.join(", "),
                    node.kind_name()
                ),
            );
            return None;
        };
        if let Some((_, v)) = options.iter().find(|(n, _)| n == s) {
            return Some(*v);
        }
        let message = match suggest(s, &names) {
            Some(close) => format!("unknown value '{s}'; did you mean '{close}'?"),
            None => format!(
                "unknown value '{s}' (expected one of: {})",
                names.join(", ")
            ),
        };
        self.error(path, node.line, message);
        None
    }

    /// Applies `convert` to `key` when present and stores the result through `set`.
    fn set<T>(
        &mut self,
        entries: &[Entry],
        path: &str,
        key: &str,
        convert: fn(&mut Self, &str, &Node) -> Option<T>,
        set: impl FnOnce(T),
    ) {
        if let Some(node) = field(entries, key) {
            if let Some(v) = convert(self, &child_path(path, key), node) {
                set(v);
            }
        }
    }

    // ----- sections -----------------------------------------------------------------

    fn server(&mut self, node: &Node, path: &str) -> ServerConfig {
        let mut s = ServerConfig::default();
        let Some(e) = self.section(node, path, SERVER_KEYS, GO_ONLY_SERVER) else {
            return s;
        };
        if let Some(n) = field(e, "listen") {
            if let Some(addr) = self.listen_value(&child_path(path, "listen"), n) {
                s.listen = addr;
            }
        }
        self.set(e, path, "timeout_ms", Self::positive_u64, |v| {
            s.timeout_ms = v
        });
        self.set(e, path, "stream_idle_timeout_ms", Self::positive_u64, |v| {
            s.stream_idle_timeout_ms = v
        });
        self.set(e, path, "idle_timeout_ms", Self::positive_u64, |v| {
            s.idle_timeout_ms = v
        });
        self.set(e, path, "header_timeout_ms", Self::positive_u64, |v| {
            s.header_timeout_ms = v
        });
        self.set(e, path, "max_concurrent", Self::u64_value, |v| {
            s.max_concurrent = v
        });
        self.set(e, path, "max_connections", Self::positive_u64, |v| {
            s.max_connections = v
        });
        self.set(e, path, "max_body_bytes", Self::positive_u64, |v| {
            s.max_body_bytes = v
        });
        self.set(e, path, "drain_timeout_ms", Self::u64_value, |v| {
            s.drain_timeout_ms = v
        });
        s.upstream_ca_file = self.opt_string(e, path, "upstream_ca_file");
        self.set(e, path, "upstream_ca_only", Self::bool_value, |v| {
            s.upstream_ca_only = v
        });
        if let Some(n) = field(e, "resolver") {
            let options = [
                ("auto", ResolverMode::Auto),
                ("system", ResolverMode::System),
                ("builtin", ResolverMode::Builtin),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "resolver"), n, &options) {
                s.resolver = v;
            }
        }
        if let Some(n) = field(e, "tls") {
            let tls_path = child_path(path, "tls");
            if let Some(t) = self.section(n, &tls_path, TLS_KEYS, &[]) {
                let cert = self.opt_string(t, &tls_path, "cert_file");
                let key = self.opt_string(t, &tls_path, "key_file");
                match (cert, key) {
                    (Some(cert_file), Some(key_file)) => {
                        s.tls = Some(TlsConfig {
                            cert_file,
                            key_file,
                        })
                    }
                    (cert, _) => {
                        let missing = if cert.is_none() {
                            "cert_file"
                        } else {
                            "key_file"
                        };
                        self.error(
                            &tls_path,
                            n.line,
                            format!("missing '{missing}' (TLS needs both cert_file and key_file)"),
                        );
                    }
                }
            }
        }
        if let Some(n) = field(e, "auth") {
            let auth_path = child_path(path, "auth");
            if let Some(a) = self.section(n, &auth_path, AUTH_KEYS, &[]) {
                s.auth.api_key = self.opt_string(a, &auth_path, "api_key");
                s.auth.bearer_secret = self.opt_string(a, &auth_path, "bearer_secret");
                self.set(a, &auth_path, "allow_subscription", Self::bool_value, |v| {
                    s.auth.allow_subscription = v
                });
                self.set(
                    a,
                    &auth_path,
                    "allow_unauthenticated",
                    Self::bool_value,
                    |v| s.auth.allow_unauthenticated = v,
                );
            }
        }
        s
    }

    fn listen_value(&mut self, path: &str, node: &Node) -> Option<SocketAddr> {
        let text = self.string_value(path, node)?;
        match parse_listen(&text) {
            Ok(addr) => Some(addr),
            Err(message) => {
                self.error(path, node.line, message);
                None
            }
        }
    }

    fn providers(&mut self, node: &Node, path: &str) -> Vec<ProviderConfig> {
        let items = match &node.value {
            Value::Seq(items) => items.as_slice(),
            Value::Null => &[],
            _ => {
                self.error(
                    path,
                    node.line,
                    format!("expected a list of providers, got {}", node.kind_name()),
                );
                return Vec::new();
            }
        };
        self.lines.record(path, node.line);
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index_path(path, i);
            let errors_before = self.error_count();
            let provider = self.provider(item, &item_path);
            if self.error_count() > errors_before {
                self.broken_providers.insert(i);
            }
            out.push(provider);
        }
        out
    }

    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn provider(&mut self, node: &Node, path: &str) -> ProviderConfig {
        let mut p = ProviderConfig::new("", ProviderType::Anthropic);
        let Some(e) = self.section(node, path, PROVIDER_KEYS, &[]) else {
            if node.value == Value::Null {
                self.error(path, node.line, "empty provider entry");
            }
            return p;
        };
        match field(e, "name") {
            Some(n) => {
                if let Some(name) = self.string_value(&child_path(path, "name"), n) {
                    p.name = name;
                }
            }
            None => self.error(path, node.line, "missing required key 'name'"),
        }
        match field(e, "type") {
            Some(n) => {
                let options: Vec<(&str, ProviderType)> =
                    ProviderType::ALL.iter().map(|t| (t.as_str(), *t)).collect();
                if let Some(kind) = self.enum_value(&child_path(path, "type"), n, &options) {
                    p.kind = kind;
                }
            }
            None => self.error(
                path,
                node.line,
                "missing required key 'type' (anthropic, zai, ollama, minimax, bedrock, azure or vertex)",
            ),
        }
        self.set(e, path, "enabled", Self::bool_value, |v| p.enabled = v);
        p.base_url = self.opt_string(e, path, "base_url");
        let mut misplaced_models: Vec<String> = Vec::new();
        if let Some(n) = field(e, "keys") {
            p.keys = self.keys(n, &child_path(path, "keys"), &mut misplaced_models);
        }
        self.set(e, path, "weight", Self::u32_value, |v| p.weight = Some(v));
        self.set(e, path, "priority", Self::i64_value, |v| {
            p.priority = Some(v)
        });
        if let Some(n) = field(e, "key_strategy") {
            let options = [
                ("least_loaded", KeyStrategy::LeastLoaded),
                ("round_robin", KeyStrategy::RoundRobin),
                ("random", KeyStrategy::Random),
                ("weighted", KeyStrategy::Weighted),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "key_strategy"), n, &options) {
                p.key_strategy = v;
            }
        }
        if let Some(n) = field(e, "model_mapping") {
            let mapping_path = child_path(path, "model_mapping");
            let stripped;
            let mapping_node = match self.take_misplaced_mapping_models(n, &mapping_path) {
                Some((models, rest)) => {
                    misplaced_models.extend(models);
                    stripped = rest;
                    &stripped
                }
                None => n,
            };
            if let Some(m) = self.string_map(&mapping_path, mapping_node) {
                p.model_mapping = m;
            }
        }
        self.set(e, path, "models", Self::string_list, |v| p.models = v);
        for model in misplaced_models {
            if !p.models.contains(&model) {
                p.models.push(model);
            }
        }
        self.set(e, path, "beta_allow", Self::string_list, |v| {
            p.beta_allow = Some(v)
        });
        self.set(e, path, "headers", Self::string_map, |v| p.headers = v);
        p.signature_family = self.opt_string(e, path, "signature_family");
        p.aws_region = self.opt_string(e, path, "aws_region");
        p.aws_access_key_id = self.opt_string(e, path, "aws_access_key_id");
        p.aws_secret_access_key = self.opt_string(e, path, "aws_secret_access_key");
        p.aws_session_token = self.opt_string(e, path, "aws_session_token");
        p.aws_profile = self.opt_string(e, path, "aws_profile");
        p.azure_resource_name = self.opt_string(e, path, "azure_resource_name");
        if let Some(v) = self.opt_string(e, path, "azure_api_version") {
            p.azure_api_version = v;
        }
        if let Some(n) = field(e, "azure_auth") {
            let options = [
                ("api_key", AzureAuth::ApiKey),
                ("x_api_key", AzureAuth::XApiKey),
                ("bearer", AzureAuth::Bearer),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "azure_auth"), n, &options) {
                p.azure_auth = v;
            }
        }
        p.gcp_project_id = self.opt_string(e, path, "gcp_project_id");
        p.gcp_region = self.opt_string(e, path, "gcp_region");
        p.gcp_credentials_file = self.opt_string(e, path, "gcp_credentials_file");

        let type_only: [(&[&str], ProviderType); 3] = [
            (BEDROCK_ONLY, ProviderType::Bedrock),
            (AZURE_ONLY, ProviderType::Azure),
            (VERTEX_ONLY, ProviderType::Vertex),
        ];
        for entry in e {
            for (keys, kind) in type_only {
                if keys.contains(&entry.key.as_str())
                    && p.kind != kind
                    && field(e, "type").is_some()
                {
                    self.warn(
                        &child_path(path, &entry.key),
                        entry.key_line,
                        format!(
                            "only used by type {}; ignored for type {}",
                            kind.as_str(),
                            p.kind.as_str()
                        ),
                    );
                }
            }
        }
        p
    }

    fn keys(
        &mut self,
        node: &Node,
        path: &str,
        misplaced_models: &mut Vec<String>,
    ) -> Vec<KeyConfig> {
        let Value::Seq(items) = &node.value else {
            self.error(
                path,
                node.line,
                format!(
                    "expected a list of keys (- key: ...), got {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        self.lines.record(path, node.line);
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index_path(path, i);
            let Some(e) = self.section(item, &item_path, KEY_KEYS, &[]) else {
                if item.value == Value::Null {
                    self.error(&item_path, item.line, "empty key entry");
                }
                continue;
            };
            if self.format == Format::Toml {
                if let Some(entry) = e.iter().find(|en| en.key == "models") {
                    let models_path = child_path(&item_path, "models");
                    self.warn(
                        &models_path,
                        entry.key_line,
                        "TOML put this 'models' inside the [[providers.keys]] table above it; \
                         it is used as the provider's models (move it above the first \
                         [[providers.keys]] line to silence this)",
                    );
                    if let Some(models) = self.string_list(&models_path, &entry.value) {
                        misplaced_models.extend(models);
                    }
                }
            }
            let mut key = KeyConfig::new("");
            match field(e, "key") {
                Some(n) => {
                    if let Some(k) = self.string_value(&child_path(&item_path, "key"), n) {
                        key.key = k;
                    }
                }
                None => self.error(&item_path, item.line, "missing required key 'key'"),
            }
            key.name = self.opt_string(e, &item_path, "name");
            let p = item_path.as_str();
            self.set(e, p, "rpm_limit", Self::u64_value, |v| key.rpm_limit = v);
            self.set(e, p, "tpm_limit", Self::u64_value, |v| key.tpm_limit = v);
            self.set(e, p, "itpm_limit", Self::u64_value, |v| key.itpm_limit = v);
            self.set(e, p, "otpm_limit", Self::u64_value, |v| key.otpm_limit = v);
            self.set(e, p, "weight", Self::u32_value, |v| key.weight = v);
            self.set(e, p, "priority", Self::i64_value, |v| key.priority = v);
            out.push(key);
        }
        out
    }

    /// TOML's `[providers.model_mapping]` swallows a following `models = [..]`; split it
    /// off (with a warning) so the YAML and TOML tabs of one example mean the same.
    fn take_misplaced_mapping_models(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<(Vec<String>, Node)> {
        if self.format != Format::Toml {
            return None;
        }
        let Value::Map(entries) = &node.value else {
            return None;
        };
        let entry = entries
            .iter()
            .find(|e| e.key == "models" && matches!(e.value.value, Value::Seq(_)))?;
        let models_path = child_path(path, "models");
        self.warn(
            &models_path,
            entry.key_line,
            "TOML put this 'models' inside the [providers.model_mapping] table above it; \
             it is used as the provider's models (move it above the [providers.model_mapping] \
             line to silence this)",
        );
        let models = self
            .string_list(&models_path, &entry.value)
            .unwrap_or_default();
        let rest: Vec<Entry> = entries
            .iter()
            .filter(|e| e.key != "models")
            .cloned()
            .collect();
        Some((models, Node::new(Value::Map(rest), node.line)))
    }

    fn routing(&mut self, node: &Node, path: &str) -> RoutingConfig {
        let mut r = RoutingConfig::default();
        let Some(e) = self.section(node, path, ROUTING_KEYS, &[]) else {
            return r;
        };
        if let Some(n) = field(e, "strategy") {
            let options = [
                ("failover", Strategy::Failover),
                ("round_robin", Strategy::RoundRobin),
                ("weighted_round_robin", Strategy::WeightedRoundRobin),
                ("shuffle", Strategy::Shuffle),
                ("model_based", Strategy::ModelBased),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "strategy"), n, &options) {
                r.strategy = v;
            }
        }
        if let Some(n) = field(e, "failover_mode") {
            let options = [
                ("sequential", FailoverMode::Sequential),
                ("race", FailoverMode::Race),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "failover_mode"), n, &options) {
                r.failover_mode = v;
            }
        }
        self.set(e, path, "failover_timeout", Self::u64_value, |v| {
            r.failover_timeout_ms = v
        });
        self.set(e, path, "max_attempts", Self::u64_value, |v| {
            r.max_attempts = v
        });
        self.set(e, path, "connect_timeout_ms", Self::positive_u64, |v| {
            r.connect_timeout_ms = v
        });
        self.set(e, path, "first_byte_timeout_ms", Self::positive_u64, |v| {
            r.first_byte_timeout_ms = v
        });
        self.set(e, path, "model_mapping", Self::string_map, |v| {
            r.model_mapping = v
        });
        r.default_provider = self.opt_string(e, path, "default_provider");
        self.set(e, path, "debug", Self::bool_value, |v| r.debug = v);
        r
    }

    fn health(&mut self, node: &Node, path: &str) -> HealthConfig {
        let mut h = HealthConfig::default();
        let Some(e) = self.section(node, path, HEALTH_KEYS, &[]) else {
            return h;
        };
        if let Some(n) = field(e, "health_check") {
            let p = child_path(path, "health_check");
            if let Some(c) = self.section(n, &p, HEALTH_CHECK_KEYS, &[]) {
                self.set(c, &p, "enabled", Self::bool_value, |v| {
                    h.health_check_enabled = v
                });
                self.set(c, &p, "interval_ms", Self::positive_u64, |v| {
                    h.health_check_interval_ms = v
                });
            }
        }
        if let Some(n) = field(e, "circuit_breaker") {
            let p = child_path(path, "circuit_breaker");
            if let Some(c) = self.section(n, &p, BREAKER_KEYS, &[]) {
                self.set(c, &p, "failure_threshold", Self::positive_u32, |v| {
                    h.failure_threshold = v
                });
                self.set(c, &p, "open_duration_ms", Self::positive_u64, |v| {
                    h.open_duration_ms = v
                });
                self.set(c, &p, "half_open_probes", Self::positive_u32, |v| {
                    h.half_open_probes = v
                });
            }
        }
        h
    }

    fn cache(&mut self, node: &Node, path: &str) -> CacheConfig {
        let mut c = CacheConfig::default();
        let Some(e) = self.section(node, path, CACHE_KEYS, GO_ONLY_CACHE) else {
            return c;
        };
        if let Some(n) = field(e, "mode") {
            let options = [
                ("single", CacheMode::Single),
                ("ha", CacheMode::Ha),
                ("disabled", CacheMode::Disabled),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "mode"), n, &options) {
                c.mode = v;
            }
        }
        self.set(e, path, "max_bytes", Self::u64_value, |v| c.max_bytes = v);
        if let Some(n) = field(e, "redis") {
            let p = child_path(path, "redis");
            if let Some(r) = self.section(n, &p, REDIS_KEYS, &[]) {
                c.redis.url = self.opt_string(r, &p, "url");
                if let Some(prefix) = field(r, "key_prefix") {
                    if let Some(v) = self.string_value(&child_path(&p, "key_prefix"), prefix) {
                        c.redis.key_prefix = v;
                    }
                }
                self.set(r, &p, "timeout_ms", Self::positive_u64, |v| {
                    c.redis.timeout_ms = v
                });
            }
        }
        c
    }

    fn logging(&mut self, node: &Node, path: &str) -> LoggingConfig {
        let mut l = LoggingConfig::default();
        let Some(e) = self.section(node, path, LOGGING_KEYS, &[]) else {
            return l;
        };
        if let Some(n) = field(e, "level") {
            let options = [
                ("error", LogLevel::Error),
                ("warn", LogLevel::Warn),
                ("info", LogLevel::Info),
                ("debug", LogLevel::Debug),
                ("trace", LogLevel::Trace),
            ];
            if let Some(v) = self.enum_value(&child_path(path, "level"), n, &options) {
                l.level = v;
            }
        }
        if let Some(n) = field(e, "format") {
            let options = [("text", LogFormat::Text), ("json", LogFormat::Json)];
            if let Some(v) = self.enum_value(&child_path(path, "format"), n, &options) {
                l.format = v;
            }
        }
        if let Some(n) = field(e, "pretty") {
            let p = child_path(path, "pretty");
            match &n.value {
                Value::String(s) if s == "auto" => l.pretty = None,
                _ => {
                    if let Some(v) = self.bool_value(&p, n) {
                        l.pretty = Some(v);
                    }
                }
            }
        }
        l.file = self.opt_string(e, path, "file");
        if let Some(n) = field(e, "debug_options") {
            let p = child_path(path, "debug_options");
            if let Some(d) = self.section(n, &p, DEBUG_OPTION_KEYS, &[]) {
                self.set(d, &p, "log_request_body", Self::bool_value, |v| {
                    l.log_request_body = v
                });
                self.set(d, &p, "log_response_headers", Self::bool_value, |v| {
                    l.log_response_headers = v
                });
                self.set(d, &p, "log_tls_metrics", Self::bool_value, |v| {
                    l.log_tls_metrics = v
                });
                self.set(d, &p, "max_body_log_size", Self::u64_value, |v| {
                    l.max_body_log_size = v
                });
            }
        }
        l
    }

    fn metrics(&mut self, node: &Node, path: &str) -> MetricsConfig {
        let mut m = MetricsConfig::default();
        let Some(e) = self.section(node, path, METRICS_KEYS, &[]) else {
            return m;
        };
        self.set(e, path, "enabled", Self::bool_value, |v| m.enabled = v);
        if let Some(n) = field(e, "path") {
            if let Some(v) = self.string_value(&child_path(path, "path"), n) {
                m.path = v;
            }
        }
        m
    }
}

/// `providers[N].keys[M]` and `providers[N].model_mapping` are where TOML puts a
/// `models = [..]` written after them.
fn misplaced_models_parent(path: &str) -> bool {
    path.starts_with("providers[")
        && (path.contains("].keys[") || path.ends_with("].model_mapping"))
}

/// `host:port` for the listener: an IP address (`[::1]:8787` for IPv6), `localhost`,
/// or an empty host (`:8787`, all interfaces, as the Go cc-relay reads it).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = || {
        format!("'{text}' is not an address and port (expected e.g. 127.0.0.1:8787 or [::1]:8787)")
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return Err(bad()),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("stratgy", ROUTING_KEYS), Some("strategy"));
        assert_eq!(
            suggest("round-robin", &["round_robin", "random"]),
            Some("round_robin")
        );
        assert_eq!(suggest("colour", ROUTING_KEYS), None);
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("127.0.0.1:8787").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 8787)))
        );
        assert_eq!(
            parse_listen(":9000").ok(),
            Some(SocketAddr::from(([0, 0, 0, 0], 9000)))
        );
        assert_eq!(
            parse_listen("localhost:1").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 1)))
        );
        assert!(parse_listen("[::1]:8787").is_ok());
        assert!(parse_listen("example.com:80").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
        assert!(parse_listen("127.0.0.1:99999").is_err());
    }
}
