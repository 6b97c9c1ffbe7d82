//! What an operator sees: `/metrics` counts the requests the relay served, by provider
//! and status, and never shows key material.

mod common;

use cc_relay::config::{KeyConfig, ProviderType};
use common::*;

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_requests_streams_and_tokens() {
    let stream_mock = MockUpstream::start(|_req, s| {
        start_sse(s);
        for ev in text_stream_events("m") {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let mut p = provider("main", ProviderType::Anthropic, &stream_mock.url());
    p.keys.push(KeyConfig::new("sk-ant-secret-key-9876"));
    let mut config = config_with(vec![p]);
    config.server.auth.api_key = Some("relay-secret".into());
    let relay = start_relay(config);
    for _ in 0..2 {
        let r = post_messages(relay.addr, STREAM_BODY, "x-api-key: relay-secret\r\n");
        assert_eq!(r.status, 200);
    }
    let r = post_messages(relay.addr, STREAM_BODY, "x-api-key: wrong\r\n");
    assert_eq!(r.status, 401);
    // Loopback scrapes need no credential. A request is counted just after its last
    // byte went out, so wait until the scrape has seen all three.
    let scrape = || raw_request(relay.addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    let all_counted = |text: &str| {
        metric_value(
            text,
            r#"cc_relay_requests_total{provider="main",status="200"}"#,
        ) == Some(2.0)
            && metric_value(
                text,
                r#"cc_relay_requests_total{provider="none",status="401"}"#,
            )
            .is_some()
    };
    assert!(wait_for(std::time::Duration::from_secs(5), || all_counted(
        &scrape().text()
    )));
    let m = scrape();
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = m.text();
    assert_eq!(
        metric_value(
            &text,
            r#"cc_relay_requests_total{provider="main",status="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"cc_relay_requests_total{provider="none",status="401"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, r#"cc_relay_stream_events_total{provider="main"}"#),
        Some(14.0)
    );
    assert_eq!(
        metric_value(
            &text,
            r#"cc_relay_tokens_total{provider="main",key="…9876",direction="input"}"#
        ),
        Some(24.0)
    );
    assert_eq!(metric_value(&text, "cc_relay_inflight_requests"), Some(0.0));
    // A streamed answer goes back to the pool after the client saw its end, so the
    // second request may have opened a second connection.
    let pooled = metric_value(&text, r#"cc_relay_upstream_connections{provider="main"}"#);
    assert!(
        matches!(pooled, Some(n) if (1.0..=2.0).contains(&n)),
        "pooled keep-alive connections to the upstream: {pooled:?}"
    );
    assert!(!text.contains("sk-ant-secret"), "key material in metrics");
    assert!(!text.contains("relay-secret"));

    // `cc-relay status` reads the same numbers from the running instance.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cc-relay"))
        .args(["status", "--url", &format!("http://{}", relay.addr)])
        .env("CC_RELAY_API_KEY", "relay-secret")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("main"))
        .expect("a row for main");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..2], ["main", "anthropic"], "{table}");
    assert!(cells.contains(&"2"), "two requests counted: {table}");
    assert!(!table.contains("sk-ant-secret"));
}
