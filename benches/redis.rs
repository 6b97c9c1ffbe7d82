//! Shared-state cost on loopback Redis (issue 11): round trips per second and p50/p99
//! latency of the reservation script (the one Redis call a request waits on in
//! `cache.mode: ha`), from 1 and 4 threads, next to a bare PING (the loopback floor),
//! the usage correction (after the response) and the local key pool (`single`), so
//! "added latency per request, ha vs single" = reserve - local acquire.
//!
//! Starts its own `redis-server` on a free loopback port and skips cleanly when the
//! binary is missing (`.ci/install-redis`). `--quick` / `CC_RELAY_BENCH_QUICK=1`: one tiny
//! iteration of everything (CI smoke). Prints a table and one
//! `BENCH name=redis_<case> ... value=<v>` line per figure.

#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cc_relay::config::schema::{KeyConfig, KeyStrategy};
use cc_relay::route::KeyPool;
use cc_relay::state::redis::{Cmd, RedisClient, RedisOptions};
use cc_relay::state::shared::{Charge, KeyRef, Limits, Reservation, SharedStore, Usage};

struct Settings {
    ops: usize,
    threads: usize,
}

struct Row {
    case: String,
    threads: usize,
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `op` `ops` times on each of `threads` threads; per-call latencies and the
/// aggregate rate.
fn measure(case: &str, threads: usize, ops: usize, op: impl Fn(usize, usize) + Sync) -> Row {
    let barrier = Barrier::new(threads);
    let start = Instant::now();
    let mut all: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let op = &op;
                scope.spawn(move || {
                    barrier.wait();
                    let mut lat = Vec::with_capacity(ops);
                    for i in 0..ops {
                        let t0 = Instant::now();
                        op(t, i);
                        lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    Row {
        case: case.to_string(),
        threads,
        ops_per_sec: all.len() as f64 / elapsed.max(1e-9),
        p50_us: us(percentile(&all, 0.50)),
        p99_us: us(percentile(&all, 0.99)),
        max_us: us(all.last().copied().unwrap_or(0)),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("CC_RELAY_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let s = if quick {
        Settings {
            ops: 10,
            threads: 2,
        }
    } else {
        Settings {
            ops: 20_000,
            threads: 4,
        }
    };
    let Some(server) = redis_support::RedisServer::start() else {
        println!("redis bench skipped: redis-server is not installed (.ci/install-redis)");
        return;
    };
    let client = RedisClient::new(
        &server.url(),
        RedisOptions {
            // Generous: a bench measures latency, it should not turn slow calls into errors.
            timeout: Duration::from_secs(2),
            ..RedisOptions::default()
        },
    )
    .expect("client");
    let store = SharedStore::new(client.clone(), "cc-relay:");
    // High limits so every reservation is granted: this measures the full grant path
    // (four buckets read and written), never a refusal.
    let limits = Limits {
        rpm: 1_000_000_000,
        tpm: 1_000_000_000,
        itpm: 1_000_000_000,
        otpm: 1_000_000_000,
    };
    let keys: Vec<KeyRef> = (0..100)
        .map(|i| KeyRef::from_secret(&format!("sk-bench-{i}")))
        .collect();
    let base_ms = cc_relay::state::shared::unix_ms_now();
    let deadline = || Instant::now() + Duration::from_secs(2);

    // Warm up: connections, script load.
    for key in &keys {
        let _ = store.reserve("anthropic", key, limits, 1, base_ms, deadline());
    }

    let mut rows = Vec::new();
    rows.push(measure("ping", 1, s.ops, |_, _| {
        client.ping(deadline()).expect("PING");
    }));
    let reserve = |t: usize, i: usize| {
        let key = &keys[(t * 31 + i) % keys.len()];
        let r = store
            .reserve(
                "anthropic",
                key,
                limits,
                500,
                base_ms + i as u64,
                deadline(),
            )
            .expect("reserve");
        assert!(matches!(r, Reservation::Granted { .. }), "{r:?}");
    };
    rows.push(measure("reserve", 1, s.ops, reserve));
    rows.push(measure("reserve", s.threads, s.ops, reserve));
    rows.push(measure("correct_usage", 1, s.ops, |_, i| {
        let key = &keys[i % keys.len()];
        store
            .correct_usage(
                "anthropic",
                key,
                limits,
                Charge {
                    tpm: 500,
                    itpm: 500,
                },
                Usage {
                    input_tokens: 400,
                    output_tokens: 200,
                },
                base_ms + i as u64,
                deadline(),
            )
            .expect("correct_usage");
    }));
    rows.push(measure("pipeline_10_get", 1, s.ops / 10 + 1, |_, _| {
        let cmds: Vec<Cmd> = (0..10)
            .map(|i| Cmd::new("GET").arg(format!("k{i}")))
            .collect();
        client.pipeline(&cmds, deadline()).expect("pipeline");
    }));

    // `single` mode: the local key pool's acquire + record on 100 keys.
    let configs: Vec<KeyConfig> = (0..100)
        .map(|i| KeyConfig {
            rpm_limit: 1_000_000_000,
            tpm_limit: 1_000_000_000,
            itpm_limit: 1_000_000_000,
            otpm_limit: 1_000_000_000,
            ..KeyConfig::new(format!("sk-bench-{i:03}"))
        })
        .collect();
    let epoch = Instant::now();
    let pool = Arc::new(KeyPool::new(&configs, KeyStrategy::LeastLoaded, epoch));
    rows.push(measure("local_keypool_acquire_record", 1, s.ops, |_, i| {
        let now = epoch + Duration::from_micros(i as u64);
        let lease = pool.acquire(now, 500).expect("acquire");
        pool.record_usage(black_box(lease), 400, 200, now);
    }));

    println!(
        "redis bench on loopback ({} ops per thread{})",
        s.ops,
        if quick { ", QUICK smoke run" } else { "" }
    );
    println!(
        "{:<30} {:>7} {:>12} {:>10} {:>10} {:>10}",
        "case", "threads", "ops/s", "p50 us", "p99 us", "max us"
    );
    for r in &rows {
        println!(
            "{:<30} {:>7} {:>12.0} {:>10.1} {:>10.1} {:>10.1}",
            r.case, r.threads, r.ops_per_sec, r.p50_us, r.p99_us, r.max_us
        );
    }
    let local = rows
        .iter()
        .find(|r| r.case == "local_keypool_acquire_record")
        .map(|r| (r.p50_us, r.p99_us))
        .unwrap_or((0.0, 0.0));
    if let Some(r) = rows.iter().find(|r| r.case == "reserve" && r.threads == 1) {
        println!(
            "added per request, ha vs single: p50 {:.1} us, p99 {:.1} us",
            r.p50_us - local.0,
            r.p99_us - local.1
        );
    }
    println!();
    for r in &rows {
        let tags = format!("threads={} quick={quick}", r.threads);
        println!(
            "BENCH name=redis_{}_ops_per_sec {tags} value={:.1}",
            r.case, r.ops_per_sec
        );
        println!(
            "BENCH name=redis_{}_p50_us {tags} value={:.1}",
            r.case, r.p50_us
        );
        println!(
            "BENCH name=redis_{}_p99_us {tags} value={:.1}",
            r.case, r.p99_us
        );
    }
    drop(server);
}
