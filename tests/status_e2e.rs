//! `cc-relay status` and `/v1/providers` against a real relay: each provider's requests
//! over the last minute (and per second) count what the relay answered, survive a
//! config reload, and show in the status table's REQ/S column; and `status` / `health`
//! reach a relay on an HTTPS listener, trusting `--ca-file` or the config's own
//! certificate file, and fail on one line when the certificate is not trusted.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cc_relay::cli::serve::reload_config;
use cc_relay::cli::serve_cmd::ServeOverrides;
use cc_relay::config::{KeyConfig, ProviderConfig, ProviderType, TlsConfig};
use common::scratch::ScratchDir;
use common::tls::fixture;
use common::*;

const SECRET: &str = "relay-secret-1234";
const MESSAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"model":"claude-x","stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}"#;

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The real binary with an empty environment but `env`, so no config is found by
/// accident and no proxy is set.
fn cc_relay(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_cc-relay"))
        .args(args)
        .env_clear()
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn message_mock() -> MockUpstream {
    MockUpstream::start(|_req, s| write_json(s, 200, "", MESSAGE))
}

fn keyed(name: &str, url: &str, priority: i64) -> ProviderConfig {
    let mut p = provider(name, ProviderType::Anthropic, url);
    let mut key = KeyConfig::new(format!("sk-ant-{name}-key-0001"));
    key.name = Some(format!("{name}-key"));
    p.keys.push(key);
    p.priority = Some(priority);
    p
}

fn get_providers(addr: std::net::SocketAddr) -> serde_json::Value {
    let request = format!("GET /v1/providers HTTP/1.1\r\nhost: relay\r\nx-api-key: {SECRET}\r\nconnection: close\r\n\r\n");
    let response = raw_request(addr, request.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// `(requests_last_minute, requests_per_second)` of provider `name`.
fn recent(providers: &serde_json::Value, name: &str) -> (Option<u64>, Option<f64>) {
    let entry = providers["data"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no provider {name} in {providers}"));
    (
        entry["requests_last_minute"].as_u64(),
        entry["requests_per_second"].as_f64(),
    )
}

/// A request is counted just after its last byte went out, so wait until all are.
fn wait_until_counted(addr: std::net::SocketAddr, name: &str, n: u64) -> serde_json::Value {
    let counted = wait_for(Duration::from_secs(5), || {
        recent(&get_providers(addr), name).0 == Some(n)
    });
    let providers = get_providers(addr);
    assert!(counted, "{providers}");
    providers
}

fn send_messages(addr: std::net::SocketAddr, n: usize) {
    for _ in 0..n {
        let r = post_messages(addr, PLAIN_BODY, &format!("x-api-key: {SECRET}\r\n"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// The cell under `column` in the table row that starts with `row`.
fn cell(table: &str, row: &str, column: &str) -> String {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let start = header
        .find(column)
        .map(|byte| header[..byte].chars().count())
        .unwrap_or_else(|| panic!("no {column} column in {table}"));
    let line = lines
        .find(|l| l.split_whitespace().next() == Some(row))
        .unwrap_or_else(|| panic!("no {row} row in {table}"));
    line.chars()
        .skip(start)
        .take_while(|c| !c.is_whitespace())
        .collect()
}

#[test]
fn providers_and_status_show_the_requests_of_the_last_minute() {
    let main = message_mock();
    let spare = message_mock();
    let mut config = config_with(vec![
        keyed("main", &main.url(), 2),
        keyed("spare", &spare.url(), 1),
    ]);
    config.server.auth.api_key = Some(SECRET.into());
    let relay = start_relay(config);

    send_messages(relay.addr, 6);
    let providers = wait_until_counted(relay.addr, "main", 6);
    assert_eq!(recent(&providers, "main"), (Some(6), Some(0.1)));
    assert_eq!(recent(&providers, "spare"), (Some(0), Some(0.0)));
    assert_eq!(main.requests().len(), 6);

    let dir = ScratchDir::new("status-req-per-s");
    let url = format!("http://{}", relay.addr);
    let run = cc_relay(
        &dir,
        &["status", "--url", &url],
        &[("CC_RELAY_API_KEY", SECRET)],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stderr, "");
    assert!(!run.stdout.contains(SECRET));
    assert_eq!(cell(&run.stdout, "main", "REQ/S"), "0.10", "{}", run.stdout);
    assert_eq!(
        cell(&run.stdout, "spare", "REQ/S"),
        "0.00",
        "{}",
        run.stdout
    );
    assert_eq!(cell(&run.stdout, "main", "REQUESTS"), "6", "{}", run.stdout);
}

#[test]
fn requests_of_the_last_minute_survive_a_reload() {
    let main = message_mock();
    let mut config = config_with(vec![keyed("main", &main.url(), 1)]);
    config.server.auth.api_key = Some(SECRET.into());
    let relay = start_relay(config);
    send_messages(relay.addr, 3);
    wait_until_counted(relay.addr, "main", 3);

    // The same provider with another weight, and a new one.
    let dir = ScratchDir::new("status-reload");
    let file = dir.write(
        "config.yaml",
        &format!(
            "server:\n  auth:\n    api_key: {SECRET}\nproviders:\n  - name: main\n    type: anthropic\n    base_url: {url}\n    weight: 7\n    keys:\n      - key: sk-ant-main-key-0001\n  - name: added\n    type: anthropic\n    base_url: {url}\n",
            url = main.url()
        ),
    );
    reload_config(&relay.running, &file, &ServeOverrides::default());
    let providers = get_providers(relay.addr);
    let weight = providers["data"][0]["weight"].as_u64();
    assert_eq!(weight, Some(7), "the reload took effect: {providers}");
    assert_eq!(recent(&providers, "main"), (Some(3), Some(0.05)));
    assert_eq!(recent(&providers, "added"), (Some(0), Some(0.0)));

    send_messages(relay.addr, 1);
    let providers = wait_until_counted(relay.addr, "main", 4);
    assert_eq!(recent(&providers, "main"), (Some(4), Some(0.07)));
}

fn tls_relay(cert_file: &str, key_file: &str) -> Relay {
    let mut config = config_with(vec![keyed("main", "http://127.0.0.1:9", 1)]);
    config.server.auth.api_key = Some(SECRET.into());
    config.server.tls = Some(TlsConfig {
        cert_file: cert_file.to_string(),
        key_file: key_file.to_string(),
    });
    start_relay(config)
}

/// `cc-relay status --url URL [--ca-file FILE]`, the credential in the environment.
fn status_at(dir: &ScratchDir, url: &str, ca_file: Option<&str>) -> Run {
    let mut args = vec!["status", "--url", url];
    if let Some(ca) = ca_file {
        args.extend(["--ca-file", ca]);
    }
    cc_relay(dir, &args, &[("CC_RELAY_API_KEY", SECRET)])
}

/// Exit 1 and one line on stderr that starts with `start`.
fn assert_fails_with(run: &Run, start: &str) {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.starts_with(start), "{run:?}");
    assert!(!run.stderr.contains(SECRET));
}

#[test]
fn status_and_health_reach_an_https_relay_that_trusts_ca_file() {
    let relay = tls_relay(&fixture("server.pem"), &fixture("server.key"));
    let dir = ScratchDir::new("status-ca-file");
    let url = format!("https://127.0.0.1:{}", relay.addr.port());
    let ca = fixture("ca.pem");

    let run = status_at(&dir, &url, Some(&ca));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("PROVIDER "), "{}", run.stdout);
    assert_eq!(cell(&run.stdout, "main", "CIRCUIT"), "closed");
    assert_eq!(cell(&run.stdout, "main", "REQ/S"), "0.00");
    assert_eq!(cell(&run.stdout, "main", "KEY"), "main-key");

    let run = cc_relay(&dir, &["health", "--url", &url, "--ca-file", &ca], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{url}/health: 200 {{\"status\":\"ok\"}}\n")
    );

    // Without the CA the certificate is not trusted: one line, exit 1.
    let untrusted = format!(
        "error: cannot verify the certificate of {url} (TLS handshake with 127.0.0.1: \
         invalid peer certificate: UnknownIssuer); pass the certificate or the CA that \
         signed it with --ca-file FILE\n"
    );
    let run = status_at(&dir, &url, None);
    assert_fails_with(&run, &untrusted);
    assert_eq!(run.stderr, untrusted);
    let run = cc_relay(&dir, &["health", "--url", &url], &[]);
    assert_eq!(run.stderr, untrusted);
    assert_fails_with(&run, &untrusted);

    // The wrong CA is no better; an unreadable one is named.
    let run = status_at(&dir, &url, Some(&fixture("ca2.pem")));
    assert_fails_with(&run, "error: cannot verify the certificate of ");
    let missing = dir.join("missing.pem");
    let missing = missing.to_string_lossy();
    let run = status_at(&dir, &url, Some(&missing));
    assert_fails_with(&run, &format!("error: --ca-file {missing}: "));
}

#[test]
fn status_and_health_trust_a_self_signed_certificate_they_are_given() {
    // As `openssl req -x509` makes it: marked as a CA, which webpki alone refuses as the
    // server's own certificate.
    let (cert_file, key_file) = (fixture("selfsigned.pem"), fixture("selfsigned.key"));
    let relay = tls_relay(&cert_file, &key_file);
    let port = relay.addr.port();
    let dir = ScratchDir::new("status-self-signed");
    dir.write(
        "config.yaml",
        &format!(
            "server:\n  listen: 127.0.0.1:{port}\n  tls:\n    cert_file: {cert_file}\n    key_file: {key_file}\n  auth:\n    api_key: {SECRET}\nproviders:\n  - name: main\n    type: anthropic\n    base_url: http://127.0.0.1:9\n",
        ),
    );

    // From the config alone: its address is https and its cert_file is trusted.
    let run = cc_relay(&dir, &["status", "--config", "config.yaml"], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(cell(&run.stdout, "main", "CIRCUIT"), "closed");
    let run = cc_relay(&dir, &["health", "--config", "config.yaml"], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        format!("https://127.0.0.1:{port}/health: 200 {{\"status\":\"ok\"}}\n")
    );

    // Without a config, --ca-file names the same certificate.
    let url = format!("https://localhost:{port}");
    let run = status_at(&dir, &url, Some(&cert_file));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(cell(&run.stdout, "main", "KEY"), "main-key");
    let refused = format!(
        "error: cannot verify the certificate of {url} (TLS handshake with localhost: \
         invalid peer certificate: "
    );
    assert_fails_with(&status_at(&dir, &url, None), &refused);
    // Another certificate does not stand in for it.
    let run = status_at(&dir, &url, Some(&fixture("server.pem")));
    assert_fails_with(&run, &refused);
}
