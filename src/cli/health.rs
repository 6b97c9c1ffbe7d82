//! `cc-relay health`: one `GET /health` against a running relay, exit 0 when it answers
//! 200 and 1 otherwise. It exists for container and supervisor health checks, which
//! run inside images with no shell, curl or wget (a `scratch` image holds only this
//! binary), and it needs no credential because `/health` is unauthenticated — unlike
//! `status`. It speaks plain http:// to an address, prints one line, and does nothing
//! else: no config reload, no retries (the supervisor retries).

use super::args::{self, Flag};
use super::{failure, parse_flags, usage_error, EXIT_OK};
use crate::config;

pub const HELP: &str = "\
Usage: cc-relay health [--url URL] [--config FILE]

Asks a running relay for GET /health and exits 0 when it answers 200 {\"status\":\"ok\"},
1 when it is degraded (503), unreachable or answers anything else. Meant for Docker
HEALTHCHECK and supervisors: no credential is needed.

Options:
  --url URL       relay address, plain http:// (default: from the config's
                  server.listen, e.g. http://127.0.0.1:8787)
  --config FILE   configuration to read the address from

Examples:
  cc-relay health --url http://127.0.0.1:8787
  cc-relay health --config /etc/cc-relay/config.yaml
";

const FLAGS: &[Flag] = &[args::value("url"), args::value("config")];

pub fn run(rest: &[String]) -> i32 {
    let parsed = match parse_flags("health", HELP, rest, FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let url = match parsed.value("url") {
        Some(u) => u.to_string(),
        None => {
            let explicit = parsed.value("config").map(std::path::PathBuf::from);
            match config::load_default_or_discovered(explicit.as_deref()) {
                Ok((loaded, _)) => super::claude_settings::relay_url(&loaded.config),
                Err(diagnostics) => {
                    super::print_diagnostics(&diagnostics);
                    return super::EXIT_FAILURE;
                }
            }
        }
    };
    if let Err(e) = authority_of(&url) {
        return usage_error("health", &e);
    }
    match super::status::get_url(&url, "/health", None) {
        Ok((200, body)) => {
            println!(
                "{url}/health: 200 {}",
                String::from_utf8_lossy(&body).trim()
            );
            EXIT_OK
        }
        Ok((status, body)) => failure(&format!(
            "{url}/health: {status} {}",
            String::from_utf8_lossy(&body).trim()
        )),
        Err(e) => failure(&format!("cc-relay is not reachable at {url} ({e})")),
    }
}

/// `http://host:port[/]` -> `host:port` (a port is required: guessing 80 would probe
/// the wrong service on a host where the relay listens on 8787).
fn authority_of(url: &str) -> Result<&str, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("'{url}' must start with http:// (health speaks plain HTTP only)")
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        return Err(format!("'{url}' must be http://HOST:PORT"));
    }
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::authority_of;

    #[test]
    fn authority_needs_http_and_a_port() {
        assert_eq!(authority_of("http://127.0.0.1:8787"), Ok("127.0.0.1:8787"));
        assert_eq!(authority_of("http://[::1]:8787/"), Ok("[::1]:8787"));
        assert!(authority_of("https://127.0.0.1:8787").is_err());
        assert!(authority_of("http://127.0.0.1").is_err());
        assert!(authority_of("http://127.0.0.1:8787/v1").is_err());
        assert!(authority_of("http://").is_err());
    }
}
