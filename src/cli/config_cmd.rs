//! `cc-relay config init | validate | show`: write the commented template, check a
//! file (every problem listed, exit 1 if any is an error), print the effective config as
//! redacted JSON. All parsing and checking is `crate::config`; this is the terminal side.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::args::{self, Flag};
use super::{
    failure, load_config, parse_flags, print_diagnostics, usage_error, EXIT_FAILURE, EXIT_OK,
};
use crate::config::{self, env, load, show, template, Format};

pub const INIT_HELP: &str = "\
Usage: cc-relay config init [-o FILE] [--format yaml|toml] [--force]

Writes the built-in default configuration as a commented file that lists every setting
with its default. It passes `cc-relay config validate` as written.

Options:
  -o, --output FILE    where to write (default: $XDG_CONFIG_HOME/cc-relay/config.yaml,
                       i.e. ~/.config/cc-relay/config.yaml; `-` for stdout)
  --format yaml|toml   file format (default: from the FILE extension, else yaml)
  --force              overwrite an existing file

Examples:
  cc-relay config init
  cc-relay config init --format toml
  cc-relay config init -o ./config.yaml --force
";

pub const VALIDATE_HELP: &str = "\
Usage: cc-relay config validate [--config FILE]

Checks a configuration file and lists every problem at once, each as
`key.path: message (file:line)`. Warnings do not fail validation.
Exit code 0 when the file is valid, 1 when it is not (or none is found).

Options:
  --config FILE   file to check (default: the file `cc-relay serve` would use)

Examples:
  cc-relay config validate
  cc-relay config validate --config /etc/cc-relay/config.toml
";

pub const SHOW_HELP: &str = "\
Usage: cc-relay config show [--config FILE]

Prints the effective configuration as JSON: defaults filled in and ${VAR} expanded,
with every secret (keys, client secrets, AWS credentials, URL passwords) shown as \"***\".
Warnings go to stderr, so stdout is pure JSON.

Options:
  --config FILE   file to read (default: the file `cc-relay serve` would use, else the
                  built-in default)

Examples:
  cc-relay config show
  cc-relay config show --config ./config.yaml | jq '.providers[].name'
";

const INIT_FLAGS: &[Flag] = &[
    args::with_short(args::value("output"), 'o'),
    args::value("format"),
    args::switch("force"),
];
const CONFIG_FLAG: &[Flag] = &[args::value("config")];

pub fn init(rest: &[String]) -> i32 {
    let parsed = match parse_flags("config init", INIT_HELP, rest, INIT_FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let output = parsed.value("output");
    let from_extension = output
        .filter(|o| *o != "-")
        .map(|o| Format::from_path(Path::new(o)));
    let format =
        match (parsed.value("format"), from_extension) {
            (Some(f), ext) => {
                let format = match f {
                    "yaml" | "yml" => Format::Yaml,
                    "toml" => Format::Toml,
                    other => {
                        return usage_error(
                            "config init",
                            &format!("--format: unknown format '{other}' (yaml or toml)"),
                        )
                    }
                };
                if let Some(Some(ext)) = ext {
                    if ext != format {
                        return usage_error(
                            "config init",
                            &format!(
                                "--format {f} does not match the file name '{}'",
                                output.unwrap_or("")
                            ),
                        );
                    }
                }
                format
            }
            (None, Some(Some(ext))) => ext,
            (None, Some(None)) => return usage_error(
                "config init",
                "cannot tell the format from the file name (use .yaml, .yml or .toml, or --format)",
            ),
            (None, None) => Format::Yaml,
        };
    let text = template::template(format);
    if output == Some("-") {
        print!("{text}");
        return EXIT_OK;
    }
    let path = match output {
        Some(o) => PathBuf::from(o),
        None => match load::config_dir(&env::process_env) {
            Some(dir) => dir.join(format!("config.{}", format.as_str())),
            None => return failure("cannot find the configuration folder: neither XDG_CONFIG_HOME nor HOME is set (use -o FILE)"),
        },
    };
    let shown = load::display_name(&path);
    if path.exists() && !parsed.switch("force") {
        return failure(&format!(
            "{shown} already exists (use --force to overwrite it)"
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return failure(&format!("cannot create {}: {e}", dir.display()));
        }
    }
    if let Err(e) = std::fs::write(&path, text) {
        return failure(&format!("cannot write {shown}: {e}"));
    }
    println!("wrote {shown}");
    println!("check it with: cc-relay config validate --config {shown}");
    EXIT_OK
}

pub fn validate(rest: &[String]) -> i32 {
    let parsed = match parse_flags("config validate", VALIDATE_HELP, rest, CONFIG_FLAG) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let path = match parsed.value("config") {
        Some(p) => PathBuf::from(p),
        None => match config::discover() {
            Some(p) => p,
            None => {
                let looked: Vec<String> = load::candidates(Path::new("."), &env::process_env)
                    .iter()
                    .map(|p| load::display_name(p))
                    .collect();
                return failure(&format!(
                    "no configuration file found (looked for {}); `cc-relay serve` would use the built-in default",
                    looked.join(", ")
                ));
            }
        },
    };
    let shown = load::display_name(&path);
    match config::load_file(&path) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings);
            let enabled = loaded.config.enabled_providers().count();
            println!(
                "{shown}: valid ({} provider{}, {enabled} enabled)",
                loaded.config.providers.len(),
                if loaded.config.providers.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            EXIT_OK
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "{shown}: invalid ({errors} error{})",
                if errors == 1 { "" } else { "s" }
            );
            EXIT_FAILURE
        }
    }
}

pub fn show(rest: &[String]) -> i32 {
    let parsed = match parse_flags("config show", SHOW_HELP, rest, CONFIG_FLAG) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (loaded, _) = match load_config(parsed.value("config")) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", show::to_json(&loaded.config)) {
        Ok(()) => EXIT_OK,
        Err(e) => failure(&format!("cannot write to stdout: {e}")),
    }
}
