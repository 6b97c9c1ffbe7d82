//! The upstream HTTP/1.1 client: connect (TCP, optional CONNECT proxy, TLS with SNI),
//! send one request, read the response head by a deadline, and hand back a body reader
//! that de-chunks as bytes arrive. Connections whose response was read to the end go
//! back to a per-host keep-alive pool; anything left half-read is closed, never reused.
//!
//! Call order: `HttpClient::send` -> `UpstreamResponse::head` -> `read_some` until it
//! returns 0 (or `read_to_end`) -> drop (pools or closes the connection).
//! Never sends `X-Forwarded-For` or anything about the client: callers pass the exact
//! header list that goes upstream.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::codec::chunked::ChunkedDecoder;
use crate::codec::http1::{self, BodyFraming, ResponseHead};
use crate::config::ResolverMode;
use crate::net::resolver::Resolver;
use crate::net::transport::{is_timeout, Transport};

const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Idle keep-alive connections kept per upstream host; sized for a busy Claude Code team
/// (64 concurrent requests reuse their connections instead of reconnecting).
const MAX_IDLE_PER_HOST: usize = 64;
/// Bytes asked of the socket per body read.
const READ_CHUNK: usize = 16 * 1024;
/// A pooled connection idle longer than this is not trusted (servers close idle ones).
const POOL_IDLE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum ClientError {
    /// DNS, TCP connect or TLS handshake failed, or the proxy refused.
    Connect(String),
    /// A deadline passed (connect, response head, body).
    Timeout(&'static str),
    /// The connection broke or the peer answered something that is not HTTP.
    Io(String),
    Protocol(String),
    /// The URL cannot be used (scheme, host).
    BadUrl(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(m) => write!(f, "connect failed: {m}"),
            ClientError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            ClientError::Io(m) => write!(f, "connection error: {m}"),
            ClientError::Protocol(m) => write!(f, "invalid upstream response: {m}"),
            ClientError::BadUrl(m) => write!(f, "invalid URL: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Where requests go: scheme, host, port and a base path prefix (`/api/anthropic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub base_path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(ClientError::BadUrl(format!(
                "{url}: scheme must be http or https"
            )));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(ClientError::BadUrl(
                "credentials in URLs are not supported".into(),
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| ClientError::BadUrl(format!("{url}: unterminated [")))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| ClientError::BadUrl(format!("{url}: bad port")))?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .map_err(|_| ClientError::BadUrl(format!("{url}: bad port")))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(ClientError::BadUrl(format!("{url}: no host")));
        }
        Ok(Endpoint {
            https,
            host,
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host[:port]` as the Host header carries it (default port left out).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn pool_key(&self) -> String {
        format!(
            "{}://{}:{}",
            if self.https { "https" } else { "http" },
            self.host,
            self.port
        )
    }
}

/// Proxy settings from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either case).
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    pub https_proxy: Option<Endpoint>,
    pub http_proxy: Option<Endpoint>,
    pub no_proxy: Vec<String>,
}

impl ProxySettings {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> ProxySettings {
        let var = |upper: &str| {
            get(upper)
                .or_else(|| get(&upper.to_ascii_lowercase()))
                .filter(|v| !v.is_empty())
        };
        let endpoint = |v: Option<String>| {
            v.and_then(|u| {
                let u = if u.contains("://") {
                    u
                } else {
                    format!("http://{u}")
                };
                Endpoint::parse(&u).ok()
            })
        };
        ProxySettings {
            https_proxy: endpoint(var("HTTPS_PROXY")),
            http_proxy: endpoint(var("HTTP_PROXY")),
            no_proxy: var("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn for_endpoint(&self, ep: &Endpoint) -> Option<&Endpoint> {
        let host = ep.host.to_ascii_lowercase();
        let bypass = self.no_proxy.iter().any(|rule| {
            if rule == "*" {
                return true;
            }
            let rule = rule.split(':').next().unwrap_or(rule);
            let rule = rule.trim_start_matches('.');
            host == rule || host.ends_with(&format!(".{rule}"))
        });
        if bypass {
            return None;
        }
        if ep.https {
            self.https_proxy.as_ref()
        } else {
            self.http_proxy.as_ref()
        }
    }
}

/// TLS trust for upstreams: the built-in webpki roots, plus (or only) a PEM bundle.
pub fn tls_client_config(
    ca_file: Option<&str>,
    ca_only: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if !ca_only {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = ca_file {
        for cert in read_pem_certificates(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {path}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path` (a file without one is an error too);
/// errors name the file as a CA file.
pub fn read_pem_certificates(
    path: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("CA file {path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("CA file {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("CA file {path}: no certificates found"));
    }
    Ok(certs)
}

struct IdleConn {
    transport: Transport,
    since: Instant,
}

type Pool = Mutex<HashMap<String, Vec<IdleConn>>>;

/// Shared by every connection thread; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    proxy: Arc<ProxySettings>,
    pool: Arc<Pool>,
    resolver: ResolverMode,
    /// `logging.debug_options.log_tls_metrics`: log each upstream TLS handshake.
    log_tls: bool,
}

/// One upstream request: everything but the host comes from the caller verbatim.
pub struct UpstreamRequest<'a> {
    pub method: &'a str,
    pub endpoint: &'a Endpoint,
    /// Path (already including the endpoint's base path) and query, as sent on the wire.
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: &'a [u8],
    /// Set by another thread to give up waiting (a lost failover race): the connection
    /// is closed within `CANCEL_CHECK_INTERVAL`.
    pub cancel: Option<&'a AtomicBool>,
}

/// How often a cancellable wait looks at its cancel flag.
pub const CANCEL_CHECK_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub connect: Duration,
    /// The response head must have arrived by then.
    pub head: Instant,
}

impl HttpClient {
    pub fn new(tls: Arc<rustls::ClientConfig>, proxy: ProxySettings) -> HttpClient {
        HttpClient {
            tls,
            proxy: Arc::new(proxy),
            pool: Arc::new(Mutex::new(HashMap::new())),
            resolver: ResolverMode::Auto,
            log_tls: false,
        }
    }

    /// Logs every upstream TLS handshake (host, duration, version, cipher suite).
    pub fn with_tls_logging(mut self, on: bool) -> HttpClient {
        self.log_tls = on;
        self
    }

    /// How host names are looked up (`server.resolver`).
    pub fn with_resolver(mut self, mode: ResolverMode) -> HttpClient {
        self.resolver = mode;
        self
    }

    /// Idle pooled connections to `endpoint` (for metrics and tests).
    pub fn idle_connections(&self, endpoint: &Endpoint) -> usize {
        self.pool
            .lock()
            .map(|p| p.get(&endpoint.pool_key()).map_or(0, Vec::len))
            .unwrap_or(0)
    }

    fn take_idle(&self, key: &str) -> Option<Transport> {
        let mut pool = self.pool.lock().ok()?;
        let conns = pool.get_mut(key)?;
        while let Some(c) = conns.pop() {
            if c.since.elapsed() < POOL_IDLE_LIMIT && !c.transport.peer_closed() {
                return Some(c.transport);
            }
        }
        None
    }

    fn connect(&self, ep: &Endpoint, timeout: Duration) -> Result<Transport, ClientError> {
        let proxy = self.proxy.for_endpoint(ep);
        let (dial_host, dial_port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (ep.host.as_str(), ep.port),
        };
        let tcp = dial(dial_host, dial_port, timeout, self.resolver)?;
        let _ = tcp.set_nodelay(true);
        let mut tcp = tcp;
        if let (Some(_), true) = (proxy, ep.https) {
            proxy_connect(&mut tcp, ep, Instant::now() + timeout)?;
        }
        if !ep.https {
            return Ok(Transport::plain(tcp));
        }
        let name = rustls_pki_types::ServerName::try_from(ep.host.clone())
            .map_err(|_| ClientError::BadUrl(format!("invalid TLS server name {}", ep.host)))?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), name)
            .map_err(|e| ClientError::Connect(format!("TLS setup: {e}")))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Handshake now, inside the connect budget, so TLS failures count as connect errors.
        let _ = tls.sock.set_read_timeout(Some(timeout));
        let _ = tls.sock.set_write_timeout(Some(timeout));
        let started = Instant::now();
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| match is_timeout(&e) {
                    true => ClientError::Timeout("TLS handshake"),
                    false => ClientError::Connect(format!("TLS handshake with {}: {e}", ep.host)),
                })?;
        }
        if self.log_tls {
            crate::obs::log::info(format_args!(
                "TLS handshake with {}:{} took {} us ({:?}, {:?})",
                ep.host,
                ep.port,
                started.elapsed().as_micros(),
                tls.conn.protocol_version(),
                tls.conn.negotiated_cipher_suite().map(|s| s.suite()),
            ));
        }
        Ok(Transport::tls_client(tls))
    }

    /// Sends `req` and waits for the response head. A reused pooled connection that
    /// fails before any response byte is replaced by a fresh one once (the server may
    /// have closed it while idle); a fresh connection's failure is returned.
    pub fn send(
        &self,
        req: &UpstreamRequest<'_>,
        deadlines: Deadlines,
    ) -> Result<UpstreamResponse, ClientError> {
        let key = req.endpoint.pool_key();
        let wire = self.encode(req);
        if let Some(conn) = self.take_idle(&key) {
            match self.exchange(conn, &wire, req, deadlines) {
                Ok(resp) => return Ok(resp),
                Err((false, _)) => {}
                Err((true, e)) => return Err(e),
            }
        }
        let conn = self.connect(req.endpoint, deadlines.connect)?;
        self.exchange(conn, &wire, req, deadlines)
            .map_err(|(_, e)| e)
    }

    fn encode(&self, req: &UpstreamRequest<'_>) -> Vec<u8> {
        let via_http_proxy = !req.endpoint.https && self.proxy.for_endpoint(req.endpoint).is_some();
        let mut out = Vec::with_capacity(512 + req.body.len());
        out.extend_from_slice(req.method.as_bytes());
        out.push(b' ');
        if via_http_proxy {
            out.extend_from_slice(b"http://");
            out.extend_from_slice(req.endpoint.authority().as_bytes());
        }
        out.extend_from_slice(req.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        http1::write_header(&mut out, "host", req.endpoint.authority().as_bytes());
        for (name, value) in &req.headers {
            if http1::is_hop_by_hop(name)
                || name.eq_ignore_ascii_case("host")
                || name.eq_ignore_ascii_case("content-length")
            {
                continue;
            }
            http1::write_header(&mut out, name, value);
        }
        if req.body.is_empty() && req.method.eq_ignore_ascii_case("GET") {
            // GET without a body carries no length.
        } else {
            http1::write_header(
                &mut out,
                "content-length",
                req.body.len().to_string().as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(req.body);
        out
    }

    /// Err((true, e)): the response had started or the request may have been processed,
    /// do not retry. Err((false, e)): nothing came back, a retry on a new connection is safe.
    fn exchange(
        &self,
        mut conn: Transport,
        wire: &[u8],
        req: &UpstreamRequest<'_>,
        deadlines: Deadlines,
    ) -> Result<UpstreamResponse, (bool, ClientError)> {
        let io_err = |e: io::Error, what: &'static str| {
            if is_timeout(&e) {
                ClientError::Timeout(what)
            } else {
                ClientError::Io(e.to_string())
            }
        };
        conn.write_by(deadlines.head)
            .map_err(|e| (true, io_err(e, "upstream request write")))?;
        conn.write_all(wire)
            .and_then(|_| conn.flush())
            .map_err(|e| (false, io_err(e, "upstream request write")))?;
        let mut buf = Vec::with_capacity(8192);
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((head, len)) = http1::parse_response_head(&buf, MAX_RESPONSE_HEAD)
                .map_err(|e| (true, ClientError::Protocol(e.to_string())))?
            {
                if (100..200).contains(&head.status) && head.status != 101 {
                    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
                    buf.drain(..len);
                    continue;
                }
                let framing = http1::response_body_framing(req.method, &head)
                    .map_err(|e| (true, ClientError::Protocol(e.to_string())))?;
                let keep_alive = head.minor_version >= 1
                    && !head.headers.has_token("connection", "close")
                    && framing != BodyFraming::UntilClose;
                buf.drain(..len);
                let body = BodyState::new(framing, buf);
                return Ok(UpstreamResponse {
                    head,
                    conn: Some(conn),
                    body,
                    keep_alive,
                    pool: self.pool.clone(),
                    pool_key: req.endpoint.pool_key(),
                    scratch: Vec::new(),
                });
            }
            let wait_until = match req.cancel {
                Some(_) => deadlines.head.min(Instant::now() + CANCEL_CHECK_INTERVAL),
                None => deadlines.head,
            };
            if let Err(e) = conn.read_by(wait_until) {
                // A cancel-check slice may run out while we wait for a core; only the
                // head deadline itself ends the wait.
                if Instant::now() >= deadlines.head {
                    return Err((true, io_err(e, "upstream response head")));
                }
                if req.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                    conn.shutdown();
                    return Err((
                        true,
                        ClientError::Io("cancelled: another provider answered first".into()),
                    ));
                }
                continue;
            }
            match conn.read(&mut chunk) {
                Ok(0) => {
                    return Err((
                        !buf.is_empty(),
                        ClientError::Io("upstream closed the connection before answering".into()),
                    ))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && Instant::now() < deadlines.head => {
                    if req.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                        conn.shutdown();
                        return Err((
                            true,
                            ClientError::Io("cancelled: another provider answered first".into()),
                        ));
                    }
                }
                Err(e) => {
                    return Err((
                        !buf.is_empty() || is_timeout(&e),
                        io_err(e, "upstream response head"),
                    ))
                }
            }
        }
    }
}

impl HttpClient {
    /// One whole request to `url` and its whole answer (at most `limit` bytes), for the
    /// small calls around the relay: token endpoints, metadata servers, model lists.
    pub fn fetch(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(String, Vec<u8>)>,
        body: &[u8],
        timeout: Duration,
        limit: usize,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let endpoint = Endpoint::parse(url)?;
        let deadline = Instant::now() + timeout;
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_else(|| "/".to_string());
        let req = UpstreamRequest {
            method,
            endpoint: &endpoint,
            target: path,
            headers,
            body,
            cancel: None,
        };
        let mut resp = self.send(
            &req,
            Deadlines {
                connect: timeout,
                head: deadline,
            },
        )?;
        let status = resp.status();
        let body = resp.read_to_end(limit, deadline)?;
        Ok((status, body))
    }
}

/// Our own stub resolver (hosts file + resolv.conf), built on first use and shared.
fn builtin_resolver() -> &'static Resolver {
    static RESOLVER: OnceLock<Resolver> = OnceLock::new();
    RESOLVER.get_or_init(Resolver::system)
}

/// Whether name lookups use our resolver: always for `builtin`, never for `system`, and
/// for `auto` when this is a static build (whose getaddrinfo would load the host's NSS
/// modules, built for another libc).
pub fn uses_builtin_resolver(mode: ResolverMode) -> bool {
    match mode {
        ResolverMode::Builtin => true,
        ResolverMode::System => false,
        ResolverMode::Auto => cfg!(target_feature = "crt-static"),
    }
}

/// Resolves `host` (our stub resolver or the system's, per `mode`) and connects to the
/// first address that answers by `deadline`. Shared by upstreams and Redis.
pub fn connect_tcp(
    host: &str,
    port: u16,
    deadline: Instant,
    mode: ResolverMode,
) -> io::Result<TcpStream> {
    if uses_builtin_resolver(mode) {
        return builtin_resolver().connect(host, port, deadline);
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no addresses"));
    for addr in &addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect deadline passed",
            ));
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if is_timeout(&e) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn dial(
    host: &str,
    port: u16,
    timeout: Duration,
    mode: ResolverMode,
) -> Result<TcpStream, ClientError> {
    connect_tcp(host, port, Instant::now() + timeout, mode).map_err(|e| {
        if is_timeout(&e) {
            ClientError::Timeout("DNS or TCP connect")
        } else {
            ClientError::Connect(format!("{host}:{port}: {e}"))
        }
    })
}

fn proxy_connect(tcp: &mut TcpStream, ep: &Endpoint, deadline: Instant) -> Result<(), ClientError> {
    let authority = format!("{}:{}", ep.host, ep.port);
    let req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    tcp.write_all(req.as_bytes())
        .map_err(|e| ClientError::Connect(format!("proxy: {e}")))?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte at a time so no tunnelled byte is consumed past the proxy's head.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout("proxy CONNECT"));
        }
        let _ = tcp.set_read_timeout(Some(left));
        match tcp.read(&mut byte) {
            Ok(0) => return Err(ClientError::Connect("proxy closed during CONNECT".into())),
            Ok(_) => buf.push(byte[0]),
            Err(e) if is_timeout(&e) => return Err(ClientError::Timeout("proxy CONNECT")),
            Err(e) => return Err(ClientError::Connect(format!("proxy: {e}"))),
        }
        if buf.ends_with(b"\r\n\r\n") {
            break;
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(ClientError::Connect("proxy answer too large".into()));
        }
    }
    match http1::parse_response_head(&buf, MAX_RESPONSE_HEAD) {
        Ok(Some((head, _))) if (200..300).contains(&head.status) => Ok(()),
        Ok(Some((head, _))) => Err(ClientError::Connect(format!(
            "proxy refused CONNECT with status {}",
            head.status
        ))),
        _ => Err(ClientError::Connect(
            "proxy answered something that is not HTTP".into(),
        )),
    }
}

enum BodyState {
    Done,
    Length {
        left: u64,
        pending: Vec<u8>,
    },
    Chunked {
        decoder: ChunkedDecoder,
        pending: Vec<u8>,
    },
    UntilClose {
        pending: Vec<u8>,
    },
}

impl BodyState {
    fn new(framing: BodyFraming, pending: Vec<u8>) -> BodyState {
        match framing {
            BodyFraming::None | BodyFraming::Length(0) => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length { left: n, pending },
            BodyFraming::Chunked => BodyState::Chunked {
                decoder: ChunkedDecoder::new(),
                pending,
            },
            BodyFraming::UntilClose => BodyState::UntilClose { pending },
        }
    }
}

/// A response whose head has arrived; the body is read on demand.
pub struct UpstreamResponse {
    pub head: ResponseHead,
    conn: Option<Transport>,
    body: BodyState,
    keep_alive: bool,
    pool: Arc<Pool>,
    pool_key: String,
    scratch: Vec<u8>,
}

impl UpstreamResponse {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn is_body_done(&self) -> bool {
        matches!(self.body, BodyState::Done)
    }

    /// Appends the next body bytes to `out`, waiting until `deadline` for them. Returns
    /// how many were appended; 0 means the body is complete. `Timeout` leaves the
    /// response usable: the caller may check other things and call again.
    pub fn read_some(
        &mut self,
        out: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, ClientError> {
        loop {
            // First drain bytes that arrived with the head or a previous read.
            let (produced, finished) = self.drain_pending(out)?;
            if finished {
                self.finish_body();
            }
            if produced > 0 || matches!(self.body, BodyState::Done) {
                return Ok(produced);
            }
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| ClientError::Io("connection already closed".into()))?;
            conn.read_by(deadline)
                .map_err(|_| ClientError::Timeout("upstream body"))?;
            // A reused heap buffer: no 16 KiB to zero on every read.
            let chunk = &mut self.scratch;
            chunk.resize(READ_CHUNK, 0);
            let n = match conn.read(chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(ClientError::Timeout("upstream body")),
                // rustls reports a peer that closed without close_notify this way; for
                // read-until-close bodies that is how the body ends.
                Err(e)
                    if e.kind() == io::ErrorKind::UnexpectedEof
                        && matches!(self.body, BodyState::UntilClose { .. }) =>
                {
                    0
                }
                Err(e) => {
                    self.conn = None;
                    return Err(ClientError::Io(e.to_string()));
                }
            };
            if n == 0 {
                if let BodyState::UntilClose { .. } = self.body {
                    self.body = BodyState::Done;
                    self.conn = None;
                    return Ok(0);
                }
                self.conn = None;
                return Err(ClientError::Io(
                    "upstream closed the connection before the body ended".into(),
                ));
            }
            match &mut self.body {
                BodyState::Length { pending, .. }
                | BodyState::Chunked { pending, .. }
                | BodyState::UntilClose { pending } => {
                    pending.extend_from_slice(&self.scratch[..n])
                }
                BodyState::Done => {}
            }
        }
    }

    /// Reads the whole body, failing when it exceeds `limit` bytes.
    pub fn read_to_end(&mut self, limit: usize, deadline: Instant) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        while self.read_some(&mut out, deadline)? > 0 {
            if out.len() > limit {
                return Err(ClientError::Protocol(format!(
                    "body larger than {limit} bytes"
                )));
            }
        }
        Ok(out)
    }

    /// Moves buffered body bytes to `out`. Returns (bytes produced, body finished).
    fn drain_pending(&mut self, out: &mut Vec<u8>) -> Result<(usize, bool), ClientError> {
        match &mut self.body {
            BodyState::Done => Ok((0, false)),
            BodyState::Length { left, pending } => {
                let take = (*left).min(pending.len() as u64) as usize;
                out.extend_from_slice(&pending[..take]);
                pending.drain(..take);
                *left -= take as u64;
                Ok((take, *left == 0))
            }
            BodyState::Chunked { decoder, pending } => {
                if pending.is_empty() {
                    return Ok((0, false));
                }
                let before = out.len();
                let used = decoder
                    .decode(pending, out)
                    .map_err(|e| ClientError::Protocol(format!("chunked body: {e}")))?;
                pending.drain(..used);
                let done = decoder.is_done();
                if !done && used == 0 && !pending.is_empty() {
                    return Err(ClientError::Protocol("chunked body stalled".into()));
                }
                Ok((out.len() - before, done))
            }
            BodyState::UntilClose { pending } => {
                let n = pending.len();
                out.append(pending);
                Ok((n, false))
            }
        }
    }

    fn finish_body(&mut self) {
        let leftover = match &self.body {
            BodyState::Length { pending, .. } | BodyState::Chunked { pending, .. } => {
                !pending.is_empty()
            }
            _ => false,
        };
        self.body = BodyState::Done;
        if leftover {
            // Bytes after the body that we did not ask for: the connection is not clean.
            self.keep_alive = false;
        }
    }

    /// Closes the connection now (e.g. the client went away or a race was lost).
    pub fn abort(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.shutdown();
        }
    }
}

impl UpstreamResponse {
    /// Ends this response's use of the connection now: back to the pool when the body
    /// was read to its end on a keep-alive connection, closed otherwise. Dropping the
    /// response does the same; calling this first lets the next request reuse it sooner.
    pub fn release(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.keep_alive || !matches!(self.body, BodyState::Done) {
            conn.shutdown();
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            let idle = pool.entry(self.pool_key.clone()).or_default();
            if idle.len() < MAX_IDLE_PER_HOST {
                idle.push(IdleConn {
                    transport: conn,
                    since: Instant::now(),
                });
            }
        }
    }
}

impl Drop for UpstreamResponse {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_parsing() {
        let ep = Endpoint::parse("https://api.z.ai/api/anthropic/").unwrap();
        assert_eq!(
            ep,
            Endpoint {
                https: true,
                host: "api.z.ai".into(),
                port: 443,
                base_path: "/api/anthropic".into()
            }
        );
        let ep = Endpoint::parse("http://[::1]:8080").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.base_path.as_str()),
            ("::1", 8080, "")
        );
        assert_eq!(ep.authority(), "[::1]:8080");
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://u:p@x").is_err());
        assert!(Endpoint::parse("http://x:notaport").is_err());
    }

    #[test]
    fn no_proxy_rules() {
        let env = |k: &str| match k {
            "HTTPS_PROXY" => Some("proxy.local:3128".to_string()),
            "no_proxy" => Some("localhost,.internal, example.com".to_string()),
            _ => None,
        };
        let p = ProxySettings::from_env(env);
        let ep = |u: &str| Endpoint::parse(u).unwrap();
        assert!(p.for_endpoint(&ep("https://api.anthropic.com")).is_some());
        assert!(p.for_endpoint(&ep("https://a.internal")).is_none());
        assert!(p.for_endpoint(&ep("https://sub.example.com")).is_none());
        assert!(p.for_endpoint(&ep("https://localhost:1")).is_none());
        assert!(p.for_endpoint(&ep("http://api.anthropic.com")).is_none());
    }
}
