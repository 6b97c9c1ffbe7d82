//! KeyPool (SPEC §4.2): key choice per strategy, 429 cooldowns, bad keys, rate limits
//! across threads, learned limits, usage correction, accurate retry-after, reload
//! carry-over, and property tests driven by our own PRNG.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_relay::config::schema::{KeyConfig, KeyStrategy};
use cc_relay::route::rng::SplitMix64;
use cc_relay::route::{AcquireError, KeyPool, RateLimitHeaders};

const ALL_STRATEGIES: [KeyStrategy; 4] = [
    KeyStrategy::LeastLoaded,
    KeyStrategy::RoundRobin,
    KeyStrategy::Random,
    KeyStrategy::Weighted,
];

fn key(secret: &str, rpm: u64) -> KeyConfig {
    KeyConfig {
        rpm_limit: rpm,
        ..KeyConfig::new(secret)
    }
}

fn keys(n: usize, rpm: u64) -> Vec<KeyConfig> {
    (0..n)
        .map(|i| key(&format!("sk-key-{i:04}"), rpm))
        .collect()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn pick(pool: &KeyPool, now: Instant, input: u64) -> usize {
    let lease = pool.acquire(now, input).expect("a key with headroom");
    let index = lease.key().index();
    pool.record_usage(lease, input, 0, now);
    index
}

#[test]
fn a_429_cools_the_key_and_the_next_key_serves_until_retry_after_passes() {
    for strategy in ALL_STRATEGIES {
        let t0 = Instant::now();
        let pool = KeyPool::with_seed(&keys(2, 0), strategy, t0, 11);
        // Find the moment key 0 is picked, then let it answer 429 with retry-after 30.
        let first = loop {
            let lease = pool.acquire(t0, 10).unwrap();
            if lease.key().index() == 0 {
                break lease;
            }
            pool.record_usage(lease, 10, 0, t0);
        };
        let headers = RateLimitHeaders::parse([("retry-after", "30")]);
        let wait = headers.cooldown(0).unwrap();
        assert_eq!(wait, secs(30.0));
        pool.cooldown_for(first.key(), t0, wait);
        pool.record_usage(first, 0, 0, t0);
        // The same request, retried at once, and everything after it: key 1 only.
        for step in 0..300u64 {
            let now = t0 + Duration::from_millis(step * 99);
            assert_eq!(pick(&pool, now, 10), 1, "{strategy:?} at {step}");
        }
        let status = &pool.snapshot(t0 + secs(10.0))[0];
        assert_eq!(status.cooling_down_for, Some(secs(20.0)));
        // Once retry-after has passed key 0 is used again.
        let after = t0 + secs(30.0);
        let used: Vec<usize> = (0..40).map(|_| pick(&pool, after, 10)).collect();
        assert!(used.contains(&0), "{strategy:?}: {used:?}");
    }
}

#[test]
fn rpm_limit_holds_across_threads() {
    const KEYS: usize = 3;
    const RPM: u64 = 50;
    for strategy in ALL_STRATEGIES {
        let t0 = Instant::now();
        let pool = Arc::new(KeyPool::with_seed(&keys(KEYS, RPM), strategy, t0, 5));
        let per_key: Arc<[AtomicU64; KEYS]> = Arc::new(Default::default());
        let refused = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                let per_key = Arc::clone(&per_key);
                let refused = Arc::clone(&refused);
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        match pool.acquire(t0, 0) {
                            Ok(lease) => {
                                per_key[lease.key().index()].fetch_add(1, Ordering::Relaxed);
                                pool.record_usage(lease, 0, 0, t0);
                            }
                            Err(AcquireError::Exhausted { retry_after }) => {
                                // 50 rpm: one request frees up every 1.2 s.
                                assert_eq!(retry_after, secs(1.2));
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for (i, count) in per_key.iter().enumerate() {
            assert_eq!(count.load(Ordering::Relaxed), RPM, "{strategy:?} key {i}");
        }
        assert_eq!(refused.load(Ordering::Relaxed), 800 - 150);
        // The window refills continuously: 1.2 s later exactly one request per key fits.
        let later = t0 + secs(1.2);
        for _ in 0..KEYS {
            assert!(pool.acquire(later, 0).is_ok());
        }
        assert!(pool.acquire(later, 0).is_err());
    }
}

#[test]
fn least_loaded_rotates_on_ties_and_is_never_stuck_on_key_one() {
    let t0 = Instant::now();
    for rpm in [0, 1000] {
        let pool = KeyPool::with_seed(&keys(3, rpm), KeyStrategy::LeastLoaded, t0, 1);
        let seq: Vec<usize> = (0..9).map(|_| pick(&pool, t0, 0)).collect();
        assert_eq!(seq, [0, 1, 2, 0, 1, 2, 0, 1, 2], "rpm {rpm}");
    }
}

#[test]
fn least_loaded_prefers_the_key_with_most_headroom() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(&keys(3, 10), KeyStrategy::LeastLoaded, t0, 1);
    // The upstream reports 5, 8 and 6 requests left.
    for (i, left) in ["5", "8", "6"].iter().enumerate() {
        let headers = RateLimitHeaders::parse([("anthropic-ratelimit-requests-remaining", *left)]);
        pool.learn_limits(pool.key_id(i).unwrap(), &headers, t0);
    }
    assert_eq!(pick(&pool, t0, 0), 1);
    assert_eq!(pick(&pool, t0, 0), 1);
    // Now keys 1 and 2 both have 6 left: the tie is shared, key 0 (5 left) waits.
    let next_two = [pick(&pool, t0, 0), pick(&pool, t0, 0)];
    assert!(
        next_two.contains(&1) && next_two.contains(&2),
        "{next_two:?}"
    );
    let snap = pool.snapshot(t0);
    let remaining: Vec<Option<u64>> = snap.iter().map(|s| s.rpm_remaining).collect();
    assert_eq!(remaining, [Some(5), Some(5), Some(5)]);
}

#[test]
fn round_robin_cycles_in_order() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(&keys(4, 0), KeyStrategy::RoundRobin, t0, 1);
    let seq: Vec<usize> = (0..8).map(|_| pick(&pool, t0, 0)).collect();
    assert_eq!(seq, [0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn exhausted_retry_after_is_the_earliest_key_to_free_up() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(
        &[key("sk-a", 60), key("sk-b", 6)],
        KeyStrategy::RoundRobin,
        t0,
        1,
    );
    for _ in 0..66 {
        pick(&pool, t0, 0);
    }
    // Key a frees one slot per second, key b one per 10 s.
    let at = t0 + secs(0.25);
    assert_eq!(
        pool.acquire(at, 0).unwrap_err(),
        AcquireError::Exhausted {
            retry_after: secs(0.75)
        }
    );
    assert_eq!(pool.acquire(at, 0).unwrap_err().retry_after_secs(), Some(1));
    assert!(pool
        .acquire(t0 + secs(1.0) - Duration::from_nanos(1), 0)
        .is_err());
    assert_eq!(pick(&pool, t0 + secs(1.0), 0), 0);
    // A cooldown longer than the bucket's wait decides for that key.
    let a = pool.key_id(0).unwrap();
    pool.cooldown_for(a, t0, secs(45.0));
    assert_eq!(
        pool.acquire(t0 + secs(2.0), 0).unwrap_err(),
        AcquireError::Exhausted {
            retry_after: secs(8.0)
        }
    );
}

#[test]
fn token_limits_gate_by_the_estimate_and_record_usage_corrects_it() {
    let t0 = Instant::now();
    let cfg = KeyConfig {
        itpm_limit: 1000,
        otpm_limit: 100,
        tpm_limit: 2000,
        ..KeyConfig::new("sk-t")
    };
    let pool = KeyPool::with_seed(&[cfg], KeyStrategy::LeastLoaded, t0, 1);
    let lease = pool.acquire(t0, 800).unwrap();
    assert_eq!(lease.charged_input_tokens(), 800);
    let s = &pool.snapshot(t0)[0];
    assert_eq!((s.itpm_remaining, s.tpm_remaining), (Some(200), Some(1200)));
    // 300 more input tokens do not fit while the estimate is held...
    assert!(pool.acquire(t0, 300).is_err());
    // ...but the real count was 300: the correction frees 500.
    pool.record_usage(lease, 300, 40, t0);
    let s = &pool.snapshot(t0)[0];
    assert_eq!(s.itpm_remaining, Some(700));
    assert_eq!(s.otpm_remaining, Some(60));
    assert_eq!(s.tpm_remaining, Some(2000 - 340));
    let lease = pool.acquire(t0, 300).unwrap();
    // Output charged after the fact can push otpm into debt: no headroom until repaid.
    pool.record_usage(lease, 300, 160, t0);
    assert_eq!(pool.snapshot(t0)[0].otpm_remaining, Some(0));
    match pool.acquire(t0, 1) {
        // 200 tokens over capacity -> 100 owed + 1 needed at 100/min = 60.6 s.
        Err(AcquireError::Exhausted { retry_after }) => assert_eq!(retry_after, secs(60.6)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_request_bigger_than_the_whole_bucket_waits_for_a_full_bucket() {
    let t0 = Instant::now();
    let cfg = KeyConfig {
        itpm_limit: 1000,
        ..KeyConfig::new("sk-big")
    };
    let pool = KeyPool::with_seed(&[cfg], KeyStrategy::LeastLoaded, t0, 1);
    let lease = pool.acquire(t0, 5000).unwrap();
    assert_eq!(lease.charged_input_tokens(), 1000);
    pool.record_usage(lease, 5000, 0, t0);
    // 4000 tokens of debt + a full bucket again for the next big one: 5 minutes.
    match pool.acquire(t0, 5000) {
        Err(AcquireError::Exhausted { retry_after }) => assert_eq!(retry_after, secs(300.0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refund_returns_the_request_and_its_estimate() {
    let t0 = Instant::now();
    let cfg = KeyConfig {
        rpm_limit: 1,
        itpm_limit: 100,
        ..KeyConfig::new("sk-r")
    };
    let pool = KeyPool::with_seed(&[cfg], KeyStrategy::RoundRobin, t0, 1);
    let lease = pool.acquire(t0, 100).unwrap();
    assert!(pool.acquire(t0, 1).is_err());
    pool.refund(lease, t0);
    let s = &pool.snapshot(t0)[0];
    assert_eq!((s.rpm_remaining, s.itpm_remaining), (Some(1), Some(100)));
}

#[test]
fn bad_keys_are_never_picked_and_all_bad_is_not_a_wait() {
    for strategy in ALL_STRATEGIES {
        let t0 = Instant::now();
        let pool = KeyPool::with_seed(&keys(3, 0), strategy, t0, 3);
        let k1 = pool.key_id(1).unwrap();
        assert!(pool.mark_bad(k1));
        assert!(!pool.mark_bad(k1), "second report is not news");
        for _ in 0..200 {
            assert_ne!(pick(&pool, t0, 0), 1, "{strategy:?}");
        }
        assert!(pool.snapshot(t0)[1].bad);
        pool.mark_bad(pool.key_id(0).unwrap());
        pool.mark_bad(pool.key_id(2).unwrap());
        assert_eq!(pool.acquire(t0, 0).unwrap_err(), AcquireError::NoUsableKey);
        assert_eq!(AcquireError::NoUsableKey.retry_after_secs(), None);
    }
}

#[test]
fn an_empty_pool_has_no_usable_key() {
    let pool = KeyPool::new(&[], KeyStrategy::LeastLoaded, Instant::now());
    assert!(pool.is_empty());
    assert_eq!(
        pool.acquire(Instant::now(), 0).unwrap_err(),
        AcquireError::NoUsableKey
    );
    assert!(pool.key_id(0).is_none());
}

#[test]
fn learned_limits_apply_with_the_smaller_of_configured_and_learned() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(
        &[key("sk-none", 0), key("sk-cap", 50), key("sk-high", 50)],
        KeyStrategy::RoundRobin,
        t0,
        1,
    );
    let headers = |limit: &str, remaining: &str| {
        RateLimitHeaders::parse([
            ("anthropic-ratelimit-requests-limit", limit),
            ("anthropic-ratelimit-requests-remaining", remaining),
            ("anthropic-ratelimit-tokens-limit", "80000"),
            ("anthropic-ratelimit-tokens-remaining", "79000"),
        ])
    };
    pool.learn_limits(pool.key_id(0).unwrap(), &headers("2", "1"), t0);
    pool.learn_limits(pool.key_id(1).unwrap(), &headers("1000", "999"), t0);
    pool.learn_limits(pool.key_id(2).unwrap(), &headers("10", "9"), t0);
    let snap = pool.snapshot(t0);
    let rpm: Vec<(u64, Option<u64>)> = snap
        .iter()
        .map(|s| (s.rpm_limit, s.rpm_remaining))
        .collect();
    assert_eq!(rpm, [(2, Some(1)), (50, Some(50)), (10, Some(9))]);
    assert_eq!(snap[0].tpm_limit, 80_000);
    assert_eq!(snap[0].tpm_remaining, Some(79_000));
    // Key 0 has exactly one request left.
    let k0 = pool.key_id(0).unwrap();
    let mut taken_from_k0 = 0;
    for _ in 0..6 {
        let lease = pool.acquire(t0, 0).unwrap();
        if lease.key() == k0 {
            taken_from_k0 += 1;
        }
        pool.record_usage(lease, 0, 0, t0);
    }
    assert_eq!(taken_from_k0, 1);
    // A limit of 0 or garbage never replaces anything.
    pool.learn_limits(k0, &headers("0", "x"), t0);
    assert_eq!(pool.snapshot(t0)[0].rpm_limit, 2);
}

#[test]
fn remaining_only_lowers_our_level() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(&[key("sk", 100)], KeyStrategy::RoundRobin, t0, 1);
    for _ in 0..30 {
        pick(&pool, t0, 0);
    }
    let k = pool.key_id(0).unwrap();
    let remaining =
        |r: &str| RateLimitHeaders::parse([("anthropic-ratelimit-requests-remaining", r)]);
    pool.learn_limits(k, &remaining("95"), t0);
    assert_eq!(pool.snapshot(t0)[0].rpm_remaining, Some(70));
    pool.learn_limits(k, &remaining("20"), t0);
    assert_eq!(pool.snapshot(t0)[0].rpm_remaining, Some(20));
}

#[test]
fn carry_over_keeps_state_per_secret_even_when_renamed() {
    let t0 = Instant::now();
    let old_keys = vec![
        KeyConfig {
            name: Some("alpha".into()),
            ..key("sk-alpha", 10)
        },
        key("sk-beta", 10),
        key("sk-gone", 10),
    ];
    let old = KeyPool::with_seed(&old_keys, KeyStrategy::RoundRobin, t0, 1);
    for _ in 0..6 {
        pick(&old, t0, 0); // 2 each
    }
    let beta = old.key_id(1).unwrap();
    old.cooldown_for(beta, t0, secs(30.0));
    old.mark_bad(old.key_id(0).unwrap());
    old.learn_limits(
        beta,
        &RateLimitHeaders::parse([("anthropic-ratelimit-tokens-limit", "5000")]),
        t0,
    );

    let t1 = t0 + secs(1.0);
    let new_keys = vec![
        key("sk-new", 10),
        KeyConfig {
            name: Some("beta-renamed".into()),
            ..key("sk-beta", 20)
        },
        KeyConfig {
            name: Some("alpha-renamed".into()),
            ..key("sk-alpha", 10)
        },
    ];
    let mut new = KeyPool::with_seed(&new_keys, KeyStrategy::RoundRobin, t1, 1);
    new.carry_over_from(&old, t1);
    let snap = new.snapshot(t1);
    assert_eq!(snap[0].label, "…-new");
    assert_eq!(snap[0].rpm_remaining, Some(10), "a new key starts fresh");
    assert_eq!(snap[1].label, "beta-renamed");
    assert_eq!(
        snap[1].rpm_limit, 20,
        "configured limit from the new config"
    );
    // 2 used of 10 a second ago, 1/6 refilled since: 1.83 still counted, now out of 20.
    assert_eq!(snap[1].rpm_remaining, Some(18));
    assert_eq!(snap[1].tpm_limit, 5000, "learned limit kept");
    assert_eq!(snap[1].cooling_down_for, Some(secs(29.0)));
    assert_eq!(snap[2].label, "alpha-renamed");
    assert!(!snap[2].bad, "a reload clears the bad mark");
    assert_eq!(snap[2].rpm_remaining, Some(8));
    // Requests still finishing on the old pool account into the same key (the shared
    // state also lost its bad mark, so the old pool's round robin lands on alpha).
    let lease = old.acquire(t1, 0).unwrap();
    assert_eq!(lease.key().index(), 0);
    old.record_usage(lease, 0, 0, t1);
    assert_eq!(new.snapshot(t1)[2].rpm_remaining, Some(7));
    // A lease of the old pool means nothing to the new one.
    let stale = old.acquire(t1, 0).unwrap();
    new.cooldown_for(stale.key(), t1, secs(99.0));
    assert!(new
        .snapshot(t1)
        .iter()
        .all(|s| s.cooling_down_for != Some(secs(99.0))));
}

#[test]
fn status_shows_labels_never_secrets() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(
        &[key("sk-ant-api03-secretvalue-WXYZ", 0)],
        KeyStrategy::LeastLoaded,
        t0,
        1,
    );
    let snap = pool.snapshot(t0);
    assert_eq!(snap[0].label, "…WXYZ");
    assert_eq!(snap[0].rpm_remaining, None, "unlimited");
    let debug = format!("{pool:?} {:?}", pool.acquire(t0, 0).unwrap());
    assert!(!debug.contains("secretvalue"), "{debug}");
}

#[test]
fn weighted_picks_follow_the_weights_over_100k() {
    let t0 = Instant::now();
    let cfg: Vec<KeyConfig> = [1u32, 2, 3, 4, 0]
        .iter()
        .enumerate()
        .map(|(i, &w)| KeyConfig {
            weight: w,
            ..KeyConfig::new(format!("sk-{i}"))
        })
        .collect();
    let pool = KeyPool::with_seed(&cfg, KeyStrategy::Weighted, t0, 0xDEADBEEF);
    let mut counts = [0u64; 5];
    for _ in 0..100_000 {
        counts[pick(&pool, t0, 0)] += 1;
    }
    assert_eq!(counts[4], 0, "weight 0 while others have room");
    for (i, &w) in [1u64, 2, 3, 4].iter().enumerate() {
        let expected = 10_000 * w;
        let diff = counts[i].abs_diff(expected);
        assert!(
            diff * 100 < expected * 3,
            "key {i}: {} vs {expected}",
            counts[i]
        );
    }
}

#[test]
fn random_picks_are_uniform_over_100k() {
    let t0 = Instant::now();
    let pool = KeyPool::with_seed(&keys(4, 0), KeyStrategy::Random, t0, 42);
    let mut counts = [0u64; 4];
    for _ in 0..100_000 {
        counts[pick(&pool, t0, 0)] += 1;
    }
    for c in counts {
        assert!(c.abs_diff(25_000) < 750, "{counts:?}");
    }
}

#[test]
fn weighted_with_a_busy_key_spreads_by_weight_over_the_rest() {
    let t0 = Instant::now();
    let cfg: Vec<KeyConfig> = [5u32, 1, 3]
        .iter()
        .enumerate()
        .map(|(i, &w)| KeyConfig {
            weight: w,
            ..KeyConfig::new(format!("sk-{i}"))
        })
        .collect();
    let pool = KeyPool::with_seed(&cfg, KeyStrategy::Weighted, t0, 9);
    pool.cooldown_for(pool.key_id(0).unwrap(), t0, secs(60.0));
    let mut counts = [0u64; 3];
    for _ in 0..40_000 {
        counts[pick(&pool, t0, 0)] += 1;
    }
    assert_eq!(counts[0], 0);
    assert!(counts[2].abs_diff(30_000) < 900, "{counts:?}");
}

/// Random operations against a simple model of which keys may be picked: no key is ever
/// handed out while cooling down or bad; Exhausted/NoUsableKey only when the model agrees.
#[test]
fn property_never_picks_a_cooling_or_bad_key() {
    for strategy in ALL_STRATEGIES {
        for seed in 0..20u64 {
            let mut rng = SplitMix64::new(seed * 7919 + 1);
            let n = 1 + rng.below(6) as usize;
            let cfg: Vec<KeyConfig> = (0..n)
                .map(|i| KeyConfig {
                    rpm_limit: rng.below(4) * 5,
                    weight: rng.below(4) as u32,
                    ..KeyConfig::new(format!("sk-{seed}-{i}"))
                })
                .collect();
            let t0 = Instant::now();
            let pool = KeyPool::with_seed(&cfg, strategy, t0, seed);
            let mut cooling_until = vec![Duration::ZERO; n];
            let mut bad = vec![false; n];
            let mut clock = Duration::ZERO;
            for _ in 0..2000 {
                let now = t0 + clock;
                match rng.below(10) {
                    0 => {
                        let i = rng.below(n as u64) as usize;
                        let d = Duration::from_millis(rng.below(20_000));
                        pool.cooldown_for(pool.key_id(i).unwrap(), now, d);
                        cooling_until[i] = cooling_until[i].max(clock + d);
                    }
                    1 if rng.below(8) == 0 => {
                        let i = rng.below(n as u64) as usize;
                        pool.mark_bad(pool.key_id(i).unwrap());
                        bad[i] = true;
                    }
                    2 => clock += Duration::from_millis(rng.below(3000)),
                    _ => {
                        let usable = |i: usize| !bad[i] && cooling_until[i] <= clock;
                        match pool.acquire(now, rng.below(100)) {
                            Ok(lease) => {
                                let i = lease.key().index();
                                assert!(usable(i), "{strategy:?} seed {seed}: key {i}");
                                pool.record_usage(lease, rng.below(100), rng.below(100), now);
                            }
                            Err(AcquireError::NoUsableKey) => {
                                assert!(bad.iter().all(|&b| b), "{strategy:?} seed {seed}");
                            }
                            Err(AcquireError::Exhausted { retry_after }) => {
                                assert!(retry_after > Duration::ZERO);
                                // Retrying exactly then must succeed (nothing else changed).
                                let lease = pool.acquire(now + retry_after, 0);
                                let at = clock + retry_after;
                                match lease {
                                    Ok(lease) => {
                                        let i = lease.key().index();
                                        assert!(!bad[i] && cooling_until[i] <= at);
                                        pool.refund(lease, now + retry_after);
                                    }
                                    Err(e) => panic!("{strategy:?} seed {seed}: {e:?}"),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn least_loaded_skips_the_least_used_key_when_the_request_does_not_fit_it() {
    let t0 = Instant::now();
    let small = KeyConfig {
        itpm_limit: 1_000,
        ..KeyConfig::new("sk-small")
    };
    let large = KeyConfig {
        itpm_limit: 100_000,
        ..KeyConfig::new("sk-large")
    };
    let pool = KeyPool::with_seed(&[small, large], KeyStrategy::LeastLoaded, t0, 1);
    let set_remaining = |i: usize, left: &str| {
        let h = RateLimitHeaders::parse([("anthropic-ratelimit-input-tokens-remaining", left)]);
        pool.learn_limits(pool.key_id(i).unwrap(), &h, t0);
    };
    set_remaining(0, "500"); // 50 % used, 500 left
    set_remaining(1, "40000"); // 60 % used, 40 000 left
                               // Small requests go to the less used key...
    let lease = pool.acquire(t0, 100).unwrap();
    assert_eq!(lease.key().index(), 0);
    pool.refund(lease, t0);
    // ...an 800-token request does not fit it and goes to the other one.
    let lease = pool.acquire(t0, 800).unwrap();
    assert_eq!(lease.key().index(), 1);
    assert_eq!(pool.snapshot(t0)[1].itpm_remaining, Some(39_200));
}
