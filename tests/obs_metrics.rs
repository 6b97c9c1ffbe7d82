//! `/metrics` as Prometheus sees it (SPEC §6): exact exposition lines, structure rules
//! of text format 0.0.4, counts under concurrency, and — when python3 has
//! `prometheus_client` — a parse by a real Prometheus parser whose numbers must match.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cc_relay::config::{KeyConfig, ProviderConfig, ProviderType};
use cc_relay::obs::metrics::{CircuitGauge, KeyHeadroom, Metrics};

const ODD_PROVIDER: &str = "odd \"quoted\" back\\slash\nnewline";

/// A registry after a known series of events.
fn populated() -> Metrics {
    let metrics = Metrics::new();
    let anthropic = metrics.provider("anthropic");
    for _ in 0..3 {
        anthropic.count_request(200);
    }
    anthropic.count_request(429);
    anthropic.count_request(418);
    anthropic.observe_duration(Duration::from_millis(30)); // le=0.05
    anthropic.observe_duration(Duration::from_millis(800)); // le=1
    anthropic.observe_duration(Duration::from_secs(700)); // +Inf
    anthropic.observe_ttfb(Duration::from_millis(5)); // le=0.005 (inclusive)
    anthropic.observe_ttfb(Duration::from_millis(120)); // le=0.25
    anthropic.add_stream_events(42);
    anthropic.key("…ab12").add_tokens(100, 50);
    anthropic.key("team \"a\"").add_tokens(7, 0);
    anthropic.set_circuit_state(CircuitGauge::Open);
    anthropic.set_upstream_connections(3);

    let odd = metrics.provider(ODD_PROVIDER);
    odd.count_request(502);
    odd.set_circuit_state(CircuitGauge::HalfOpen);

    metrics.record_reload(true);
    metrics.record_reload(true);
    metrics.record_reload(false);
    metrics.add_signature_recovery();
    metrics.set_redis_up(Some(true));
    metrics
}

fn headroom() -> Vec<KeyHeadroom> {
    vec![
        KeyHeadroom {
            provider: "anthropic".to_string(),
            key: "…ab12".to_string(),
            limit: "rpm".to_string(),
            remaining: 57.0,
        },
        KeyHeadroom {
            provider: "anthropic".to_string(),
            key: "…ab12".to_string(),
            limit: "tpm".to_string(),
            remaining: 12_500.5,
        },
    ]
}

#[test]
fn exposition_has_the_exact_lines() {
    let metrics = populated();
    let _inflight = metrics.track_inflight();
    let _connection = metrics.track_connection();
    let text = metrics.render(&headroom());
    let lines: BTreeSet<&str> = text.lines().collect();
    for expected in [
        "# HELP cc_relay_requests_total Requests to /v1/* answered, by provider and final HTTP status.",
        "# TYPE cc_relay_requests_total counter",
        r#"cc_relay_requests_total{provider="anthropic",status="200"} 3"#,
        r#"cc_relay_requests_total{provider="anthropic",status="418"} 1"#,
        r#"cc_relay_requests_total{provider="anthropic",status="429"} 1"#,
        r#"cc_relay_requests_total{provider="odd \"quoted\" back\\slash\nnewline",status="502"} 1"#,
        "# TYPE cc_relay_request_duration_seconds histogram",
        r#"cc_relay_request_duration_seconds_bucket{provider="anthropic",le="0.025"} 0"#,
        r#"cc_relay_request_duration_seconds_bucket{provider="anthropic",le="0.05"} 1"#,
        r#"cc_relay_request_duration_seconds_bucket{provider="anthropic",le="1"} 2"#,
        r#"cc_relay_request_duration_seconds_bucket{provider="anthropic",le="600"} 2"#,
        r#"cc_relay_request_duration_seconds_bucket{provider="anthropic",le="+Inf"} 3"#,
        r#"cc_relay_request_duration_seconds_sum{provider="anthropic"} 700.83"#,
        r#"cc_relay_request_duration_seconds_count{provider="anthropic"} 3"#,
        r#"cc_relay_ttfb_seconds_bucket{provider="anthropic",le="0.005"} 1"#,
        r#"cc_relay_ttfb_seconds_bucket{provider="anthropic",le="0.1"} 1"#,
        r#"cc_relay_ttfb_seconds_bucket{provider="anthropic",le="0.25"} 2"#,
        r#"cc_relay_ttfb_seconds_sum{provider="anthropic"} 0.125"#,
        r#"cc_relay_ttfb_seconds_count{provider="anthropic"} 2"#,
        r#"cc_relay_ttfb_seconds_count{provider="odd \"quoted\" back\\slash\nnewline"} 0"#,
        r#"cc_relay_stream_events_total{provider="anthropic"} 42"#,
        r#"cc_relay_tokens_total{provider="anthropic",key="…ab12",direction="input"} 100"#,
        r#"cc_relay_tokens_total{provider="anthropic",key="…ab12",direction="output"} 50"#,
        r#"cc_relay_tokens_total{provider="anthropic",key="team \"a\"",direction="input"} 7"#,
        r#"cc_relay_key_headroom{provider="anthropic",key="…ab12",limit="rpm"} 57"#,
        r#"cc_relay_key_headroom{provider="anthropic",key="…ab12",limit="tpm"} 12500.5"#,
        r#"cc_relay_circuit_state{provider="anthropic"} 2"#,
        r#"cc_relay_circuit_state{provider="odd \"quoted\" back\\slash\nnewline"} 1"#,
        "cc_relay_inflight_requests 1",
        "cc_relay_open_connections 1",
        r#"cc_relay_upstream_connections{provider="anthropic"} 3"#,
        r#"cc_relay_reloads_total{result="ok"} 2"#,
        r#"cc_relay_reloads_total{result="failed"} 1"#,
        "cc_relay_signature_recoveries_total 1",
        "# TYPE cc_relay_redis_up gauge",
        "cc_relay_redis_up 1",
    ] {
        assert!(lines.contains(expected), "missing line {expected:?} in\n{text}");
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn exposition_follows_the_format_rules() {
    let text = populated().render(&headroom());
    let mut declared: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut series: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default().to_string();
            assert!(helped.insert(name.clone()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap_or_default().to_string();
            let kind = parts.next().unwrap_or_default().to_string();
            assert!(helped.contains(&name), "TYPE before HELP for {name}");
            assert!(["counter", "gauge", "histogram"].contains(&kind.as_str()));
            assert!(declared.insert(name, kind).is_none());
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line:?}");
        let (series_id, value) = line.rsplit_once(' ').expect("name value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value in {line:?}"
        );
        assert!(
            series.insert(series_id.to_string()),
            "duplicate series {series_id}"
        );
        let name = series_id.split('{').next().unwrap_or_default();
        let family = declared
            .keys()
            .filter(|family| {
                name == family.as_str()
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name == format!("{family}{suffix}"))
            })
            .max_by_key(|family| family.len())
            .unwrap_or_else(|| panic!("sample {name} before its TYPE"));
        if declared[family] == "counter" {
            assert!(name.ends_with("_total"), "{name}");
        }
        assert!(!series_id.contains('\n'));
    }
    assert_eq!(declared.len(), 13, "{declared:?}");
}

#[test]
fn redis_series_only_in_ha_mode() {
    let metrics = Metrics::new();
    assert!(!metrics.render(&[]).contains("cc_relay_redis_up"));
    metrics.set_redis_up(Some(false));
    assert!(metrics.render(&[]).contains("\ncc_relay_redis_up 0\n"));
    metrics.set_redis_up(None);
    assert!(!metrics.render(&[]).contains("cc_relay_redis_up"));
}

#[test]
fn counts_survive_concurrent_updates() {
    let metrics = Arc::new(Metrics::new());
    let handle = metrics.provider("p");
    let key = handle.key("k");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let handle = Arc::clone(&handle);
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                for n in 0..10_000u64 {
                    handle.count_request(if n % 10 == 0 { 503 } else { 200 });
                    handle.observe_ttfb(Duration::from_micros(n));
                    handle.add_stream_events(1);
                    key.add_tokens(2, 1);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("worker");
    }
    let text = metrics.render(&[]);
    for expected in [
        r#"cc_relay_requests_total{provider="p",status="200"} 36000"#,
        r#"cc_relay_requests_total{provider="p",status="503"} 4000"#,
        r#"cc_relay_ttfb_seconds_count{provider="p"} 40000"#,
        r#"cc_relay_ttfb_seconds_bucket{provider="p",le="0.005"} 20004"#,
        r#"cc_relay_stream_events_total{provider="p"} 40000"#,
        r#"cc_relay_tokens_total{provider="p",key="k",direction="input"} 80000"#,
    ] {
        assert!(text.lines().any(|l| l == expected), "missing {expected:?}");
    }
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.requests, 40_000);
    assert_eq!(snapshot.server_errors, 4_000);
    // Uniform 0..10ms: the median is estimated inside (5ms, 10ms].
    let p50 = snapshot.ttfb_p50_ms.unwrap_or_default();
    assert!((4.9..=5.1).contains(&p50), "p50 {p50}");
    let p99 = snapshot.ttfb_p99_ms.unwrap_or_default();
    assert!((9.8..=10.0).contains(&p99), "p99 {p99}");
}

#[test]
fn keys_appear_only_as_labels() {
    let mut provider = ProviderConfig::new("anthropic", ProviderType::Anthropic);
    provider
        .keys
        .push(KeyConfig::new("sk-ant-api03-VERYSECRETKEYMATERIAL-wxyz"));
    let mut named = KeyConfig::new("another-secret-key-material");
    named.name = Some("backup".to_string());
    provider.keys.push(named);
    let metrics = Metrics::new();
    let handle = metrics.provider(&provider.name);
    for key in &provider.keys {
        handle.key(&key.label()).add_tokens(1, 1);
    }
    let text = metrics.render(&[]);
    assert!(text.contains(r#"key="…wxyz""#));
    assert!(text.contains(r#"key="backup""#));
    for key in &provider.keys {
        assert!(!text.contains(&key.key));
    }
}

type Labels = BTreeMap<String, String>;

/// One sample as `prometheus_client` understood it.
#[derive(Debug, serde::Deserialize)]
struct ParsedSample {
    family: String,
    family_type: String,
    name: String,
    labels: Labels,
    value: serde_json::Value,
}

/// The exposition parsed by `prometheus_client.parser`; None when python3 or the
/// module is missing.
fn parse_with_prometheus_client(text: &str) -> Option<Vec<ParsedSample>> {
    const SCRIPT: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        value = s.value if not math.isinf(s.value) else str(s.value)
        out.append({"family": family.name, "family_type": family.type, "name": s.name,
                    "labels": s.labels, "value": value})
print(json.dumps(out))
"#;
    let available = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !available {
        println!("NOTICE: python3 prometheus_client not available; real-parser check skipped");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed exposition");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(
        output.status.success(),
        "prometheus_client rejected the exposition:\n{text}"
    );
    Some(serde_json::from_slice(&output.stdout).expect("parser output JSON"))
}

#[test]
fn a_real_prometheus_parser_reads_the_same_numbers() {
    let metrics = populated();
    let _inflight = metrics.track_inflight();
    let text = metrics.render(&headroom());
    let Some(samples) = parse_with_prometheus_client(&text) else {
        return;
    };
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let wanted: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<f64> = samples
            .iter()
            .filter(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value.as_f64().unwrap_or(f64::NAN))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?} in {samples:?}");
        found[0]
    };
    assert_eq!(
        value(
            "cc_relay_requests_total",
            &[("provider", "anthropic"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "cc_relay_requests_total",
            &[("provider", ODD_PROVIDER), ("status", "502")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "cc_relay_request_duration_seconds_bucket",
            &[("provider", "anthropic"), ("le", "1")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "cc_relay_request_duration_seconds_bucket",
            &[("provider", "anthropic"), ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "cc_relay_request_duration_seconds_count",
            &[("provider", "anthropic")]
        ),
        3.0
    );
    assert!(
        (value("cc_relay_ttfb_seconds_sum", &[("provider", "anthropic")]) - 0.125).abs() < 1e-12
    );
    assert_eq!(
        value("cc_relay_stream_events_total", &[("provider", "anthropic")]),
        42.0
    );
    assert_eq!(
        value(
            "cc_relay_tokens_total",
            &[
                ("provider", "anthropic"),
                ("key", "team \"a\""),
                ("direction", "input")
            ]
        ),
        7.0
    );
    assert_eq!(
        value(
            "cc_relay_key_headroom",
            &[
                ("provider", "anthropic"),
                ("key", "…ab12"),
                ("limit", "tpm")
            ]
        ),
        12_500.5
    );
    assert_eq!(
        value("cc_relay_circuit_state", &[("provider", ODD_PROVIDER)]),
        1.0
    );
    assert_eq!(value("cc_relay_inflight_requests", &[]), 1.0);
    assert_eq!(
        value("cc_relay_reloads_total", &[("result", "failed")]),
        1.0
    );
    assert_eq!(value("cc_relay_signature_recoveries_total", &[]), 1.0);
    assert_eq!(value("cc_relay_redis_up", &[]), 1.0);
    let family_types: BTreeMap<&str, &str> = samples
        .iter()
        .map(|s| (s.family.as_str(), s.family_type.as_str()))
        .collect();
    for (family, kind) in [
        ("cc_relay_requests", "counter"),
        ("cc_relay_request_duration_seconds", "histogram"),
        ("cc_relay_ttfb_seconds", "histogram"),
        ("cc_relay_tokens", "counter"),
        ("cc_relay_key_headroom", "gauge"),
        ("cc_relay_circuit_state", "gauge"),
        ("cc_relay_reloads", "counter"),
        ("cc_relay_redis_up", "gauge"),
    ] {
        assert_eq!(family_types.get(family), Some(&kind), "{family}");
    }
    // Every sample the parser saw is one we wrote: nothing was silently merged.
    let written = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples.len(), written);
}
