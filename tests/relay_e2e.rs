//! End-to-end: the real relay server in front of mock Anthropic-compatible upstreams,
//! asserting what a client sees on the socket and what the upstream received.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cc_relay::config::{KeyConfig, ProviderType};
use common::*;

fn anthropic_mock_streaming() -> MockUpstream {
    MockUpstream::start(|_req, s| {
        start_sse(s);
        for ev in text_stream_events("Hello") {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    })
}

#[test]
fn streamed_text_is_relayed_byte_for_byte() {
    let mock = anthropic_mock_streaming();
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let resp = post_messages(relay.addr, STREAM_BODY, "x-api-key: client-key\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert_eq!(resp.text(), text_stream_events("Hello").concat());
    assert!(resp.header("request-id").is_some());
}

#[test]
fn non_stream_json_and_unknown_fields_pass_untouched() {
    let mock = MockUpstream::start(|_req, s| {
        write_json(
            s,
            200,
            "anthropic-ratelimit-requests-remaining: 41\r\nset-cookie: x=y\r\n",
            r#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"ok"}],"usage":{"input_tokens":3,"output_tokens":2}}"#,
        )
    });
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys.push(KeyConfig::new("sk-pool-key-1234"));
    let relay = start_relay(config_with(vec![p]));
    let body = r#"{"model":"claude-x", "max_tokens":5,"messages":[{"role":"user","content":"hi"}],"future_field":{"nested":[1,2,{"x":"\u00e9"}]}}"#;
    let resp = post_messages(relay.addr, body, "anthropic-beta: some-beta-2025\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["content"][0]["text"], "ok");
    assert_eq!(
        resp.header("anthropic-ratelimit-requests-remaining"),
        Some("41")
    );
    assert_eq!(resp.header("set-cookie"), None);
    let seen = &mock.requests()[0];
    assert_eq!(seen.body, body.as_bytes(), "body forwarded byte for byte");
    assert_eq!(seen.target, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-pool-key-1234"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("anthropic-beta"), Some("some-beta-2025"));
}

#[test]
fn query_string_reaches_upstream() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"type":"message"}"#));
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let req = format!(
        "POST /v1/messages?beta=true HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{}",
        PLAIN_BODY.len(),
        PLAIN_BODY
    );
    let resp = raw_request(relay.addr, req.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(mock.requests()[0].target, "/v1/messages?beta=true");
}

#[test]
fn model_mapping_changes_only_the_model() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"type":"message"}"#));
    let mut p = provider("o", ProviderType::Ollama, &mock.url());
    p.model_mapping = vec![("claude-*".into(), "qwen3:8b".into())];
    let relay = start_relay(config_with(vec![p]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 200);
    let seen = &mock.requests()[0];
    assert_eq!(
        String::from_utf8_lossy(&seen.body),
        PLAIN_BODY.replace("claude-x", "qwen3:8b")
    );
    assert_eq!(
        seen.header("authorization"),
        None,
        "local ollama gets no auth"
    );
}

#[test]
fn large_request_bodies_arrive_whole() {
    let mock = MockUpstream::start(|req, s| {
        write_json(s, 200, "", &format!(r#"{{"received":{}}}"#, req.body.len()))
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    for size in [50 * 1024, 5 * 1024 * 1024] {
        let filler = "x".repeat(size);
        let body =
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{filler}"}}]}}"#);
        let resp = post_messages(relay.addr, &body, "");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json()["received"], body.len());
        assert_eq!(mock.requests().last().unwrap().body, body.as_bytes());
    }
}

#[test]
fn chunked_request_body_is_accepted() {
    let mock = MockUpstream::start(|req, s| {
        write_json(s, 200, "", &format!(r#"{{"received":{}}}"#, req.body.len()))
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let (a, b) = PLAIN_BODY.split_at(10);
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let resp = raw_request(relay.addr, req.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(mock.requests()[0].body, PLAIN_BODY.as_bytes());
}

#[test]
fn rate_limit_429_is_relayed_with_its_headers() {
    let mock = MockUpstream::start(|_req, s| {
        write_json(
            s,
            429,
            "retry-after: 17\r\nx-should-retry: true\r\nrequest-id: req_up_429\r\nanthropic-ratelimit-requests-reset: 2026-01-01T00:00:00Z\r\n",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        )
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("17"));
    assert_eq!(resp.header("x-should-retry"), Some("true"));
    assert_eq!(resp.header("request-id"), Some("req_up_429"));
    assert_eq!(
        resp.header("anthropic-ratelimit-requests-reset"),
        Some("2026-01-01T00:00:00Z")
    );
    assert_eq!(resp.json()["error"]["type"], "rate_limit_error");
}

#[test]
fn status_529_stays_529_and_plain_errors_become_anthropic_json() {
    let mock = MockUpstream::start(|_req, s| {
        let body = "upstream is overloaded";
        let head = format!(
            "HTTP/1.1 529 X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body.as_bytes());
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 529);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v = resp.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("upstream is overloaded"));
}

#[test]
fn server_error_fails_over_to_the_next_provider() {
    let first = MockUpstream::start(|_req, s| {
        write_json(
            s,
            500,
            "",
            r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
        )
    });
    let second = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"from":"second"}"#));
    let mut p1 = provider("first", ProviderType::Anthropic, &first.url());
    p1.priority = Some(2);
    let p2 = provider("second", ProviderType::Zai, &second.url());
    let relay = start_relay(config_with(vec![p2, p1]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["from"], "second");
    assert_eq!(first.requests().len(), 1);
    assert_eq!(second.requests().len(), 1);
}

#[test]
fn connection_refused_fails_over_and_last_failure_is_502() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let relay = start_relay(config_with(vec![provider(
        "dead",
        ProviderType::Anthropic,
        &dead_url,
    )]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.json()["error"]["type"], "api_error");

    let live = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let relay = start_relay(config_with(vec![
        provider("dead", ProviderType::Anthropic, &dead_url),
        provider("live", ProviderType::Anthropic, &live.url()),
    ]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 200);
}

#[test]
fn upstream_reset_mid_stream_gives_an_error_event_not_a_clean_end() {
    let mock = MockUpstream::start(|_req, s| {
        start_sse(s);
        let events = text_stream_events("partial");
        for ev in &events[..3] {
            let _ = write_chunk(s, ev.as_bytes());
        }
        // Half an event, then the connection dies.
        let _ = write_chunk(
            s,
            b"event: content_block_delta\ndata: {\"type\":\"content_bl",
        );
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let resp = post_messages(relay.addr, STREAM_BODY, "");
    assert_eq!(resp.status, 200);
    let text = resp.text();
    let expected_prefix = text_stream_events("partial")[..3].concat();
    assert!(text.starts_with(&expected_prefix), "{text}");
    let rest = &text[expected_prefix.len()..];
    assert!(
        rest.starts_with("event: error\ndata: "),
        "partial event must not leak: {rest}"
    );
    assert!(!text.contains("message_stop"));
    let data = rest.lines().nth(1).unwrap().trim_start_matches("data: ");
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["type"], "error");
}

#[test]
fn events_reach_the_client_one_by_one() {
    // The mock sends event 2 only after the test client confirmed it received event 1:
    // a proxy that buffers hangs here and the test fails by its read timeout.
    let (got_first_tx, got_first_rx) = crossbeam_channel::bounded::<()>(1);
    let got_first_rx = Arc::new(got_first_rx);
    let mock = MockUpstream::start(move |_req, s| {
        start_sse(s);
        let events = text_stream_events("x");
        let _ = write_chunk(s, events[0].as_bytes());
        if got_first_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            return;
        }
        for ev in &events[1..] {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let mut stream = connect(relay.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{}",
        STREAM_BODY.len(),
        STREAM_BODY
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: message_start") {
        let n = stream
            .read(&mut buf)
            .expect("first event arrives before the second is sent");
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    got_first_tx.send(()).unwrap();
    while !String::from_utf8_lossy(&seen).contains("message_stop") {
        let n = stream.read(&mut buf).expect("rest of the stream");
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn client_disconnect_closes_the_upstream_connection() {
    let (closed_tx, closed_rx) = crossbeam_channel::bounded::<()>(1);
    let mock = MockUpstream::start(move |_req, s| {
        start_sse(s);
        let events = text_stream_events("x");
        let _ = write_chunk(s, events[0].as_bytes());
        // Stay silent; the relay must notice the client left and close this socket.
        let mut buf = [0u8; 16];
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if let Ok(0) = s.read(&mut buf) {
            let _ = closed_tx.send(());
        }
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let mut stream = connect(relay.addr);
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{}",
        STREAM_BODY.len(),
        STREAM_BODY
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !line.contains("message_start") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    drop(reader);
    closed_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("upstream connection closed after the client left");
}

#[test]
fn stalled_stream_surfaces_as_error_event() {
    let mock = MockUpstream::start(|_req, s| {
        start_sse(s);
        let _ = write_chunk(s, text_stream_events("x")[0].as_bytes());
        std::thread::sleep(Duration::from_secs(3));
    });
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &mock.url())]);
    config.server.stream_idle_timeout_ms = 300;
    let relay = start_relay(config);
    let resp = post_messages(relay.addr, STREAM_BODY, "");
    let text = resp.text();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("stalled"));
}

#[test]
fn proxy_secret_authenticates_and_never_reaches_upstream() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let mut p = provider("z", ProviderType::Zai, &mock.url());
    p.keys.push(KeyConfig::new("zai-pool-key"));
    let mut config = config_with(vec![p]);
    config.server.auth.api_key = Some("proxy-secret-1".into());
    config.server.auth.bearer_secret = Some("proxy-secret-2".into());
    let relay = start_relay(config);
    for header in [
        "x-api-key: proxy-secret-1\r\n",
        "authorization: Bearer proxy-secret-2\r\n",
    ] {
        let resp = post_messages(relay.addr, PLAIN_BODY, header);
        assert_eq!(resp.status, 200, "{header}");
    }
    let resp = post_messages(relay.addr, PLAIN_BODY, "x-api-key: wrong\r\n");
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["error"]["type"], "authentication_error");
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 401);
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    for req in seen {
        let all: String = req
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        assert!(
            !all.contains("proxy-secret"),
            "secret leaked upstream: {all}"
        );
        assert_eq!(req.header("x-api-key"), Some("zai-pool-key"));
        assert_eq!(req.header("authorization"), Some("Bearer zai-pool-key"));
    }
}

#[test]
fn subscription_credentials_are_forwarded_to_anthropic_only_when_allowed() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &mock.url())]);
    config.server.auth.allow_subscription = true;
    let relay = start_relay(config);
    let resp = post_messages(
        relay.addr,
        PLAIN_BODY,
        "authorization: Bearer sk-ant-oat01-user\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Bearer sk-ant-oat01-user")
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    let mock = MockUpstream::start(move |_req, s| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        write_json(s, 200, "", &format!(r#"{{"n":{n}}}"#))
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let one = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{}",
        PLAIN_BODY.len(),
        PLAIN_BODY
    );
    let mut all = String::new();
    for _ in 0..3 {
        all.push_str(&one);
    }
    all.push_str("GET /health HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut s = connect(relay.addr);
    s.write_all(all.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    for i in 0..3 {
        let r = read_response(&mut reader);
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["n"], i);
    }
    let health = read_response(&mut reader);
    assert_eq!(health.json()["status"], "ok");
}

#[test]
fn slowloris_client_is_cut_off() {
    let mut config = config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        "http://127.0.0.1:9",
    )]);
    config.server.header_timeout_ms = 300;
    let relay = start_relay(config);
    let mut s = connect(relay.addr);
    s.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    // Trickle a header byte now and then, never finishing the head.
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let writer = std::thread::spawn(move || {
        for _ in 0..40 {
            if s.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let resp = read_response(&mut reader);
    assert_eq!(resp.status, 408);
    assert_eq!(resp.header("connection"), Some("close"));
    let _ = writer.join();
}

#[test]
fn oversized_head_and_body_are_rejected() {
    let mut config = config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        "http://127.0.0.1:9",
    )]);
    config.server.max_body_bytes = 1000;
    let relay = start_relay(config);
    let big_header = format!(
        "POST /v1/messages HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let resp = raw_request(relay.addr, big_header.as_bytes());
    assert_eq!(resp.status, 431);
    let resp = raw_request(
        relay.addr,
        b"POST /v1/messages HTTP/1.1\r\ncontent-length: 5000\r\n\r\n",
    );
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json()["error"]["type"], "request_too_large");
    let chunk = "a".repeat(600);
    let chunked = format!(
        "POST /v1/messages HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let resp = raw_request(relay.addr, chunked.as_bytes());
    assert_eq!(resp.status, 413);
}

#[test]
fn malformed_requests_get_clear_errors() {
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        "http://127.0.0.1:9",
    )]));
    let resp = raw_request(relay.addr, b"\x16\x03\x01garbage\r\n\r\n");
    assert_eq!(resp.status, 400);
    let resp = raw_request(
        relay.addr,
        b"POST /v1/messages HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    assert_eq!(resp.status, 400);
    let resp = post_messages(relay.addr, "{\"model\": ", "");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"]["type"], "invalid_request_error");
    let resp = post_messages(relay.addr, r#"{"messages":[]}"#, "");
    assert_eq!(resp.status, 400);
    assert!(resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("model"));
}

#[test]
fn expect_100_continue_is_honoured() {
    let mock = MockUpstream::start(|req, s| {
        write_json(s, 200, "", &format!(r#"{{"len":{}}}"#, req.body.len()))
    });
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let mut s = connect(relay.addr);
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        PLAIN_BODY.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    reader.read_line(&mut line).unwrap();
    s.write_all(PLAIN_BODY.as_bytes()).unwrap();
    let resp = read_response(&mut reader);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["len"], PLAIN_BODY.len());
}

#[test]
fn small_endpoints_and_routing_errors() {
    let mut p = provider("a", ProviderType::Anthropic, "http://127.0.0.1:9");
    p.models = vec!["claude-sonnet-4-5".into()];
    p.model_mapping = vec![
        ("claude-opus".into(), "x".into()),
        ("claude-*".into(), "y".into()),
    ];
    let relay = start_relay(config_with(vec![p]));
    let r = raw_request(relay.addr, b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = raw_request(relay.addr, b"HEAD /api/hello HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = raw_request(relay.addr, b"GET /nope HTTP/1.1\r\n\r\n");
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
    let r = raw_request(relay.addr, b"GET /v1/messages HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 405);
    let r = raw_request(relay.addr, b"GET /v1/models HTTP/1.1\r\n\r\n");
    let v = r.json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["claude-sonnet-4-5", "claude-opus"]);
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], "claude-sonnet-4-5");
    let r = raw_request(
        relay.addr,
        b"GET /health HTTP/1.1\r\nx-request-id: my-id-1\r\n\r\n",
    );
    assert_eq!(r.header("request-id"), Some("my-id-1"));
}

#[test]
fn count_tokens_is_estimated_for_providers_without_it() {
    let relay = start_relay(config_with(vec![provider(
        "o",
        ProviderType::Ollama,
        "http://127.0.0.1:9",
    )]));
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hello there, how are you doing today?"}]}"#;
    let req = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = raw_request(relay.addr, req.as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-cc-relay-estimate"), Some("true"));
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn count_tokens_is_forwarded_to_anthropic() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"input_tokens":42}"#));
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let req = format!(
        "POST /v1/messages/count_tokens?beta=true HTTP/1.1\r\ncontent-length: {}\r\n\r\n{}",
        PLAIN_BODY.len(),
        PLAIN_BODY
    );
    let r = raw_request(relay.addr, req.as_bytes());
    assert_eq!(
        (r.status, r.json()["input_tokens"].as_u64()),
        (200, Some(42))
    );
    assert_eq!(r.header("x-cc-relay-estimate"), None);
    assert_eq!(
        mock.requests()[0].target,
        "/v1/messages/count_tokens?beta=true"
    );
}

#[test]
fn upstream_connections_are_reused() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":1}"#));
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    for _ in 0..3 {
        assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
    }
    let rt = relay.running.relay.runtime();
    let ep = &rt.providers[0].endpoint;
    assert_eq!(
        rt.client.idle_connections(ep),
        1,
        "one kept-alive connection served all three"
    );
}

#[test]
fn azure_foundry_gets_its_path_and_key_header_and_streams_unchanged() {
    let mock = anthropic_mock_streaming();
    let mut p = provider("az", ProviderType::Azure, &mock.url());
    p.keys.push(KeyConfig::new("azure-key-1"));
    let relay = start_relay(config_with(vec![p]));
    let resp = post_messages(relay.addr, STREAM_BODY, "anthropic-version: 2023-06-01\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), text_stream_events("Hello").concat());
    let seen = &mock.requests()[0];
    assert_eq!(seen.target, "/anthropic/v1/messages");
    assert_eq!(seen.header("api-key"), Some("azure-key-1"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
}

#[test]
fn builtin_resolver_reaches_a_named_upstream() {
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let url = format!("http://localhost:{}", mock.addr.port());
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &url)]);
    config.server.resolver = cc_relay::config::ResolverMode::Builtin;
    let relay = start_relay(config);
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        mock.requests()[0].header("host"),
        Some(format!("localhost:{}", mock.addr.port()).as_str())
    );
}

#[test]
fn max_concurrent_answers_503_while_full() {
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let release_rx = Arc::new(release_rx);
    let mock = MockUpstream::start(move |_req, s| {
        let _ = release_rx.recv_timeout(Duration::from_secs(10));
        write_json(s, 200, "", r#"{"ok":1}"#)
    });
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &mock.url())]);
    config.server.max_concurrent = 1;
    let relay = start_relay(config);
    let addr = relay.addr;
    let first = std::thread::spawn(move || post_messages(addr, PLAIN_BODY, "").status);
    assert!(wait_for(Duration::from_secs(5), || mock.requests().len() == 1));
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    assert!(r.header("retry-after").is_some());
    release_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap(), 200);
}

#[test]
fn models_include_the_upstream_list_of_anthropic_providers_without_models() {
    let mock = MockUpstream::start(|req, s| {
        assert_eq!(req.header("x-api-key"), Some("pool-key"));
        write_json(
            s,
            200,
            "",
            r#"{"data":[{"type":"model","id":"claude-opus-4-5","display_name":"Claude Opus 4.5","created_at":"2025-11-01T00:00:00Z"}],"has_more":false}"#,
        )
    });
    let mut a = provider("a", ProviderType::Anthropic, &mock.url());
    a.keys.push(KeyConfig::new("pool-key"));
    let mut z = provider("z", ProviderType::Zai, "http://127.0.0.1:9");
    z.models = vec!["glm-4.6".into()];
    let relay = start_relay(config_with(vec![a, z]));
    for _ in 0..2 {
        let v = raw_request(relay.addr, b"GET /v1/models HTTP/1.1\r\n\r\n").json();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["glm-4.6", "claude-opus-4-5"]);
        assert_eq!(v["data"][1]["display_name"], "Claude Opus 4.5");
    }
    assert_eq!(mock.requests().len(), 1, "cached");
    assert_eq!(mock.requests()[0].target, "/v1/models?limit=1000");
}

#[test]
fn garbage_and_hanging_upstreams_get_clear_errors() {
    let garbage = MockUpstream::start(|_req, s| {
        let _ = s.write_all(b"\x00\x01SSH-2.0-OpenSSH not http at all\r\n\r\n");
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let relay = start_relay(config_with(vec![provider(
        "g",
        ProviderType::Anthropic,
        &garbage.url(),
    )]));
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["type"], "api_error");

    let hanging = MockUpstream::start(|_req, _s| std::thread::sleep(Duration::from_secs(5)));
    let mut config = config_with(vec![provider("h", ProviderType::Anthropic, &hanging.url())]);
    config.server.timeout_ms = 300;
    let relay = start_relay(config);
    let started = std::time::Instant::now();
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["type"], "timeout_error");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered by the request deadline"
    );
}
