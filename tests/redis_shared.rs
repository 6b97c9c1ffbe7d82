//! Fleet-wide state on a real redis-server, with several clients standing for several
//! cc-relay instances: atomic reservations (exactly `rpm_limit` pass, the next gets the
//! exact retry-after), token windows, usage correction and refund, learned limits,
//! cooldowns, circuits and signature origins seen across instances, the key layout,
//! and degradation: killed, stopped and misconfigured Redis -> `Unavailable` fast,
//! recovery after a restart.

mod redis_support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cc_relay::codec::resp2::Value;
use cc_relay::config::{CacheMode, Config};
use cc_relay::obs::metrics::Metrics;
use cc_relay::route::circuit::CircuitState;
use cc_relay::state::redis::{Cmd, RedisClient, RedisOptions};
use cc_relay::state::shared::{
    Charge, KeyRef, Limits, Remaining, Reported, Reservation, SharedCircuit, SharedOptions,
    SharedState, SharedStore, Unavailable, Usage,
};
use redis_support::{wait_for, RedisServer};

const NOW: u64 = 1_700_000_000_000;
const P: &str = "anthropic";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// One "instance": its own client (own connections) on the shared server.
fn store(url: &str) -> SharedStore {
    let client = RedisClient::new(
        url,
        RedisOptions {
            timeout: Duration::from_secs(2),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    SharedStore::new(client, "cc-relay:")
}

/// A SharedState with the production deadline (50 ms) and no refresher thread.
fn state(url: &str, metrics: Option<Arc<Metrics>>) -> SharedState {
    let client = RedisClient::new(url, RedisOptions::default()).unwrap();
    SharedState::start(
        SharedStore::new(client, "cc-relay:"),
        SharedOptions {
            background: false,
            metrics,
            ..SharedOptions::default()
        },
    )
}

fn key() -> KeyRef {
    KeyRef::from_secret("sk-ant-api03-test-secret")
}

fn rpm(n: u64) -> Limits {
    Limits {
        rpm: n,
        ..Limits::default()
    }
}

fn granted(r: Reservation) -> Remaining {
    match r {
        Reservation::Granted { remaining, .. } => remaining,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn rpm_limit_4_across_instances_and_threads_grants_exactly_4() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let instances: Vec<SharedStore> = (0..3).map(|_| store(&server.url())).collect();
    let barrier = Arc::new(Barrier::new(12));
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let s = instances[i % 3].clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                s.reserve(P, &key(), rpm(4), 0, NOW, deadline()).unwrap()
            })
        })
        .collect();
    let results: Vec<Reservation> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let grants = results
        .iter()
        .filter(|r| matches!(r, Reservation::Granted { .. }))
        .count();
    assert_eq!(grants, 4, "{results:?}");
    // Every denial: one request refills in 60 s / 4 = 15 s.
    for r in &results {
        if let Reservation::Denied { retry_after_ms } = r {
            assert_eq!(*retry_after_ms, 15_000);
        }
    }
    let mut remaining: Vec<u64> = results
        .iter()
        .filter_map(|r| match r {
            Reservation::Granted { remaining, .. } => remaining.rpm,
            _ => None,
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3]);

    let s = &instances[0];
    // The 5th, later, gets exactly the time left.
    assert_eq!(
        s.reserve(P, &key(), rpm(4), 0, NOW + 10_000, deadline()),
        Ok(Reservation::Denied {
            retry_after_ms: 5_000
        })
    );
    assert_eq!(
        s.reserve(P, &key(), rpm(4), 0, NOW + 14_999, deadline()),
        Ok(Reservation::Denied { retry_after_ms: 1 })
    );
    let r = granted(
        s.reserve(P, &key(), rpm(4), 0, NOW + 15_000, deadline())
            .unwrap(),
    );
    assert_eq!(r.rpm, Some(0));
    assert_eq!((r.tpm, r.itpm, r.otpm), (None, None, None));
    // Another key of the same provider is independent.
    let other = KeyRef::from_label("second-key").unwrap();
    granted(s.reserve(P, &other, rpm(4), 0, NOW, deadline()).unwrap());
}

#[test]
fn token_windows_check_all_and_take_all_or_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server.url());
    let limits = Limits {
        rpm: 100,
        tpm: 1_000,
        itpm: 800,
        otpm: 0,
    };
    let r = s.reserve(P, &key(), limits, 600, NOW, deadline()).unwrap();
    assert_eq!(
        r,
        Reservation::Granted {
            remaining: Remaining {
                rpm: Some(99),
                tpm: Some(400),
                itpm: Some(200),
                otpm: None
            },
            charged: Charge {
                tpm: 600,
                itpm: 600
            },
        }
    );
    // itpm has 200 left: 300 more need 100 tokens of refill at 800/min = 7.5 s.
    assert_eq!(
        s.reserve(P, &key(), limits, 300, NOW, deadline()),
        Ok(Reservation::Denied {
            retry_after_ms: 7_500
        })
    );
    // The denial took nothing from rpm or tpm.
    let r = granted(s.reserve(P, &key(), limits, 200, NOW, deadline()).unwrap());
    assert_eq!((r.rpm, r.tpm, r.itpm), (Some(98), Some(200), Some(0)));
    // The slowest window decides: tpm needs 400 more at 1000/min = 24 s, itpm 600 at
    // 800/min = 45 s.
    assert_eq!(
        s.reserve(P, &key(), limits, 600, NOW, deadline()),
        Ok(Reservation::Denied {
            retry_after_ms: 45_000
        })
    );

    // A request larger than a whole bucket fits a full bucket and is charged its size.
    let big = KeyRef::from_label("big").unwrap();
    let r = s.reserve(P, &big, limits, 5_000, NOW, deadline()).unwrap();
    assert_eq!(
        r,
        Reservation::Granted {
            remaining: Remaining {
                rpm: Some(99),
                tpm: Some(0),
                itpm: Some(0),
                otpm: None
            },
            charged: Charge {
                tpm: 1_000,
                itpm: 800
            },
        }
    );
}

#[test]
fn usage_correction_refund_and_output_window() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server.url());
    let limits = Limits {
        rpm: 10,
        tpm: 1_000,
        itpm: 1_000,
        otpm: 100,
    };
    let Reservation::Granted { charged, .. } =
        s.reserve(P, &key(), limits, 500, NOW, deadline()).unwrap()
    else {
        panic!("denied")
    };
    // Real usage: 100 in, 100 out -> tpm used 200, itpm 100, otpm 100 (now empty).
    assert_eq!(
        charged,
        Charge {
            tpm: 500,
            itpm: 500
        }
    );
    let usage = Usage {
        input_tokens: 100,
        output_tokens: 100,
    };
    s.correct_usage(P, &key(), limits, charged, usage, NOW, deadline())
        .unwrap();
    // otpm needs one token: 60 s / 100 = 600 ms.
    assert_eq!(
        s.reserve(P, &key(), limits, 0, NOW, deadline()),
        Ok(Reservation::Denied {
            retry_after_ms: 600
        })
    );
    let r = granted(
        s.reserve(P, &key(), limits, 0, NOW + 600, deadline())
            .unwrap(),
    );
    // 600 ms refilled 10 tpm/itpm tokens and 1 otpm token; rpm refills 0.1.
    assert_eq!(
        r,
        Remaining {
            rpm: Some(8),
            tpm: Some(810),
            itpm: Some(910),
            otpm: Some(1)
        }
    );

    // A refund gives back the request and the estimate, never beyond full.
    let other = KeyRef::from_label("refunded").unwrap();
    let Reservation::Granted { charged, .. } =
        s.reserve(P, &other, limits, 300, NOW, deadline()).unwrap()
    else {
        panic!("denied")
    };
    s.refund(P, &other, limits, charged, NOW, deadline())
        .unwrap();
    let r = granted(s.reserve(P, &other, limits, 0, NOW, deadline()).unwrap());
    assert_eq!((r.rpm, r.tpm, r.itpm), (Some(9), Some(1_000), Some(1_000)));
    let too_much = Charge {
        tpm: 5_000,
        itpm: 5_000,
    };
    s.refund(P, &other, limits, too_much, NOW, deadline())
        .unwrap();
    let r = granted(s.reserve(P, &other, limits, 0, NOW, deadline()).unwrap());
    assert_eq!((r.rpm, r.tpm, r.itpm), (Some(9), Some(1_000), Some(1_000)));

    // Output over the budget puts the bucket in debt: 150 out on otpm 100 -> 51 tokens
    // short of one = 30.6 s.
    let debt = KeyRef::from_label("debt").unwrap();
    granted(s.reserve(P, &debt, limits, 0, NOW, deadline()).unwrap());
    let usage = Usage {
        input_tokens: 0,
        output_tokens: 150,
    };
    s.correct_usage(P, &debt, limits, Charge::default(), usage, NOW, deadline())
        .unwrap();
    assert_eq!(
        s.reserve(P, &debt, limits, 0, NOW, deadline()),
        Ok(Reservation::Denied {
            retry_after_ms: 30_600
        })
    );
}

#[test]
fn learned_limits_and_remaining_are_shared() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server.url());
    let b = store(&server.url());
    let configured = Limits {
        rpm: 10,
        tpm: 0,
        itpm: 0,
        otpm: 0,
    };
    // Instance A learns rpm 2 and tpm 1000 with 300 remaining.
    let reported = Reported {
        limits: [Some(2), Some(1_000), None, None],
        remaining: [None, Some(300), None, None],
    };
    a.learn_limits(P, &key(), configured, &reported, NOW, deadline())
        .unwrap();
    assert_eq!(
        b.learned_limits(P, &key(), deadline()),
        Ok(Limits {
            rpm: 2,
            tpm: 1_000,
            itpm: 0,
            otpm: 0
        })
    );
    // Instance B applies them: rpm min(10, 2) = 2; tpm 1000 with 300 left.
    let r = granted(
        b.reserve(P, &key(), configured, 100, NOW, deadline())
            .unwrap(),
    );
    assert_eq!((r.rpm, r.tpm), (Some(1), Some(200)));
    granted(
        b.reserve(P, &key(), configured, 0, NOW, deadline())
            .unwrap(),
    );
    assert_eq!(
        b.reserve(P, &key(), configured, 0, NOW, deadline()),
        Ok(Reservation::Denied {
            retry_after_ms: 30_000
        })
    );
    // `remaining` only ever lowers the level.
    let higher = Reported {
        limits: [None; 4],
        remaining: [None, Some(900), None, None],
    };
    a.learn_limits(P, &key(), configured, &higher, NOW, deadline())
        .unwrap();
    let fresh = KeyRef::from_label("fresh").unwrap();
    let r = granted(
        a.reserve(P, &fresh, configured, 0, NOW, deadline())
            .unwrap(),
    );
    assert_eq!(r.tpm, None, "learned limits are per key");
    // A configured limit change keeps the absolute usage: 2 of 4 used -> 8 of 10 left.
    let k = KeyRef::from_label("resized").unwrap();
    granted(a.reserve(P, &k, rpm(4), 0, NOW, deadline()).unwrap());
    granted(a.reserve(P, &k, rpm(4), 0, NOW, deadline()).unwrap());
    let r = granted(a.reserve(P, &k, rpm(10), 0, NOW, deadline()).unwrap());
    assert_eq!(r.rpm, Some(7));
}

#[test]
fn keys_use_provider_hash_tags_expire_and_hold_no_secret() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server.url());
    let secret = "sk-ant-api03-very-secret-key-material";
    let k = KeyRef::from_secret(secret);
    assert_eq!(k.as_str().len(), 32);
    assert!(k.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(k, KeyRef::from_secret(secret));
    assert_ne!(k, KeyRef::from_secret("another"));
    assert!(KeyRef::from_label("bad label").is_err());
    assert!(KeyRef::from_label("{x}").is_err());
    assert!(KeyRef::from_label("").is_err());

    let limits = Limits {
        rpm: 4,
        tpm: 1_000,
        itpm: 0,
        otpm: 0,
    };
    granted(s.reserve(P, &k, limits, 100, NOW, deadline()).unwrap());
    s.set_cooldown(P, &k, NOW + 60_000, NOW, deadline())
        .unwrap();
    s.publish_circuit(
        P,
        SharedCircuit {
            state: CircuitState::Open,
            opened_at_ms: Some(NOW),
            updated_at_ms: NOW,
        },
        deadline(),
    )
    .unwrap();
    s.remember_signature(&[7u8; 32], "claude", deadline())
        .unwrap();

    let c = s.client();
    let keys = c.query(&Cmd::new("KEYS").arg("*"), deadline()).unwrap();
    let mut names: Vec<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes().unwrap()).into_owned())
        .collect();
    names.sort();
    let id = k.as_str();
    assert_eq!(
        names,
        [
            "cc-relay:sig:0707070707070707070707070707070707070707070707070707070707070707"
                .to_string(),
            "cc-relay:{anthropic}:circuit".to_string(),
            "cc-relay:{anthropic}:cooldowns".to_string(),
            format!("cc-relay:{{anthropic}}:key:{id}:rpm"),
            format!("cc-relay:{{anthropic}}:key:{id}:tpm"),
        ]
    );
    // No key or value anywhere holds the secret or a piece of it.
    let dump = c
        .pipeline(
            &names
                .iter()
                .map(|n| Cmd::new("DUMP").arg(n.as_str()))
                .collect::<Vec<_>>(),
            deadline(),
        )
        .unwrap();
    for (name, value) in names.iter().zip(&dump) {
        let bytes = value.as_bytes().unwrap();
        assert!(!name.contains("secret") && !name.contains("sk-ant"));
        assert!(!bytes
            .windows(8)
            .any(|w| secret.as_bytes().windows(8).any(|s| s == w)));
    }
    // Buckets store level (token-ms), refill time and limit, and expire when full again.
    let rpm_key = format!("cc-relay:{{anthropic}}:key:{id}:rpm");
    let fields = c
        .query(&Cmd::new("HGETALL").arg(rpm_key.as_str()), deadline())
        .unwrap();
    assert_eq!(
        fields,
        Value::Array(
            ["l", "180000", "t", "1700000000000", "c", "4"]
                .iter()
                .map(|s| Value::Bulk(s.as_bytes().to_vec()))
                .collect()
        )
    );
    let pttl = |name: &str| {
        c.query(&Cmd::new("PTTL").arg(name), deadline())
            .unwrap()
            .as_i64()
            .unwrap()
    };
    // 1 of 4 used: full again in 15 s (+1 s margin).
    assert!(
        (15_000..=16_000).contains(&pttl(&rpm_key)),
        "{}",
        pttl(&rpm_key)
    );
    let sig = "cc-relay:sig:0707070707070707070707070707070707070707070707070707070707070707";
    assert!((10_790_000..=10_800_000).contains(&pttl(sig)));
    let cooldowns_ttl = pttl("cc-relay:{anthropic}:cooldowns");
    assert!(
        (59_000..=60_000).contains(&cooldowns_ttl),
        "{cooldowns_ttl}"
    );
}

#[test]
fn cooldown_set_by_one_instance_is_seen_by_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = state(&server.url(), None);
    let b = state(&server.url(), None);
    a.track_providers(&[P]);
    b.track_providers(&[P]);
    let now = cc_relay::state::shared::unix_ms_now();
    assert_eq!(b.cooldown_until(P, &key(), now), Ok(None));
    a.set_cooldown(P, &key(), now + 30_000, now).unwrap();
    // A sees its own write at once; B after its refresh.
    assert_eq!(a.cooldown_until(P, &key(), now), Ok(Some(now + 30_000)));
    b.refresh_now().unwrap();
    assert_eq!(b.cooldown_until(P, &key(), now), Ok(Some(now + 30_000)));
    assert_eq!(b.cooldown_until(P, &key(), now + 30_000), Ok(None));
    let all = b.cooldowns(P, now).unwrap();
    assert_eq!(all.len(), 1);
    // A reservation on B honours it, with the exact wait.
    assert_eq!(
        b.reserve(P, &key(), rpm(100), 0, now + 10_000),
        Ok(Reservation::Denied {
            retry_after_ms: 20_000
        })
    );
    // Cooldowns only lengthen.
    b.set_cooldown(P, &key(), now + 5_000, now).unwrap();
    a.refresh_now().unwrap();
    assert_eq!(a.cooldown_until(P, &key(), now), Ok(Some(now + 30_000)));
    // After the end the key is usable again.
    granted(b.reserve(P, &key(), rpm(100), 0, now + 30_000).unwrap());

    // With the refresher thread, B picks up a new cooldown by itself (~100 ms).
    let client = RedisClient::new(&server.url(), RedisOptions::default()).unwrap();
    let c = SharedState::start(
        SharedStore::new(client, "cc-relay:"),
        SharedOptions::default(),
    );
    c.track_providers(&[P]);
    let other = KeyRef::from_label("other").unwrap();
    a.set_cooldown(P, &other, now + 60_000, now).unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        c.cooldown_until(P, &other, now) == Ok(Some(now + 60_000))
    }));
    let age = c.status().refreshed_ago.unwrap();
    assert!(age < Duration::from_secs(1), "{age:?}");
    c.shutdown();
}

#[test]
fn circuit_state_is_shared_and_newer_records_win() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = state(&server.url(), None);
    let b = state(&server.url(), None);
    for s in [&a, &b] {
        s.track_providers(&[P, "zai"]);
    }
    assert_eq!(b.circuit(P), Ok(None));
    let open = SharedCircuit {
        state: CircuitState::Open,
        opened_at_ms: Some(NOW),
        updated_at_ms: NOW,
    };
    a.publish_circuit(P, open).unwrap();
    b.refresh_now().unwrap();
    assert_eq!(b.circuit(P), Ok(Some(open)));
    assert_eq!(b.circuit("zai"), Ok(None));
    // A stale writer (older clock reading) cannot close what a newer one opened.
    let stale_close = SharedCircuit {
        state: CircuitState::Closed,
        opened_at_ms: None,
        updated_at_ms: NOW - 1,
    };
    b.publish_circuit(P, stale_close).unwrap();
    assert_eq!(b.store().circuit(P, deadline()), Ok(Some(open)));
    let half = SharedCircuit {
        state: CircuitState::HalfOpen,
        opened_at_ms: Some(NOW),
        updated_at_ms: NOW + 30_000,
    };
    b.publish_circuit(P, half).unwrap();
    a.refresh_now().unwrap();
    assert_eq!(a.circuit(P), Ok(Some(half)));
    let closed = SharedCircuit {
        state: CircuitState::Closed,
        opened_at_ms: Some(NOW),
        updated_at_ms: NOW + 31_000,
    };
    a.publish_circuit(P, closed).unwrap();
    b.refresh_now().unwrap();
    assert_eq!(b.circuit(P), Ok(Some(closed)));
}

#[test]
fn signature_origin_is_shared() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = state(&server.url(), None);
    let b = state(&server.url(), None);
    let hash: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(b"EqQBCkgIARABGAIiQG...signature").into()
    };
    assert_eq!(b.signature_family(&hash), Ok(None));
    a.remember_signature(&hash, "claude").unwrap();
    assert_eq!(b.signature_family(&hash), Ok(Some("claude".to_string())));
    b.remember_signature(&hash, "zai").unwrap();
    assert_eq!(a.signature_family(&hash), Ok(Some("zai".to_string())));
}

#[test]
fn killed_redis_makes_every_call_unavailable_fast_and_a_restart_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let metrics = Arc::new(Metrics::new());
    let a = state(&server.url(), Some(Arc::clone(&metrics)));
    a.track_providers(&[P]);
    assert!(a.is_available());
    assert!(metrics.render(&[]).contains("\ncc_relay_redis_up 1\n"));
    let now = cc_relay::state::shared::unix_ms_now();
    granted(a.reserve(P, &key(), rpm(4), 0, now).unwrap());
    a.set_cooldown(P, &key(), now + 60_000, now).unwrap();

    server.kill();
    let start = Instant::now();
    assert_eq!(a.reserve(P, &key(), rpm(4), 0, now), Err(Unavailable));
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    assert!(!a.is_available());
    assert!(metrics.render(&[]).contains("\ncc_relay_redis_up 0\n"));
    let status = a.status();
    assert!(!status.available);
    assert!(status.last_error.unwrap().contains("cannot connect"));
    // From now on nothing waits on Redis: every call answers at once.
    let start = Instant::now();
    for _ in 0..1_000 {
        assert_eq!(a.reserve(P, &key(), rpm(4), 0, now), Err(Unavailable));
        assert_eq!(a.cooldown_until(P, &key(), now), Err(Unavailable));
        assert_eq!(a.circuit(P), Err(Unavailable));
        assert_eq!(a.remember_signature(&[1; 32], "claude"), Err(Unavailable));
        assert_eq!(a.signature_family(&[1; 32]), Err(Unavailable));
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(a.refresh_now(), Err(Unavailable));

    server.restart();
    a.refresh_now().unwrap();
    assert!(a.is_available());
    assert!(a.status().last_error.is_none());
    assert!(metrics.render(&[]).contains("\ncc_relay_redis_up 1\n"));
    // It continues from Redis's state (empty after a restart without persistence).
    assert_eq!(a.cooldown_until(P, &key(), now), Ok(None));
    granted(a.reserve(P, &key(), rpm(4), 0, now).unwrap());
}

#[test]
fn the_refresher_notices_recovery_by_itself() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let client = RedisClient::new(&server.url(), RedisOptions::default()).unwrap();
    let s = SharedState::start(
        SharedStore::new(client, "cc-relay:"),
        SharedOptions {
            refresh_every: Duration::from_millis(20),
            ..SharedOptions::default()
        },
    );
    assert!(s.is_available());
    server.kill();
    assert!(wait_for(Duration::from_secs(5), || !s.is_available()));
    server.restart();
    assert!(wait_for(Duration::from_secs(5), || s.is_available()));
    granted(s.reserve(P, &key(), rpm(4), 0, NOW).unwrap());
    s.shutdown();
}

#[test]
fn a_stopped_redis_costs_one_deadline_then_fails_fast() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = state(&server.url(), None);
    assert!(s.is_available());
    server.pause();
    let start = Instant::now();
    assert_eq!(s.reserve(P, &key(), rpm(4), 0, NOW), Err(Unavailable));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert!(s.status().last_error.unwrap().contains("deadline"));
    let start = Instant::now();
    assert_eq!(s.reserve(P, &key(), rpm(4), 0, NOW), Err(Unavailable));
    assert!(start.elapsed() < Duration::from_millis(25));
    server.resume();
    s.refresh_now().unwrap();
    granted(s.reserve(P, &key(), rpm(4), 0, NOW).unwrap());
}

#[test]
fn wrong_password_is_a_clear_status_not_a_crash() {
    let Some(server) = RedisServer::start_with(&["--requirepass", "right-pw"]) else {
        return;
    };
    let url = format!("redis://:wrong-pw@127.0.0.1:{}/0", server.port);
    let s = state(&url, None);
    assert!(!s.is_available());
    let status = s.status();
    let error = status.last_error.unwrap();
    assert!(error.contains("WRONGPASS"), "{error}");
    assert!(
        !error.contains("wrong-pw") && !error.contains("right-pw"),
        "{error}"
    );
    assert_eq!(
        status.url,
        format!("redis://:***@127.0.0.1:{}/0", server.port)
    );
    assert!(!format!("{s:?}").contains("wrong-pw"));
    assert_eq!(s.reserve(P, &key(), rpm(4), 0, NOW), Err(Unavailable));

    let good = state(
        &format!("redis://:right-pw@127.0.0.1:{}", server.port),
        None,
    );
    assert!(good.is_available());
}

#[test]
fn from_config_only_in_ha_mode() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut config = Config::with_providers(Vec::new());
    assert!(SharedState::from_config(&config, None).unwrap().is_none());
    config.cache.mode = CacheMode::Ha;
    config.cache.redis.url = Some(server.url());
    config.cache.redis.key_prefix = "fleet7:".into();
    let s = SharedState::from_config(&config, None).unwrap().unwrap();
    assert!(s.is_available());
    assert_eq!(s.store().client().timeout(), Duration::from_millis(50));
    granted(s.reserve(P, &key(), rpm(4), 0, NOW).unwrap());
    let exists = s
        .store()
        .client()
        .query(
            &Cmd::new("EXISTS").arg(format!("fleet7:{{{P}}}:key:{}:rpm", key())),
            deadline(),
        )
        .unwrap();
    assert_eq!(exists, Value::Integer(1));
    s.shutdown();
}
