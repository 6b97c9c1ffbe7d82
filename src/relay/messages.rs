//! `/v1/messages` and `/v1/messages/count_tokens`: parse what routing needs, try the
//! planned providers in order until one answers, then relay that answer. Failover
//! happens only while nothing has been written to the client.
//!
//! Steps: `parse_fields` -> `plan` -> for each attempt: `Provider::prepare` ->
//! `HttpClient::send` -> `classify` -> (failover | relay_success | relay_error).
//! What a pool key learns from each try is in `relay/pool_key.rs`; race failover, where
//! the remaining providers are asked in parallel, in `messages/race.rs`.

mod race;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::auth::client::AuthDecision;
use crate::config::{FailoverMode, ProviderType};
use crate::net::client::{ClientError, Deadlines, UpstreamRequest, UpstreamResponse};
use crate::net::server::{Request, ResponseWriter};
use crate::provider::{Inbound, Operation, Provider, ResponseShape};
use crate::relay::error::ApiError;
use crate::relay::pool_key::{self, now_unix_ms, FleetGrant, FleetHold};
use crate::relay::stream::{SignatureSink, StreamRelay, Usage};
use crate::relay::thinking::{self, HistoryInfo};
use crate::relay::{Relay, RequestRecord, Runtime};
use crate::route::{AcquireError, Admission, Availability, CircuitState, KeyLease};
use crate::state::shared::{SharedCircuit, Usage as FleetUsage};

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

/// An upstream answer read whole, kept to relay later if nothing better comes along
/// (the last key's 429 or 401 when every key of a provider failed).
struct BufferedAnswer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// How one provider's attempt ended, when it did not answer the client itself.
enum ProviderOutcome {
    /// The response (success or a final error) went to the client.
    Answered,
    /// Try the next provider; `error` is what the client gets if none is left.
    Failed(ApiError),
    /// Every key of the provider is rate limited or cooling down, for at least this long.
    Exhausted(Duration),
    /// Every key was refused (429/401/403 with no key left): relay that answer unless a
    /// later provider succeeds.
    KeysRefused(BufferedAnswer),
}

/// What the request's history says about thinking signatures (SPEC §4.4).
struct ThinkingState {
    history: HistoryInfo,
    /// The family the newest signed block came from, when the store knows it.
    affinity: Option<String>,
    /// Set after an upstream rejected a signature: send every later try without thinking.
    strip_all: bool,
    /// The last body sent had its thinking disabled by the rewrite.
    disabled: bool,
}

/// One request's journey through the plan.
struct Attempt<'r, 'w, 'x> {
    rt: &'r Runtime,
    relay: &'r Relay,
    thinking: Option<ThinkingState>,
    plan_len: usize,
    req: &'r Request,
    resp: &'r mut ResponseWriter<'w>,
    op: Operation,
    inbound: Inbound<'x>,
    auth: &'r AuthDecision,
    record: &'r mut RequestRecord,
    estimate: u64,
    /// The fleet-wide reservation of the current key (`cache.mode: ha`).
    fleet: Option<FleetHold>,
}

pub fn handle(
    rt: &Runtime,
    relay: &Relay,
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
    let now = Instant::now();
    let mut plan = rt
        .router
        .plan(&parsed.model, |i| fleet_availability(rt, relay, i, now));
    let mut thinking = mentions_thinking(&req.body).then(|| ThinkingState {
        history: thinking::analyze(&req.body),
        affinity: None,
        strip_all: false,
        disabled: false,
    });
    if let Some(state) = thinking.as_mut() {
        state.affinity = apply_affinity(rt, relay, &state.history, &mut plan.providers, now);
    }
    let mut attempt = Attempt {
        rt,
        relay,
        thinking,
        plan_len: plan.providers.len(),
        req,
        resp,
        op,
        inbound,
        auth,
        record,
        // Roughly four bytes of JSON per input token: enough to reserve tpm headroom;
        // corrected from `usage` when the answer ends.
        estimate: (req.body.len() as u64 / 4).max(1),
        fleet: None,
    };
    attempt.run(&plan.providers, plan.last_resort);
}

impl Attempt<'_, '_, '_> {
    fn run(&mut self, plan: &[usize], last_resort: bool) {
        let routing = &self.rt.config.routing;
        let mut failover_deadline: Option<Instant> = None;
        let mut last_error: Option<ApiError> = None;
        let mut refused: Option<BufferedAnswer> = None;
        let mut exhausted: Option<Duration> = None;
        for (n, &index) in plan.iter().enumerate() {
            if failover_deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let breaker = &self.rt.breakers[index];
            let admission = breaker.admit(Instant::now());
            if admission == Admission::Rejected && !last_resort {
                continue;
            }
            let is_last = n + 1 == plan.len();
            // Race mode: once the first choice failed, the rest run in parallel.
            if routing.failover_mode == FailoverMode::Race && n > 0 && plan.len() - n >= 2 {
                breaker.on_abandoned(admission);
                match self.race(&plan[n..]) {
                    ProviderOutcome::Answered => return,
                    ProviderOutcome::Failed(e) => last_error = Some(e),
                    ProviderOutcome::Exhausted(wait) => {
                        exhausted = Some(exhausted.map_or(wait, |w| w.min(wait)));
                    }
                    ProviderOutcome::KeysRefused(answer) => refused = Some(answer),
                }
                break;
            }
            match self.try_provider(index, is_last, admission) {
                ProviderOutcome::Answered => return,
                ProviderOutcome::Failed(e) => last_error = Some(e),
                ProviderOutcome::Exhausted(wait) => {
                    exhausted = Some(exhausted.map_or(wait, |w| w.min(wait)));
                }
                ProviderOutcome::KeysRefused(answer) => refused = Some(answer),
            }
            failover_deadline.get_or_insert_with(|| {
                Instant::now() + Duration::from_millis(routing.failover_timeout_ms)
            });
        }
        let debug = self.debug_headers();
        if let Some(answer) = refused {
            let mut headers = answer.headers;
            headers.extend(debug);
            let _ = self.resp.send(answer.status, &headers, &answer.body);
            return;
        }
        let err = match (last_error, exhausted) {
            (Some(e), _) if e.status != 429 || exhausted.is_none() => e,
            (_, Some(wait)) => ApiError::new(
                429,
                "every key of every provider is rate limited; retry after the given time",
            )
            .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64),
            (Some(e), None) => e,
            (None, None) => ApiError::new(503, "no provider could serve the request"),
        };
        self.send_api_error(&err, debug);
    }

    fn send_api_error(&mut self, err: &ApiError, extra: Vec<(String, Vec<u8>)>) {
        let mut headers = vec![
            ("content-type".to_string(), b"application/json".to_vec()),
            ("request-id".to_string(), self.req.id.as_bytes().to_vec()),
        ];
        if let Some(s) = err.retry_after {
            headers.push(("retry-after".to_string(), s.to_string().into_bytes()));
        }
        headers.extend(extra);
        let _ = self.resp.send(err.status, &headers, &err.body());
    }

    /// `X-CC-Relay-*` headers when `routing.debug` is on.
    fn debug_headers(&self) -> Vec<(String, Vec<u8>)> {
        if !self.rt.config.routing.debug {
            return Vec::new();
        }
        let mut out = vec![
            (
                "x-cc-relay-strategy".to_string(),
                self.rt.router.strategy_name().as_bytes().to_vec(),
            ),
            (
                "x-cc-relay-attempts".to_string(),
                self.record.attempts.to_string().into_bytes(),
            ),
        ];
        if let Some(p) = &self.record.provider {
            out.push(("x-cc-relay-provider".to_string(), p.as_bytes().to_vec()));
        }
        if let Some(state) = &self.thinking {
            if let Some(family) = &state.affinity {
                out.push((
                    "x-cc-relay-thinking-affinity".to_string(),
                    family.as_bytes().to_vec(),
                ));
            }
            if state.disabled {
                out.push(("x-cc-relay-thinking-disabled".to_string(), b"true".to_vec()));
            }
        }
        out
    }

    /// Tries one provider, moving to its next key after a 429 or 401/403 on a pool key.
    fn try_provider(
        &mut self,
        index: usize,
        is_last: bool,
        admission: Admission,
    ) -> ProviderOutcome {
        let rt = self.rt;
        let provider = &rt.providers[index];
        let pool = &rt.pools[index];
        let breaker = &rt.breakers[index];
        self.record.provider_index = Some(index);
        self.record.provider = Some(provider.name().to_string());
        if self.op == Operation::CountTokens && !provider.supports(self.op) {
            breaker.on_abandoned(admission);
            let mut headers = self.debug_headers();
            headers.push(("request-id".into(), self.req.id.as_bytes().to_vec()));
            super::endpoints::count_tokens_estimate(self.req, self.resp, headers);
            return ProviderOutcome::Answered;
        }
        let forwarded = self.auth.forwarded_credential();
        // A subscription user's own credential replaces pool keys on anthropic upstreams.
        let passes_through = forwarded.is_some() && provider.config.kind == ProviderType::Anthropic;
        let uses_pool = !pool.is_empty() && !passes_through;
        let mut refused: Option<BufferedAnswer> = None;
        loop {
            let now = Instant::now();
            let lease = if uses_pool {
                match pool.acquire(now, self.estimate) {
                    Ok(lease) => Some(lease),
                    Err(AcquireError::Exhausted { retry_after }) => {
                        breaker.on_abandoned(admission);
                        return match refused {
                            Some(answer) if answer.status != 429 || is_last => {
                                ProviderOutcome::KeysRefused(answer)
                            }
                            _ => ProviderOutcome::Exhausted(retry_after),
                        };
                    }
                    Err(AcquireError::NoUsableKey) => {
                        breaker.on_abandoned(admission);
                        return match refused {
                            Some(answer) => ProviderOutcome::KeysRefused(answer),
                            None => ProviderOutcome::Failed(ApiError::new(
                                503,
                                format!("provider {} has no usable key", provider.name()),
                            )),
                        };
                    }
                }
            } else {
                None
            };
            let grant = lease
                .as_ref()
                .map(|l| pool_key::reserve(self.relay, provider, pool, l, self.estimate, now));
            match grant {
                Some(FleetGrant::Go(hold)) => self.fleet = hold,
                Some(FleetGrant::Denied) => {
                    if let Some(l) = lease {
                        pool.refund(l, now);
                    }
                    continue;
                }
                None => {}
            }
            self.record.attempts += 1;
            let target_body = self.body_for(index);
            let inbound = Inbound {
                body: target_body.as_deref().unwrap_or(self.inbound.body),
                model: self.inbound.model,
                stream: self.inbound.stream,
                headers: self.inbound.headers,
                query: self.inbound.query,
            };
            self.record.key = lease
                .as_ref()
                .and_then(|l| pool.label(l.key()))
                .map(str::to_string);
            let prepared = match provider.prepare(
                self.op,
                &inbound,
                lease.as_ref().map(|l| l.secret()),
                forwarded,
                &rt.client,
            ) {
                Ok(p) => p,
                Err(e) => {
                    if let Some(l) = lease {
                        pool.refund(l, now);
                    }
                    breaker.on_abandoned(admission);
                    if e.status >= 500 {
                        return ProviderOutcome::Failed(e);
                    }
                    self.send_api_error(&e, Vec::new());
                    return ProviderOutcome::Answered;
                }
            };
            self.record.upstream_model = Some(prepared.upstream_model.clone());
            let head_deadline = head_deadline_for(rt, self.inbound.stream, self.req.deadline);
            let sent = send_prepared(rt, provider, &prepared, head_deadline, None);
            let mut upstream = match sent {
                Ok(r) => r,
                Err(e) => {
                    if let Some(l) = lease {
                        pool.refund(l, Instant::now());
                    }
                    self.settle_fleet(None);
                    self.report_failure(index);
                    return ProviderOutcome::Failed(client_error_to_api(&e));
                }
            };
            let status = upstream.status();
            if !(200..300).contains(&status) {
                self.settle_fleet(None);
            }
            if rt.config.logging.log_response_headers {
                let list: Vec<String> = upstream
                    .head
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                    .collect();
                // Every line passes the logger's redaction choke point.
                crate::obs::log::info(format_args!(
                    "request {} upstream {} answered {status}; headers: {}",
                    self.req.id,
                    provider.name(),
                    list.join("; ")
                ));
            }
            let now = Instant::now();
            let key_refused = pool_key::learn_from_answer(
                self.relay,
                provider,
                pool,
                lease.as_ref(),
                &upstream,
                now,
            );
            // A pool key refused: the same request moves to the provider's next key.
            if key_refused {
                refused = Some(self.buffer(provider, &mut upstream));
                if let Some(l) = lease {
                    pool.record_usage(l, 0, 0, now);
                }
                continue;
            }
            if is_failover_status(status) && !is_last {
                upstream.abort();
                if let Some(l) = lease {
                    pool.refund(l, now);
                }
                if status == 429 {
                    breaker.on_success(now);
                } else {
                    self.report_failure(index);
                }
                return ProviderOutcome::Failed(ApiError::new(
                    status,
                    format!("upstream answered {status}"),
                ));
            }
            let verdict_failure = status >= 500;
            if !(200..300).contains(&status) {
                self.record.ttfb_ms = Some(self.req.received_at.elapsed().as_millis() as u64);
                let mut answer = self.buffer(provider, &mut upstream);
                if status == 400 && self.should_recover(&answer.body) {
                    // Nothing reached the client yet: retry once, all thinking stripped.
                    if let Some(l) = lease {
                        pool.refund(l, now);
                    }
                    self.relay.metrics.add_signature_recovery();
                    continue;
                }
                if let Some(l) = lease {
                    pool.record_usage(l, 0, 0, now);
                }
                if verdict_failure {
                    self.report_failure(index);
                } else {
                    breaker.on_success(now);
                }
                answer.headers.extend(self.debug_headers());
                let _ = self.resp.send(answer.status, &answer.headers, &answer.body);
                return ProviderOutcome::Answered;
            }
            return self.relay_success(index, upstream, lease, head_deadline, None);
        }
    }

    /// Reads an upstream error whole and turns it into Anthropic error JSON (a body
    /// already in that shape passes unchanged), with the headers a client acts on.
    fn buffer(&self, provider: &Provider, upstream: &mut UpstreamResponse) -> BufferedAnswer {
        let mut status = upstream.status();
        let deadline = (Instant::now() + Duration::from_secs(10)).min(self.req.deadline);
        let body = upstream.read_to_end(MAX_ERROR_BODY, deadline);
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
        let mut headers = response_headers(self.req, upstream, "application/json");
        headers.retain(|(n, _)| n != "content-type");
        headers.push(("content-type".to_string(), b"application/json".to_vec()));
        BufferedAnswer {
            status,
            headers,
            body,
        }
    }

    /// A 2xx head arrived: relay the body (stream or whole), then account for it.
    fn relay_success(
        &mut self,
        index: usize,
        mut upstream: UpstreamResponse,
        lease: Option<KeyLease>,
        head_deadline: Instant,
        primed: Option<StreamRelay>,
    ) -> ProviderOutcome {
        let rt = self.rt;
        let provider = &rt.providers[index];
        let pool = &rt.pools[index];
        let breaker = &rt.breakers[index];
        let status = upstream.status();
        if self.inbound.stream {
            let mut relay = match primed {
                Some(relay) => relay,
                None => {
                    let mut relay = new_stream_relay(rt, self.relay, provider);
                    if let Err(e) = relay.first_event(&mut upstream, head_deadline, None) {
                        upstream.abort();
                        if let Some(l) = lease {
                            pool.refund(l, Instant::now());
                        }
                        breaker.on_failure(Instant::now());
                        return ProviderOutcome::Failed(client_error_to_api(&e));
                    }
                    relay
                }
            };
            breaker.on_success(Instant::now());
            let mut headers = response_headers(self.req, &upstream, "text/event-stream");
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
            headers.extend(self.debug_headers());
            if self.resp.start_stream(status, &headers).is_err() {
                upstream.abort();
                if let Some(l) = lease {
                    pool.refund(l, Instant::now());
                }
                return ProviderOutcome::Answered;
            }
            self.record.ttfb_ms = Some(self.req.received_at.elapsed().as_millis() as u64);
            relay.relay_rest(&mut upstream, self.resp, self.req.deadline);
            self.record.input_tokens = relay.taps.input_tokens;
            self.record.output_tokens = relay.taps.output_tokens;
            self.record.stream_events = relay.taps.events;

            if let Some(l) = lease {
                let input = relay.taps.input_tokens.unwrap_or(l.charged_input_tokens());
                let output = relay.taps.output_tokens.unwrap_or(0);
                pool.record_usage(l, input, output, Instant::now());
                self.settle_fleet(Some(FleetUsage {
                    input_tokens: input,
                    output_tokens: output,
                }));
            }
            return ProviderOutcome::Answered;
        }
        match upstream.read_to_end(MAX_RESPONSE_BODY, self.req.deadline) {
            Ok(mut body) => {
                breaker.on_success(Instant::now());
                if self.op == Operation::CountTokens
                    && provider.response_shape() == ResponseShape::Bedrock
                {
                    body =
                        crate::provider::bedrock::count_tokens_to_anthropic(&body).unwrap_or(body);
                }
                self.record.ttfb_ms = Some(self.req.received_at.elapsed().as_millis() as u64);
                let family = provider.config.signature_family();
                for hash in thinking::signatures_in_response(&body) {
                    self.relay.signatures.record(&hash, &family, Instant::now());
                }
                let mut fleet_usage = None;
                let usage = usage_of(&body);
                if let Some(u) = usage {
                    self.record.input_tokens = u.total_input();
                    self.record.output_tokens = u.output_tokens;
                }
                if let Some(l) = lease {
                    let input = usage
                        .and_then(|u| u.total_input())
                        .unwrap_or(l.charged_input_tokens());
                    let output = usage.and_then(|u| u.output_tokens).unwrap_or(0);
                    pool.record_usage(l, input, output, Instant::now());
                    fleet_usage = Some(FleetUsage {
                        input_tokens: input,
                        output_tokens: output,
                    });
                }
                let mut headers = response_headers(self.req, &upstream, "application/json");
                headers.extend(self.debug_headers());
                // Pool the upstream connection before answering, so the client's next
                // request can already reuse it.
                drop(upstream);
                let _ = self.resp.send(status, &headers, &body);
                // The fleet's correction waits until the client has its answer.
                if fleet_usage.is_some() {
                    self.settle_fleet(fleet_usage);
                }
                ProviderOutcome::Answered
            }
            Err(e) => {
                if let Some(l) = lease {
                    pool.refund(l, Instant::now());
                }
                breaker.on_failure(Instant::now());
                ProviderOutcome::Failed(client_error_to_api(&e))
            }
        }
    }
}

impl Attempt<'_, '_, '_> {
    /// Ends the fleet reservation: real usage corrects the estimate, None gives it back.
    fn settle_fleet(&mut self, usage: Option<FleetUsage>) {
        pool_key::settle(self.relay, self.fleet.take(), usage);
    }

    /// Counts a failure against the provider's breaker and tells the fleet when it opened.
    fn report_failure(&self, index: usize) {
        let breaker = &self.rt.breakers[index];
        let now = Instant::now();
        let was_open = breaker.state(now) == CircuitState::Open;
        breaker.on_failure(now);
        if let (Some(shared), false, CircuitState::Open) =
            (&self.relay.shared, was_open, breaker.state(now))
        {
            let now_ms = now_unix_ms();
            let _ = shared.publish_circuit(
                self.rt.providers[index].name(),
                SharedCircuit {
                    state: CircuitState::Open,
                    opened_at_ms: Some(now_ms),
                    updated_at_ms: now_ms,
                },
            );
        }
    }

    /// The body to send to provider `index`: None = the client's bytes unchanged.
    /// Thinking blocks whose signature the target's family did not issue are removed
    /// (SPEC §4.4); after a signature rejection, all thinking is.
    fn body_for(&mut self, index: usize) -> Option<Vec<u8>> {
        let state = self.thinking.as_mut()?;
        let rewrite = if state.strip_all {
            thinking::strip_all_thinking(self.inbound.body)
        } else if state.history.signed_blocks.is_empty()
            && state.history.unsigned_thinking_blocks == 0
        {
            return None;
        } else {
            let target = self.rt.providers[index].config.signature_family();
            let store = &self.relay.signatures;
            let only_choice = self.plan_len == 1;
            let now = Instant::now();
            thinking::rewrite_for_target(self.inbound.body, |hash| {
                match store.family_of(hash, now) {
                    Some(family) => *family == *target,
                    // Unknown origin: keep it only when no other provider could be asked.
                    None => only_choice,
                }
            })
        };
        state.disabled = rewrite.thinking_disabled;
        rewrite.body
    }

    /// Whether an upstream 400 is a thinking-signature rejection we can still recover
    /// from by stripping thinking (once per request).
    fn should_recover(&mut self, body: &[u8]) -> bool {
        let Some(state) = self.thinking.as_mut() else {
            return false;
        };
        if state.strip_all || !mentions_signature(body) {
            return false;
        }
        state.strip_all = true;
        true
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Cheap pre-check before parsing a history: no thinking block, nothing to do.
fn mentions_thinking(body: &[u8]) -> bool {
    contains(body, b"thinking")
}

fn mentions_signature(body: &[u8]) -> bool {
    let lower = body.to_ascii_lowercase();
    contains(&lower, b"signature")
}

/// Puts providers of the family that issued the newest signed block first, when one of
/// them can take the request now; returns that family.
fn apply_affinity(
    rt: &Runtime,
    relay: &Relay,
    history: &HistoryInfo,
    plan: &mut Vec<usize>,
    now: Instant,
) -> Option<String> {
    let family = relay
        .signatures
        .family_of(history.newest_signed_hash.as_ref()?, now)?;
    let of_family = |i: usize| *rt.providers[i].config.signature_family() == *family;
    let usable = |i: usize| {
        rt.providers[i].config.enabled
            && matches!(
                rt.breakers[i].availability(now),
                crate::route::Availability::Available
            )
    };
    let mut first: Vec<usize> = plan
        .iter()
        .copied()
        .filter(|&i| of_family(i) && usable(i))
        .collect();
    // The strategy may have left a provider of the family out (model_based): add it.
    let missing: Vec<usize> = (0..rt.providers.len())
        .filter(|&i| of_family(i) && usable(i) && !first.contains(&i))
        .collect();
    first.extend(missing);
    if first.is_empty() {
        return None;
    }
    let rest: Vec<usize> = plan
        .iter()
        .copied()
        .filter(|i| !first.contains(i))
        .collect();
    *plan = first;
    plan.extend(rest);
    Some(family.to_string())
}

/// By when the upstream's head must arrive: the first-byte budget for streams (the
/// first event is waited for by the same deadline), the whole request's otherwise.
fn head_deadline_for(rt: &Runtime, stream: bool, request_deadline: Instant) -> Instant {
    if stream {
        let first_byte = Duration::from_millis(rt.config.routing.first_byte_timeout_ms);
        (Instant::now() + first_byte).min(request_deadline)
    } else {
        request_deadline
    }
}

/// Sends a prepared request to `provider` and waits for its head.
fn send_prepared(
    rt: &Runtime,
    provider: &Provider,
    prepared: &crate::provider::Prepared<'_>,
    head_deadline: Instant,
    cancel: Option<&AtomicBool>,
) -> Result<UpstreamResponse, ClientError> {
    let upstream_req = UpstreamRequest {
        method: prepared.method,
        endpoint: &provider.endpoint,
        target: prepared.target.clone(),
        headers: prepared.headers.clone(),
        body: &prepared.body,
        cancel,
    };
    let deadlines = Deadlines {
        connect: Duration::from_millis(rt.config.routing.connect_timeout_ms),
        head: head_deadline,
    };
    rt.client.send(&upstream_req, deadlines)
}

fn new_stream_relay(rt: &Runtime, relay: &Relay, provider: &Provider) -> StreamRelay {
    StreamRelay::new(
        Duration::from_millis(rt.config.server.stream_idle_timeout_ms),
        provider.response_shape(),
    )
    .with_signature_sink(SignatureSink {
        store: relay.signatures.clone(),
        family: provider.config.signature_family(),
    })
}

/// A provider's availability for planning: its own breaker, and in a fleet also a
/// circuit another instance opened within `open_duration_ms`.
fn fleet_availability(rt: &Runtime, relay: &Relay, index: usize, now: Instant) -> Availability {
    let local = rt.breakers[index].availability(now);
    let Some(shared) = &relay.shared else {
        return local;
    };
    if let Ok(Some(circuit)) = shared.circuit(rt.providers[index].name()) {
        let open_for = Duration::from_millis(rt.config.health.open_duration_ms);
        let opened = circuit.opened_at_ms.unwrap_or(0);
        let age = Duration::from_millis(now_unix_ms().saturating_sub(opened));
        if circuit.state == CircuitState::Open && age < open_for && local == Availability::Available
        {
            return Availability::Unavailable {
                opened_at: now.checked_sub(age).unwrap_or(now),
            };
        }
    }
    local
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
