//! `cc-relay serve`: start the relay with a loaded configuration and run until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::net::server::{Server, ServerHandle, ServerLimits};
use crate::net::tls::server_config_from_files;
use crate::obs::metrics::Metrics;
use crate::relay::{Relay, Runtime};
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
    let relay = Arc::new(Relay::new(Runtime::new(config, &metrics)?, metrics));
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
    Ok(Running {
        handle,
        relay,
        accept_thread,
    })
}

/// Runs the server on `config` (flags already applied) until SIGTERM/SIGINT, then
/// drains: in-flight requests get `server.drain_timeout_ms` to finish. Exit code 0 when
/// all finished, 1 when some had to be cut; a second signal exits at once.
/// `config_path` is the file the config came from (None for the embedded default).
pub fn serve(config: Config, config_path: Option<PathBuf>) -> i32 {
    let _ = config_path;
    let signals = match install_signal_handlers() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let drain_timeout = Duration::from_millis(config.server.drain_timeout_ms);
    let running = match spawn(config, None) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let scheme = if running.relay.runtime().config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!("cc-relay listening on {scheme}://{}", running.handle.addr);
    while let Ok(Signal::Reload) = signals.recv() {
        reload_tls(&running);
    }
    eprintln!(
        "cc-relay: draining (up to {} ms); a second signal stops at once",
        drain_timeout.as_millis()
    );
    std::thread::spawn(move || {
        if let Ok(Signal::Terminate) = signals.recv() {
            eprintln!("cc-relay: second signal, exiting now");
            std::process::exit(1);
        }
    });
    if running.handle.drain(drain_timeout) {
        0
    } else {
        eprintln!("cc-relay: drain timeout passed with requests still running; they were cut");
        1
    }
}

/// Re-reads the TLS certificate and key so a rotated certificate is served to new
/// connections; a broken pair keeps the old one.
fn reload_tls(running: &Running) {
    let rt = running.relay.runtime();
    let Some(tls) = &rt.config.server.tls else {
        return;
    };
    match server_config_from_files(&tls.cert_file, &tls.key_file) {
        Ok(config) => {
            running.handle.set_tls(Some(config));
            eprintln!("cc-relay: TLS certificate reloaded");
        }
        Err(e) => eprintln!("cc-relay: TLS reload failed, keeping the old certificate: {e}"),
    }
}
