//! Routing, key pool and circuit breakers end to end (SPEC §4.1–§4.3): several mock
//! upstreams, what each received, and what the client saw.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cc_relay::config::{KeyConfig, ProviderType, Strategy};
use common::*;

fn ok_mock(tag: &'static str) -> MockUpstream {
    MockUpstream::start(move |_req, s| write_json(s, 200, "", &format!(r#"{{"from":"{tag}"}}"#)))
}

fn from(resp: &Response) -> String {
    resp.json()["from"].as_str().unwrap_or("?").to_string()
}

#[test]
fn round_robin_rotates_exactly() {
    let (a, b, c) = (ok_mock("a"), ok_mock("b"), ok_mock("c"));
    let mut config = config_with(vec![
        provider("a", ProviderType::Anthropic, &a.url()),
        provider("b", ProviderType::Anthropic, &b.url()),
        provider("c", ProviderType::Anthropic, &c.url()),
    ]);
    config.routing.strategy = Strategy::RoundRobin;
    let relay = start_relay(config);
    let seq: Vec<String> = (0..6)
        .map(|_| from(&post_messages(relay.addr, PLAIN_BODY, "")))
        .collect();
    assert_eq!(seq, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn weighted_round_robin_follows_smooth_wrr() {
    let (a, b, c) = (ok_mock("a"), ok_mock("b"), ok_mock("c"));
    let mut pa = provider("a", ProviderType::Anthropic, &a.url());
    pa.weight = Some(5);
    let pb = provider("b", ProviderType::Anthropic, &b.url());
    let pc = provider("c", ProviderType::Anthropic, &c.url());
    let mut config = config_with(vec![pa, pb, pc]);
    config.routing.strategy = Strategy::WeightedRoundRobin;
    let relay = start_relay(config);
    let seq: Vec<String> = (0..7)
        .map(|_| from(&post_messages(relay.addr, PLAIN_BODY, "")))
        .collect();
    assert_eq!(seq, ["a", "a", "b", "a", "c", "a", "a"]);
}

#[test]
fn model_based_routes_by_longest_prefix() {
    let (glm, claude) = (ok_mock("zai"), ok_mock("anthropic"));
    let mut config = config_with(vec![
        provider("anthropic", ProviderType::Anthropic, &claude.url()),
        provider("zai", ProviderType::Zai, &glm.url()),
    ]);
    config.routing.strategy = Strategy::ModelBased;
    config.routing.model_mapping = vec![
        ("glm-".into(), "zai".into()),
        ("claude-".into(), "anthropic".into()),
    ];
    let relay = start_relay(config);
    let body = PLAIN_BODY.replace("claude-x", "glm-4.6");
    assert_eq!(from(&post_messages(relay.addr, &body, "")), "zai");
    assert_eq!(
        from(&post_messages(relay.addr, PLAIN_BODY, "")),
        "anthropic"
    );
}

#[test]
fn key_429_moves_the_same_request_to_the_next_key() {
    let mock = MockUpstream::start(|req, s| {
        if req.header("x-api-key") == Some("key-one") {
            write_json(
                s,
                429,
                "retry-after: 30\r\n",
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
            );
        } else {
            write_json(s, 200, "", r#"{"from":"two"}"#);
        }
    });
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys = vec![KeyConfig::new("key-one"), KeyConfig::new("key-two")];
    p.key_strategy = cc_relay::config::KeyStrategy::RoundRobin;
    let relay = start_relay(config_with(vec![p]));
    for _ in 0..4 {
        let r = post_messages(relay.addr, PLAIN_BODY, "");
        assert_eq!((r.status, from(&r)), (200, "two".to_string()));
    }
    let keys: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.header("x-api-key").unwrap().to_string())
        .collect();
    assert_eq!(
        keys.iter().filter(|k| *k == "key-one").count(),
        1,
        "key one cools down after its 429: {keys:?}"
    );
    let providers = raw_request(relay.addr, b"GET /v1/providers HTTP/1.1\r\n\r\n").json();
    let key_one = &providers["data"][0]["keys"][0];
    assert!(key_one["cooling_down_until"].is_string(), "{providers}");
    assert!(
        !providers.to_string().contains("key-one"),
        "labels only, never keys"
    );
}

#[test]
fn rpm_limit_is_enforced_with_an_accurate_retry_after() {
    let mock = ok_mock("a");
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys = vec![KeyConfig {
        rpm_limit: 2,
        ..KeyConfig::new("only-key")
    }];
    let relay = start_relay(config_with(vec![p]));
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    // rpm 2 refills one request every 30 s.
    assert!((29..=31).contains(&wait), "retry-after {wait}");
    assert_eq!(
        mock.requests().len(),
        2,
        "the third request never reached the upstream"
    );
}

#[test]
fn bad_key_is_skipped_and_the_last_refusal_is_relayed() {
    let mock = MockUpstream::start(|req, s| {
        if req.header("x-api-key") == Some("good") {
            write_json(s, 200, "", r#"{"from":"good"}"#);
        } else {
            write_json(
                s,
                401,
                "",
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            );
        }
    });
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys = vec![KeyConfig::new("revoked"), KeyConfig::new("good")];
    let relay = start_relay(config_with(vec![p]));
    for _ in 0..3 {
        assert_eq!(from(&post_messages(relay.addr, PLAIN_BODY, "")), "good");
    }
    let revoked = mock
        .requests()
        .iter()
        .filter(|r| r.header("x-api-key") == Some("revoked"))
        .count();
    assert_eq!(revoked, 1, "a refused key is marked bad");

    let mut only = provider("b", ProviderType::Anthropic, &mock.url());
    only.keys = vec![KeyConfig::new("revoked")];
    let relay = start_relay(config_with(vec![only]));
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
}

#[test]
fn breaker_opens_after_failures_and_skips_the_provider() {
    let failing = down_mock();
    let healthy = ok_mock("backup");
    let mut pa = provider("primary", ProviderType::Anthropic, &failing.url());
    pa.priority = Some(5);
    let mut config = config_with(vec![
        pa,
        provider("backup", ProviderType::Anthropic, &healthy.url()),
    ]);
    config.health.failure_threshold = 2;
    config.health.open_duration_ms = 60_000;
    config.health.health_check_enabled = false;
    config.routing.debug = true;
    let relay = start_relay(config);
    for _ in 0..5 {
        let r = post_messages(relay.addr, PLAIN_BODY, "");
        assert_eq!(from(&r), "backup");
        assert_eq!(r.header("x-cc-relay-provider"), Some("backup"));
        assert_eq!(r.header("x-cc-relay-strategy"), Some("failover"));
    }
    assert_eq!(
        failing.requests().len(),
        2,
        "skipped once its circuit opened"
    );
    let providers = raw_request(relay.addr, b"GET /v1/providers HTTP/1.1\r\n\r\n").json();
    assert_eq!(providers["data"][0]["circuit"], "open");
}

#[test]
fn no_failover_on_400_but_failover_on_timeout_and_529() {
    let bad_request = MockUpstream::start(|_req, s| {
        write_json(
            s,
            400,
            "",
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
        )
    });
    let backup = ok_mock("backup");
    let mut first = provider("first", ProviderType::Anthropic, &bad_request.url());
    first.priority = Some(3);
    let relay = start_relay(config_with(vec![
        first,
        provider("backup", ProviderType::Anthropic, &backup.url()),
    ]));
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 400);
    assert!(backup.requests().is_empty());

    let overloaded = MockUpstream::start(|_req, s| {
        write_json(
            s,
            529,
            "",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        )
    });
    let hanging = MockUpstream::start(|_req, _s| std::thread::sleep(Duration::from_secs(5)));
    let mut p1 = provider("hanging", ProviderType::Anthropic, &hanging.url());
    p1.priority = Some(3);
    let mut p2 = provider("overloaded", ProviderType::Anthropic, &overloaded.url());
    p2.priority = Some(2);
    let streaming = MockUpstream::start(|_req, s| {
        start_sse(s);
        for ev in text_stream_events("backup") {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let mut config = config_with(vec![
        p1,
        p2,
        provider("backup", ProviderType::Anthropic, &streaming.url()),
    ]);
    config.routing.first_byte_timeout_ms = 300;
    let relay = start_relay(config);
    let r = post_messages(relay.addr, STREAM_BODY, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(hanging.requests().len(), 1);
    assert_eq!(overloaded.requests().len(), 1);
}

#[test]
fn all_providers_exhausted_gives_429_with_the_earliest_retry() {
    let (a, b) = (ok_mock("a"), ok_mock("b"));
    let mut pa = provider("a", ProviderType::Anthropic, &a.url());
    pa.keys = vec![KeyConfig {
        rpm_limit: 1,
        ..KeyConfig::new("ka")
    }];
    let mut pb = provider("b", ProviderType::Anthropic, &b.url());
    pb.keys = vec![KeyConfig {
        rpm_limit: 3,
        ..KeyConfig::new("kb")
    }];
    let relay = start_relay(config_with(vec![pa, pb]));
    let served: Vec<String> = (0..4)
        .map(|_| from(&post_messages(relay.addr, PLAIN_BODY, "")))
        .collect();
    assert_eq!(served, ["a", "b", "b", "b"]);
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    // b (rpm 3) frees a request after 20 s, sooner than a (rpm 1, 60 s).
    assert!((19..=21).contains(&wait), "retry-after {wait}");
}

#[test]
fn keys_are_shared_by_concurrent_connections() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let mock = MockUpstream::start(move |_req, s| {
        c.fetch_add(1, Ordering::SeqCst);
        write_json(s, 200, "", r#"{"from":"a"}"#)
    });
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys = vec![KeyConfig {
        rpm_limit: 5,
        ..KeyConfig::new("k")
    }];
    let relay = start_relay(config_with(vec![p]));
    let addr = relay.addr;
    let threads: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || post_messages(addr, PLAIN_BODY, "").status))
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    assert_eq!(count.load(Ordering::SeqCst), 5);
}

#[test]
fn health_probe_over_tls_half_opens_an_open_circuit() {
    let failing = common::tls::start_tls_mock_with(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"down"}}"#,
    );
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let tls_url = format!("https://localhost:{}", failing.addr.port());
    let mut config = config_with(vec![
        provider("tls", ProviderType::Anthropic, &tls_url),
        provider("dead", ProviderType::Anthropic, &dead_url),
    ]);
    config.server.upstream_ca_file = Some(common::tls::fixture("ca.pem"));
    config.health.failure_threshold = 1;
    config.health.open_duration_ms = 600_000;
    config.health.health_check_interval_ms = 50;
    let relay = start_relay(config);
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 502);
    let circuits = || {
        let v = raw_request(relay.addr, b"GET /v1/providers HTTP/1.1\r\n\r\n").json();
        (
            v["data"][0]["circuit"].as_str().unwrap().to_string(),
            v["data"][1]["circuit"].as_str().unwrap().to_string(),
        )
    };
    // The TLS upstream answers its probe (any HTTP status counts): half-open. The dead
    // one cannot be reached: it stays open.
    assert!(
        wait_for(Duration::from_secs(10), || circuits().0 == "half_open"),
        "{:?}",
        circuits()
    );
    assert_eq!(circuits().1, "open");
    assert!(
        failing.sni.lock().unwrap().len() >= 2,
        "the probe went over TLS"
    );
}

#[test]
fn race_mode_relays_the_fastest_and_closes_the_loser() {
    use std::io::Read;
    let first = down_mock();
    let (closed_tx, closed_rx) = crossbeam_channel::bounded::<()>(1);
    let (arrived_tx, arrived_rx) = crossbeam_channel::bounded::<()>(1);
    let slow = MockUpstream::start(move |_req, s| {
        let _ = arrived_tx.send(());
        // Never answers; reports when the relay hangs up on it.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if let Ok(0) = s.read(&mut [0u8; 16]) {
            let _ = closed_tx.send(());
        }
    });
    let fast = MockUpstream::start(move |_req, s| {
        // Decide the race only once the slow racer's request is out: a racer that sees
        // the race already decided never sends (and there would be nothing to close).
        let _ = arrived_rx.recv_timeout(Duration::from_secs(5));
        start_sse(s);
        for ev in text_stream_events("fast") {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let mut p1 = provider("first", ProviderType::Anthropic, &first.url());
    p1.priority = Some(9);
    let mut p2 = provider("slow", ProviderType::Anthropic, &slow.url());
    p2.priority = Some(5);
    let p3 = provider("fast", ProviderType::Anthropic, &fast.url());
    let mut config = config_with(vec![p1, p2, p3]);
    config.routing.failover_mode = cc_relay::config::FailoverMode::Race;
    config.routing.debug = true;
    let relay = start_relay(config);
    let r = post_messages(relay.addr, STREAM_BODY, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-cc-relay-provider"), Some("fast"));
    assert_eq!(r.text(), text_stream_events("fast").concat());
    closed_rx
        .recv_timeout(Duration::from_secs(3))
        .expect("the losing upstream's connection was closed");
    assert_eq!(slow.requests().len(), 1);
}

#[test]
fn a_racer_moves_to_its_next_key_after_429_and_401() {
    let (first, other) = (down_mock(), down_mock());
    let keyed = MockUpstream::start(|req, s| match req.header("x-api-key") {
        Some("key-busy") => write_json(
            s,
            429,
            "retry-after: 30\r\n",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
        ),
        Some("key-revoked") => write_json(
            s,
            401,
            "",
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        ),
        _ => write_json(s, 200, "", r#"{"from":"keyed"}"#),
    });
    let mut p1 = provider("first", ProviderType::Anthropic, &first.url());
    p1.priority = Some(9);
    let mut p2 = provider("keyed", ProviderType::Anthropic, &keyed.url());
    p2.priority = Some(5);
    p2.keys = vec![
        KeyConfig::new("key-busy"),
        KeyConfig::new("key-revoked"),
        KeyConfig::new("key-good"),
    ];
    p2.key_strategy = cc_relay::config::KeyStrategy::RoundRobin;
    let p3 = provider("other", ProviderType::Anthropic, &other.url());
    let mut config = config_with(vec![p1, p2, p3]);
    config.routing.failover_mode = cc_relay::config::FailoverMode::Race;
    config.routing.debug = true;
    let relay = start_relay(config);
    for _ in 0..3 {
        let r = post_messages(relay.addr, PLAIN_BODY, "");
        assert_eq!(
            (r.status, from(&r)),
            (200, "keyed".to_string()),
            "{}",
            r.text()
        );
        assert_eq!(r.header("x-cc-relay-provider"), Some("keyed"));
    }
    let sent = |key: &str| {
        keyed
            .requests()
            .iter()
            .filter(|r| r.header("x-api-key") == Some(key))
            .count()
    };
    assert_eq!(sent("key-busy"), 1, "the 429 key cools down");
    assert_eq!(sent("key-revoked"), 1, "the 401 key is marked bad");
    assert_eq!(sent("key-good"), 3);
    let providers = raw_request(relay.addr, b"GET /v1/providers HTTP/1.1\r\n\r\n").json();
    let keys = &providers["data"][1]["keys"];
    assert!(keys[0]["cooling_down_until"].is_string(), "{providers}");
}

#[test]
fn limits_learned_from_ratelimit_headers_hold_the_key_back() {
    // The key has no configured limit; the upstream says it allows 1 request a minute
    // and none are left: the relay stops sending on that key.
    let mock = MockUpstream::start(|_req, s| {
        write_json(
            s,
            200,
            "anthropic-ratelimit-requests-limit: 1\r\nanthropic-ratelimit-requests-remaining: 0\r\nanthropic-ratelimit-requests-reset: 2099-01-01T00:00:00Z\r\n",
            r#"{"from":"a"}"#,
        )
    });
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys = vec![KeyConfig::new("learned")];
    let relay = start_relay(config_with(vec![p]));
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
    let r = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        mock.requests().len(),
        1,
        "the learned limit kept the second request local"
    );
    let providers = raw_request(relay.addr, b"GET /v1/providers HTTP/1.1\r\n\r\n").json();
    assert_eq!(providers["data"][0]["keys"][0]["rpm_limit"], 1);
}
