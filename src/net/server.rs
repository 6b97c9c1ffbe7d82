//! The listener and its connection threads. One named thread per client connection
//! (bounded by `max_connections`) reads request heads and bodies within their limits and
//! deadlines, hands each complete request to the `Handler`, and answers pipelined requests
//! in order. Everything about what a request means belongs to the handler (`relay`);
//! this file only knows HTTP/1.1 framing, limits and the connection's life.
//!
//! Life of a connection: wait for the first byte (`idle_timeout`) -> read the head
//! (`header_timeout`, 64 KiB, 431 past it) -> `Expect: 100-continue` -> read the body
//! (`max_body_bytes`, 413 past it) -> `Handler::handle` (a panic there is caught and
//! answered 500) -> keep-alive: loop, else close.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::codec::chunked::{self, ChunkedDecoder};
use crate::codec::http1::{self, BodyFraming, HeadError, RequestHead};
use crate::net::transport::{is_timeout, Transport};
use crate::relay::error::ApiError;

pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
const CONN_STACK_SIZE: usize = 512 * 1024;

/// What a connection thread needs to know; taken from `server.*` in the config.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: u64,
    pub max_connections: usize,
    /// 0 = unlimited.
    pub max_concurrent: usize,
}

impl ServerLimits {
    pub fn from_config(server: &crate::config::ServerConfig) -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_millis(server.header_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
            request_timeout: Duration::from_millis(server.timeout_ms),
            max_body_bytes: server.max_body_bytes,
            max_connections: server.max_connections.max(1) as usize,
            max_concurrent: server.max_concurrent as usize,
        }
    }
}

/// A complete request as the handler sees it.
pub struct Request {
    pub head: RequestHead,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
    /// The client's `x-request-id` when it sent a sane one, else a fresh `req_…` id.
    pub id: String,
    pub received_at: Instant,
    /// Whole-request deadline (`server.timeout_ms`), streams included.
    pub deadline: Instant,
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request, resp: &mut ResponseWriter<'_>);

    /// A client connection opened (+1) or closed (-1); for gauges.
    fn connections_changed(&self, _delta: i64) {}
}

/// Counters the server keeps about itself (read by metrics and tests).
#[derive(Default)]
pub struct ServerStats {
    pub open_connections: AtomicUsize,
    pub inflight_requests: AtomicUsize,
    /// Set on shutdown: idle connections close, busy ones close after their response.
    pub draining: AtomicBool,
}

/// The listener's TLS config, swapped whole when certificate files are re-read.
pub type TlsSlot = Arc<RwLock<Option<Arc<rustls::ServerConfig>>>>;

/// How long an idle wait lasts before it looks at the drain flag again.
const DRAIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);

pub struct Server {
    listener: TcpListener,
    limits: ServerLimits,
    handler: Arc<dyn Handler>,
    stats: Arc<ServerStats>,
    stop: Arc<AtomicBool>,
    tls: TlsSlot,
}

/// Controls a running server from another thread.
#[derive(Clone)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub stats: Arc<ServerStats>,
    stop: Arc<AtomicBool>,
    tls: TlsSlot,
}

impl ServerHandle {
    /// Stops accepting new connections; the listening socket is closed.
    pub fn stop_accepting(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wake the blocking accept so it sees the flag and drops the listener.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }

    /// Graceful stop: refuse new connections, close idle ones, and wait until every
    /// open connection finished its request or `timeout` passed. Returns whether all
    /// finished in time.
    pub fn drain(&self, timeout: Duration) -> bool {
        self.stats.draining.store(true, Ordering::SeqCst);
        self.stop_accepting();
        let deadline = Instant::now() + timeout;
        while self.stats.open_connections.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// New connections use `config` from now on (certificate rotation).
    pub fn set_tls(&self, config: Option<Arc<rustls::ServerConfig>>) {
        match self.tls.write() {
            Ok(mut slot) => *slot = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

impl Server {
    pub fn bind(
        addr: SocketAddr,
        limits: ServerLimits,
        handler: Arc<dyn Handler>,
    ) -> io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr)?,
            limits,
            handler,
            stats: Arc::new(ServerStats::default()),
            stop: Arc::new(AtomicBool::new(false)),
            tls: Arc::new(RwLock::new(None)),
        })
    }

    /// Serve HTTPS with `config` instead of plain HTTP.
    pub fn with_tls(self, config: Arc<rustls::ServerConfig>) -> Server {
        if let Ok(mut slot) = self.tls.write() {
            *slot = Some(config);
        }
        self
    }

    pub fn handle(&self) -> io::Result<ServerHandle> {
        Ok(ServerHandle {
            addr: self.listener.local_addr()?,
            stats: self.stats.clone(),
            stop: self.stop.clone(),
            tls: self.tls.clone(),
        })
    }

    /// Accepts until `stop_accepting`; each connection runs on its own thread.
    pub fn run(self) {
        let conn_ids = AtomicU64::new(0);
        for incoming in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let stream = match incoming {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    continue;
                }
            };
            let open = self.stats.open_connections.fetch_add(1, Ordering::SeqCst) + 1;
            if open > self.limits.max_connections {
                self.stats.open_connections.fetch_sub(1, Ordering::SeqCst);
                refuse_connection(stream);
                continue;
            }
            let id = conn_ids.fetch_add(1, Ordering::Relaxed);
            let tls = self.tls.read().ok().and_then(|slot| slot.clone());
            let limits = self.limits.clone();
            let handler = self.handler.clone();
            let stats = self.stats.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("conn-{id}"))
                .stack_size(CONN_STACK_SIZE)
                .spawn(move || {
                    let _guard = OpenConnection(stats.clone(), handler.clone());
                    handler.connections_changed(1);
                    let peer = stream
                        .peer_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    let _ = stream.set_nodelay(true);
                    let transport = match tls {
                        None => Transport::plain(stream),
                        Some(config) => {
                            match tls_handshake(stream, config, limits.header_timeout) {
                                Some(t) => t,
                                // A failed handshake only costs that connection.
                                None => return,
                            }
                        }
                    };
                    let mut conn = Connection {
                        transport,
                        peer,
                        limits,
                        handler,
                        stats,
                        buf: Vec::with_capacity(8192),
                    };
                    conn.serve();
                });
            if spawned.is_err() {
                self.stats.open_connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn tls_handshake(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Option<Transport> {
    let conn = rustls::ServerConnection::new(config).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let deadline = Instant::now() + timeout;
    while tls.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        tls.sock.set_read_timeout(Some(left)).ok()?;
        tls.sock.set_write_timeout(Some(left)).ok()?;
        tls.conn.complete_io(&mut tls.sock).ok()?;
    }
    Some(Transport::tls_server(tls))
}

struct OpenConnection(Arc<ServerStats>, Arc<dyn Handler>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.1.connections_changed(-1);
        self.0.open_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refuse_connection(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let err = ApiError::new(503, "too many open connections");
    let mut out = Vec::new();
    let id = new_request_id();
    write_error_response(&mut out, &err, &id, false);
    let _ = stream.write_all(&out);
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `req_` + 24 hex digits, unique per process and unpredictable enough for correlation.
pub fn new_request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = process_seed();
    let a = splitmix64(seed ^ n);
    let b = splitmix64(a ^ 0x9e37_79b9_7f4a_7c15);
    format!("req_{:016x}{:08x}", a, b as u32)
}

fn process_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = f.read_exact(&mut bytes);
        }
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        u64::from_le_bytes(bytes) ^ t ^ (std::process::id() as u64) << 32
    })
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn client_request_id(head: &RequestHead) -> Option<String> {
    let v = head.headers.get_str("x-request-id")?;
    let sane = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| v.to_string())
}

fn write_error_response(out: &mut Vec<u8>, err: &ApiError, request_id: &str, keep_alive: bool) {
    let body = err.body();
    let len = body.len().to_string();
    let retry = err.retry_after.map(|s| s.to_string());
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("content-type", b"application/json"),
        ("content-length", len.as_bytes()),
        ("request-id", request_id.as_bytes()),
    ];
    if let Some(r) = &retry {
        headers.push(("retry-after", r.as_bytes()));
    }
    if !keep_alive {
        headers.push(("connection", b"close"));
    }
    http1::write_response_head(out, err.status, headers);
    out.extend_from_slice(&body);
}

struct Connection {
    transport: Transport,
    peer: SocketAddr,
    limits: ServerLimits,
    handler: Arc<dyn Handler>,
    stats: Arc<ServerStats>,
    /// Bytes received but not yet consumed: the start of the next pipelined request.
    buf: Vec<u8>,
}

enum ReadHead {
    Head(RequestHead, usize),
    /// The client closed or stayed silent between requests: just close.
    Closed,
    Reject(ApiError),
}

impl Connection {
    fn serve(&mut self) {
        loop {
            let (head, head_len) = match self.read_head() {
                ReadHead::Head(h, len) => (h, len),
                ReadHead::Closed => return,
                ReadHead::Reject(err) => {
                    self.send_error(&err, &new_request_id(), false);
                    return;
                }
            };
            let received_at = Instant::now();
            let id = client_request_id(&head).unwrap_or_else(new_request_id);
            self.buf.drain(..head_len);
            let body = match self.read_body(&head) {
                Ok(b) => b,
                Err(err) => {
                    self.send_error(&err, &id, false);
                    return;
                }
            };
            let keep_alive = head.wants_keep_alive();
            let req = Request {
                head,
                body,
                peer: self.peer,
                id,
                received_at,
                deadline: received_at + self.limits.request_timeout,
            };
            if !self.dispatch(&req, keep_alive) || !keep_alive {
                return;
            }
        }
    }

    /// Runs the handler; returns whether the connection can carry another request.
    fn dispatch(&mut self, req: &Request, keep_alive: bool) -> bool {
        let inflight = self.stats.inflight_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let _inflight = InflightGuard(self.stats.clone());
        if self.limits.max_concurrent > 0 && inflight > self.limits.max_concurrent {
            let err = ApiError::new(503, "too many requests in flight; try again shortly")
                .with_retry_after(1);
            return self.send_error(&err, &req.id, keep_alive) && keep_alive;
        }
        let _ = self
            .transport
            .write_by(Instant::now() + self.limits.idle_timeout.max(Duration::from_secs(30)));
        let mut writer =
            ResponseWriter::new(&mut self.transport, keep_alive, req.head.method == "HEAD");
        let outcome = catch_unwind(AssertUnwindSafe(|| self.handler.handle(req, &mut writer)));
        let draining = self.stats.draining.load(Ordering::SeqCst);
        match outcome {
            Ok(()) => writer.finished_cleanly() && keep_alive && !draining,
            Err(_) => {
                if !writer.is_committed() {
                    let err = ApiError::new(500, "internal error while handling the request");
                    let _ = writer.send_error(&err, &req.id);
                }
                false
            }
        }
    }

    fn send_error(&mut self, err: &ApiError, request_id: &str, keep_alive: bool) -> bool {
        let mut out = Vec::new();
        write_error_response(&mut out, err, request_id, keep_alive);
        let _ = self
            .transport
            .write_by(Instant::now() + Duration::from_secs(5));
        self.transport
            .write_all(&out)
            .and_then(|_| self.transport.flush())
            .is_ok()
    }

    /// Reads until a complete head is buffered, within the idle and head deadlines.
    fn read_head(&mut self) -> ReadHead {
        let mut deadline = Instant::now() + self.limits.idle_timeout;
        let mut started = !self.buf.is_empty();
        if started {
            deadline = Instant::now() + self.limits.header_timeout;
        }
        loop {
            if started {
                // Tolerate blank lines before a request line (RFC 9112 §2.2).
                while self.buf.starts_with(b"\r\n") {
                    self.buf.drain(..2);
                }
                match http1::parse_request_head(&self.buf, MAX_REQUEST_HEAD) {
                    Ok(Some((head, len))) => return ReadHead::Head(head, len),
                    Ok(None) => {}
                    Err(HeadError::TooLarge) => {
                        return ReadHead::Reject(ApiError::new(431, "request head too large"))
                    }
                    Err(e) => return ReadHead::Reject(ApiError::invalid_request(e.to_string())),
                }
            }
            // Between requests, wake up now and then to see whether we are draining.
            let wait_until = if started {
                deadline
            } else {
                if self.stats.draining.load(Ordering::SeqCst) {
                    return ReadHead::Closed;
                }
                deadline.min(Instant::now() + DRAIN_CHECK_INTERVAL)
            };
            if self.transport.read_by(wait_until).is_err() {
                // The slice may have run out while this thread waited for a core; only
                // the real deadline ends the wait.
                if Instant::now() < deadline {
                    continue;
                }
                return self.head_timed_out(started);
            }
            let mut chunk = [0u8; 8192];
            match self.transport.read(&mut chunk) {
                Ok(0) => return ReadHead::Closed,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if !started {
                        started = true;
                        deadline = Instant::now() + self.limits.header_timeout;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && !started && Instant::now() < deadline => {}
                Err(e) if is_timeout(&e) => return self.head_timed_out(started),
                Err(_) => return ReadHead::Closed,
            }
        }
    }

    fn head_timed_out(&self, started: bool) -> ReadHead {
        if started {
            ReadHead::Reject(ApiError::new(408, "timed out reading the request head"))
        } else {
            ReadHead::Closed
        }
    }

    fn read_body(&mut self, head: &RequestHead) -> Result<Vec<u8>, ApiError> {
        let framing = http1::request_body_framing(head)
            .map_err(|e| ApiError::invalid_request(e.to_string()))?;
        let max = self.limits.max_body_bytes;
        let too_large = || ApiError::new(413, format!("request body exceeds the {max}-byte limit"));
        if let BodyFraming::Length(n) = framing {
            if n > max {
                return Err(too_large());
            }
        }
        if framing == BodyFraming::None {
            return Ok(Vec::new());
        }
        let expects_continue = head
            .headers
            .get("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects_continue && self.buf.is_empty() {
            let _ = self
                .transport
                .write_by(Instant::now() + self.limits.header_timeout);
            self.transport
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ApiError::invalid_request("client went away"))?;
        }
        let overall = Instant::now() + self.limits.request_timeout;
        let mut body = Vec::new();
        let mut decoder = ChunkedDecoder::new();
        let mut left = match framing {
            BodyFraming::Length(n) => n,
            _ => 0,
        };
        loop {
            match framing {
                BodyFraming::Length(_) => {
                    let take = (left as usize).min(self.buf.len());
                    body.extend(self.buf.drain(..take));
                    left -= take as u64;
                    if left == 0 {
                        return Ok(body);
                    }
                }
                _ => {
                    let used = decoder
                        .decode(&self.buf, &mut body)
                        .map_err(|e| ApiError::invalid_request(format!("chunked body: {e}")))?;
                    self.buf.drain(..used);
                    if body.len() as u64 > max {
                        return Err(too_large());
                    }
                    if decoder.is_done() {
                        return Ok(body);
                    }
                }
            }
            // A body must keep moving: each read gets `header_timeout`, the whole body
            // the request deadline.
            let deadline = overall.min(Instant::now() + self.limits.header_timeout);
            if self.transport.read_by(deadline).is_err() {
                return Err(ApiError::new(408, "timed out reading the request body"));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.transport.read(&mut chunk) {
                Ok(0) => {
                    return Err(ApiError::invalid_request(
                        "client closed before the body ended",
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(ApiError::new(408, "timed out reading the request body"))
                }
                Err(_) => return Err(ApiError::invalid_request("client connection failed")),
            }
        }
    }
}

struct InflightGuard(Arc<ServerStats>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight_requests.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterState {
    Fresh,
    Streaming,
    Done,
    Broken,
}

/// Writes one response: either whole (`send`) or streamed as chunks (`start_stream`,
/// `stream_write` per event, `end_stream`). Every write is flushed at once.
pub struct ResponseWriter<'a> {
    transport: &'a mut Transport,
    state: WriterState,
    keep_alive: bool,
    head_only: bool,
    status: u16,
    scratch: Vec<u8>,
}

impl<'a> ResponseWriter<'a> {
    fn new(transport: &'a mut Transport, keep_alive: bool, head_only: bool) -> Self {
        ResponseWriter {
            transport,
            state: WriterState::Fresh,
            keep_alive,
            head_only,
            status: 0,
            scratch: Vec::with_capacity(4096),
        }
    }

    pub fn is_committed(&self) -> bool {
        self.state != WriterState::Fresh
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    fn finished_cleanly(&self) -> bool {
        self.state == WriterState::Done
    }

    /// Whether the client has closed its side of the connection.
    pub fn client_gone(&self) -> bool {
        self.state == WriterState::Broken || self.transport.peer_closed()
    }

    fn flush_scratch(&mut self) -> io::Result<()> {
        let result = self
            .transport
            .write_all(&self.scratch)
            .and_then(|_| self.transport.flush());
        self.scratch.clear();
        if result.is_err() {
            self.state = WriterState::Broken;
        }
        result
    }

    fn head(&mut self, status: u16, headers: &[(String, Vec<u8>)], framing: (&str, &[u8])) {
        self.status = status;
        let mut list: Vec<(&str, &[u8])> = headers
            .iter()
            .filter(|(n, _)| {
                !http1::is_hop_by_hop(n)
                    && !n.eq_ignore_ascii_case("content-length")
                    && !n.eq_ignore_ascii_case("connection")
            })
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        list.push(framing);
        if !self.keep_alive {
            list.push(("connection", b"close"));
        }
        http1::write_response_head(&mut self.scratch, status, list);
    }

    /// A whole response with `content-length`.
    pub fn send(
        &mut self,
        status: u16,
        headers: &[(String, Vec<u8>)],
        body: &[u8],
    ) -> io::Result<()> {
        if self.state != WriterState::Fresh {
            return Err(io::Error::other("response already started"));
        }
        let len = body.len().to_string();
        self.head(status, headers, ("content-length", len.as_bytes()));
        if !self.head_only {
            self.scratch.extend_from_slice(body);
        }
        self.state = WriterState::Done;
        self.flush_scratch()
    }

    pub fn send_error(&mut self, err: &ApiError, request_id: &str) -> io::Result<()> {
        let mut headers = vec![
            ("content-type".to_string(), b"application/json".to_vec()),
            ("request-id".to_string(), request_id.as_bytes().to_vec()),
        ];
        if let Some(s) = err.retry_after {
            headers.push(("retry-after".to_string(), s.to_string().into_bytes()));
        }
        self.send(err.status, &headers, &err.body())
    }

    /// Sends the head of a chunked response; the body follows with `stream_write`.
    pub fn start_stream(&mut self, status: u16, headers: &[(String, Vec<u8>)]) -> io::Result<()> {
        if self.state != WriterState::Fresh {
            return Err(io::Error::other("response already started"));
        }
        self.head(status, headers, ("transfer-encoding", b"chunked"));
        self.state = WriterState::Streaming;
        // The head waits for the first chunk so both leave in one write: the client
        // wakes once for the head and the first event.
        Ok(())
    }

    /// Writes `data` as one chunk and flushes it to the client now.
    pub fn stream_write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.state != WriterState::Streaming {
            return Err(io::Error::other("no stream in progress"));
        }
        if data.is_empty() || self.head_only {
            return Ok(());
        }
        chunked::encode_chunk(data, &mut self.scratch);
        self.flush_scratch()
    }

    /// Ends a chunked body with the last chunk.
    pub fn end_stream(&mut self) -> io::Result<()> {
        if self.state != WriterState::Streaming {
            return Err(io::Error::other("no stream in progress"));
        }
        if !self.head_only {
            self.scratch.extend_from_slice(chunked::LAST_CHUNK);
        }
        self.state = WriterState::Done;
        self.flush_scratch()
    }
}
