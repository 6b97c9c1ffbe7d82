//! Prometheus metrics (SPEC §6): the counters, gauges and latency histograms cc-relay
//! keeps, and their rendering in the text exposition format 0.0.4 for `/metrics`.
//!
//! The request path never takes a lock shared by all requests: at startup (and on
//! reload) the relay resolves a [`ProviderMetrics`] handle per provider, and a
//! [`KeyMetrics`] handle per key, with [`Metrics::provider`] / [`ProviderMetrics::key`];
//! counting is then one relaxed atomic add (a histogram observation is two), plus one
//! compare-and-swap on the provider's last-minute count ([`RollingCount`]). Only an
//! HTTP status outside the small fixed table goes through a per-provider mutex.
//! Gauges that are cheaper to read than to maintain (key headroom) are passed to
//! [`Metrics::render`] as a snapshot taken at scrape time.
//!
//! This module holds numbers and renders text; it never sees a key, only key labels,
//! and it does not serve HTTP.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::rolling::RollingCount;

/// Upper bounds (seconds) of the latency histogram buckets; `+Inf` follows. From 5 ms
/// (a local Ollama's first byte) to 10 minutes (`server.timeout_ms`' default).
pub const LATENCY_BUCKETS_SECONDS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The same bounds in nanoseconds, so an observation needs no float arithmetic.
const LATENCY_BUCKETS_NANOS: [u64; 16] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    120_000_000_000,
    300_000_000_000,
    600_000_000_000,
];

const BUCKET_COUNT: usize = LATENCY_BUCKETS_NANOS.len() + 1;

/// A latency histogram with the fixed buckets above. Buckets hold per-bucket (not
/// cumulative) counts so an observation touches one bucket; the total is their sum.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKET_COUNT],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // `le` means "less than or equal": the first bound not below the value.
        let index = LATENCY_BUCKETS_NANOS.partition_point(|&bound| bound < nanos);
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A copy of the counts. Taken without a lock, so a concurrent observation may be
    /// in the buckets but not yet in the sum; Prometheus tolerates that.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| {
                self.buckets
                    .get(i)
                    .map_or(0, |bucket| bucket.load(Ordering::Relaxed))
            }),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Counts of one histogram at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSnapshot {
    /// Per bucket, in the order of [`LATENCY_BUCKETS_SECONDS`], then `+Inf`.
    pub buckets: [u64; BUCKET_COUNT],
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Running totals, as the `_bucket{le=..}` series show them.
    pub fn cumulative(&self) -> [u64; BUCKET_COUNT] {
        let mut total = 0u64;
        std::array::from_fn(|i| {
            total = total.saturating_add(self.buckets.get(i).copied().unwrap_or(0));
            total
        })
    }

    /// Estimated `q`-quantile in seconds (see [`quantile_from_cumulative`]).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile_from_cumulative(&LATENCY_BUCKETS_SECONDS, &self.cumulative(), q)
    }
}

/// The `q`-quantile (0..=1) estimated from cumulative bucket counts, interpolating
/// linearly inside the bucket that holds it, as Prometheus' `histogram_quantile` does.
/// `cumulative` has one more entry than `bounds` (the `+Inf` bucket); a quantile that
/// falls there is reported as the highest finite bound. None without observations.
pub fn quantile_from_cumulative(bounds: &[f64], cumulative: &[u64], q: f64) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 || q.is_nan() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let index = cumulative.iter().position(|&c| c as f64 >= rank)?;
    let Some(&upper) = bounds.get(index) else {
        return bounds.last().copied();
    };
    let (lower, below) = match index.checked_sub(1) {
        Some(previous) => (
            bounds.get(previous).copied().unwrap_or(0.0),
            cumulative.get(previous).copied().unwrap_or(0),
        ),
        None => (0.0, 0),
    };
    let in_bucket = cumulative
        .get(index)
        .copied()
        .unwrap_or(0)
        .saturating_sub(below);
    if in_bucket == 0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below as f64) / in_bucket as f64)
}

/// `cc_relay_circuit_state` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitGauge {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl CircuitGauge {
    fn from_u8(value: u8) -> CircuitGauge {
        match value {
            1 => CircuitGauge::HalfOpen,
            2 => CircuitGauge::Open,
            _ => CircuitGauge::Closed,
        }
    }
}

/// Statuses a relay answers often get an atomic slot each; any other status is counted
/// in a map under a mutex, off the common path.
const COMMON_STATUSES: [u16; 15] = [
    200, 400, 401, 403, 404, 405, 408, 413, 429, 499, 500, 502, 503, 504, 529,
];

fn common_status_slot(status: u16) -> Option<usize> {
    Some(match status {
        200 => 0,
        400 => 1,
        401 => 2,
        403 => 3,
        404 => 4,
        405 => 5,
        408 => 6,
        413 => 7,
        429 => 8,
        499 => 9,
        500 => 10,
        502 => 11,
        503 => 12,
        504 => 13,
        529 => 14,
        _ => return None,
    })
}

/// Token counters of one key, by its label (never the key itself).
#[derive(Debug)]
pub struct KeyMetrics {
    label: String,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
}

impl KeyMetrics {
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn add_tokens(&self, input: u64, output: u64) {
        if input > 0 {
            self.input_tokens.fetch_add(input, Ordering::Relaxed);
        }
        if output > 0 {
            self.output_tokens.fetch_add(output, Ordering::Relaxed);
        }
    }

    pub fn tokens(&self) -> (u64, u64) {
        (
            self.input_tokens.load(Ordering::Relaxed),
            self.output_tokens.load(Ordering::Relaxed),
        )
    }
}

/// Everything counted per provider. Resolve it once with [`Metrics::provider`] and keep
/// the `Arc` next to the provider; every method is lock-free except the rare ones noted.
#[derive(Debug)]
pub struct ProviderMetrics {
    name: String,
    common_statuses: [AtomicU64; COMMON_STATUSES.len()],
    other_statuses: Mutex<BTreeMap<u16, u64>>,
    duration: Histogram,
    ttfb: Histogram,
    stream_events: AtomicU64,
    circuit_state: AtomicU8,
    upstream_connections: AtomicI64,
    keys: RwLock<BTreeMap<String, Arc<KeyMetrics>>>,
    /// The same requests as the status counters, over the last minute only.
    recent_requests: RollingCount,
}

/// Whole seconds since the first call in this process: a monotonic clock for
/// [`RollingCount`], which a wall-clock step must not empty or freeze.
fn process_second() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

impl ProviderMetrics {
    fn new(name: &str) -> ProviderMetrics {
        ProviderMetrics {
            name: name.to_string(),
            common_statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            other_statuses: Mutex::new(BTreeMap::new()),
            duration: Histogram::default(),
            ttfb: Histogram::default(),
            stream_events: AtomicU64::new(0),
            circuit_state: AtomicU8::new(CircuitGauge::Closed as u8),
            upstream_connections: AtomicI64::new(0),
            keys: RwLock::new(BTreeMap::new()),
            recent_requests: RollingCount::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One answered `/v1/*` request with its final HTTP status.
    pub fn count_request(&self, status: u16) {
        self.recent_requests.record(process_second());
        match common_status_slot(status).and_then(|slot| self.common_statuses.get(slot)) {
            Some(counter) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut other = lock(&self.other_statuses);
                *other.entry(status).or_insert(0) += 1;
            }
        }
    }

    /// Requests counted by [`count_request`](Self::count_request) during the last
    /// 60 seconds (the current one included).
    pub fn requests_last_minute(&self) -> u64 {
        self.recent_requests.total(process_second())
    }

    /// Request received -> response finished.
    pub fn observe_duration(&self, duration: Duration) {
        self.duration.observe(duration);
    }

    /// Request received -> first response byte sent to the client.
    pub fn observe_ttfb(&self, duration: Duration) {
        self.ttfb.observe(duration);
    }

    pub fn add_stream_events(&self, events: u64) {
        self.stream_events.fetch_add(events, Ordering::Relaxed);
    }

    pub fn set_circuit_state(&self, state: CircuitGauge) {
        self.circuit_state.store(state as u8, Ordering::Relaxed);
    }

    pub fn circuit_state(&self) -> CircuitGauge {
        CircuitGauge::from_u8(self.circuit_state.load(Ordering::Relaxed))
    }

    /// The connection pool reports its size changes (+1 on connect, -1 on close).
    pub fn add_upstream_connections(&self, delta: i64) {
        self.upstream_connections
            .fetch_add(delta, Ordering::Relaxed);
    }

    pub fn set_upstream_connections(&self, connections: i64) {
        self.upstream_connections
            .store(connections, Ordering::Relaxed);
    }

    /// The token counters of the key with this label, created on first use. Takes a
    /// per-provider lock: resolve handles when the key pool is built, not per request.
    pub fn key(&self, label: &str) -> Arc<KeyMetrics> {
        if let Some(existing) = read(&self.keys).get(label) {
            return Arc::clone(existing);
        }
        let mut keys = write(&self.keys);
        Arc::clone(keys.entry(label.to_string()).or_insert_with(|| {
            Arc::new(KeyMetrics {
                label: label.to_string(),
                input_tokens: AtomicU64::new(0),
                output_tokens: AtomicU64::new(0),
            })
        }))
    }

    /// Convenience for callers without a key handle (one read lock).
    pub fn add_tokens(&self, key_label: &str, input: u64, output: u64) {
        self.key(key_label).add_tokens(input, output);
    }

    /// Drops the series of keys no longer configured (after a reload).
    pub fn retain_keys<S: AsRef<str>>(&self, labels: &[S]) {
        write(&self.keys).retain(|label, _| labels.iter().any(|l| l.as_ref() == label));
    }

    /// Requests counted per status, ascending.
    pub fn status_counts(&self) -> Vec<(u16, u64)> {
        let mut counts: BTreeMap<u16, u64> = lock(&self.other_statuses).clone();
        for (slot, counter) in self.common_statuses.iter().enumerate() {
            let count = counter.load(Ordering::Relaxed);
            if let (Some(&status), true) = (COMMON_STATUSES.get(slot), count > 0) {
                *counts.entry(status).or_insert(0) += count;
            }
        }
        counts.into_iter().collect()
    }

    pub fn duration_snapshot(&self) -> HistogramSnapshot {
        self.duration.snapshot()
    }

    pub fn ttfb_snapshot(&self) -> HistogramSnapshot {
        self.ttfb.snapshot()
    }

    /// The numbers `cc-relay status` shows for this provider.
    pub fn snapshot(&self) -> ProviderSnapshot {
        let statuses = self.status_counts();
        let sum_where = |keep: fn(u16) -> bool| {
            statuses
                .iter()
                .filter(|(status, _)| keep(*status))
                .map(|(_, count)| *count)
                .sum()
        };
        let ttfb = self.ttfb.snapshot();
        let duration = self.duration.snapshot();
        let to_ms = |seconds: Option<f64>| seconds.map(|s| s * 1000.0);
        let (input_tokens, output_tokens) = read(&self.keys)
            .values()
            .map(|key| key.tokens())
            .fold((0u64, 0u64), |(i, o), (ki, ko)| {
                (i.saturating_add(ki), o.saturating_add(ko))
            });
        ProviderSnapshot {
            name: self.name.clone(),
            requests: sum_where(|_| true),
            client_errors: sum_where(|s| (400..500).contains(&s)),
            server_errors: sum_where(|s| s >= 500),
            stream_events: self.stream_events.load(Ordering::Relaxed),
            circuit_state: self.circuit_state(),
            upstream_connections: self.upstream_connections.load(Ordering::Relaxed),
            ttfb_p50_ms: to_ms(ttfb.quantile(0.5)),
            ttfb_p99_ms: to_ms(ttfb.quantile(0.99)),
            duration_p50_ms: to_ms(duration.quantile(0.5)),
            duration_p99_ms: to_ms(duration.quantile(0.99)),
            input_tokens,
            output_tokens,
        }
    }
}

/// One provider's numbers for `cc-relay status` (serializable so the running instance
/// can hand them to the CLI as JSON). Percentiles are histogram estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSnapshot {
    pub name: String,
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub stream_events: u64,
    pub circuit_state: CircuitGauge,
    pub upstream_connections: i64,
    pub ttfb_p50_ms: Option<f64>,
    pub ttfb_p99_ms: Option<f64>,
    pub duration_p50_ms: Option<f64>,
    pub duration_p99_ms: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// `cc_relay_key_headroom{provider,key,limit}`: what a key may still use in its current
/// window, read from the key pool when `/metrics` is scraped.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyHeadroom {
    pub provider: String,
    /// The key's label (`name`, else `…` + last four characters).
    pub key: String,
    /// `rpm`, `tpm`, `itpm` or `otpm`.
    pub limit: String,
    pub remaining: f64,
}

/// Decrements its gauge when dropped, so a panicking request still leaves the count right.
#[derive(Debug)]
#[must_use = "the gauge goes back down when this guard is dropped"]
pub struct GaugeGuard<'a> {
    gauge: &'a AtomicI64,
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The process-wide registry. It must outlive configuration reloads (counters never go
/// back to zero while the process runs), so keep it next to, not inside, the runtime
/// snapshot that reloads swap.
#[derive(Debug)]
pub struct Metrics {
    providers: RwLock<BTreeMap<String, Arc<ProviderMetrics>>>,
    inflight_requests: AtomicI64,
    open_connections: AtomicI64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    signature_recoveries: AtomicU64,
    /// -1 = not in ha mode (series absent), 0 = down, 1 = up.
    redis_up: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            providers: RwLock::new(BTreeMap::new()),
            inflight_requests: AtomicI64::new(0),
            open_connections: AtomicI64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            signature_recoveries: AtomicU64::new(0),
            redis_up: AtomicI64::new(-1),
        }
    }

    /// The handle of a provider, created on first use; the same `Arc` every time after.
    /// Takes the registry lock: call it when building the runtime, not per request.
    pub fn provider(&self, name: &str) -> Arc<ProviderMetrics> {
        if let Some(existing) = read(&self.providers).get(name) {
            return Arc::clone(existing);
        }
        let mut providers = write(&self.providers);
        Arc::clone(
            providers
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(ProviderMetrics::new(name))),
        )
    }

    /// Drops the series of providers a reload removed. Providers that stay keep their
    /// handles and counts.
    pub fn retain_providers<S: AsRef<str>>(&self, names: &[S]) {
        write(&self.providers).retain(|name, _| names.iter().any(|n| n.as_ref() == name));
    }

    /// +1 in-flight request until the guard drops.
    pub fn track_inflight(&self) -> GaugeGuard<'_> {
        self.inflight_requests.fetch_add(1, Ordering::Relaxed);
        GaugeGuard {
            gauge: &self.inflight_requests,
        }
    }

    /// +1 open client connection until the guard drops.
    pub fn track_connection(&self) -> GaugeGuard<'_> {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        GaugeGuard {
            gauge: &self.open_connections,
        }
    }

    /// For callers whose connection lifetime is not a scope (the server's threads).
    pub fn add_open_connections(&self, delta: i64) {
        self.open_connections.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn inflight_requests(&self) -> i64 {
        self.inflight_requests.load(Ordering::Relaxed)
    }

    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    pub fn record_reload(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_signature_recovery(&self) {
        self.signature_recoveries.fetch_add(1, Ordering::Relaxed);
    }

    /// `Some(up)` in ha mode; `None` removes the series (single or disabled cache).
    pub fn set_redis_up(&self, up: Option<bool>) {
        let value = match up {
            None => -1,
            Some(false) => 0,
            Some(true) => 1,
        };
        self.redis_up.store(value, Ordering::Relaxed);
    }

    /// Every provider's [`ProviderSnapshot`], by name.
    pub fn snapshot(&self) -> Vec<ProviderSnapshot> {
        self.providers_sorted()
            .iter()
            .map(|provider| provider.snapshot())
            .collect()
    }

    fn providers_sorted(&self) -> Vec<Arc<ProviderMetrics>> {
        read(&self.providers).values().cloned().collect()
    }

    /// The whole exposition (text format 0.0.4; serve it as
    /// `text/plain; version=0.0.4; charset=utf-8`). `key_headroom` is read from the key
    /// pools by the caller at scrape time.
    pub fn render(&self, key_headroom: &[KeyHeadroom]) -> String {
        let providers = self.providers_sorted();
        let mut out = String::with_capacity(4096 + providers.len() * 4096);

        family(
            &mut out,
            "cc_relay_requests_total",
            "counter",
            "Requests to /v1/* answered, by provider and final HTTP status.",
        );
        for provider in &providers {
            for (status, count) in provider.status_counts() {
                sample_u64(
                    &mut out,
                    "cc_relay_requests_total",
                    &[
                        ("provider", &provider.name),
                        ("status", &status.to_string()),
                    ],
                    count,
                );
            }
        }

        for (name, help, pick) in [
            (
                "cc_relay_request_duration_seconds",
                "Time from receiving a request to the end of its response, by provider.",
                ProviderMetrics::duration_snapshot as fn(&ProviderMetrics) -> HistogramSnapshot,
            ),
            (
                "cc_relay_ttfb_seconds",
                "Time from receiving a request to sending the first response byte, by provider.",
                ProviderMetrics::ttfb_snapshot,
            ),
        ] {
            family(&mut out, name, "histogram", help);
            for provider in &providers {
                histogram(&mut out, name, &provider.name, &pick(provider));
            }
        }

        family(
            &mut out,
            "cc_relay_stream_events_total",
            "counter",
            "Server-sent events relayed to clients, by provider.",
        );
        for provider in &providers {
            sample_u64(
                &mut out,
                "cc_relay_stream_events_total",
                &[("provider", &provider.name)],
                provider.stream_events.load(Ordering::Relaxed),
            );
        }

        family(
            &mut out,
            "cc_relay_tokens_total",
            "counter",
            "Tokens used, by provider, key label and direction (input or output).",
        );
        for provider in &providers {
            let keys: Vec<Arc<KeyMetrics>> = read(&provider.keys).values().cloned().collect();
            for key in keys {
                let (input, output) = key.tokens();
                for (direction, count) in [("input", input), ("output", output)] {
                    sample_u64(
                        &mut out,
                        "cc_relay_tokens_total",
                        &[
                            ("provider", &provider.name),
                            ("key", &key.label),
                            ("direction", direction),
                        ],
                        count,
                    );
                }
            }
        }

        family(
            &mut out,
            "cc_relay_key_headroom",
            "gauge",
            "What a key may still use in its current rate-limit window, by limit (rpm, tpm, itpm, otpm).",
        );
        for headroom in key_headroom {
            sample_f64(
                &mut out,
                "cc_relay_key_headroom",
                &[
                    ("provider", &headroom.provider),
                    ("key", &headroom.key),
                    ("limit", &headroom.limit),
                ],
                headroom.remaining,
            );
        }

        family(
            &mut out,
            "cc_relay_circuit_state",
            "gauge",
            "Circuit breaker state by provider: 0 closed, 1 half-open, 2 open.",
        );
        for provider in &providers {
            sample_i64(
                &mut out,
                "cc_relay_circuit_state",
                &[("provider", &provider.name)],
                i64::from(provider.circuit_state.load(Ordering::Relaxed)),
            );
        }

        family(
            &mut out,
            "cc_relay_inflight_requests",
            "gauge",
            "Requests being handled now.",
        );
        sample_i64(
            &mut out,
            "cc_relay_inflight_requests",
            &[],
            self.inflight_requests(),
        );
        family(
            &mut out,
            "cc_relay_open_connections",
            "gauge",
            "Open client connections.",
        );
        sample_i64(
            &mut out,
            "cc_relay_open_connections",
            &[],
            self.open_connections(),
        );

        family(
            &mut out,
            "cc_relay_upstream_connections",
            "gauge",
            "Open connections to upstreams (idle in the pool or busy), by provider.",
        );
        for provider in &providers {
            sample_i64(
                &mut out,
                "cc_relay_upstream_connections",
                &[("provider", &provider.name)],
                provider.upstream_connections.load(Ordering::Relaxed),
            );
        }

        family(
            &mut out,
            "cc_relay_reloads_total",
            "counter",
            "Configuration reloads, by result (ok or failed).",
        );
        for (result, counter) in [("ok", &self.reloads_ok), ("failed", &self.reloads_failed)] {
            sample_u64(
                &mut out,
                "cc_relay_reloads_total",
                &[("result", result)],
                counter.load(Ordering::Relaxed),
            );
        }

        family(
            &mut out,
            "cc_relay_signature_recoveries_total",
            "counter",
            "Requests whose thinking signatures had to be repaired for another provider.",
        );
        sample_u64(
            &mut out,
            "cc_relay_signature_recoveries_total",
            &[],
            self.signature_recoveries.load(Ordering::Relaxed),
        );

        let redis_up = self.redis_up.load(Ordering::Relaxed);
        if redis_up >= 0 {
            family(
                &mut out,
                "cc_relay_redis_up",
                "gauge",
                "Whether the shared-state Redis answered its last command (ha mode).",
            );
            sample_i64(&mut out, "cc_relay_redis_up", &[], redis_up);
        }
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a counter map leaves plain numbers behind: still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(help, out);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

fn histogram(out: &mut String, name: &str, provider: &str, snapshot: &HistogramSnapshot) {
    let bucket_name = format!("{name}_bucket");
    let cumulative = snapshot.cumulative();
    for (index, count) in cumulative.iter().enumerate() {
        let le = match LATENCY_BUCKETS_SECONDS.get(index) {
            Some(bound) => format_f64(*bound),
            None => "+Inf".to_string(),
        };
        sample_u64(
            out,
            &bucket_name,
            &[("provider", provider), ("le", &le)],
            *count,
        );
    }
    sample_f64(
        out,
        &format!("{name}_sum"),
        &[("provider", provider)],
        snapshot.sum_seconds,
    );
    sample_u64(
        out,
        &format!("{name}_count"),
        &[("provider", provider)],
        cumulative.last().copied().unwrap_or(0),
    );
}

fn sample_start(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(value, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

fn sample_u64(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    sample_start(out, name, labels);
    let _ = writeln!(out, "{value}");
}

fn sample_i64(out: &mut String, name: &str, labels: &[(&str, &str)], value: i64) {
    sample_start(out, name, labels);
    let _ = writeln!(out, "{value}");
}

fn sample_f64(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    sample_start(out, name, labels);
    out.push_str(&format_f64(value));
    out.push('\n');
}

/// A float as the exposition format spells it: `+Inf`, `-Inf`, `NaN`, else Rust's
/// shortest round-trip decimal (never an exponent, `1` rather than `1.0`).
pub fn format_f64(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{value}")
    }
}

/// Label values escape `\`, `"` and line feed (exposition format 0.0.4).
pub fn escape_label_value(value: &str, out: &mut String) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
}

/// HELP text escapes `\` and line feed only.
fn escape_help(help: &str, out: &mut String) {
    for ch in help.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_not_below_them() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_millis(5)); // le=0.005 exactly
        histogram.observe(Duration::from_nanos(5_000_001)); // le=0.01
        histogram.observe(Duration::from_secs(601)); // +Inf
        histogram.observe(Duration::ZERO);
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets[0], 2);
        assert_eq!(snapshot.buckets[1], 1);
        assert_eq!(snapshot.buckets[16], 1);
        assert_eq!(snapshot.count(), 4);
        assert_eq!(snapshot.cumulative()[15], 3);
        assert!((snapshot.sum_seconds - 601.010000001).abs() < 1e-9);
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let histogram = Histogram::default();
        assert_eq!(histogram.snapshot().quantile(0.5), None);
        for _ in 0..100 {
            histogram.observe(Duration::from_millis(70)); // bucket (0.05, 0.1]
        }
        let snapshot = histogram.snapshot();
        let p50 = snapshot.quantile(0.5).unwrap_or(f64::NAN);
        assert!((p50 - 0.075).abs() < 1e-12, "{p50}");
        let p99 = snapshot.quantile(0.99).unwrap_or(f64::NAN);
        assert!((p99 - 0.0995).abs() < 1e-12, "{p99}");
        histogram.observe(Duration::from_secs(10_000));
        assert_eq!(histogram.snapshot().quantile(1.0), Some(600.0));
    }

    #[test]
    fn quantile_matches_prometheus_example() {
        // Two buckets le=1 (10 obs) and le=2 (10 more): the median sits at the border,
        // the 75th percentile halfway through the second bucket.
        let bounds = [1.0, 2.0];
        let cumulative = [10, 20, 20];
        assert_eq!(
            quantile_from_cumulative(&bounds, &cumulative, 0.5),
            Some(1.0)
        );
        assert_eq!(
            quantile_from_cumulative(&bounds, &cumulative, 0.75),
            Some(1.5)
        );
        assert_eq!(
            quantile_from_cumulative(&bounds, &cumulative, 0.0),
            Some(0.0)
        );
        assert_eq!(quantile_from_cumulative(&bounds, &[0, 0, 0], 0.5), None);
        assert_eq!(quantile_from_cumulative(&bounds, &[], 0.5), None);
    }

    #[test]
    fn statuses_outside_the_table_are_still_counted() {
        let metrics = Metrics::new();
        let provider = metrics.provider("p");
        provider.count_request(200);
        provider.count_request(200);
        provider.count_request(418);
        provider.count_request(503);
        provider.count_request(0);
        assert_eq!(
            provider.status_counts(),
            vec![(0, 1), (200, 2), (418, 1), (503, 1)]
        );
        let snapshot = provider.snapshot();
        assert_eq!(
            (
                snapshot.requests,
                snapshot.client_errors,
                snapshot.server_errors
            ),
            (5, 1, 1)
        );
        assert_eq!(provider.requests_last_minute(), 5);
        assert_eq!(metrics.provider("other").requests_last_minute(), 0);
    }

    #[test]
    fn every_common_status_has_its_own_slot() {
        for (slot, status) in COMMON_STATUSES.iter().enumerate() {
            assert_eq!(common_status_slot(*status), Some(slot), "{status}");
        }
    }

    #[test]
    fn handles_are_shared_and_retained() {
        let metrics = Metrics::new();
        let first = metrics.provider("a");
        assert!(Arc::ptr_eq(&first, &metrics.provider("a")));
        metrics.provider("b");
        metrics.retain_providers(&["a"]);
        assert_eq!(
            metrics
                .snapshot()
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        let key = first.key("…ab12");
        key.add_tokens(3, 4);
        first.add_tokens("…ab12", 1, 0);
        assert_eq!(key.tokens(), (4, 4));
        first.retain_keys::<&str>(&[]);
        assert_eq!(first.snapshot().input_tokens, 0);
    }

    #[test]
    fn guards_put_gauges_back() {
        let metrics = Metrics::new();
        {
            let _request = metrics.track_inflight();
            let _connection = metrics.track_connection();
            let _second = metrics.track_inflight();
            assert_eq!(metrics.inflight_requests(), 2);
            assert_eq!(metrics.open_connections(), 1);
        }
        assert_eq!(metrics.inflight_requests(), 0);
        assert_eq!(metrics.open_connections(), 0);
    }

    #[test]
    fn label_values_and_floats_are_escaped() {
        let mut out = String::new();
        escape_label_value("a\\b\"c\nd…", &mut out);
        assert_eq!(out, "a\\\\b\\\"c\\nd…");
        assert_eq!(format_f64(0.005), "0.005");
        assert_eq!(format_f64(1.0), "1");
        assert_eq!(format_f64(f64::INFINITY), "+Inf");
        assert_eq!(format_f64(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_f64(f64::NAN), "NaN");
    }
}
