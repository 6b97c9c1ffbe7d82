//! Several relay instances sharing one real redis-server (`cache.mode: ha`, SPEC §4.5):
//! key windows hold for the fleet, a 429 seen by one instance cools the key on the
//! others, circuits and signature origins are shared, and Redis going away never fails
//! a request.

mod common;
mod redis_support;

use std::time::Duration;

use cc_relay::config::{CacheMode, Config, KeyConfig, ProviderType};
use common::*;
use redis_support::RedisServer;

fn ha_config(redis: &RedisServer, providers: Vec<cc_relay::config::ProviderConfig>) -> Config {
    let mut config = config_with(providers);
    config.cache.mode = CacheMode::Ha;
    config.cache.redis.url = Some(redis.url());
    config.cache.redis.timeout_ms = 200;
    config
}

fn redis() -> Option<RedisServer> {
    let server = RedisServer::start();
    if server.is_none() {
        eprintln!("SKIPPED: redis-server is not installed (.ci/install-redis installs it)");
    }
    server
}

#[test]
fn rpm_limit_holds_across_instances() {
    let Some(redis) = redis() else { return };
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let key = || {
        let mut p = provider("a", ProviderType::Anthropic, &mock.url());
        p.keys = vec![KeyConfig {
            rpm_limit: 4,
            ..KeyConfig::new("shared-key")
        }];
        p
    };
    let relays: Vec<Relay> = (0..3)
        .map(|_| start_relay(ha_config(&redis, vec![key()])))
        .collect();
    let mut statuses = Vec::new();
    let mut retry = None;
    for i in 0..6 {
        let r = post_messages(relays[i % 3].addr, PLAIN_BODY, "");
        if r.status == 429 {
            retry = r.header("retry-after").map(str::to_string);
        }
        statuses.push(r.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        mock.requests().len(),
        4,
        "exactly four reached the upstream fleet-wide"
    );
    let wait: u64 = retry.expect("a 429").parse().unwrap();
    assert!((1..=15).contains(&wait), "retry-after {wait}");
}

#[test]
fn a_429_on_one_instance_cools_the_key_on_another() {
    let Some(redis) = redis() else { return };
    let mock = MockUpstream::start(|req, s| {
        if req.header("x-api-key") == Some("key-one") {
            write_json(
                s,
                429,
                "retry-after: 120\r\n",
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
            );
        } else {
            write_json(s, 200, "", r#"{"ok":true}"#);
        }
    });
    let cfg = || {
        let mut p = provider("a", ProviderType::Anthropic, &mock.url());
        p.keys = vec![KeyConfig::new("key-one"), KeyConfig::new("key-two")];
        p.key_strategy = cc_relay::config::KeyStrategy::RoundRobin;
        ha_config(&redis, vec![p])
    };
    let a = start_relay(cfg());
    let b = start_relay(cfg());
    assert_eq!(post_messages(a.addr, PLAIN_BODY, "").status, 200);
    let key_one = || {
        mock.requests()
            .iter()
            .filter(|r| r.header("x-api-key") == Some("key-one"))
            .count()
    };
    assert_eq!(key_one(), 1);
    for _ in 0..4 {
        assert_eq!(post_messages(b.addr, PLAIN_BODY, "").status, 200);
    }
    assert_eq!(
        key_one(),
        1,
        "instance B never sent key one while the fleet cooled it"
    );
}

#[test]
fn signature_origin_recorded_through_one_instance_routes_the_next_turn_on_another() {
    let Some(redis) = redis() else { return };
    let claude = MockUpstream::start(|_req, s| {
        start_sse(s);
        for ev in [
            sse_event(
                "message_start",
                r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":1,"output_tokens":1}}}"#,
            ),
            sse_event(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            ),
            sse_event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig-from-claude"}}"#,
            ),
            sse_event(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            sse_event("message_stop", r#"{"type":"message_stop"}"#),
        ] {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let glm = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"from":"glm"}"#));
    let cfg = || {
        let mut config = ha_config(
            &redis,
            vec![
                provider("zai", ProviderType::Zai, &glm.url()),
                provider("anthropic", ProviderType::Anthropic, &claude.url()),
            ],
        );
        config.routing.debug = true;
        config
    };
    let b = start_relay(cfg());
    // Turn 1 through instance A, whose only provider is anthropic.
    let body = r#"{"model":"m","max_tokens":9,"stream":true,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}"#;
    let mut only_claude = ha_config(
        &redis,
        vec![provider(
            "anthropic",
            ProviderType::Anthropic,
            &claude.url(),
        )],
    );
    only_claude.routing.debug = true;
    let a = start_relay(only_claude);
    assert_eq!(post_messages(a.addr, body, "").status, 200);
    // Turn 2 through B, whose failover order prefers zai: the origin from Redis wins.
    let turn2 = r#"{"model":"m","max_tokens":9,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"sig-from-claude"},{"type":"text","text":"hello"}]},{"role":"user","content":"again"}]}"#;
    let r = post_messages(b.addr, turn2, "");
    assert_eq!(
        r.header("x-cc-relay-thinking-affinity"),
        Some("claude"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("x-cc-relay-provider"), Some("anthropic"));
    assert!(glm.requests().is_empty());
}

#[test]
fn redis_going_away_never_fails_a_request() {
    let Some(mut redis) = redis() else { return };
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let mut p = provider("a", ProviderType::Anthropic, &mock.url());
    p.keys = vec![KeyConfig {
        rpm_limit: 1000,
        ..KeyConfig::new("k")
    }];
    let relay = start_relay(ha_config(&redis, vec![p]));
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
    redis.kill();
    for _ in 0..5 {
        assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
    }
    let metrics = raw_request(relay.addr, b"GET /metrics HTTP/1.1\r\n\r\n").text();
    assert!(metrics.contains("cc_relay_redis_up 0"), "{metrics}");
    redis.restart();
    assert!(wait_for(Duration::from_secs(10), || {
        raw_request(relay.addr, b"GET /metrics HTTP/1.1\r\n\r\n")
            .text()
            .contains("cc_relay_redis_up 1")
    }));
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
}

#[test]
fn wrong_redis_password_is_a_warning_not_a_crash() {
    let Some(redis) = RedisServer::start_with(&["--requirepass", "right"]) else {
        return;
    };
    let mock = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &mock.url())]);
    config.cache.mode = CacheMode::Ha;
    let url = redis.url().replace("redis://", "redis://:wrong@");
    config.cache.redis.url = Some(url);
    let relay = start_relay(config);
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
}

#[test]
fn a_circuit_opened_through_one_instance_is_skipped_by_another() {
    let Some(redis) = redis() else { return };
    let failing = down_mock();
    let backup = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"from":"backup"}"#));
    let cfg = |threshold: u32| {
        let mut primary = provider("primary", ProviderType::Anthropic, &failing.url());
        primary.priority = Some(5);
        let mut config = ha_config(
            &redis,
            vec![
                primary,
                provider("backup", ProviderType::Anthropic, &backup.url()),
            ],
        );
        config.health.failure_threshold = threshold;
        config.health.open_duration_ms = 600_000;
        config.health.health_check_enabled = false;
        config
    };
    let a = start_relay(cfg(1));
    // B would need 100 failures of its own to open the circuit: skipping proves sharing.
    let b = start_relay(cfg(100));
    assert_eq!(post_messages(a.addr, PLAIN_BODY, "").status, 200);
    assert_eq!(
        failing.requests().len(),
        1,
        "A tried primary once and opened its circuit"
    );
    // B learns the open circuit from Redis (its local copy refreshes every ~100 ms).
    assert!(wait_for(Duration::from_secs(5), || {
        let v = raw_request(b.addr, b"GET /metrics HTTP/1.1\r\n\r\n").text();
        v.contains("cc_relay_redis_up 1")
    }));
    let mut skipped = false;
    for _ in 0..50 {
        let before = failing.requests().len();
        assert_eq!(post_messages(b.addr, PLAIN_BODY, "").status, 200);
        if failing.requests().len() == before {
            skipped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(skipped, "B skips the circuit A opened");
    let now = failing.requests().len();
    for _ in 0..3 {
        assert_eq!(post_messages(b.addr, PLAIN_BODY, "").status, 200);
    }
    assert_eq!(
        failing.requests().len(),
        now,
        "B no longer sends to primary"
    );
}

#[test]
fn racers_reserve_key_windows_in_the_fleet() {
    let Some(redis) = redis() else { return };
    let (first, other) = (down_mock(), down_mock());
    let keyed = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"ok":true}"#));
    let cfg = || {
        let mut p1 = provider("first", ProviderType::Anthropic, &first.url());
        p1.priority = Some(9);
        let mut p2 = provider("keyed", ProviderType::Anthropic, &keyed.url());
        p2.priority = Some(5);
        p2.keys = vec![KeyConfig {
            rpm_limit: 2,
            ..KeyConfig::new("shared-key")
        }];
        let p3 = provider("other", ProviderType::Anthropic, &other.url());
        let mut config = ha_config(&redis, vec![p1, p2, p3]);
        config.routing.failover_mode = cc_relay::config::FailoverMode::Race;
        config
    };
    let relays = [start_relay(cfg()), start_relay(cfg())];
    let statuses: Vec<u16> = (0..4)
        .map(|i| post_messages(relays[i % 2].addr, PLAIN_BODY, "").status)
        .collect();
    assert_eq!(
        keyed.requests().len(),
        2,
        "the key's rpm 2 held fleet-wide through racers: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
}
