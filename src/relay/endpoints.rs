//! The small endpoints the relay answers itself: `/v1/models`, `/v1/providers`,
//! `/health`, `/api/hello`, `/metrics`, and the local token estimate for
//! `count_tokens` on providers that have no such endpoint.

use crate::net::server::{Request, ResponseWriter};
use std::time::{Duration, Instant, SystemTime};

use crate::auth::client::ClientCredential;
use crate::provider::Operation;

use crate::obs::metrics::{CircuitGauge, KeyHeadroom, Metrics};
use crate::obs::rolling;
use crate::obs::time::rfc3339_millis;
use crate::relay::Runtime;
use crate::route::CircuitState;

fn json_headers(req: &Request) -> Vec<(String, Vec<u8>)> {
    vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("request-id".to_string(), req.id.as_bytes().to_vec()),
    ]
}

fn send_json(req: &Request, resp: &mut ResponseWriter<'_>, status: u16, value: &serde_json::Value) {
    let _ = resp.send(status, &json_headers(req), value.to_string().as_bytes());
}

/// Union of every enabled provider's `models` and exact mapping sources, in config order.
pub fn model_ids(rt: &Runtime) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for p in rt.providers.iter().filter(|p| p.config.enabled) {
        let sources = p
            .config
            .model_mapping
            .iter()
            .map(|(from, _)| from)
            .filter(|from| !from.ends_with('*'));
        for id in p.config.models.iter().chain(sources) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    ids
}

/// How long an upstream's own model list is reused.
const UPSTREAM_MODELS_TTL: Duration = Duration::from_secs(300);

/// An anthropic-type provider without `models` of its own lists what its upstream lists
/// (`GET {base}/v1/models` with a pool key, or the client's forwarded credential),
/// cached for a few minutes. Failures just contribute nothing.
fn upstream_models(
    rt: &Runtime,
    index: usize,
    forwarded: Option<&ClientCredential>,
) -> Vec<serde_json::Value> {
    let provider = &rt.providers[index];
    if let Ok(cache) = rt.models_cache.lock() {
        if let Some((at, list)) = cache.get(&index) {
            if at.elapsed() < UPSTREAM_MODELS_TTL {
                return list.clone();
            }
        }
    }
    // A key that is neither cooling down nor refused, so listing never lands on a key
    // the upstream is rate limiting.
    let usable = rt.pools[index]
        .snapshot(Instant::now())
        .iter()
        .position(|k| k.cooling_down_for.is_none() && !k.bad);
    let key = usable.and_then(|j| provider.config.keys.get(j));
    let credential = match (key, forwarded) {
        (Some(k), _) => ("x-api-key".to_string(), k.key.as_bytes().to_vec()),
        (None, Some(c)) => c.header(),
        (None, None) => return Vec::new(),
    };
    let url = format!("{}v1/models?limit=1000", provider.health_url());
    let headers = vec![
        credential,
        ("anthropic-version".to_string(), b"2023-06-01".to_vec()),
    ];
    let timeout = Duration::from_millis(rt.config.routing.connect_timeout_ms.max(1000));
    let list = match rt
        .client
        .fetch("GET", &url, headers, b"", timeout, 4 * 1024 * 1024)
    {
        Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["data"].as_array().cloned())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if let Ok(mut cache) = rt.models_cache.lock() {
        cache.insert(index, (Instant::now(), list.clone()));
    }
    list
}

pub fn models(
    rt: &Runtime,
    req: &Request,
    resp: &mut ResponseWriter<'_>,
    forwarded: Option<&ClientCredential>,
) {
    let mut data: Vec<serde_json::Value> = model_ids(rt)
        .iter()
        .map(|id| {
            serde_json::json!({
                "type": "model",
                "id": id,
                "display_name": id,
                "created_at": "2025-01-01T00:00:00Z",
            })
        })
        .collect();
    for (i, p) in rt.providers.iter().enumerate() {
        if p.config.enabled && p.config.models.is_empty() && p.supports(Operation::Models) {
            for model in upstream_models(rt, i, forwarded) {
                if !data.iter().any(|m| m["id"] == model["id"]) {
                    data.push(model);
                }
            }
        }
    }
    let first = data
        .first()
        .map(|m| m["id"].clone())
        .unwrap_or(serde_json::Value::Null);
    let last = data
        .last()
        .map(|m| m["id"].clone())
        .unwrap_or(serde_json::Value::Null);
    let body =
        serde_json::json!({"data": data, "has_more": false, "first_id": first, "last_id": last});
    send_json(req, resp, 200, &body);
}

pub fn providers(rt: &Runtime, req: &Request, resp: &mut ResponseWriter<'_>) {
    let now = Instant::now();
    let unix_now = SystemTime::now();
    let data: Vec<serde_json::Value> = rt
        .providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let keys: Vec<serde_json::Value> = rt.pools[i]
                .snapshot(now)
                .into_iter()
                .map(|k| {
                    let until = k
                        .cooling_down_for
                        .map(|d| serde_json::Value::from(rfc3339_millis(unix_now + d)))
                        .unwrap_or(serde_json::Value::Null);
                    serde_json::json!({
                        "label": k.label,
                        "rpm_limit": k.rpm_limit,
                        "rpm_remaining": k.rpm_remaining,
                        "tpm_limit": k.tpm_limit,
                        "tpm_remaining": k.tpm_remaining,
                        "cooling_down_until": until,
                        "bad": k.bad,
                    })
                })
                .collect();
            let recent = rt.provider_metrics[i].requests_last_minute();
            serde_json::json!({
                "name": p.config.name,
                "type": p.config.kind.as_str(),
                "enabled": p.config.enabled,
                "priority": p.config.effective_priority(),
                "weight": p.config.effective_weight(),
                "circuit": rt.breakers[i].state(now).as_str(),
                "models": p.config.models,
                "keys": keys,
                "requests_last_minute": recent,
                "requests_per_second": rolling::per_second(recent),
                "stats": rt.provider_metrics[i].snapshot(),
            })
        })
        .collect();
    send_json(req, resp, 200, &serde_json::json!({ "data": data }));
}

/// Remaining capacity of every limited key, for `cc_relay_key_headroom`.
pub fn key_headroom(rt: &Runtime) -> Vec<KeyHeadroom> {
    let now = Instant::now();
    let mut out = Vec::new();
    for (i, p) in rt.providers.iter().enumerate() {
        for k in rt.pools[i].snapshot(now) {
            let limits = [
                ("rpm", k.rpm_remaining),
                ("tpm", k.tpm_remaining),
                ("itpm", k.itpm_remaining),
                ("otpm", k.otpm_remaining),
            ];
            for (limit, remaining) in limits {
                if let Some(r) = remaining {
                    out.push(KeyHeadroom {
                        provider: p.config.name.clone(),
                        key: k.label.clone(),
                        limit: limit.to_string(),
                        remaining: r as f64,
                    });
                }
            }
        }
    }
    out
}

/// 503 when no enabled provider could take a request right now (every circuit open).
pub fn health(rt: &Runtime, req: &Request, resp: &mut ResponseWriter<'_>) {
    let now = Instant::now();
    let any = rt
        .providers
        .iter()
        .enumerate()
        .any(|(i, p)| p.config.enabled && rt.breakers[i].state(now) != CircuitState::Open);
    if any {
        send_json(req, resp, 200, &serde_json::json!({"status": "ok"}));
    } else {
        send_json(req, resp, 503, &serde_json::json!({"status": "degraded"}));
    }
}

pub fn hello(req: &Request, resp: &mut ResponseWriter<'_>) {
    let headers = vec![("request-id".to_string(), req.id.as_bytes().to_vec())];
    let _ = resp.send(200, &headers, b"");
}

pub fn metrics(rt: &Runtime, metrics: &Metrics, req: &Request, resp: &mut ResponseWriter<'_>) {
    if !rt.config.metrics.enabled {
        let err = crate::relay::error::ApiError::new(404, "metrics are disabled");
        let _ = resp.send_error(&err, &req.id);
        return;
    }
    let headers = vec![
        (
            "content-type".to_string(),
            b"text/plain; version=0.0.4; charset=utf-8".to_vec(),
        ),
        ("request-id".to_string(), req.id.as_bytes().to_vec()),
    ];
    for (i, handle) in rt.provider_metrics.iter().enumerate() {
        let idle = rt.client.idle_connections(&rt.providers[i].endpoint);
        handle.set_upstream_connections(idle as i64);
        handle.set_circuit_state(match rt.breakers[i].state(Instant::now()) {
            CircuitState::Closed => CircuitGauge::Closed,
            CircuitState::HalfOpen => CircuitGauge::HalfOpen,
            CircuitState::Open => CircuitGauge::Open,
        });
    }
    let body = metrics.render(&key_headroom(rt));
    let _ = resp.send(200, &headers, body.as_bytes());
}

/// Roughly four characters per token over the text the model would read: good enough
/// for Claude Code's context accounting, and marked as an estimate.
pub fn estimate_tokens(body: &[u8]) -> u64 {
    fn text_len(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => s.chars().count(),
            serde_json::Value::Array(a) => a.iter().map(text_len).sum(),
            serde_json::Value::Object(o) => o
                .iter()
                .filter(|(k, _)| k.as_str() != "signature" && k.as_str() != "data")
                .map(|(k, v)| k.len() + text_len(v))
                .sum(),
            other => other.to_string().len(),
        }
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let fields = ["system", "messages", "tools", "tool_choice"];
    let chars: usize = fields.iter().filter_map(|f| v.get(*f)).map(text_len).sum();
    (chars as u64).div_ceil(4).max(1)
}

/// Answers count_tokens locally; `headers` carries the request id and debug headers.
pub fn count_tokens_estimate(
    req: &Request,
    resp: &mut ResponseWriter<'_>,
    mut headers: Vec<(String, Vec<u8>)>,
) {
    headers.push(("content-type".to_string(), b"application/json".to_vec()));
    headers.push(("x-cc-relay-estimate".to_string(), b"true".to_vec()));
    let body = serde_json::json!({"input_tokens": estimate_tokens(&req.body)});
    let _ = resp.send(200, &headers, body.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_counts_text_roughly() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"abcdefghabcdefgh"}]}"#;
        let n = estimate_tokens(body);
        assert!((4..=12).contains(&n), "{n}");
        assert_eq!(estimate_tokens(b"nope"), 0);
    }
}
