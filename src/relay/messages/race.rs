//! Race failover (SPEC §4.1): once the first choice failed, the remaining providers are
//! asked in parallel threads; the first 2xx (with its first event, for a stream) is
//! relayed and every other upstream connection is closed at once (racers watch a cancel
//! flag). Each racer treats its provider's keys as the sequential path does: a key that
//! answers 429, 401 or 403 is rested or marked bad and the same request goes to the
//! next key, and in a fleet every key's use is reserved in Redis first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{client_error_to_api, head_deadline_for, new_stream_relay, send_prepared, Attempt};
use super::{ProviderOutcome, StreamRelay};
use crate::config::ProviderType;
use crate::net::client::{ClientError, UpstreamResponse};
use crate::net::server::Request;
use crate::provider::{Inbound, Operation};
use crate::relay::error::ApiError;
use crate::relay::pool_key::{self, FleetGrant, FleetHold};
use crate::relay::{Relay, Runtime};
use crate::route::{Admission, KeyLease};

/// A provider that answered 2xx (and, for a stream, its first event) in a race.
struct Contender {
    index: usize,
    lease: Option<KeyLease>,
    fleet: Option<FleetHold>,
    upstream: UpstreamResponse,
    primed: Option<StreamRelay>,
    head_deadline: Instant,
    upstream_model: String,
}

/// What a racing thread needs: shared references only, no client socket.
#[derive(Clone, Copy)]
struct RaceContext<'a> {
    rt: &'a Runtime,
    relay: &'a Relay,
    req: &'a Request,
    op: Operation,
    model: &'a str,
    stream: bool,
    forwarded: Option<&'a crate::auth::client::ClientCredential>,
    estimate: u64,
    cancel: &'a AtomicBool,
}

/// A racer's result: the provider's answer, and how many upstream requests it took.
struct Entry {
    index: usize,
    attempts: u32,
    result: Result<Contender, ApiError>,
}

/// One racer: tries the provider's keys in turn until one is not refused; any other
/// error (or the race being decided) ends it.
fn contend(ctx: RaceContext<'_>, index: usize, body: &[u8]) -> Entry {
    let mut attempts = 0;
    let result = contend_with_keys(ctx, index, body, &mut attempts);
    Entry {
        index,
        attempts,
        result,
    }
}

fn contend_with_keys(
    ctx: RaceContext<'_>,
    index: usize,
    body: &[u8],
    attempts: &mut u32,
) -> Result<Contender, ApiError> {
    let rt = ctx.rt;
    let provider = &rt.providers[index];
    let pool = &rt.pools[index];
    let breaker = &rt.breakers[index];
    let admission = breaker.admit(Instant::now());
    if admission == Admission::Rejected {
        return Err(ApiError::new(
            503,
            format!("provider {} circuit is open", provider.name()),
        ));
    }
    let passes_through = ctx.forwarded.is_some() && provider.config.kind == ProviderType::Anthropic;
    let uses_pool = !pool.is_empty() && !passes_through;
    // The last refusal, relayed if no key is left.
    let mut refused: Option<ApiError> = None;
    loop {
        if ctx.cancel.load(Ordering::SeqCst) {
            breaker.on_abandoned(admission);
            return Err(ApiError::new(503, "the race was decided"));
        }
        let now = Instant::now();
        let lease = if uses_pool {
            match pool.acquire(now, ctx.estimate) {
                Ok(l) => Some(l),
                Err(_) => {
                    breaker.on_abandoned(admission);
                    return Err(refused.unwrap_or_else(|| {
                        ApiError::new(
                            429,
                            format!("provider {} has no key with headroom", provider.name()),
                        )
                    }));
                }
            }
        } else {
            None
        };
        let grant = lease
            .as_ref()
            .map(|l| pool_key::reserve(ctx.relay, provider, pool, l, ctx.estimate, now));
        let fleet = match grant {
            Some(FleetGrant::Go(hold)) => hold,
            Some(FleetGrant::Denied) => {
                if let Some(l) = lease {
                    pool.refund(l, now);
                }
                continue;
            }
            None => None,
        };
        // Gives the key's share back (here and in the fleet) when the attempt goes nowhere.
        let give_back = |lease: Option<KeyLease>, fleet: Option<FleetHold>| {
            if let Some(l) = lease {
                pool.refund(l, Instant::now());
            }
            pool_key::settle(ctx.relay, fleet, None);
        };
        // A transport error: the provider failed, unless the race was decided meanwhile
        // (then the winner closed this racer's socket).
        let lost = |lease: Option<KeyLease>, fleet: Option<FleetHold>, e: &ClientError| {
            give_back(lease, fleet);
            if ctx.cancel.load(Ordering::SeqCst) {
                breaker.on_abandoned(admission);
            } else {
                breaker.on_failure(Instant::now());
            }
            client_error_to_api(e)
        };
        let inbound = Inbound {
            body,
            model: ctx.model,
            stream: ctx.stream,
            headers: &ctx.req.head.headers,
            query: ctx.req.head.query(),
        };
        let prepared = match provider.prepare(
            ctx.op,
            &inbound,
            lease.as_ref().map(|l| l.secret()),
            ctx.forwarded,
            &rt.client,
        ) {
            Ok(p) => p,
            Err(e) => {
                give_back(lease, fleet);
                breaker.on_abandoned(admission);
                return Err(e);
            }
        };
        *attempts += 1;
        let head_deadline = head_deadline_for(rt, ctx.stream, ctx.req.deadline);
        let sent = send_prepared(rt, provider, &prepared, head_deadline, Some(ctx.cancel));
        let mut upstream = match sent {
            Ok(u) => u,
            Err(e) => return Err(lost(lease, fleet, &e)),
        };
        let status = upstream.status();
        if !(200..300).contains(&status) {
            let now = Instant::now();
            let key_refused = pool_key::learn_from_answer(
                ctx.relay,
                provider,
                pool,
                lease.as_ref(),
                &upstream,
                now,
            );
            upstream.abort();
            pool_key::settle(ctx.relay, fleet, None);
            let error = ApiError::new(
                status,
                format!("upstream {} answered {status}", provider.name()),
            );
            if key_refused {
                // The key's request counts against its window, as on the sequential path.
                if let Some(l) = lease {
                    pool.record_usage(l, 0, 0, now);
                }
                refused = Some(error);
                continue;
            }
            if let Some(l) = lease {
                pool.refund(l, now);
            }
            if status >= 500 {
                breaker.on_failure(now);
            } else {
                breaker.on_success(now);
            }
            return Err(error);
        }
        let primed = if ctx.stream {
            let mut relay = new_stream_relay(rt, ctx.relay, provider);
            if let Err(e) = relay.first_event(&mut upstream, head_deadline, Some(ctx.cancel)) {
                upstream.abort();
                return Err(lost(lease, fleet, &e));
            }
            Some(relay)
        } else {
            None
        };
        return Ok(Contender {
            index,
            lease,
            fleet,
            upstream,
            primed,
            head_deadline,
            upstream_model: prepared.upstream_model,
        });
    }
}

impl Attempt<'_, '_, '_> {
    /// Runs `indices` in parallel and relays the first winner.
    pub(super) fn race(&mut self, indices: &[usize]) -> ProviderOutcome {
        let bodies: Vec<Option<Vec<u8>>> = indices.iter().map(|&i| self.body_for(i)).collect();
        let cancel = AtomicBool::new(false);
        let ctx = RaceContext {
            rt: self.rt,
            relay: self.relay,
            req: self.req,
            op: self.op,
            model: self.inbound.model,
            stream: self.inbound.stream,
            forwarded: self.auth.forwarded_credential(),
            estimate: self.estimate,
            cancel: &cancel,
        };
        let original = self.inbound.body;
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::scope(|scope| {
            for (k, &index) in indices.iter().enumerate() {
                let racer_tx = tx.clone();
                let body = bodies[k].as_deref().unwrap_or(original);
                let spawned = std::thread::Builder::new()
                    .name("race".into())
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        let _ = racer_tx.send(contend(ctx, index, body));
                    });
                if spawned.is_err() {
                    let _ = tx.send(Entry {
                        index,
                        attempts: 0,
                        result: Err(ApiError::new(503, "could not start a racer")),
                    });
                }
            }
            drop(tx);
            let mut last_error = None;
            let mut outcome = None;
            for entry in rx.iter() {
                self.record.attempts += entry.attempts;
                match entry.result {
                    Ok(winner) if outcome.is_none() => {
                        cancel.store(true, Ordering::SeqCst);
                        let rt = self.rt;
                        self.record.provider_index = Some(winner.index);
                        self.record.provider = Some(rt.providers[winner.index].name().to_string());
                        self.record.upstream_model = Some(winner.upstream_model.clone());
                        self.record.key = winner
                            .lease
                            .as_ref()
                            .and_then(|l| rt.pools[winner.index].label(l.key()))
                            .map(str::to_string);
                        self.fleet = winner.fleet;
                        outcome = Some(self.relay_success(
                            winner.index,
                            winner.upstream,
                            winner.lease,
                            winner.head_deadline,
                            winner.primed,
                        ));
                    }
                    Ok(mut loser) => {
                        loser.upstream.abort();
                        if let Some(l) = loser.lease {
                            self.rt.pools[entry.index].refund(l, Instant::now());
                        }
                        pool_key::settle(self.relay, loser.fleet, None);
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            outcome.unwrap_or_else(|| match last_error {
                Some(e) => ProviderOutcome::Failed(e),
                None => ProviderOutcome::Failed(ApiError::new(
                    503,
                    "no provider could serve the request",
                )),
            })
        })
    }
}
