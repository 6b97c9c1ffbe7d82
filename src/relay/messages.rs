//! `/v1/messages` and `/v1/messages/count_tokens`: parse what routing needs, try the
//! planned providers in order until one answers, then relay that answer. Failover
//! happens only while nothing has been written to the client.
//!
//! Steps: `parse_fields` -> `plan` -> for each attempt: `Provider::prepare` ->
//! `HttpClient::send` -> `classify` -> (failover | relay_success | relay_error).

use std::time::{Duration, Instant};

use crate::auth::client::AuthDecision;
use crate::net::client::{ClientError, Deadlines, UpstreamRequest, UpstreamResponse};
use crate::net::server::{Request, ResponseWriter};
use crate::provider::{Inbound, Operation, Provider, ResponseShape};
use crate::relay::error::ApiError;
use crate::relay::stream::{StreamRelay, Usage};
use crate::relay::{RequestRecord, Runtime};

/// Upstream error bodies larger than this are cut when relayed.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// A non-streamed upstream answer larger than this is refused (a Messages reply is far smaller).
const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

#[derive(serde::Deserialize)]
struct Fields {
    model: Option<serde_json::Value>,
    #[serde(default)]
    stream: Option<serde_json::Value>,
    messages: Option<serde::de::IgnoredAny>,
}

struct Parsed {
    model: String,
    stream: bool,
}

fn parse_fields(body: &[u8]) -> Result<Parsed, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid_request(
            "request body is empty; expected a JSON object",
        ));
    }
    let fields: Fields = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("request body is not valid JSON: {e}")))?;
    let model = match fields.model {
        Some(serde_json::Value::String(m)) if !m.is_empty() => m,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "model: must be a non-empty string",
            ))
        }
        None => return Err(ApiError::invalid_request("model: field required")),
    };
    if fields.messages.is_none() {
        return Err(ApiError::invalid_request("messages: field required"));
    }
    let stream = match fields.stream {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::invalid_request("stream: must be a boolean")),
    };
    Ok(Parsed { model, stream })
}

/// Provider indices to try, in order. Single-provider routing for now: enabled
/// providers by priority (higher first), then config order.
fn plan(rt: &Runtime) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rt.providers.len())
        .filter(|&i| rt.providers[i].config.enabled)
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rt.providers[i].config.effective_priority()));
    let max = rt.config.routing.max_attempts as usize;
    if max > 0 {
        order.truncate(max);
    }
    order
}

/// Statuses after which the next provider may serve the same request.
fn is_failover_status(status: u16) -> bool {
    status == 429 || status >= 500
}

fn client_error_to_api(e: &ClientError) -> ApiError {
    match e {
        ClientError::Timeout(what) => ApiError::new(504, format!("upstream timed out ({what})")),
        other => ApiError::new(502, format!("upstream unreachable or invalid: {other}")),
    }
}

pub fn handle(
    rt: &Runtime,
    req: &Request,
    resp: &mut ResponseWriter<'_>,
    op: Operation,
    auth: &AuthDecision,
    record: &mut RequestRecord,
) {
    let parsed = match parse_fields(&req.body) {
        Ok(p) => p,
        Err(e) => {
            let _ = resp.send_error(&e, &req.id);
            return;
        }
    };
    record.model = Some(parsed.model.clone());
    let inbound = Inbound {
        body: &req.body,
        model: &parsed.model,
        stream: parsed.stream && op == Operation::Messages,
        headers: &req.head.headers,
        query: req.head.query(),
    };
    let candidates = plan(rt);
    if candidates.is_empty() {
        let _ = resp.send_error(&ApiError::new(503, "no provider is enabled"), &req.id);
        return;
    }
    let routing = &rt.config.routing;
    let mut last_error: Option<ApiError> = None;
    let mut failover_deadline: Option<Instant> = None;
    for (n, &index) in candidates.iter().enumerate() {
        let is_last = n + 1 == candidates.len();
        if failover_deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let provider = &rt.providers[index];
        record.attempts += 1;
        record.provider_index = Some(index);
        record.provider = Some(provider.name().to_string());
        if op == Operation::CountTokens && !provider.supports(op) {
            super::endpoints::count_tokens_estimate(req, resp);
            return;
        }
        let key = provider.config.keys.first();
        record.key = key.map(|k| k.label());
        let prepared =
            match provider.prepare(op, &inbound, key, auth.forwarded_credential(), &rt.client) {
                Ok(p) => p,
                Err(e) if e.status >= 500 => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => {
                    let _ = resp.send_error(&e, &req.id);
                    return;
                }
            };
        record.upstream_model = Some(prepared.upstream_model.clone());
        let upstream_req = UpstreamRequest {
            method: prepared.method,
            endpoint: &provider.endpoint,
            target: prepared.target.clone(),
            headers: prepared.headers.clone(),
            body: &prepared.body,
        };
        let head_deadline = if inbound.stream {
            Instant::now() + Duration::from_millis(routing.first_byte_timeout_ms)
        } else {
            req.deadline
        }
        .min(req.deadline);
        let deadlines = Deadlines {
            connect: Duration::from_millis(routing.connect_timeout_ms),
            head: head_deadline,
        };
        let mut upstream = match rt.client.send(&upstream_req, deadlines) {
            Ok(r) => r,
            Err(e) => {
                last_error = Some(client_error_to_api(&e));
                failover_deadline.get_or_insert_with(|| {
                    Instant::now() + Duration::from_millis(routing.failover_timeout_ms)
                });
                continue;
            }
        };
        let status = upstream.status();
        if is_failover_status(status) && !is_last {
            upstream.abort();
            last_error = Some(ApiError::new(status, format!("upstream answered {status}")));
            failover_deadline.get_or_insert_with(|| {
                Instant::now() + Duration::from_millis(routing.failover_timeout_ms)
            });
            continue;
        }
        if status == 401 || status == 403 {
            provider.on_unauthorized();
        }
        if !(200..300).contains(&status) {
            record.ttfb_ms = Some(req.received_at.elapsed().as_millis() as u64);
            relay_error(req, resp, provider, &mut upstream);
            return;
        }
        if inbound.stream {
            let mut relay = StreamRelay::new(
                Duration::from_millis(rt.config.server.stream_idle_timeout_ms),
                provider.response_shape(),
            );
            if let Err(e) = relay.first_event(&mut upstream, head_deadline) {
                upstream.abort();
                last_error = Some(client_error_to_api(&e));
                if !is_last {
                    failover_deadline.get_or_insert_with(|| {
                        Instant::now() + Duration::from_millis(routing.failover_timeout_ms)
                    });
                    continue;
                }
                break;
            }
            let mut headers = response_headers(req, &upstream, "text/event-stream");
            if provider.response_shape() == ResponseShape::Bedrock {
                // The upstream's type is the AWS event stream we just transcoded.
                headers.retain(|(n, _)| n != "content-type");
                headers.insert(
                    0,
                    (
                        "content-type".into(),
                        b"text/event-stream; charset=utf-8".to_vec(),
                    ),
                );
            }
            if resp.start_stream(status, &headers).is_err() {
                upstream.abort();
                return;
            }
            record.ttfb_ms = Some(req.received_at.elapsed().as_millis() as u64);
            relay.relay_rest(&mut upstream, resp, req.deadline);
            record.input_tokens = relay.taps.input_tokens;
            record.output_tokens = relay.taps.output_tokens;
            record.stream_events = relay.taps.events;
            return;
        }
        match upstream.read_to_end(MAX_RESPONSE_BODY, req.deadline) {
            Ok(mut body) => {
                if op == Operation::CountTokens
                    && provider.response_shape() == ResponseShape::Bedrock
                {
                    body =
                        crate::provider::bedrock::count_tokens_to_anthropic(&body).unwrap_or(body);
                }
                record.ttfb_ms = Some(req.received_at.elapsed().as_millis() as u64);
                if let Some(u) = usage_of(&body) {
                    record.input_tokens = u.total_input();
                    record.output_tokens = u.output_tokens;
                }
                let headers = response_headers(req, &upstream, "application/json");
                // Pool the upstream connection before answering, so the client's next
                // request can already reuse it.
                drop(upstream);
                let _ = resp.send(status, &headers, &body);
                return;
            }
            Err(e) => {
                last_error = Some(client_error_to_api(&e));
                if !is_last {
                    continue;
                }
            }
        }
    }
    let err =
        last_error.unwrap_or_else(|| ApiError::new(503, "no provider could serve the request"));
    let _ = resp.send_error(&err, &req.id);
}

fn usage_of(body: &[u8]) -> Option<Usage> {
    #[derive(serde::Deserialize)]
    struct WithUsage {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

/// Which upstream response headers reach the client: content type, the request id, and
/// the rate-limit and retry hints clients act on. Nothing else (cookies, server names).
fn relayed_header(name: &str) -> bool {
    const EXACT: [&str; 3] = ["retry-after", "retry-after-ms", "x-should-retry"];
    EXACT.iter().any(|h| h.eq_ignore_ascii_case(name))
        || name
            .as_bytes()
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"anthropic-"))
}

/// The request id a response carries: the client's own when it sent one, else the
/// upstream's (so it can be quoted to the upstream's support), else ours.
fn response_request_id<'a>(req: &'a Request, upstream: &'a UpstreamResponse) -> &'a [u8] {
    if req.head.headers.get("x-request-id").is_none() {
        if let Some(id) = upstream.head.headers.get("request-id") {
            return id;
        }
    }
    req.id.as_bytes()
}

fn response_headers(
    req: &Request,
    upstream: &UpstreamResponse,
    default_type: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut headers = Vec::with_capacity(12);
    let content_type = upstream
        .head
        .headers
        .get("content-type")
        .unwrap_or(default_type.as_bytes());
    headers.push(("content-type".to_string(), content_type.to_vec()));
    headers.push((
        "request-id".to_string(),
        response_request_id(req, upstream).to_vec(),
    ));
    if default_type == "text/event-stream" {
        headers.push(("cache-control".to_string(), b"no-cache".to_vec()));
    }
    for (name, value) in upstream.head.headers.iter() {
        if relayed_header(name) {
            headers.push((name.to_ascii_lowercase(), value.to_vec()));
        }
    }
    headers
}

/// Relays an upstream error with its status and hints. A body that is already Anthropic
/// error JSON passes unchanged; anything else is wrapped into that shape.
fn relay_error(
    req: &Request,
    resp: &mut ResponseWriter<'_>,
    provider: &Provider,
    upstream: &mut UpstreamResponse,
) {
    let mut status = upstream.status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = upstream.read_to_end(MAX_ERROR_BODY, deadline.min(req.deadline));
    let normalized = match &body {
        Ok(b) if !is_anthropic_error(b) => {
            provider.normalize_error(status, &upstream.head.headers, b)
        }
        _ => None,
    };
    let body = match (body, normalized) {
        (_, Some((mapped, json))) => {
            status = mapped;
            json
        }
        (Ok(b), None) if is_anthropic_error(&b) => b,
        (Ok(b), None) => {
            let text = String::from_utf8_lossy(&b);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("upstream answered {status}")
            } else {
                let cut: String = text.chars().take(2000).collect();
                format!("upstream answered {status}: {cut}")
            };
            ApiError::new(status, message).body()
        }
        (Err(_), None) => ApiError::new(status, format!("upstream answered {status}")).body(),
    };
    let mut headers = response_headers(req, upstream, "application/json");
    headers.retain(|(n, _)| n != "content-type");
    headers.push(("content-type".to_string(), b"application/json".to_vec()));
    let _ = resp.send(status, &headers, &body);
}

fn is_anthropic_error(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(rename = "type")]
        kind: String,
        error: serde_json::Value,
    }
    serde_json::from_slice::<Shape>(body)
        .map(|s| s.kind == "error" && s.error.get("type").is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_are_400_with_reasons() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "empty"),
            (b"{not json", "not valid JSON"),
            (br#"{"messages":[]}"#, "model: field required"),
            (br#"{"model":"m"}"#, "messages: field required"),
            (
                br#"{"model":"m","messages":[],"stream":"yes"}"#,
                "stream: must be a boolean",
            ),
        ];
        for (body, want) in cases {
            let e = parse_fields(body).err().expect("error");
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{} vs {want}", e.message);
        }
        let ok = parse_fields(br#"{"model":"m","messages":[],"stream":true,"x":1}"#).unwrap();
        assert_eq!((ok.model.as_str(), ok.stream), ("m", true));
    }

    #[test]
    fn anthropic_error_detection() {
        assert!(is_anthropic_error(
            br#"{"type":"error","error":{"type":"x","message":"m"}}"#
        ));
        assert!(!is_anthropic_error(br#"{"error":"x"}"#));
        assert!(!is_anthropic_error(b"Bad Gateway"));
    }
}
