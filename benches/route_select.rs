//! Selection cost of the routing layer (issue 4: "sub-microsecond with 100 keys"):
//! `KeyPool::acquire` + `record_usage` with 100 keys per key strategy, on 1 and 2 threads,
//! `Router::plan` per provider strategy, and the closed-breaker fast path.
//!
//! `cargo bench --bench route_select` prints a table and one machine-readable line per
//! figure (`bench=route_select case=... threads=... ns_per_op=...`). With `--quick` or
//! `CC_RELAY_BENCH_QUICK=1` it runs one tiny iteration of everything (CI smoke).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cc_relay::config::schema::{
    Config, KeyConfig, KeyStrategy, ProviderConfig, ProviderType, Strategy,
};
use cc_relay::route::{Availability, BreakerSettings, CircuitBreaker, KeyPool, Router};

const KEYS: usize = 100;

/// Each figure is measured in `runs` batches of `ops` operations. The machine is shared,
/// so the best batch (least disturbed by other processes) is the headline figure; the
/// median is printed next to it.
struct Settings {
    ops: u64,
    runs: usize,
}

struct Figure {
    case: String,
    threads: usize,
    samples: Samples,
}

#[derive(Clone, Copy)]
struct Samples {
    best: f64,
    median: f64,
}

/// Every bucket limited, so each pick does the full bucket arithmetic, but so high that
/// no limit binds within a run (a run uses at most ~5 % of any bucket): this measures
/// choosing, not refusing.
fn limited_keys() -> Vec<KeyConfig> {
    (0..KEYS)
        .map(|i| KeyConfig {
            rpm_limit: 1_000_000,
            tpm_limit: 1_000_000_000_000,
            itpm_limit: 1_000_000_000_000,
            otpm_limit: 1_000_000_000_000,
            weight: 1 + (i as u32 % 4),
            ..KeyConfig::new(format!("sk-bench-{i:03}"))
        })
        .collect()
}

/// Per-thread time per op over `runs` batches; each thread does `ops` ops. All
/// threads use one fixed `now`: threads with private simulated clocks drift apart, and a
/// thread running a minute "ahead" would make every bucket look in debt to the other.
fn time_pool(strategy: KeyStrategy, threads: usize, s: &Settings) -> Samples {
    let mut samples = Vec::new();
    for run in 0..s.runs {
        let t0 = Instant::now();
        let pool = Arc::new(KeyPool::with_seed(
            &limited_keys(),
            strategy,
            t0,
            run as u64,
        ));
        let barrier = Arc::new(Barrier::new(threads));
        let ops = s.ops;
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let pool = Arc::clone(&pool);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let now = t0 + Duration::from_secs(1);
                    for _ in 0..ops {
                        match pool.acquire(now, black_box(2_000)) {
                            Ok(lease) => pool.record_usage(lease, 1_800, 300, now),
                            Err(e) => panic!("bench pool exhausted: {e:?}"),
                        }
                    }
                    start.elapsed()
                })
            })
            .collect();
        let mut longest = Duration::ZERO;
        for w in workers {
            match w.join() {
                Ok(elapsed) => longest = longest.max(elapsed),
                Err(_) => std::process::exit(1),
            }
        }
        samples.push(longest.as_nanos() as f64 / ops as f64);
    }
    summarize(samples)
}

fn router_config(strategy: Strategy, providers: usize) -> Config {
    let list = (0..providers)
        .map(|i| {
            let mut p = ProviderConfig::new(format!("p{i}"), ProviderType::Anthropic);
            p.priority = Some((i % 3) as i64);
            p.weight = Some(1 + (i % 5) as u32);
            p
        })
        .collect();
    let mut c = Config::with_providers(list);
    c.routing.strategy = strategy;
    c.routing.model_mapping = vec![
        ("claude-opus".into(), "p1".into()),
        ("claude".into(), "p0".into()),
        ("glm".into(), "p2".into()),
    ];
    c
}

fn time_plan(strategy: Strategy, providers: usize, s: &Settings) -> Samples {
    let c = router_config(strategy, providers);
    let router = Router::with_seed(&c, 1);
    let settings = BreakerSettings::from_config(&c.health);
    let breakers: Vec<CircuitBreaker> = (0..providers)
        .map(|_| CircuitBreaker::new(settings))
        .collect();
    let now = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..s.runs {
        let start = Instant::now();
        for _ in 0..s.ops {
            let plan = router.plan(black_box("claude-sonnet-4-5"), |i| {
                breakers
                    .get(i)
                    .map_or(Availability::Unavailable { opened_at: now }, |b| {
                        b.availability(now)
                    })
            });
            black_box(plan);
        }
        samples.push(start.elapsed().as_nanos() as f64 / s.ops as f64);
    }
    summarize(samples)
}

fn time_breaker(s: &Settings) -> Samples {
    let b = CircuitBreaker::new(BreakerSettings::from_config(
        &cc_relay::config::schema::HealthConfig::default(),
    ));
    let now = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..s.runs {
        let start = Instant::now();
        for _ in 0..s.ops {
            black_box(b.admit(now));
            b.on_success(now);
        }
        samples.push(start.elapsed().as_nanos() as f64 / s.ops as f64);
    }
    summarize(samples)
}

fn summarize(mut v: Vec<f64>) -> Samples {
    v.sort_by(|a, b| a.total_cmp(b));
    Samples {
        best: v.first().copied().unwrap_or(0.0),
        median: v.get(v.len() / 2).copied().unwrap_or(0.0),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("CC_RELAY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let s = if quick {
        Settings { ops: 10, runs: 1 }
    } else {
        Settings {
            ops: 20_000,
            runs: 30,
        }
    };

    let mut figures = Vec::new();
    for (name, strategy) in [
        ("least_loaded", KeyStrategy::LeastLoaded),
        ("round_robin", KeyStrategy::RoundRobin),
        ("random", KeyStrategy::Random),
        ("weighted", KeyStrategy::Weighted),
    ] {
        for threads in [1, 2] {
            figures.push(Figure {
                case: format!("keypool_{name}_{KEYS}keys_acquire_record"),
                threads,
                samples: time_pool(strategy, threads, &s),
            });
        }
    }
    for (name, strategy) in [
        ("failover", Strategy::Failover),
        ("round_robin", Strategy::RoundRobin),
        ("weighted_round_robin", Strategy::WeightedRoundRobin),
        ("shuffle", Strategy::Shuffle),
        ("model_based", Strategy::ModelBased),
    ] {
        for providers in [5, 20] {
            figures.push(Figure {
                case: format!("router_plan_{name}_{providers}providers"),
                threads: 1,
                samples: time_plan(strategy, providers, &s),
            });
        }
    }
    figures.push(Figure {
        case: "breaker_admit_success_closed".into(),
        threads: 1,
        samples: time_breaker(&s),
    });

    println!(
        "route_select ({} batches x {} ops{})",
        s.runs,
        s.ops,
        if quick { ", QUICK smoke run" } else { "" }
    );
    println!(
        "{:<48} {:>7} {:>12} {:>12}",
        "case", "threads", "best ns/op", "median ns/op"
    );
    for f in &figures {
        println!(
            "{:<48} {:>7} {:>12.1} {:>12.1}",
            f.case, f.threads, f.samples.best, f.samples.median
        );
    }
    for f in &figures {
        println!(
            "bench=route_select case={} threads={} ns_per_op={:.1} median_ns_per_op={:.1} quick={}",
            f.case, f.threads, f.samples.best, f.samples.median, quick
        );
    }
}
