//! The request pipeline (DESIGN.md "The request pipeline"): authenticate, route by path,
//! and for the Messages API run the attempt loop of `messages`. Holds the `Runtime`
//! snapshot — config, providers, upstream client — that a reload swaps whole.

pub mod endpoints;
pub mod error;
pub mod messages;
pub mod pool_key;
pub mod stream;
pub mod thinking;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::auth::client::{authenticate, AuthDecision};
use crate::config::{CacheMode, Config};
use crate::net::client::{tls_client_config, HttpClient, ProxySettings};
use crate::net::server::{Handler, Request, ResponseWriter};
use crate::obs::log::RequestLogRecord;
use crate::obs::metrics::{Metrics, ProviderMetrics};
use crate::provider::{Operation, Provider};
use crate::route::{BreakerSettings, CircuitBreaker, KeyPool, Router};
use crate::state::shared::SharedState;
use crate::state::signatures::{FleetSignatures, SignatureBackend, SignatureStore};
use error::ApiError;

/// Everything a request needs, built once per config; requests hold an `Arc` to the
/// snapshot they started with, so a reload never changes a request midway.
pub struct Runtime {
    pub config: Config,
    /// Aligned with `config.providers` (disabled ones included).
    pub providers: Vec<Provider>,
    /// Metric handles, aligned with `providers`.
    pub provider_metrics: Vec<Arc<ProviderMetrics>>,
    /// Routing state, aligned with `providers`.
    pub router: Router,
    pub breakers: Vec<CircuitBreaker>,
    pub pools: Vec<KeyPool>,
    pub client: HttpClient,
    /// Upstream model lists by provider index, with when they were fetched.
    pub models_cache: Mutex<HashMap<usize, (Instant, Vec<serde_json::Value>)>>,
}

impl Runtime {
    pub fn new(config: Config, metrics: &Metrics) -> Result<Runtime, String> {
        let ca_file = config.server.upstream_ca_file.clone().or_else(|| {
            std::env::var("CC_RELAY_CA_FILE")
                .ok()
                .filter(|v| !v.is_empty())
        });
        let tls = tls_client_config(ca_file.as_deref(), config.server.upstream_ca_only)?;
        let proxy = ProxySettings::from_env(|k| std::env::var(k).ok());
        let client = HttpClient::new(tls, proxy)
            .with_resolver(config.server.resolver)
            .with_tls_logging(config.logging.log_tls_metrics);
        let providers = config
            .providers
            .iter()
            .map(|p| Provider::new(p.clone()).map_err(|e| format!("providers.{}: {e}", p.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let provider_metrics = providers
            .iter()
            .map(|p| metrics.provider(p.name()))
            .collect();
        let now = Instant::now();
        let settings = BreakerSettings::from_config(&config.health);
        let breakers = providers
            .iter()
            .map(|_| CircuitBreaker::new(settings))
            .collect();
        let pools = config
            .providers
            .iter()
            .map(|p| KeyPool::new(&p.keys, p.key_strategy, now))
            .collect();
        Ok(Runtime {
            router: Router::new(&config),
            config,
            providers,
            provider_metrics,
            breakers,
            pools,
            client,
            models_cache: Mutex::new(HashMap::new()),
        })
    }

    /// After a reload: providers that still exist (by name) keep their circuit state,
    /// and keys that still exist (by secret) keep their usage, cooldowns and learned
    /// limits. Call before the runtime is shared.
    pub fn carry_over_from(&mut self, old: &Runtime) {
        let now = Instant::now();
        for (i, p) in self.config.providers.iter().enumerate() {
            let Some(j) = old.config.providers.iter().position(|o| o.name == p.name) else {
                continue;
            };
            if let (Some(new), Some(prev)) = (self.breakers.get_mut(i), old.breakers.get(j)) {
                new.carry_over_from(prev);
            }
            if let (Some(new), Some(prev)) = (self.pools.get_mut(i), old.pools.get(j)) {
                new.carry_over_from(prev, now);
            }
        }
        self.router.carry_over_from(&old.router);
        // The upstream client is not carried over: a reload may change the CA file,
        // resolver or proxy settings, so connections are made afresh.
    }
}

/// What one request did, for the log line and metrics.
#[derive(Debug, Default, Clone)]
pub struct RequestRecord {
    pub model: Option<String>,
    pub upstream_model: Option<String>,
    pub provider: Option<String>,
    pub key: Option<String>,
    pub attempts: u32,
    /// Index into `Runtime::providers` of the provider that answered (or failed last).
    pub provider_index: Option<usize>,
    pub stream_events: u64,
    pub ttfb_ms: Option<u64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

pub struct Relay {
    runtime: RwLock<Arc<Runtime>>,
    /// Outlives reloads: counters never go back to zero while the process runs.
    pub metrics: Arc<Metrics>,
    /// Which signature family issued each thinking signature seen (SPEC §4.4); outlives
    /// reloads like the metrics.
    pub signatures: Arc<dyn SignatureBackend>,
    /// Fleet state on Redis (`cache.mode: ha`): key windows, cooldowns, circuits.
    pub shared: Option<Arc<SharedState>>,
}

impl Relay {
    pub fn new(runtime: Runtime, metrics: Arc<Metrics>) -> Relay {
        Relay::with_shared(runtime, metrics, None)
    }

    pub fn with_shared(
        runtime: Runtime,
        metrics: Arc<Metrics>,
        shared: Option<Arc<SharedState>>,
    ) -> Relay {
        let budget = match runtime.config.cache.mode {
            CacheMode::Disabled => 0,
            _ => runtime.config.cache.max_bytes,
        };
        let local = SignatureStore::new(budget);
        let signatures: Arc<dyn SignatureBackend> = match &shared {
            Some(shared) => Arc::new(FleetSignatures {
                local,
                shared: shared.clone(),
            }),
            None => Arc::new(local),
        };
        Relay {
            runtime: RwLock::new(Arc::new(runtime)),
            metrics,
            signatures,
            shared,
        }
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(rt) => rt.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn swap(&self, runtime: Runtime) {
        let new = Arc::new(runtime);
        match self.runtime.write() {
            Ok(mut rt) => *rt = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

impl Handler for Relay {
    fn handle(&self, req: &Request, resp: &mut ResponseWriter<'_>) {
        let rt = self.runtime();
        let mut record = RequestRecord::default();
        let counted = req.head.path().starts_with("/v1/");
        let inflight = counted.then(|| self.metrics.track_inflight());
        let logging = &rt.config.logging;
        if logging.log_request_body && !req.body.is_empty() {
            // body_preview redacts before it cuts, so no secret survives half-cut.
            let preview =
                crate::obs::log::body_preview(&req.body, logging.max_body_log_size as usize);
            crate::obs::log::info(format_args!("request {} body: {preview}", req.id));
        }
        route_request(&rt, self, req, resp, &mut record);
        drop(inflight);
        if counted {
            self.count(&rt, req, resp.status(), &record);
        }
        log_request(req, resp.status(), &record);
    }

    fn connections_changed(&self, delta: i64) {
        self.metrics.add_open_connections(delta);
    }
}

impl Relay {
    fn count(&self, rt: &Runtime, req: &Request, status: u16, record: &RequestRecord) {
        let handle = match record
            .provider_index
            .and_then(|i| rt.provider_metrics.get(i))
        {
            Some(h) => h.clone(),
            // Answered before any provider was chosen (auth, bad JSON).
            None => self.metrics.provider("none"),
        };
        handle.count_request(status);
        handle.observe_duration(req.received_at.elapsed());
        if let Some(ms) = record.ttfb_ms {
            handle.observe_ttfb(Duration::from_millis(ms));
        }
        if record.stream_events > 0 {
            handle.add_stream_events(record.stream_events);
        }
        if let (Some(key), input, output) = (&record.key, record.input_tokens, record.output_tokens)
        {
            if input.is_some() || output.is_some() {
                handle.add_tokens(key, input.unwrap_or(0), output.unwrap_or(0));
            }
        }
    }
}

fn route_request(
    rt: &Runtime,
    relay: &Relay,
    req: &Request,
    resp: &mut ResponseWriter<'_>,
    record: &mut RequestRecord,
) {
    let path = req.head.path();
    let method = req.head.method.as_str();
    let allowed: &[&str] = match path {
        "/v1/messages" | "/v1/messages/count_tokens" => &["POST"],
        "/v1/models" | "/v1/providers" | "/metrics" => &["GET"],
        "/health" | "/api/hello" => &["GET", "HEAD"],
        _ => {
            let err = ApiError::new(404, format!("no route for {path}"));
            let _ = resp.send_error(&err, &req.id);
            return;
        }
    };
    if !allowed.contains(&method) {
        let err = ApiError::new(405, format!("method {method} not allowed on {path}"));
        let _ = resp.send_error(&err, &req.id);
        return;
    }
    let needs_auth =
        path.starts_with("/v1/") || (path == "/metrics" && !req.peer.ip().is_loopback());
    let decision = if needs_auth {
        authenticate(&rt.config.server.auth, &req.head.headers)
    } else {
        AuthDecision::Open
    };
    if let AuthDecision::Rejected(why) = decision {
        let _ = resp.send_error(&ApiError::new(401, why), &req.id);
        return;
    }
    match path {
        "/v1/messages" => {
            messages::handle(rt, relay, req, resp, Operation::Messages, &decision, record)
        }
        "/v1/messages/count_tokens" => messages::handle(
            rt,
            relay,
            req,
            resp,
            Operation::CountTokens,
            &decision,
            record,
        ),
        "/v1/models" => endpoints::models(rt, req, resp, decision.forwarded_credential()),
        "/v1/providers" => endpoints::providers(rt, req, resp),
        "/health" => endpoints::health(rt, req, resp),
        "/api/hello" => endpoints::hello(req, resp),
        _ => endpoints::metrics(rt, &relay.metrics, req, resp),
    }
}

/// One line per request (SPEC §6), through the logger's redaction choke point. Only
/// key labels are ever passed, never keys.
fn log_request(req: &Request, status: u16, record: &RequestRecord) {
    let mut line = RequestLogRecord::new(&req.id, &req.head.method, req.head.path());
    line.model = record.model.as_deref();
    line.upstream_model = record.upstream_model.as_deref();
    line.provider = record.provider.as_deref();
    line.key = record.key.as_deref();
    line.status = status;
    line.attempts = record.attempts;
    line.ttfb_ms = record.ttfb_ms;
    line.duration_ms = req.received_at.elapsed().as_millis() as u64;
    line.input_tokens = record.input_tokens;
    line.output_tokens = record.output_tokens;
    crate::obs::log::request(&line);
}
