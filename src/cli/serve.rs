//! `cc-relay serve`: start the relay with a loaded configuration and run until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::Config;
use crate::net::server::{Server, ServerHandle, ServerLimits};
use crate::relay::{Relay, Runtime};

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
    let relay = Arc::new(Relay::new(Runtime::new(config)?));
    let server =
        Server::bind(addr, limits, relay.clone()).map_err(|e| format!("listen on {addr}: {e}"))?;
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

/// Runs the server on `config` (flags already applied). `config_path` is the file it came
/// from, watched for hot reload; None for the embedded default. Returns the exit code.
pub fn serve(config: Config, config_path: Option<PathBuf>) -> i32 {
    let _ = config_path;
    match spawn(config, None) {
        Ok(running) => {
            eprintln!("cc-relay listening on http://{}", running.handle.addr);
            let _ = running.accept_thread.join();
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
