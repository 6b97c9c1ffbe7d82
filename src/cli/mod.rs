//! Command-line entry: parses arguments and runs a subcommand. Returns the process exit
//! code (0 ok, 1 runtime/validation error, 2 usage error).

pub mod serve;

use crate::config::Config;

pub fn run(args: Vec<String>) -> i32 {
    match args.first().map(String::as_str) {
        Some("serve") | None => {
            let key = std::env::var("ANTHROPIC_API_KEY").ok();
            serve::serve(Config::embedded_default(key), None)
        }
        Some("--version") | Some("version") => {
            println!("cc-relay {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some(other) => {
            eprintln!("error: unknown command '{other}'; try 'cc-relay --help'");
            2
        }
    }
}
