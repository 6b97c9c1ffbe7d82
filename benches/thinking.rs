//! What extended-thinking support adds to a request (SPEC §4.4): the signature tap's cost
//! per streamed event (text deltas, which it must skip almost for free, and signature
//! deltas, which it hashes), and the history work on a 200-turn, ~1 MB Claude Code-shaped
//! conversation (analysis, the rewrite for another family, the no-op rewrite, the
//! recovery strip), next to a plain serde_json parse of the same body for scale.
//!
//! `cargo bench --bench thinking`; `-- --quick` or `CC_RELAY_BENCH_QUICK=1` runs one tiny
//! iteration of everything (a smoke test for CI).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cc_relay::relay::thinking::{
    analyze, rewrite_for_target, signature_key, strip_all_thinking, SignatureHash, SignatureTap,
};
use serde_json::{json, Value};

fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
        || std::env::var("CC_RELAY_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Runs `f` `iterations` times (after one warm-up) and returns the mean time per call.
fn time_per_call(iterations: u32, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations.max(1)
}

fn report(name: &str, per_call: Duration, unit: &str) {
    let ns = per_call.as_nanos();
    if ns < 10_000 {
        println!("{name:<52} {ns:>9} ns/{unit}");
    } else {
        println!("{name:<52} {:>9.3} ms/{unit}", ns as f64 / 1e6);
    }
}

fn fake_signature(n: usize) -> String {
    // Real signatures are ~300-600 base64 characters.
    let mut s = format!("EqQBCkYIBxgCKkB{n:08}");
    while s.len() < 480 {
        s.push_str("Zm9vYmFyYmF6cXV4");
    }
    s
}

fn bench_tap(iterations: u32) {
    let text_delta = r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me read the configuration file and check the"}}"#;
    let thinking_delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the bug fixed; first I should look at"}}"#;
    let signature = format!(
        r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"signature_delta","signature":"{}"}}}}"#,
        fake_signature(1)
    );
    let stop = r#"{"type":"content_block_stop","index":0}"#;

    let mut tap = SignatureTap::new();
    let per = time_per_call(iterations, || {
        tap.observe(black_box("content_block_delta"), black_box(text_delta));
    });
    report("tap: text_delta event", per, "event");
    assert!(tap.take().is_empty());

    let per = time_per_call(iterations, || {
        tap.observe(black_box("content_block_delta"), black_box(thinking_delta));
    });
    report("tap: thinking_delta event", per, "event");

    let per = time_per_call(iterations, || {
        tap.observe("content_block_delta", black_box(&signature));
        tap.observe("content_block_stop", black_box(stop));
        black_box(tap.take());
    });
    report(
        "tap: signature_delta + content_block_stop (hash)",
        per,
        "signature",
    );

    let ping = r#"{"type": "ping"}"#;
    let per = time_per_call(iterations, || {
        tap.observe(black_box("ping"), black_box(ping));
    });
    report("tap: other event (ping)", per, "event");
}

/// A Claude Code-like session: every assistant turn thinks (signed), talks, and calls a
/// tool; every user turn answers with a sizeable tool result. Every third assistant turn
/// was served by another family.
fn conversation(turns: usize, result_bytes: usize) -> (Vec<u8>, Vec<SignatureHash>) {
    let mut messages =
        vec![json!({"role": "user", "content": "Fix the failing test in src/lib.rs."})];
    let mut foreign = Vec::new();
    let filler: String = "let value = compute(input)?; // tool output line\n"
        .chars()
        .cycle()
        .take(result_bytes)
        .collect();
    for n in 0..turns / 2 {
        let signature = fake_signature(n);
        if n % 3 == 2 {
            foreign.push(signature_key(&signature));
        }
        let id = format!("toolu_{n:04}");
        messages.push(json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should read the next file to see how the value flows.", "signature": signature},
            {"type": "text", "text": "Reading the next file."},
            {"type": "tool_use", "id": id, "name": "Read", "input": {"file_path": format!("/src/file_{n}.rs")}},
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": filler},
        ]}));
    }
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 16000},
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": messages,
    });
    (serde_json::to_vec(&body).unwrap_or_default(), foreign)
}

fn bench_history(iterations: u32, turns: usize, result_bytes: usize) {
    let (body, foreign) = conversation(turns, result_bytes);
    println!(
        "conversation: {} messages, {} bytes, {} foreign thinking blocks",
        turns + 1,
        body.len(),
        foreign.len()
    );
    let per = time_per_call(iterations, || {
        black_box(serde_json::from_slice::<Value>(black_box(&body)).is_ok());
    });
    report("(scale) serde_json::from_slice::<Value>", per, "request");
    let per = time_per_call(iterations, || {
        black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).is_ok());
    });
    report(
        "(scale) serde_json::from_slice::<IgnoredAny>",
        per,
        "request",
    );
    let per = time_per_call(iterations, || {
        black_box(cc_relay::codec::json::top_level_value_span(
            black_box(&body),
            "messages",
        ));
    });
    report("(scale) codec::json::top_level_value_span", per, "request");
    let per = time_per_call(iterations, || {
        black_box(analyze(black_box(&body)));
    });
    report("analyze", per, "request");
    let per = time_per_call(iterations, || {
        black_box(rewrite_for_target(black_box(&body), |_| true));
    });
    report(
        "rewrite_for_target, nothing foreign (no-op)",
        per,
        "request",
    );
    let mut last = None;
    let per = time_per_call(iterations, || {
        last = Some(rewrite_for_target(black_box(&body), |h| {
            !foreign.contains(h)
        }));
    });
    report("rewrite_for_target, 1/3 of blocks foreign", per, "request");
    if let Some(r) = last {
        println!(
            "  -> removed {}, thinking disabled {}, {} bytes out",
            r.removed,
            r.thinking_disabled,
            r.body.map_or(0, |b| b.len())
        );
    }
    let per = time_per_call(iterations, || {
        black_box(strip_all_thinking(black_box(&body)));
    });
    report("strip_all_thinking", per, "request");
}

fn main() {
    if quick() {
        bench_tap(1);
        bench_history(1, 4, 100);
        return;
    }
    bench_tap(2_000_000);
    bench_history(30, 200, 9600);
}
