//! Cost of observability on the request path: nanoseconds per counter increment and
//! histogram observation (one thread, and two threads hammering the same provider),
//! the whole per-request metrics bundle, redaction of a 200-byte log line with 10
//! secrets configured, formatting a request line, and rendering `/metrics`.
//!
//! `cargo bench --bench metrics` for real numbers; `--quick` or
//! `CC_RELAY_BENCH_QUICK=1` runs a tiny iteration count (a smoke test, numbers noisy).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cc_relay::config::LogFormat;
use cc_relay::obs::log::{format_request_line, LineStyle, RequestLogRecord};
use cc_relay::obs::metrics::{KeyHeadroom, Metrics, ProviderMetrics};
use cc_relay::obs::redact::Redactor;

fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
        || std::env::var("CC_RELAY_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Runs `op` `iterations` times on each of `threads` threads at once and returns ns per
/// op. The work is split into 20 batches and the fastest batch counts: the machine is
/// shared, and a batch that lost its core to another process says nothing about `op`.
fn per_op_ns<F>(threads: usize, iterations: u64, op: F) -> f64
where
    F: Fn(u64) + Send + Sync + 'static,
{
    const BATCHES: u64 = 20;
    let per_batch = (iterations / BATCHES).max(1);
    let op = Arc::new(op);
    let start_line = Arc::new(std::sync::Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let op = Arc::clone(&op);
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                let mut fastest = Duration::MAX;
                for batch in 0..BATCHES {
                    let started = Instant::now();
                    for i in 0..per_batch {
                        op(black_box(batch * per_batch + i));
                    }
                    fastest = fastest.min(started.elapsed());
                }
                fastest
            })
        })
        .collect();
    let fastest: Vec<Duration> = workers
        .into_iter()
        .map(|w| w.join().unwrap_or_default())
        .collect();
    let total: Duration = fastest.iter().sum();
    total.as_nanos() as f64 / (threads as u64 * per_batch) as f64
}

fn report(name: &str, ns: f64) {
    println!("{name:<58} {ns:>10.1} ns/op");
}

fn provider_handle() -> Arc<ProviderMetrics> {
    Metrics::new().provider("anthropic")
}

fn main() {
    let quick = quick();
    let atomic_iterations: u64 = if quick { 10_000 } else { 20_000_000 };
    let line_iterations: u64 = if quick { 1_000 } else { 1_000_000 };
    let render_iterations: u64 = if quick { 10 } else { 2_000 };
    println!(
        "cc-relay obs bench ({} mode)",
        if quick { "quick" } else { "full" }
    );

    for threads in [1, 2] {
        let handle = provider_handle();
        report(
            &format!("count_request(200), {threads} thread(s)"),
            per_op_ns(threads, atomic_iterations, move |_| {
                handle.count_request(200)
            }),
        );
        let handle = provider_handle();
        report(
            &format!("count_request(418) (mutex fallback), {threads} thread(s)"),
            per_op_ns(threads, atomic_iterations / 10, move |_| {
                handle.count_request(418)
            }),
        );
        let handle = provider_handle();
        report(
            &format!("add_stream_events(1), {threads} thread(s)"),
            per_op_ns(threads, atomic_iterations, move |_| {
                handle.add_stream_events(1)
            }),
        );
        let handle = provider_handle();
        report(
            &format!("observe_ttfb (histogram), {threads} thread(s)"),
            per_op_ns(threads, atomic_iterations, move |i| {
                handle.observe_ttfb(Duration::from_micros(i % 2_000_000))
            }),
        );
        let handle = provider_handle();
        let key = handle.key("…ab12");
        report(
            &format!("whole request bundle (status+2 hist+tokens), {threads} thread(s)"),
            per_op_ns(threads, atomic_iterations / 4, move |i| {
                let _inflight = black_box(i);
                handle.count_request(200);
                handle.observe_ttfb(Duration::from_millis(i % 3000));
                handle.observe_duration(Duration::from_millis(i % 30_000));
                key.add_tokens(1200, 345);
            }),
        );
    }

    let secrets: Vec<String> = (0..10)
        .map(|i| format!("sk-ant-api03-{i:02}-Zm9vYmFyYmF6cXV4cXV1eHh5ei1rZXktbWF0ZXJpYWw"))
        .collect();
    let redactor = Arc::new(Redactor::new(&secrets));
    // Three realistic 200-byte lines: nothing to mask, one configured key, a JSON body.
    let to_200 = |text: String| -> String {
        let mut line = text;
        while line.len() < 200 {
            line.push_str(" retry later");
        }
        line.truncate(200);
        line
    };
    let clean = to_200(
        "2024-05-01T12:00:00.000Z INFO  upstream anthropic answered 429 after 812 ms; \
         retrying on zai with model glm-4.6 (attempt 2 of 3), request_id=req_01HZX9 \
         path=/v1/messages stream=true"
            .to_string(),
    );
    let with_secret = to_200(format!(
        "upstream rejected x-api-key {} for model claude-sonnet-4-5; status 401, attempt 1 of 3",
        secrets[7]
    ));
    let json_line = to_200(
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CQ8Z","usage":{"input_tokens":12,"output_tokens":0},"model":"claude-sonnet-4-5"}"#
            .to_string(),
    );
    for (name, line) in [
        ("clean text", clean),
        ("text with a configured secret", with_secret),
        ("JSON error body", json_line),
    ] {
        let redactor = Arc::clone(&redactor);
        let bytes = line.len();
        report(
            &format!("redact {bytes}-byte line, 10 secrets: {name}"),
            per_op_ns(1, line_iterations, move |_| {
                black_box(redactor.redact(black_box(&line)));
            }),
        );
    }

    let record_redactor = Arc::clone(&redactor);
    report(
        "format_request_line (text, redacting every field)",
        per_op_ns(1, line_iterations, move |_| {
            let record = RequestLogRecord {
                time: SystemTime::now(),
                request_id: "req_01HZX9ABCDEF",
                method: "POST",
                path: "/v1/messages",
                model: Some("claude-sonnet-4-5"),
                upstream_model: Some("glm-4.6"),
                provider: Some("zai"),
                key: Some("…ab12"),
                status: 200,
                attempts: 1,
                ttfb_ms: Some(412),
                duration_ms: 9120,
                input_tokens: Some(1200),
                output_tokens: Some(345),
            };
            let style = LineStyle {
                format: LogFormat::Text,
                colour: false,
            };
            black_box(format_request_line(&record, style, &record_redactor));
        }),
    );

    let metrics = Arc::new(Metrics::new());
    let mut headroom = Vec::new();
    for p in 0..10 {
        let name = format!("provider-{p}");
        let handle = metrics.provider(&name);
        for status in [200, 429, 500] {
            handle.count_request(status);
        }
        handle.observe_ttfb(Duration::from_millis(300));
        for k in 0..5 {
            let label = format!("key-{k}");
            handle.key(&label).add_tokens(10, 10);
            headroom.push(KeyHeadroom {
                provider: name.clone(),
                key: label,
                limit: "rpm".to_string(),
                remaining: 50.0,
            });
        }
    }
    let size = metrics.render(&headroom).len();
    report(
        &format!("render /metrics: 10 providers x 5 keys ({size} bytes)"),
        per_op_ns(1, render_iterations, move |_| {
            black_box(metrics.render(&headroom));
        }),
    );
}
