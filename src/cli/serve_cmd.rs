//! `cc-relay serve` flags: load the configuration (file or embedded default), apply
//! `--listen`, `--log-level`, `--log-format` and `--debug` on top, re-check what the
//! overrides can break (a public listen address without a secret), then hand over to
//! `serve::serve`. It does not serve anything itself.

use super::args::{self, Flag};
use crate::config::{self, build::parse_listen, Config, LogFormat, LogLevel};

pub const HELP: &str = "\
Usage: cc-relay serve [--config FILE] [--listen ADDR] [--log-level LEVEL]
                      [--log-format text|json] [--debug]

Runs the relay until SIGTERM/SIGINT (in-flight requests get drain_timeout_ms to finish).
The config file is watched and reloaded when it changes (or on SIGHUP).

Options:
  --config FILE        configuration file (default: ./config.{yaml,yml,toml}, then
                       $XDG_CONFIG_HOME/cc-relay/config.*, else a built-in default that
                       forwards to api.anthropic.com)
  --listen ADDR        listen address, overrides server.listen (e.g. 127.0.0.1:8787)
  --log-level LEVEL    error | warn | info | debug | trace (overrides logging.level)
  --log-format FORMAT  text | json (overrides logging.format)
  --debug              debug logging and X-CC-Relay-* response headers

Examples:
  cc-relay serve
  cc-relay serve --config ./relay.toml --listen 127.0.0.1:9000
  ANTHROPIC_API_KEY=sk-ant-... cc-relay serve --log-format json
";

const FLAGS: &[Flag] = &[
    args::value("config"),
    args::value("listen"),
    args::value("log-level"),
    args::value("log-format"),
    args::switch("debug"),
];

/// Command-line settings that win over the file.
#[derive(Debug, Default, Clone)]
pub struct ServeOverrides {
    pub listen: Option<std::net::SocketAddr>,
    pub log_level: Option<LogLevel>,
    pub log_format: Option<LogFormat>,
    pub debug: bool,
}

impl ServeOverrides {
    /// Applies the overrides; the reload path can call this again on each new config.
    pub fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        if self.debug {
            config.logging.level = LogLevel::Debug;
            config.routing.debug = true;
        }
        if let Some(level) = self.log_level {
            config.logging.level = level;
        }
        if let Some(format) = self.log_format {
            config.logging.format = format;
        }
    }
}

fn parse_overrides(parsed: &args::Parsed) -> Result<ServeOverrides, String> {
    let mut o = ServeOverrides {
        debug: parsed.switch("debug"),
        ..ServeOverrides::default()
    };
    if let Some(listen) = parsed.value("listen") {
        o.listen = Some(parse_listen(listen).map_err(|e| format!("--listen: {e}"))?);
    }
    if let Some(level) = parsed.value("log-level") {
        o.log_level = Some(match level {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            other => {
                return Err(format!(
                    "--log-level: unknown level '{other}' (error, warn, info, debug or trace)"
                ))
            }
        });
    }
    if let Some(format) = parsed.value("log-format") {
        o.log_format = Some(match format {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(format!(
                    "--log-format: unknown format '{other}' (text or json)"
                ))
            }
        });
    }
    Ok(o)
}

pub fn run(rest: &[String]) -> i32 {
    let parsed = match super::parse_flags("serve", HELP, rest, FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let overrides = match parse_overrides(&parsed) {
        Ok(o) => o,
        Err(message) => return super::usage_error("serve", &message),
    };
    let (loaded, path) = match super::load_config(parsed.value("config")) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut config = loaded.config;
    overrides.apply(&mut config);
    let problems: Vec<config::Diagnostic> = config::check_config(&config)
        .into_iter()
        .filter(|d| d.is_error())
        .collect();
    if !problems.is_empty() {
        super::print_diagnostics(&problems);
        return super::EXIT_FAILURE;
    }
    super::serve::serve(config, path, overrides)
}
