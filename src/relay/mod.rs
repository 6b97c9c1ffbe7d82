//! The request pipeline (DESIGN.md "The request pipeline"): authenticate, route by path,
//! and for the Messages API run the attempt loop of `messages`. Holds the `Runtime`
//! snapshot — config, providers, upstream client — that a reload swaps whole.

pub mod endpoints;
pub mod error;
pub mod messages;
pub mod stream;
pub mod thinking;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::auth::client::{authenticate, AuthDecision};
use crate::config::Config;
use crate::net::client::{tls_client_config, HttpClient, ProxySettings};
use crate::net::server::{Handler, Request, ResponseWriter};
use crate::provider::{Operation, Provider};
use error::ApiError;

/// Everything a request needs, built once per config; requests hold an `Arc` to the
/// snapshot they started with, so a reload never changes a request midway.
pub struct Runtime {
    pub config: Config,
    /// Aligned with `config.providers` (disabled ones included).
    pub providers: Vec<Provider>,
    pub client: HttpClient,
}

impl Runtime {
    pub fn new(config: Config) -> Result<Runtime, String> {
        let ca_file = config.server.upstream_ca_file.clone().or_else(|| {
            std::env::var("CC_RELAY_CA_FILE")
                .ok()
                .filter(|v| !v.is_empty())
        });
        let tls = tls_client_config(ca_file.as_deref(), config.server.upstream_ca_only)?;
        let proxy = ProxySettings::from_env(|k| std::env::var(k).ok());
        let client = HttpClient::new(tls, proxy);
        let providers = config
            .providers
            .iter()
            .map(|p| Provider::new(p.clone()).map_err(|e| format!("providers.{}: {e}", p.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Runtime {
            config,
            providers,
            client,
        })
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
    pub ttfb_ms: Option<u64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

pub struct Relay {
    runtime: RwLock<Arc<Runtime>>,
}

impl Relay {
    pub fn new(runtime: Runtime) -> Relay {
        Relay {
            runtime: RwLock::new(Arc::new(runtime)),
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
        route_request(&rt, req, resp, &mut record);
        log_request(req, resp.status(), &record);
    }
}

fn route_request(
    rt: &Runtime,
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
        "/v1/messages" => messages::handle(rt, req, resp, Operation::Messages, &decision, record),
        "/v1/messages/count_tokens" => {
            messages::handle(rt, req, resp, Operation::CountTokens, &decision, record)
        }
        "/v1/models" => endpoints::models(rt, req, resp),
        "/v1/providers" => endpoints::providers(rt, req, resp),
        "/health" => endpoints::health(rt, req, resp),
        "/api/hello" => endpoints::hello(req, resp),
        _ => endpoints::metrics(rt, req, resp),
    }
}

/// One line per request (SPEC §6). Never prints a credential: only key labels.
fn log_request(req: &Request, status: u16, record: &RequestRecord) {
    let duration_ms = Instant::now().duration_since(req.received_at).as_millis();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let num = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    eprintln!(
        "{} request_id={} method={} path={} model={} upstream_model={} provider={} key={} status={} attempts={} ttfb_ms={} duration_ms={} input_tokens={} output_tokens={}",
        unix_ts(),
        req.id,
        req.head.method,
        req.head.path(),
        opt(&record.model),
        opt(&record.upstream_model),
        opt(&record.provider),
        opt(&record.key),
        status,
        record.attempts,
        num(record.ttfb_ms),
        duration_ms,
        num(record.input_tokens),
        num(record.output_tokens),
    );
}

fn unix_ts() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}
