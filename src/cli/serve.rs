//! `cc-relay serve`: start the relay with a loaded configuration and run until a signal.

use std::path::PathBuf;

use crate::config::Config;

/// Runs the server on `config` (flags already applied). `config_path` is the file it came
/// from, watched for hot reload; None for the embedded default. Returns the exit code.
pub fn serve(config: Config, config_path: Option<PathBuf>) -> i32 {
    let _ = (config, config_path);
    0
}
