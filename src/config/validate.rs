//! Semantic checks on a built `Config` — the rules that involve more than one key or the
//! outside world: unique provider names, what each provider type requires, routing
//! naming real providers, a safe listener, readable TLS files, at least one enabled
//! provider. Every problem is reported (none stops the others). Lines come from the
//! `LineIndex` the builder recorded; with an empty index (after CLI overrides) the
//! messages simply carry no line. The only I/O is checking that named files can be
//! opened, and `CheckOptions` turns that off (fuzzing).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::build::LineIndex;
use super::diagnostic::{child_path, index_path, Diagnostic};
use super::schema::*;

#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Check that TLS and CA files exist and can be opened.
    pub check_files: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { check_files: true }
    }
}

/// Semantic errors and warnings of `config`. `skip_providers` holds indexes of providers
/// whose own entries already failed to load.
pub fn check(
    config: &Config,
    lines: &LineIndex,
    file: Option<&str>,
    skip_providers: &HashSet<usize>,
    options: CheckOptions,
) -> Vec<Diagnostic> {
    let mut c = Checker {
        lines,
        file,
        out: Vec::new(),
    };
    c.server(config, options);
    c.providers(config, skip_providers);
    c.routing(config);
    c.cache(config);
    c.metrics(config);
    c.out
}

/// The same checks on a config without a file (after `serve --listen` and friends).
pub fn check_config(config: &Config) -> Vec<Diagnostic> {
    check(
        config,
        &LineIndex::default(),
        None,
        &HashSet::new(),
        CheckOptions::default(),
    )
}

struct Checker<'a> {
    lines: &'a LineIndex,
    file: Option<&'a str>,
    out: Vec<Diagnostic>,
}

fn readable_file(path: &str) -> Result<(), String> {
    let meta =
        std::fs::metadata(Path::new(path)).map_err(|e| format!("cannot read '{path}': {e}"))?;
    if !meta.is_file() {
        return Err(format!("'{path}' is not a regular file"));
    }
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| format!("cannot read '{path}': {e}"))
}

fn valid_provider_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Checker<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let line = self.lines.line_of(path);
        self.out
            .push(Diagnostic::error(path, message).at(self.file, line));
    }

    fn warn(&mut self, path: &str, message: impl Into<String>) {
        let line = self.lines.line_of(path);
        self.out
            .push(Diagnostic::warning(path, message).at(self.file, line));
    }

    fn server(&mut self, config: &Config, options: CheckOptions) {
        let s = &config.server;
        let auth = &s.auth;
        let has_secret = auth.api_key.is_some() || auth.bearer_secret.is_some();
        if !s.listen.ip().is_loopback() && !has_secret && !auth.allow_unauthenticated {
            self.error(
                "server.listen",
                format!(
                    "{} is not a loopback address and no client secret is set; set \
                     server.auth.api_key or server.auth.bearer_secret, or \
                     server.auth.allow_unauthenticated: true to serve anyone who can connect",
                    s.listen
                ),
            );
        }
        if options.check_files {
            if let Some(tls) = &s.tls {
                for (key, file) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
                    if let Err(message) = readable_file(file) {
                        self.error(&format!("server.tls.{key}"), message);
                    }
                }
            }
            if let Some(ca) = &s.upstream_ca_file {
                if let Err(message) = readable_file(ca) {
                    self.error("server.upstream_ca_file", message);
                }
            }
        }
        if s.upstream_ca_only && s.upstream_ca_file.is_none() {
            self.error(
                "server.upstream_ca_only",
                "needs server.upstream_ca_file (otherwise no upstream certificate could be trusted)",
            );
        }
    }

    fn providers(&mut self, config: &Config, skip: &HashSet<usize>) {
        if config.enabled_providers().next().is_none() {
            let message = if config.providers.is_empty() {
                "at least one provider is required"
            } else {
                "at least one provider must be enabled"
            };
            self.error("providers", message);
        }
        let mut first_index: HashMap<&str, usize> = HashMap::new();
        for (i, p) in config.providers.iter().enumerate() {
            if skip.contains(&i) {
                continue;
            }
            let path = index_path("providers", i);
            let name_path = child_path(&path, "name");
            if !valid_provider_name(&p.name) {
                self.error(
                    &name_path,
                    format!(
                        "'{}' is not a valid provider name (use lowercase letters, digits, '_' and '-')",
                        p.name
                    ),
                );
            }
            if let Some(first) = first_index.get(p.name.as_str()) {
                self.error(
                    &name_path,
                    format!(
                        "duplicate provider name '{}' (also providers[{first}])",
                        p.name
                    ),
                );
            } else {
                first_index.insert(&p.name, i);
            }
            self.provider(p, &path, config.server.auth.allow_subscription);
        }
    }

    fn provider(&mut self, p: &ProviderConfig, path: &str, allow_subscription: bool) {
        if let Some(url) = &p.base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.error(
                    &child_path(path, "base_url"),
                    "must start with http:// or https://",
                );
            }
        }
        for (i, key) in p.keys.iter().enumerate() {
            if key.key.is_empty() && p.enabled {
                self.error(
                    &child_path(&index_path(&child_path(path, "keys"), i), "key"),
                    "must not be empty",
                );
            }
        }
        for (name, value) in &p.headers {
            let header_path = child_path(&child_path(path, "headers"), name);
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                self.error(
                    &header_path,
                    format!("'{name}' is not a valid HTTP header name"),
                );
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                self.error(&header_path, "header values cannot contain line breaks");
            }
        }
        // A disabled provider is a draft: what it would need is checked once it is enabled.
        if !p.enabled {
            return;
        }
        match p.kind {
            ProviderType::Bedrock => {
                if p.aws_region.is_none() {
                    self.error(path, "bedrock needs 'aws_region' (e.g. us-east-1)");
                }
                if p.aws_access_key_id.is_some() != p.aws_secret_access_key.is_some() {
                    let missing = if p.aws_access_key_id.is_some() {
                        "aws_secret_access_key"
                    } else {
                        "aws_access_key_id"
                    };
                    self.error(
                        path,
                        format!("'{missing}' is missing (set both AWS keys, or neither to use the default credential chain)"),
                    );
                }
            }
            ProviderType::Vertex => {
                if p.gcp_project_id.is_none() {
                    self.error(path, "vertex needs 'gcp_project_id'");
                }
                if p.gcp_region.is_none() {
                    self.error(path, "vertex needs 'gcp_region' (e.g. us-east5, or global)");
                }
            }
            ProviderType::Azure if p.azure_resource_name.is_none() && p.base_url.is_none() => {
                self.error(path, "azure needs 'azure_resource_name' or 'base_url'");
            }
            _ => {}
        }
        if p.keys.is_empty() {
            let why = match p.kind {
                ProviderType::Anthropic if !allow_subscription => Some(
                    "no keys and server.auth.allow_subscription is false: requests to it will fail \
                     (add keys, or allow_subscription: true to forward clients' own credentials)",
                ),
                ProviderType::Zai | ProviderType::Minimax => {
                    Some("no keys: this provider needs an API key, requests to it will fail")
                }
                ProviderType::Azure if p.azure_auth != AzureAuth::Bearer => {
                    Some("no keys: azure with key auth needs an API key, requests to it will fail")
                }
                _ => None,
            };
            if let Some(why) = why {
                self.warn(path, why);
            }
        }
    }

    fn routing(&mut self, config: &Config) {
        let r = &config.routing;
        let known: HashSet<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        for (prefix, provider) in &r.model_mapping {
            if !known.contains(provider.as_str()) {
                self.error(
                    &child_path("routing.model_mapping", prefix),
                    format!("unknown provider '{provider}'"),
                );
            }
        }
        if let Some(default) = &r.default_provider {
            if !known.contains(default.as_str()) {
                self.error(
                    "routing.default_provider",
                    format!("unknown provider '{default}'"),
                );
            }
        }
        if r.strategy != Strategy::ModelBased
            && (!r.model_mapping.is_empty() || r.default_provider.is_some())
        {
            let key = if r.model_mapping.is_empty() {
                "routing.default_provider"
            } else {
                "routing.model_mapping"
            };
            self.warn(key, "only used with strategy: model_based; ignored");
        }
    }

    fn cache(&mut self, config: &Config) {
        let c = &config.cache;
        if c.mode == CacheMode::Ha && c.redis.url.is_none() {
            self.error("cache.redis.url", "cache mode 'ha' needs a Redis URL");
        }
        if let Some(url) = &c.redis.url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                self.error("cache.redis.url", "must start with redis:// or rediss://");
            }
        }
    }

    fn metrics(&mut self, config: &Config) {
        if !config.metrics.path.starts_with('/') {
            self.error("metrics.path", "must start with '/'");
        }
    }
}
