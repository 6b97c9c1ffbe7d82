//! Finding and loading a configuration: discovery order (SPEC §1.1), reading the file,
//! parsing it (YAML or TOML by extension), environment expansion, building the
//! `Config` and the semantic checks — returning the config with its warnings, or every
//! error at once. This is the entry point for the CLI and for hot reload; it owns the
//! file-system side of configuration and nothing of serving.

use std::path::{Path, PathBuf};

use super::build;
use super::diagnostic::{self, Diagnostic};
use super::env::{self, EnvLookup};
use super::schema::*;
use super::validate::{self, CheckOptions};
use super::value::{Format, Node};
use super::{toml_tree, yaml};

/// Larger files are refused: a configuration is a few kilobytes, and the reload
/// watcher must not be made to parse something huge.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A configuration that loaded, with what the user should still hear about.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Everything a load depends on besides the text.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    pub env: EnvLookup<'a>,
    pub check: CheckOptions,
}

impl Default for LoadOptions<'static> {
    fn default() -> Self {
        LoadOptions {
            env: &env::process_env,
            check: CheckOptions::default(),
        }
    }
}

/// Loads `path` with the process environment. On failure: every error, then the
/// warnings (each marked by its `severity`).
pub fn load_file(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_file_with(path, LoadOptions::default())
}

pub fn load_file_with(path: &Path, options: LoadOptions) -> Result<Loaded, Vec<Diagnostic>> {
    let name = display_name(path);
    let fail = |message: String| Err(vec![Diagnostic::error("", message).at(Some(&name), None)]);
    let Some(format) = Format::from_path(path) else {
        return fail(
            "unknown configuration format (the file name must end in .yaml, .yml or .toml)"
                .to_string(),
        );
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return fail(format!("file is larger than {MAX_FILE_BYTES} bytes"));
        }
        Ok(meta) if !meta.is_file() => return fail("not a regular file".to_string()),
        Ok(_) => {}
        Err(e) => return fail(format!("cannot read the file: {e}")),
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return fail(format!("cannot read the file: {e}")),
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return fail("the file is not valid UTF-8".to_string());
    };
    load_str_with(&text, format, Some(&name), options)
}

/// Loads configuration text; `name` is what messages call the file (`None`: no file).
pub fn load_str(
    text: &str,
    format: Format,
    name: Option<&str>,
    env: EnvLookup,
) -> Result<Loaded, Vec<Diagnostic>> {
    load_str_with(
        text,
        format,
        name,
        LoadOptions {
            env,
            check: CheckOptions::default(),
        },
    )
}

pub fn load_str_with(
    text: &str,
    format: Format,
    name: Option<&str>,
    options: LoadOptions,
) -> Result<Loaded, Vec<Diagnostic>> {
    let root = match parse_text(text, format) {
        Ok(root) => root,
        Err((line, message)) => {
            return Err(vec![Diagnostic::error("", message).at(name, Some(line))]);
        }
    };
    load_tree(root, format, name, options)
}

/// Parses text into the value tree; a syntax error as (line, message).
pub fn parse_text(text: &str, format: Format) -> Result<Node, (u32, String)> {
    match format {
        Format::Yaml => yaml::parse(text).map_err(|e| (e.line, e.message)),
        Format::Toml => toml_tree::parse(text).map_err(|e| (e.line, e.message)),
    }
}

/// The steps after parsing: expansion, building, defaults, semantic checks.
pub fn load_tree(
    mut root: Node,
    format: Format,
    name: Option<&str>,
    options: LoadOptions,
) -> Result<Loaded, Vec<Diagnostic>> {
    let expansion = env::expand_tree(&mut root, name, options.env);
    let built = build::build(&root, format, name, &expansion.failed_paths);
    let mut diagnostics = expansion.errors;
    diagnostics.extend(built.diagnostics);
    let mut config = built.config;

    if !built.providers_given {
        // A file without `providers` (e.g. only `server.auth` settings) gets the same
        // provider `cc-relay serve` runs with no file at all (SPEC §1.4).
        let default = Config::embedded_default((options.env)("ANTHROPIC_API_KEY"));
        config.providers = default.providers;
        if !built.allow_subscription_given && config.providers.iter().all(|p| p.keys.is_empty()) {
            config.server.auth.allow_subscription = true;
        }
        diagnostics.push(
            Diagnostic::warning(
                "providers",
                "no providers configured; using the built-in 'anthropic' provider",
            )
            .at(name, None),
        );
    }
    if config.server.upstream_ca_file.is_none() {
        config.server.upstream_ca_file =
            (options.env)("CC_RELAY_CA_FILE").filter(|v| !v.is_empty());
    }

    let semantic = validate::check(
        &config,
        &built.lines,
        name,
        &built.broken_providers,
        options.check,
    );
    // A value whose expansion failed was already reported once.
    diagnostics.extend(
        semantic
            .into_iter()
            .filter(|d| !expansion.failed_paths.contains(&d.path)),
    );
    diagnostic::sort(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok(Loaded {
        config,
        warnings: diagnostics,
    })
}

/// What `cc-relay serve` runs with when no file is found (SPEC §1.4).
pub fn embedded(env: EnvLookup) -> Loaded {
    Loaded {
        config: Config::embedded_default(env("ANTHROPIC_API_KEY")),
        warnings: Vec::new(),
    }
}

/// How messages name a file: as given, without a leading `./`.
pub fn display_name(path: &Path) -> String {
    let shown = path.display().to_string();
    match shown.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => shown,
    }
}

/// The files discovery looks at, in order: `./config.{yaml,yml,toml}`, then
/// `$XDG_CONFIG_HOME/cc-relay/config.{yaml,yml,toml}` (default `~/.config`).
pub fn candidates(cwd: &Path, env: EnvLookup) -> Vec<PathBuf> {
    const NAMES: [&str; 3] = ["config.yaml", "config.yml", "config.toml"];
    let mut out: Vec<PathBuf> = NAMES.iter().map(|n| cwd.join(n)).collect();
    if let Some(dir) = config_dir(env) {
        out.extend(NAMES.iter().map(|n| dir.join(n)));
    }
    out
}

/// `$XDG_CONFIG_HOME/cc-relay` (when set to an absolute path), else `$HOME/.config/cc-relay`.
pub fn config_dir(env: EnvLookup) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })?;
    Some(base.join("cc-relay"))
}

/// The first existing candidate, relative to `cwd`.
pub fn discover_in(cwd: &Path, env: EnvLookup) -> Option<PathBuf> {
    candidates(cwd, env).into_iter().find(|p| p.is_file())
}

/// The configuration file to use when `--config` is not given, if any.
pub fn discover() -> Option<PathBuf> {
    discover_in(Path::new("."), &env::process_env)
}

/// `--config` when given, else the discovered file, else the embedded default. Returns
/// the path the config came from (None for the embedded default).
pub fn load_default_or_discovered(
    explicit: Option<&Path>,
) -> Result<(Loaded, Option<PathBuf>), Vec<Diagnostic>> {
    let path = explicit.map(Path::to_path_buf).or_else(discover);
    match path {
        Some(path) => load_file(&path).map(|loaded| (loaded, Some(path))),
        None => Ok((embedded(&env::process_env), None)),
    }
}

/// Fuzz entry for the `config` target: the first byte picks YAML or TOML, the rest is
/// the file. A fixed environment; no file-system checks.
pub fn fuzz_entry(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = if selector % 2 == 0 {
        Format::Yaml
    } else {
        Format::Toml
    };
    let env = |name: &str| match name {
        "ANTHROPIC_API_KEY" | "ZAI_API_KEY" => Some("sk-fuzz".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let options = LoadOptions {
        env: &env,
        check: CheckOptions { check_files: false },
    };
    if let Ok(loaded) = load_str_with(text, format, Some("fuzz"), options) {
        let _ = super::show::to_json(&loaded.config);
    }
}
