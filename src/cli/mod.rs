//! Command-line entry: parses arguments and runs a subcommand. Returns the process exit
//! code (0 ok, 1 runtime/validation error, 2 usage error).

pub mod serve;

pub fn run(args: Vec<String>) -> i32 {
    let _ = args;
    0
}
