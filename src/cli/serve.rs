//! `cc-relay serve`: start the relay with a loaded configuration and run until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::serve_cmd::ServeOverrides;
use crate::config::{self, watch::ConfigWatcher, Config};
use crate::net::server::{Server, ServerHandle, ServerLimits};
use crate::net::tls::server_config_from_files;
use crate::obs::log::{self, LogSettings};
use crate::obs::metrics::Metrics;
use crate::relay::{Relay, Runtime};
use crate::state::shared::SharedState;
use crate::sys::{install_signal_handlers, Signal};

/// A server running on its own accept thread (tests and `serve` both start it this way).
pub struct Running {
    pub handle: ServerHandle,
    pub relay: Arc<Relay>,
    pub accept_thread: JoinHandle<()>,
}

/// Binds `config.server.listen` (or `listen` when given) and starts accepting.
pub fn spawn(config: Config, listen: Option<SocketAddr>) -> Result<Running, String> {
    let addr = listen.unwrap_or(config.server.listen);
    if !addr.ip().is_loopback()
        && config.server.auth.api_key.is_none()
        && config.server.auth.bearer_secret.is_none()
        && !config.server.auth.allow_unauthenticated
    {
        return Err(format!(
            "refusing to listen on {addr} without server.auth.api_key or bearer_secret; \
             set server.auth.allow_unauthenticated: true to allow it"
        ));
    }
    let limits = ServerLimits::from_config(&config.server);
    let tls = match &config.server.tls {
        Some(t) => Some(server_config_from_files(&t.cert_file, &t.key_file)?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let shared = SharedState::from_config(&config, Some(metrics.clone()))
        .map_err(|e| format!("cache.redis: {e}"))?
        .map(Arc::new);
    let relay = Arc::new(Relay::with_shared(
        Runtime::new(config, &metrics)?,
        metrics,
        shared,
    ));
    let mut server =
        Server::bind(addr, limits, relay.clone()).map_err(|e| format!("listen on {addr}: {e}"))?;
    if let Some(tls) = tls {
        server = server.with_tls(tls);
    }
    let handle = server.handle().map_err(|e| e.to_string())?;
    let accept_thread = std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || server.run())
        .map_err(|e| e.to_string())?;
    let prober_relay = relay.clone();
    std::thread::Builder::new()
        .name("health-prober".into())
        .spawn(move || run_health_prober(&prober_relay))
        .map_err(|e| e.to_string())?;
    Ok(Running {
        handle,
        relay,
        accept_thread,
    })
}

/// SPEC §4.3: every `health.health_check.interval_ms`, each provider whose circuit is
/// open gets one real request (`GET {base}/` through the same client, TLS included); any
/// HTTP answer means it is reachable again and its circuit goes half-open.
fn run_health_prober(relay: &Relay) {
    loop {
        let rt = relay.runtime();
        let health = &rt.config.health;
        let interval = Duration::from_millis(health.health_check_interval_ms.max(10));
        if health.health_check_enabled {
            let timeout = Duration::from_millis(rt.config.routing.connect_timeout_ms.max(100));
            for (i, provider) in rt.providers.iter().enumerate() {
                if !provider.config.enabled || !rt.breakers[i].wants_probe(Instant::now()) {
                    continue;
                }
                let url = provider.health_url();
                match rt
                    .client
                    .fetch("GET", &url, Vec::new(), b"", timeout, 64 * 1024)
                {
                    Ok((status, _)) => {
                        rt.breakers[i].probe_succeeded(Instant::now());
                        log::info(format_args!(
                            "provider {} answered its health probe ({status}); circuit half-open",
                            provider.name()
                        ));
                    }
                    Err(e) => log::debug(format_args!(
                        "provider {} health probe failed: {e}",
                        provider.name()
                    )),
                }
            }
        }
        drop(rt);
        std::thread::sleep(interval);
    }
}

/// How often the config file is polled for changes (SPEC §1.3).
const CONFIG_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the server on `config` (flags already applied) until SIGTERM/SIGINT, then
/// drains: in-flight requests get `server.drain_timeout_ms` to finish. Exit code 0 when
/// all finished, 1 when some had to be cut; a second signal exits at once.
/// `config_path` is the file the config came from (None for the embedded default); it is
/// watched, and a valid new version is swapped in with `overrides` applied again.
pub fn serve(config: Config, config_path: Option<PathBuf>, overrides: ServeOverrides) -> i32 {
    let signals = match install_signal_handlers() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    if let Err(e) = log::init(LogSettings::from_config(&config)) {
        eprintln!("error: logging: {e}");
        return 1;
    }
    let drain_timeout = Duration::from_millis(config.server.drain_timeout_ms);
    let running = match spawn(config, None) {
        Ok(r) => r,
        Err(e) => {
            log::error(format_args!("{e}"));
            return 1;
        }
    };
    let scheme = if running.relay.runtime().config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    log::info(format_args!(
        "cc-relay listening on {scheme}://{}",
        running.handle.addr
    ));
    let mut watcher = config_path.as_deref().map(ConfigWatcher::new);
    loop {
        let signal = match signals.recv_timeout(CONFIG_POLL_INTERVAL) {
            Ok(s) => Some(s),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Signal::Terminate),
        };
        match signal {
            Some(Signal::Terminate) => break,
            Some(Signal::Reload) => {
                let _ = log::reopen();
                if let (Some(path), Some(w)) = (&config_path, watcher.as_mut()) {
                    w.mark_loaded();
                    reload_config(&running, path, &overrides);
                }
                reload_tls(&running);
            }
            None => {
                if let (Some(path), Some(w)) = (&config_path, watcher.as_mut()) {
                    if w.poll() {
                        reload_config(&running, path, &overrides);
                        reload_tls(&running);
                    }
                }
            }
        }
    }
    log::info(format_args!(
        "cc-relay: draining (up to {} ms); a second signal stops at once",
        drain_timeout.as_millis()
    ));
    std::thread::spawn(move || {
        if let Ok(Signal::Terminate) = signals.recv() {
            log::warn("cc-relay: second signal, exiting now");
            std::process::exit(1);
        }
    });
    if running.handle.drain(drain_timeout) {
        0
    } else {
        log::warn("cc-relay: drain timeout passed with requests still running; they were cut");
        1
    }
}

/// Loads `path` again; a valid file replaces the runtime (in-flight requests finish on
/// the old one) keeping key-pool usage, cooldowns and circuit states of what still
/// exists. An invalid file is reported line by line and the old config stays.
pub fn reload_config(running: &Running, path: &std::path::Path, overrides: &ServeOverrides) {
    let metrics = &running.relay.metrics;
    let loaded = match config::load_file(path) {
        Ok(l) => l,
        Err(diagnostics) => {
            log::error(format_args!(
                "config reload of {} rejected; keeping the running config",
                path.display()
            ));
            for d in diagnostics {
                log::error(format_args!("{d}"));
            }
            metrics.record_reload(false);
            return;
        }
    };
    for w in &loaded.warnings {
        log::warn(format_args!("{w}"));
    }
    let mut new_config = loaded.config;
    overrides.apply(&mut new_config);
    let old = running.relay.runtime();
    if new_config.server.listen != old.config.server.listen {
        log::warn(format_args!(
            "server.listen changed to {}; it takes effect after a restart (still on {})",
            new_config.server.listen, running.handle.addr
        ));
    }
    if new_config.server.tls.is_some() != old.config.server.tls.is_some() {
        log::warn("server.tls was added or removed; that takes effect after a restart");
    }
    let log_settings = LogSettings::from_config(&new_config);
    let mut runtime = match Runtime::new(new_config, metrics) {
        Ok(rt) => rt,
        Err(e) => {
            log::error(format_args!("config reload rejected: {e}"));
            metrics.record_reload(false);
            return;
        }
    };
    runtime.carry_over_from(&old);
    let names: Vec<String> = runtime
        .providers
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    running.relay.swap(runtime);
    metrics.retain_providers(&names);
    let _ = log::reconfigure(log_settings);
    metrics.record_reload(true);
    log::info(format_args!("config reloaded from {}", path.display()));
}

/// Re-reads the TLS certificate and key so a rotated certificate is served to new
/// connections; a broken pair keeps the old one.
fn reload_tls(running: &Running) {
    let rt = running.relay.runtime();
    let Some(tls) = &rt.config.server.tls else {
        return;
    };
    match server_config_from_files(&tls.cert_file, &tls.key_file) {
        Ok(config) => running.handle.set_tls(Some(config)),
        Err(e) => log::error(format_args!(
            "TLS reload failed, keeping the old certificate: {e}"
        )),
    }
}
