//! `cc-relay health`: one `GET /health` against a running relay, exit 0 when it answers
//! 200 and 1 otherwise. It exists for container and supervisor health checks, which
//! run inside images with no shell, curl or wget (a `scratch` image holds only this
//! binary), and it needs no credential because `/health` is unauthenticated — unlike
//! `status`. It reaches the relay the way `status` does (http:// or https://, trusting
//! the config's `server.tls.cert_file` and `--ca-file`), prints one line, and does
//! nothing else: no config reload, no retries (the supervisor retries).

use super::args::{self, Flag};
use super::{failure, parse_flags, status, usage_error, EXIT_OK};

pub const HELP: &str = "\
Usage: cc-relay health [--url URL] [--config FILE] [--ca-file FILE]

Asks a running relay for GET /health and exits 0 when it answers 200 {\"status\":\"ok\"},
1 when it is degraded (503), unreachable or answers anything else. Meant for Docker
HEALTHCHECK and supervisors: no credential is needed.

Options:
  --url URL       relay address, http://HOST:PORT or https://HOST:PORT (default:
                  from the config's server.listen, e.g. http://127.0.0.1:8787)
  --config FILE   configuration to read the address (and, for https, the
                  certificate to trust: server.tls.cert_file) from
  --ca-file FILE  PEM certificate(s) to trust for an https:// relay, in addition to
                  the built-in roots and the config's server.tls.cert_file

Examples:
  cc-relay health --url http://127.0.0.1:8787
  cc-relay health --url https://127.0.0.1:8787 --ca-file /etc/cc-relay/ca.pem
  cc-relay health --config /etc/cc-relay/config.yaml
";

const FLAGS: &[Flag] = &[
    args::value("url"),
    args::value("config"),
    args::value("ca-file"),
];

pub fn run(rest: &[String]) -> i32 {
    let parsed = match parse_flags("health", HELP, rest, FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let config = if parsed.value("url").is_none() || parsed.value("config").is_some() {
        match status::read_config(parsed.value("config")) {
            Ok(c) => Some(c),
            Err(code) => return code,
        }
    } else {
        None
    };
    let url = match (parsed.value("url"), &config) {
        (Some(u), _) => u.to_string(),
        (None, Some(c)) => super::claude_settings::relay_url(c),
        (None, None) => return failure("no relay address (use --url)"),
    };
    if let Err(e) = authority_of(&url).and_then(|_| status::check_url(&url)) {
        return usage_error("health", &e);
    }
    let client = match status::relay_client(parsed.value("ca-file"), config.as_ref()) {
        Ok(c) => c,
        Err(e) => return failure(&e),
    };
    match status::get_url(&client, &url, "/health", None) {
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
        Err(e) => failure(&e),
    }
}

/// `http(s)://host:port[/]` -> `host:port` (a port is required: guessing 80 or 443
/// would probe the wrong service on a host where the relay listens on 8787).
fn authority_of(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("'{url}' must start with http:// or https://"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        return Err(format!(
            "'{url}' must be http://HOST:PORT or https://HOST:PORT"
        ));
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
        assert_eq!(authority_of("https://localhost:8787"), Ok("localhost:8787"));
        assert!(authority_of("ftp://127.0.0.1:8787").is_err());
        assert!(authority_of("https://127.0.0.1").is_err());
        assert!(authority_of("http://127.0.0.1").is_err());
        assert!(authority_of("http://127.0.0.1:8787/v1").is_err());
        assert!(authority_of("http://").is_err());
    }
}
