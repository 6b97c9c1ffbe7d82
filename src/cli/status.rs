//! `cc-relay status`: asks a running relay for `GET /v1/providers` over plain HTTP and
//! prints one table row per key: provider, type, enabled, circuit, priority, weight,
//! requests (all time and per second over the last minute), errors, time to first
//! byte, key label, requests and tokens left this minute, cool-down. The credential is
//! `CC_RELAY_API_KEY`, else the config's `server.auth.api_key` / `bearer_secret`. A relay
//! that is not running is a one-line error and exit 1. Minimal HTTP/1.1 client of its
//! own (one request, `Connection: close`); it never prints the credential.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use super::args::{self, Flag};
use super::{failure, parse_flags, usage_error, EXIT_OK};
use crate::config;

pub const HELP: &str = "\
Usage: cc-relay status [--url URL] [--config FILE]

Shows the providers of a running relay: enabled, circuit state (closed, half_open,
open), priority and weight, requests answered (in all, and per second over the last
minute), errors, time to first byte, and per key the requests and tokens left this
minute and any cool-down. Exit code 1 when the relay cannot be reached.

Options:
  --url URL       relay address (default: from the config's server.listen,
                  e.g. http://127.0.0.1:8787)
  --config FILE   configuration to read the address and credential from

The credential sent is $CC_RELAY_API_KEY, else the config's server.auth.api_key
(or bearer_secret).

Examples:
  cc-relay status
  CC_RELAY_API_KEY=secret cc-relay status --url http://10.0.0.5:8787
";

const FLAGS: &[Flag] = &[args::value("url"), args::value("config")];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

pub fn run(rest: &[String]) -> i32 {
    let parsed = match parse_flags("status", HELP, rest, FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let env_credential = std::env::var("CC_RELAY_API_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let needs_config = parsed.value("url").is_none() || env_credential.is_none();
    let config = if needs_config {
        let explicit = parsed.value("config").map(std::path::PathBuf::from);
        match config::load_default_or_discovered(explicit.as_deref()) {
            Ok((loaded, _)) => Some(loaded.config),
            Err(diagnostics) => {
                super::print_diagnostics(&diagnostics);
                return super::EXIT_FAILURE;
            }
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
    let target = match HttpTarget::parse(&url) {
        Ok(t) => t,
        Err(e) => return usage_error("status", &e),
    };
    let (status, body) = match target.get("/v1/providers", credential.as_deref()) {
        Ok(r) => r,
        Err(e) => return failure(&format!("cc-relay is not reachable at {url} ({e})")),
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

/// `http://host[:port][/prefix]`.
/// One plain-HTTP GET of `path` on the relay at `url` (also used by `cc-relay health`).
pub(super) fn get_url(
    url: &str,
    path: &str,
    credential: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    HttpTarget::parse(url)?.get(path, credential)
}

struct HttpTarget {
    host: String,
    port: u16,
    prefix: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<HttpTarget, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "'{url}': status speaks plain http:// only; query the relay's HTTP listener"
            ));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!("'{url}' must start with http://"));
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let bad = || format!("'{url}' has no valid host and port");
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None => 80,
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(HttpTarget { host, port, prefix })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// One GET; returns status and body.
    fn get(&self, path: &str, credential: Option<&str>) -> Result<(u16, Vec<u8>), String> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?;
        let mut last_error = "no address".to_string();
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        let mut stream = stream.ok_or(last_error)?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut request = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: cc-relay-status\r\n",
            self.prefix,
            self.host_header()
        );
        if let Some(c) = credential {
            request.push_str(&format!("x-api-key: {c}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut raw)
            .map_err(|e| e.to_string())?;
        parse_response(&raw)
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete HTTP response".to_string()),
        Err(e) => return Err(format!("not an HTTP response ({e})")),
    };
    let status = response.code.unwrap_or(0);
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
        }
    }
    let body = raw.get(head_len..).unwrap_or(&[]);
    let body = if chunked {
        dechunk(body)?
    } else {
        match length {
            Some(n) => body
                .get(..n)
                .ok_or("response body shorter than its Content-Length")?
                .to_vec(),
            None => body.to_vec(),
        }
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("malformed chunked body")?;
        let size_text =
            std::str::from_utf8(&data[..line_end]).map_err(|_| "malformed chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "malformed chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunked body")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunked body")?;
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
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Ok((200, b"{}".to_vec())));
        let chunked =
            b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok((401, b"{}".to_vec())));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
    }

    #[test]
    fn urls() {
        let t = HttpTarget::parse("http://[::1]:9000/base/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("::1", 9000, "/base")
        );
        assert_eq!(t.host_header(), "[::1]:9000");
        assert!(HttpTarget::parse("https://x").is_err());
        assert!(HttpTarget::parse("http://:80").is_err());
    }
}
