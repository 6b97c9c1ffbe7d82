//! `cc-relay status`: asks a running relay for `GET /v1/providers` and prints one table
//! row per key: provider, type, enabled, circuit, priority, weight, requests (all time
//! and per second over the last minute), errors, time to first byte, key label,
//! requests and tokens left this minute, cool-down. The credential is
//! `CC_RELAY_API_KEY`, else the config's `server.auth.api_key` / `bearer_secret`. A relay
//! that is not running is a one-line error and exit 1; it never prints the credential.
//!
//! It also owns how the CLI reaches a relay (`health` uses the same): one GET through
//! the crate's upstream client, so `http://` and `https://` share one path. TLS trusts
//! the built-in roots, the relay's own `server.tls.cert_file` when a config was read (a
//! self-signed certificate), and `--ca-file`. Never through `HTTP(S)_PROXY`: the relay
//! is usually on loopback, and a plain-http proxy would see the credential.

use std::time::Duration;

use serde_json::Value;

use super::args::{self, Flag};
use super::{failure, parse_flags, usage_error, EXIT_OK};
use crate::config::{self, Config};
use crate::net::client::{ClientError, Endpoint, HttpClient, ProxySettings};
use crate::net::relay_trust::relay_client_config;

pub const HELP: &str = "\
Usage: cc-relay status [--url URL] [--config FILE] [--ca-file FILE]

Shows the providers of a running relay: enabled, circuit state (closed, half_open,
open), priority and weight, requests answered (in all, and per second over the last
minute), errors, time to first byte, and per key the requests and tokens left this
minute and any cool-down. Exit code 1 when the relay cannot be reached.

Options:
  --url URL       relay address, http:// or https:// (default: from the config's
                  server.listen, e.g. http://127.0.0.1:8787)
  --config FILE   configuration to read the address and credential from
  --ca-file FILE  PEM certificate(s) to trust for an https:// relay, in addition to
                  the built-in roots and the config's server.tls.cert_file (for a
                  relay whose certificate is self-signed or from a private CA)

The credential sent is $CC_RELAY_API_KEY, else the config's server.auth.api_key
(or bearer_secret).

Examples:
  cc-relay status
  CC_RELAY_API_KEY=secret cc-relay status --url http://10.0.0.5:8787
  cc-relay status --url https://relay.internal:8787 --ca-file /etc/cc-relay/ca.pem
";

const FLAGS: &[Flag] = &[
    args::value("url"),
    args::value("config"),
    args::value("ca-file"),
];
/// Connect and TLS handshake, then the whole answer, each within this.
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

pub fn run(rest: &[String]) -> i32 {
    let parsed = match parse_flags("status", HELP, rest, FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let env_credential = std::env::var("CC_RELAY_API_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let needs_config = parsed.value("url").is_none()
        || env_credential.is_none()
        || parsed.value("config").is_some();
    let config = if needs_config {
        match read_config(parsed.value("config")) {
            Ok(c) => Some(c),
            Err(code) => return code,
        }
    } else {
        None
    };
    let url = match (parsed.value("url"), &config) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(c)) => super::claude_settings::relay_url(c),
        (None, None) => return failure("no relay address (use --url)"),
    };
    let credential = env_credential.or_else(|| {
        config.as_ref().and_then(|c| {
            c.server
                .auth
                .api_key
                .clone()
                .or_else(|| c.server.auth.bearer_secret.clone())
        })
    });
    if let Err(e) = check_url(&url) {
        return usage_error("status", &e);
    }
    let client = match relay_client(parsed.value("ca-file"), config.as_ref()) {
        Ok(c) => c,
        Err(e) => return failure(&e),
    };
    let (status, body) = match get_url(&client, &url, "/v1/providers", credential.as_deref()) {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    if status != 200 {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let hint = if status == 401 {
            " (set CC_RELAY_API_KEY or server.auth.api_key)"
        } else {
            ""
        };
        return failure(&format!("{url} answered {status} {message}{hint}").replace("  ", " "));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            print!("{}", render_table(&v));
            EXIT_OK
        }
        Err(e) => failure(&format!("{url}/v1/providers did not return JSON: {e}")),
    }
}

/// `--config` if given, else the discovered file, else the embedded default. Only
/// errors are printed: warnings belong to `config validate`, not to a status check.
/// Err carries the exit code.
pub(super) fn read_config(explicit: Option<&str>) -> Result<Config, i32> {
    let explicit = explicit.map(std::path::PathBuf::from);
    config::load_default_or_discovered(explicit.as_deref())
        .map(|(loaded, _)| loaded.config)
        .map_err(|diagnostics| {
            super::print_diagnostics(&diagnostics);
            super::EXIT_FAILURE
        })
}

/// A usage error when `url` is not `http(s)://host[:port][/prefix]`.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!("'{url}' must start with http:// or https://"));
    }
    Endpoint::parse(url).map(|_| ()).map_err(|e| e.to_string())
}

/// The client the CLI talks to a relay with (TLS trust: `net::relay_trust`).
/// `ca_file` (`--ca-file`) must load; the config's `server.tls.cert_file` is trusted
/// when it loads and skipped otherwise (e.g. unreadable by this user), since only the
/// relay needs it.
pub(super) fn relay_client(
    ca_file: Option<&str>,
    config: Option<&Config>,
) -> Result<HttpClient, String> {
    let explicit: Vec<&str> = ca_file.into_iter().collect();
    let own_cert = config
        .and_then(|c| c.server.tls.as_ref())
        .map(|t| t.cert_file.as_str());
    let with_own_cert = own_cert.and_then(|cert| {
        let files = [explicit.as_slice(), &[cert]].concat();
        relay_client_config(&files).ok()
    });
    let tls = match with_own_cert {
        Some(tls) => tls,
        None => {
            relay_client_config(&explicit).map_err(|e| e.replacen("CA file", "--ca-file", 1))?
        }
    };
    Ok(HttpClient::new(tls, ProxySettings::default()))
}

/// One GET of `path` on the relay at `url`; its status and body, or the one-line
/// reason there is none.
pub(super) fn get_url(
    client: &HttpClient,
    url: &str,
    path: &str,
    credential: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let mut headers = vec![
        ("accept".to_string(), b"application/json".to_vec()),
        ("user-agent".to_string(), b"cc-relay-status".to_vec()),
    ];
    if let Some(c) = credential {
        headers.push(("x-api-key".to_string(), c.as_bytes().to_vec()));
    }
    let target = format!("{}{path}", url.trim_end_matches('/'));
    client
        .fetch("GET", &target, headers, b"", TIMEOUT, MAX_RESPONSE_BYTES)
        .map_err(|e| unreachable_message(url, &e))
}

fn unreachable_message(url: &str, e: &ClientError) -> String {
    match e {
        ClientError::Connect(m) if m.contains("invalid peer certificate") => format!(
            "cannot verify the certificate of {url} ({m}); pass the certificate or the CA \
             that signed it with --ca-file FILE"
        ),
        _ => format!("cc-relay is not reachable at {url} ({e})"),
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        Some(other) => other.to_string(),
    }
}

/// `remaining/limit`, or `-` when the key has no such limit.
fn headroom(key: &Value, what: &str) -> String {
    let limit = key
        .get(format!("{what}_limit"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let remaining = key.get(format!("{what}_remaining"));
    if limit == 0 && remaining.is_none_or_null() {
        return "-".to_string();
    }
    let limit_text = if limit == 0 {
        "∞".to_string()
    } else {
        limit.to_string()
    };
    format!("{}/{limit_text}", text(remaining))
}

trait NullExt {
    fn is_none_or_null(&self) -> bool;
}

impl NullExt for Option<&Value> {
    fn is_none_or_null(&self) -> bool {
        matches!(self, None | Some(Value::Null))
    }
}

/// The table `status` prints for a `/v1/providers` answer.
/// 4xx + 5xx answered for the provider, from `stats`.
fn errors(p: &Value) -> String {
    let count = |k: &str| p.pointer(&format!("/stats/{k}")).and_then(Value::as_u64);
    match (count("client_errors"), count("server_errors")) {
        (None, None) => "-".into(),
        (c, s) => (c.unwrap_or(0) + s.unwrap_or(0)).to_string(),
    }
}

/// Over the last minute, two decimals (`-` from a relay that does not report it).
fn requests_per_second(p: &Value) -> String {
    p.get("requests_per_second")
        .and_then(Value::as_f64)
        .map_or("-".to_string(), |v| format!("{v:.2}"))
}

fn ttfb(p: &Value) -> String {
    let ms = |k: &str| {
        p.pointer(&format!("/stats/{k}"))
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |v| format!("{v:.0}"))
    };
    format!("{}/{}", ms("ttfb_p50_ms"), ms("ttfb_p99_ms"))
}

pub fn render_table(v: &Value) -> String {
    let header = [
        "PROVIDER",
        "TYPE",
        "ENABLED",
        "CIRCUIT",
        "PRIORITY",
        "WEIGHT",
        "REQUESTS",
        "REQ/S",
        "ERRORS",
        "TTFB P50/P99 MS",
        "KEY",
        "RPM LEFT",
        "TPM LEFT",
        "COOLDOWN UNTIL",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    let empty = Vec::new();
    let providers = v.get("data").and_then(Value::as_array).unwrap_or(&empty);
    for p in providers {
        let provider_cells = vec![
            text(p.get("name")),
            text(p.get("type")),
            text(p.get("enabled")),
            text(p.get("circuit")),
            text(p.get("priority")),
            text(p.get("weight")),
            text(p.pointer("/stats/requests")),
            requests_per_second(p),
            errors(p),
            ttfb(p),
        ];
        let keys = p.get("keys").and_then(Value::as_array).unwrap_or(&empty);
        if keys.is_empty() {
            let mut row = provider_cells.clone();
            row.extend(["-", "-", "-", "-"].map(String::from));
            rows.push(row);
        }
        for (i, key) in keys.iter().enumerate() {
            let mut row = if i == 0 {
                provider_cells.clone()
            } else {
                vec![String::new(); provider_cells.len()]
            };
            row.push(text(key.get("label")));
            row.push(headroom(key, "rpm"));
            row.push(headroom(key, "tpm"));
            row.push(text(key.get("cooling_down_until")));
            rows.push(row);
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<String>| {
        let mut line = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        push_row(row);
    }
    if providers.is_empty() {
        out.push_str("(no providers)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_key() {
        let v: Value = serde_json::from_str(
            r#"{"data":[
              {"name":"anthropic","type":"anthropic","enabled":true,"priority":2,"weight":1,"circuit":"closed","models":[],
               "requests_last_minute":7,"requests_per_second":0.12,
               "stats":{"requests":12,"client_errors":1,"server_errors":2,"ttfb_p50_ms":40.0,"ttfb_p99_ms":250.0},
               "keys":[{"label":"main","rpm_limit":60,"rpm_remaining":55,"tpm_limit":0,"tpm_remaining":null,"cooling_down_until":null},
                       {"label":"…abcd","rpm_limit":0,"rpm_remaining":null,"tpm_limit":100000,"tpm_remaining":90000,"cooling_down_until":"2025-01-01T00:00:00Z"}]},
              {"name":"ollama","type":"ollama","enabled":false,"priority":0,"weight":1,"circuit":"open","models":[],"keys":[]}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            render_table(&v),
            "\
PROVIDER   TYPE       ENABLED  CIRCUIT  PRIORITY  WEIGHT  REQUESTS  REQ/S  ERRORS  TTFB P50/P99 MS  KEY    RPM LEFT  TPM LEFT      COOLDOWN UNTIL
anthropic  anthropic  yes      closed   2         1       12        0.12   3       40/250           main   55/60     -             -
                                                                                                    …abcd  -         90000/100000  2025-01-01T00:00:00Z
ollama     ollama     no       open     0         1       -         -      -       -/-              -      -         -             -
"
        );
    }

    #[test]
    fn urls_need_http_or_https_and_a_host() {
        assert_eq!(check_url("http://[::1]:9000/base"), Ok(()));
        assert_eq!(check_url("https://relay.internal"), Ok(()));
        assert_eq!(
            check_url("ftp://x"),
            Err("'ftp://x' must start with http:// or https://".to_string())
        );
        assert!(check_url("http://:80").is_err());
        assert!(check_url("https://127.0.0.1:port").is_err());
    }
}
