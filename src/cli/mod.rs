//! Command-line entry (SPEC §5): picks the subcommand, prints help, and turns every
//! outcome into an exit code — 0 ok, 1 runtime or validation error, 2 usage error.
//! Errors go to stderr one line each (`error: ...`), never as Rust debug output; data
//! (`config show` JSON, the `status` table) goes to stdout. Serving itself is
//! `serve::serve`, owned by the server side; this module only prepares its config.

pub mod args;
pub mod claude_settings;
pub mod config_cmd;
pub mod health;
pub mod serve;
pub mod serve_cmd;
pub mod status;
pub mod version;

use std::path::PathBuf;

use crate::config::{self, Diagnostic, Loaded};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

const COMMANDS: &[&str] = &["serve", "config", "status", "health", "version", "help"];

pub const HELP: &str = "\
cc-relay: a small proxy between Claude Code (or any Anthropic Messages API client) and
many LLM backends: key pools, rate limits, failover, model mapping, Bedrock/Vertex/Azure.

Usage: cc-relay <command> [options]

Commands:
  serve              run the relay (the default config works with no file at all)
  config init        write a commented configuration file
  config validate    check a configuration file and list every problem
  config show        print the effective configuration as JSON, secrets hidden
  config cc init     point Claude Code at this relay (~/.claude/settings.json)
  config cc remove   undo `config cc init`
  status             show providers, circuits and key headroom of a running relay
  health             exit 0 when a running relay answers GET /health with 200
  version            print the version

Options:
  -h, --help         help for cc-relay or for a command (`cc-relay serve --help`)
  -V, --version      print the version

Examples:
  cc-relay serve
  cc-relay config init && cc-relay config validate
  cc-relay config cc init && claude

Configuration is read from --config, else ./config.{yaml,yml,toml}, else
$XDG_CONFIG_HOME/cc-relay/config.{yaml,yml,toml} (default ~/.config/cc-relay/).
";

const CONFIG_HELP: &str = "\
Usage: cc-relay config <init|validate|show|cc> [options]

  config init [-o FILE] [--format yaml|toml] [--force]
  config validate [--config FILE]
  config show [--config FILE]
  config cc init [--url URL] [--config FILE]
  config cc remove

Examples:
  cc-relay config init --format toml
  cc-relay config validate --config ./config.yaml
  cc-relay config show | jq .providers

Run `cc-relay config <command> --help` for details.
";

/// Runs the command line (without the program name) and returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    let Some(command) = args.first() else {
        eprint!("{HELP}");
        return EXIT_USAGE;
    };
    let rest = &args[1..];
    match command.as_str() {
        "-h" | "--help" => {
            print!("{HELP}");
            EXIT_OK
        }
        "help" => help_for(rest),
        "-V" | "--version" => version::run(&[]),
        "version" => version::run(rest),
        "serve" => serve_cmd::run(rest),
        "config" => run_config(rest),
        "status" => status::run(rest),
        "health" => health::run(rest),
        other => {
            let hint = config::build::suggest(other, COMMANDS)
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            usage_error("", &format!("unknown command '{other}'{hint}"))
        }
    }
}

fn help_for(topic: &[String]) -> i32 {
    let topic: Vec<&str> = topic.iter().map(String::as_str).collect();
    let text = match topic.as_slice() {
        [] => HELP,
        ["serve", ..] => serve_cmd::HELP,
        ["status", ..] => status::HELP,
        ["health", ..] => health::HELP,
        ["version", ..] => version::HELP,
        ["config", "init", ..] => config_cmd::INIT_HELP,
        ["config", "validate", ..] => config_cmd::VALIDATE_HELP,
        ["config", "show", ..] => config_cmd::SHOW_HELP,
        ["config", "cc", ..] => claude_settings::HELP,
        ["config", ..] => CONFIG_HELP,
        [other, ..] => return usage_error("", &format!("no help for unknown command '{other}'")),
    };
    print!("{text}");
    EXIT_OK
}

fn run_config(args: &[String]) -> i32 {
    let Some(sub) = args.first() else {
        eprint!("{CONFIG_HELP}");
        return EXIT_USAGE;
    };
    let rest = &args[1..];
    match sub.as_str() {
        "-h" | "--help" => {
            print!("{CONFIG_HELP}");
            EXIT_OK
        }
        "init" => config_cmd::init(rest),
        "validate" => config_cmd::validate(rest),
        "show" => config_cmd::show(rest),
        "cc" => claude_settings::run(rest),
        other => {
            let hint = config::build::suggest(other, &["init", "validate", "show", "cc"])
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            usage_error("config", &format!("unknown config command '{other}'{hint}"))
        }
    }
}

/// Prints a usage error for `cc-relay <command>` and returns exit code 2.
pub fn usage_error(command: &str, message: &str) -> i32 {
    let help = if command.is_empty() {
        "cc-relay --help".to_string()
    } else {
        format!("cc-relay {command} --help")
    };
    eprintln!("error: {message} (see '{help}')");
    EXIT_USAGE
}

/// Prints a runtime error and returns exit code 1.
pub fn failure(message: &str) -> i32 {
    eprintln!("error: {message}");
    EXIT_FAILURE
}

pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let kind = if d.is_error() { "error" } else { "warning" };
        eprintln!("{kind}: {d}");
    }
}

/// `--config` if given, else the discovered file, else the embedded default; problems
/// are printed. Err carries the exit code.
pub fn load_config(explicit: Option<&str>) -> Result<(Loaded, Option<PathBuf>), i32> {
    let explicit = explicit.map(PathBuf::from);
    match config::load_default_or_discovered(explicit.as_deref()) {
        Ok((loaded, path)) => {
            print_diagnostics(&loaded.warnings);
            Ok((loaded, path))
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            Err(EXIT_FAILURE)
        }
    }
}

/// Parses flags for `command`, printing help or a usage error as needed.
/// Err carries the exit code to return.
pub fn parse_flags(
    command: &str,
    help: &str,
    rest: &[String],
    flags: &[args::Flag],
) -> Result<args::Parsed, i32> {
    if args::wants_help(rest) {
        print!("{help}");
        return Err(EXIT_OK);
    }
    args::parse(rest, flags, 0).map_err(|message| usage_error(command, &message))
}
