//! Our own synchronous Redis (or Valkey) client, RESP2 over TCP or TLS (rustls): URL
//! parsing (`redis://[user:pass@]host:port/db`, `rediss://` for TLS), a small connection
//! pool, a deadline on every call, pipelining, `AUTH` (password or ACL user + password),
//! `SELECT`, and Lua scripts run with `EVALSHA` and re-loaded on `NOSCRIPT`. It owns the
//! conversation with the server only: what the keys mean is `state::shared`, the bytes
//! are `codec::resp2`, and it never logs (callers decide what an error is worth) nor
//! prints the password (`Display`/`Debug` of the URL and of commands redact it).
//!
//! Call order: `RedisClient::new(url, RedisOptions::default())` (no I/O yet), then from
//! any thread `client.query(&Cmd::new("GET").arg(key), client.deadline())`,
//! `client.pipeline(&[..], deadline)` (N commands in one write, N replies read back) or
//! `client.eval(&script, &keys, &args, deadline)`. Every call, connecting included, ends
//! by its deadline: the pool wait, TCP connect, TLS handshake, `AUTH`/`SELECT`, the
//! write and every read are bounded by it.
//!
//! Connections: a new one is authenticated and switched to its database in one round
//! trip before it carries commands, so a failed `SELECT` can never let a command run on
//! the wrong database. After a call that read exactly its replies, the connection goes
//! back to the pool; after any error, timeout or stray byte it is closed, because its
//! position in the reply stream is no longer known. A pooled connection the server has
//! closed meanwhile (restart, idle timeout) is noticed by a non-blocking peek and
//! replaced before use.
//!
//! Name resolution uses the system resolver through `ToSocketAddrs` (only for a new
//! connection, and not bounded by the deadline); IP literals involve no lookup.

use crate::config::ResolverMode;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec::resp2::{encode_command, Resp2Decoder, Resp2Error, Resp2Limits, Value};
use crate::net::transport::{is_timeout, Transport};

/// The port Redis listens on unless the URL says otherwise.
pub const DEFAULT_PORT: u16 = 6379;

const READ_CHUNK: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------
// Errors

/// Why a call failed. No variant ever carries the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisError {
    /// The URL cannot be used.
    BadUrl(String),
    /// Name lookup, TCP connect or TLS setup failed.
    Connect(String),
    /// The call's deadline passed (pool wait, connect, write or read).
    Timeout(&'static str),
    /// The connection broke (closed by the server, reset).
    Io(String),
    /// The server sent something that is not RESP2, or not what the command returns.
    Protocol(String),
    /// Authentication failed or is missing (`WRONGPASS`, `NOAUTH`, AUTH without a
    /// configured password).
    Auth(String),
    /// The server answered the command with an error reply.
    Server(String),
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::BadUrl(m) => write!(f, "invalid Redis URL: {m}"),
            RedisError::Connect(m) => write!(f, "cannot connect to Redis: {m}"),
            RedisError::Timeout(what) => write!(f, "Redis deadline passed while {what}"),
            RedisError::Io(m) => write!(f, "Redis connection error: {m}"),
            RedisError::Protocol(m) => write!(f, "invalid reply from Redis: {m}"),
            RedisError::Auth(m) => write!(f, "Redis authentication failed: {m}"),
            RedisError::Server(m) => write!(f, "Redis error: {m}"),
        }
    }
}

impl std::error::Error for RedisError {}

impl From<Resp2Error> for RedisError {
    fn from(e: Resp2Error) -> Self {
        RedisError::Protocol(e.to_string())
    }
}

fn io_error(e: io::Error, while_doing: &'static str) -> RedisError {
    if is_timeout(&e) {
        RedisError::Timeout(while_doing)
    } else {
        RedisError::Io(format!("{while_doing}: {e}"))
    }
}

// ---------------------------------------------------------------------------------------
// URL

/// A parsed `redis://` / `rediss://` URL. `Display` and `Debug` show the password as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// ACL user; `None` authenticates as the default user.
    pub username: Option<String>,
    password: Option<Vec<u8>>,
    pub db: u32,
}

impl RedisUrl {
    /// `redis://[[user]:pass@]host[:port][/db]`; `rediss://` for TLS. User and password
    /// may be percent-encoded (`p%40ss` for `p@ss`). Error messages never quote the
    /// password.
    pub fn parse(url: &str) -> Result<RedisUrl, RedisError> {
        let (tls, rest) = if let Some(r) = strip_prefix_ignore_case(url, "rediss://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ignore_case(url, "redis://") {
            (false, r)
        } else {
            return Err(RedisError::BadUrl(
                "must start with redis:// or rediss://".into(),
            ));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let Some((user, pass)) = info.split_once(':') else {
                    return Err(RedisError::BadUrl(
                        "a user needs a password: redis://user:password@host".into(),
                    ));
                };
                let user = percent_decode(user)
                    .and_then(|u| String::from_utf8(u).ok())
                    .ok_or_else(|| RedisError::BadUrl("invalid percent-encoding in user".into()))?;
                let pass = percent_decode(pass).ok_or_else(|| {
                    RedisError::BadUrl("invalid percent-encoding in password".into())
                })?;
                ((!user.is_empty()).then_some(user), Some(pass))
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let db = match tail {
            "" | "/" => 0,
            _ => {
                let Some(path) = tail.strip_prefix('/') else {
                    return Err(RedisError::BadUrl(
                        "query and fragment are not supported".into(),
                    ));
                };
                path.parse::<u32>().map_err(|_| {
                    RedisError::BadUrl(format!("database must be a number, got '/{path}'"))
                })?
            }
        };
        Ok(RedisUrl {
            tls,
            host,
            port,
            username,
            password,
            db,
        })
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The URL with the password replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = match (&self.username, &self.password) {
            (Some(user), Some(_)) => format!("{user}:***@"),
            (None, Some(_)) => ":***@".to_string(),
            _ => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{auth}{host}:{}/{}", self.port, self.db)
    }

    /// `host:port` for error messages.
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The commands that prepare a new connection: AUTH (when there is a password) and
    /// SELECT (when the database is not 0).
    fn handshake(&self) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        if let Some(password) = &self.password {
            let mut auth = Cmd::new("AUTH");
            if let Some(user) = &self.username {
                auth = auth.arg(user.as_str());
            }
            cmds.push(auth.arg(password.as_slice()));
        }
        if self.db != 0 {
            cmds.push(Cmd::new("SELECT").arg(self.db));
        }
        cmds
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted())
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn split_host_port(hostport: &str) -> Result<(String, u16), RedisError> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| RedisError::BadUrl("unterminated '[' in host".into()))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(RedisError::BadUrl("junk after ']' in host".into())),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(RedisError::BadUrl("no host".into()));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(RedisError::BadUrl(format!("bad port '{p}'"))),
        },
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Commands and scripts

/// One command: its name and arguments, each sent as a bulk string. `Debug` shows the
/// name and argument count only (an `AUTH` carries the password).
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    args: Vec<Vec<u8>>,
}

/// What can be a command argument: text, bytes and integers (sent in decimal).
pub trait RedisArg {
    fn into_arg(self) -> Vec<u8>;
}

impl RedisArg for &str {
    fn into_arg(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl RedisArg for String {
    fn into_arg(self) -> Vec<u8> {
        self.into_bytes()
    }
}

impl RedisArg for &String {
    fn into_arg(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl RedisArg for &[u8] {
    fn into_arg(self) -> Vec<u8> {
        self.to_vec()
    }
}

impl RedisArg for Vec<u8> {
    fn into_arg(self) -> Vec<u8> {
        self
    }
}

macro_rules! integer_arg {
    ($($t:ty),*) => {$(
        impl RedisArg for $t {
            fn into_arg(self) -> Vec<u8> {
                self.to_string().into_bytes()
            }
        }
    )*};
}
integer_arg!(u32, u64, i64, usize);

impl Cmd {
    pub fn new(name: &str) -> Cmd {
        Cmd {
            args: vec![name.as_bytes().to_vec()],
        }
    }

    pub fn arg(mut self, arg: impl RedisArg) -> Cmd {
        self.args.push(arg.into_arg());
        self
    }

    /// The name first, then the arguments.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.args
    }

    fn name(&self) -> String {
        let name = self.args.first().map(|n| n.as_slice()).unwrap_or(b"");
        String::from_utf8_lossy(name).to_ascii_uppercase()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_command(out, &self.args);
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cmd({} +{} args)",
            self.name(),
            self.args.len().saturating_sub(1)
        )
    }
}

/// A Lua script, identified on the server by the SHA-1 of its source.
#[derive(Clone, PartialEq, Eq)]
pub struct Script {
    source: Arc<str>,
    sha1: String,
}

impl Script {
    pub fn new(source: &str) -> Script {
        // SHA-1 because that is how Redis names scripts, not for security.
        let digest =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, source.as_bytes());
        Script {
            source: Arc::from(source),
            sha1: hex(digest.as_ref()),
        }
    }

    /// The lower-case hex SHA-1 `EVALSHA` takes.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    fn evalsha<K: AsRef<[u8]>, A: AsRef<[u8]>>(&self, keys: &[K], args: &[A]) -> Cmd {
        let mut cmd = Cmd::new("EVALSHA").arg(self.sha1.as_str()).arg(keys.len());
        for key in keys {
            cmd = cmd.arg(key.as_ref());
        }
        for arg in args {
            cmd = cmd.arg(arg.as_ref());
        }
        cmd
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Script({})", self.sha1)
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Client

/// How the client behaves; `Default` matches the config defaults.
#[derive(Clone)]
pub struct RedisOptions {
    /// The budget [`RedisClient::deadline`] gives a call (`cache.redis.timeout_ms`).
    pub timeout: Duration,
    /// Idle connections kept for reuse.
    pub max_idle: usize,
    /// Connections open at once; a call finding all busy waits (up to its deadline).
    pub max_open: usize,
    /// TLS settings for `rediss://`; `None` = the same roots as upstreams get from
    /// `net::client::tls_client_config` with no extra CA file.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub limits: Resp2Limits,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            timeout: Duration::from_millis(50),
            max_idle: 16,
            max_open: 64,
            tls: None,
            limits: Resp2Limits::default(),
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("timeout", &self.timeout)
            .field("max_idle", &self.max_idle)
            .field("max_open", &self.max_open)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// Options from the configuration: `cache.redis.timeout_ms`, and for `rediss://` the
    /// upstream trust settings (`server.upstream_ca_file`, `upstream_ca_only`).
    pub fn from_config(
        redis: &crate::config::schema::RedisConfig,
        ca_file: Option<&str>,
        ca_only: bool,
    ) -> Result<RedisOptions, RedisError> {
        let wants_tls = redis
            .url
            .as_deref()
            .is_some_and(|url| strip_prefix_ignore_case(url, "rediss://").is_some());
        // A bad CA file only matters when there is TLS to use it for.
        let tls = if wants_tls {
            Some(
                crate::net::client::tls_client_config(ca_file, ca_only)
                    .map_err(RedisError::Connect)?,
            )
        } else {
            None
        };
        Ok(RedisOptions {
            timeout: Duration::from_millis(redis.timeout_ms.max(1)),
            tls,
            ..RedisOptions::default()
        })
    }
}

struct Connection {
    transport: Transport,
    decoder: Resp2Decoder,
    /// Commands are encoded here; kept to reuse its capacity.
    out: Vec<u8>,
}

impl Connection {
    /// The server closed this idle connection, or sent something nobody asked for.
    fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        match crate::sys::peek_nonblocking(self.transport.tcp(), &mut probe) {
            Ok(0) => true,
            // Over TLS the server may still deliver session tickets after the handshake;
            // rustls reads them with the next reply. In plain RESP2 nothing is unsolicited.
            Ok(_) => !self.transport.is_tls(),
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    /// Writes every command in one go and reads exactly one reply per command.
    fn round_trip(&mut self, cmds: &[Cmd], deadline: Instant) -> Result<Vec<Value>, RedisError> {
        self.out.clear();
        for cmd in cmds {
            cmd.encode(&mut self.out);
        }
        let mut written = 0;
        while written < self.out.len() {
            self.transport
                .write_by(deadline)
                .and_then(|()| self.transport.read_by(deadline))
                .map_err(|e| io_error(e, "sending"))?;
            let chunk = self.out.get(written..).unwrap_or(&[]);
            match self.transport.write(chunk) {
                Ok(0) => return Err(RedisError::Io("connection closed while sending".into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e, "sending")),
            }
        }
        self.transport
            .write_by(deadline)
            .and_then(|()| self.transport.flush())
            .map_err(|e| io_error(e, "sending"))?;

        let mut replies = Vec::with_capacity(cmds.len());
        let mut buf = [0u8; READ_CHUNK];
        while replies.len() < cmds.len() {
            self.transport
                .read_by(deadline)
                .map_err(|e| io_error(e, "waiting for the reply"))?;
            let n = match self.transport.read(&mut buf) {
                Ok(0) => return Err(RedisError::Io("connection closed by the server".into())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e, "waiting for the reply")),
            };
            let mut input = buf.get(..n).unwrap_or(&[]);
            loop {
                let step = self.decoder.decode(input)?;
                input = input.get(step.consumed..).unwrap_or(&[]);
                match step.value {
                    Some(value) => replies.push(value),
                    None => break,
                }
            }
            if replies.len() > cmds.len() || (replies.len() == cmds.len() && !input.is_empty()) {
                return Err(RedisError::Protocol(
                    "more replies than commands sent".into(),
                ));
            }
        }
        if !self.decoder.is_idle() {
            return Err(RedisError::Protocol("bytes after the last reply".into()));
        }
        Ok(replies)
    }
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections that exist: idle plus checked out plus being connected.
    open: usize,
}

struct ClientInner {
    url: RedisUrl,
    options: RedisOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    pool: Mutex<PoolState>,
    /// Signalled when a connection returns or closes, for callers waiting at `max_open`.
    freed: Condvar,
}

/// A Redis client shared by every thread; cheap to clone (all clones share one pool).
#[derive(Clone)]
pub struct RedisClient {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClient")
            .field("url", &self.inner.url)
            .field("options", &self.inner.options)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection checked out of the pool. Dropping it without `release` closes it and
/// frees its slot, so an early return or panic cannot leak pool capacity.
struct Lease<'a> {
    client: &'a ClientInner,
    conn: Option<Connection>,
    /// Counted in `PoolState::open` until released or dropped.
    holds_slot: bool,
}

impl Lease<'_> {
    fn conn(&mut self) -> Result<&mut Connection, RedisError> {
        self.conn
            .as_mut()
            .ok_or_else(|| RedisError::Io("connection already released".into()))
    }

    /// Returns a connection whose replies were all read to the pool.
    fn release(mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let mut pool = lock(&self.client.pool);
        if pool.idle.len() < self.client.options.max_idle && conn.decoder.is_idle() {
            pool.idle.push(conn);
        } else {
            pool.open = pool.open.saturating_sub(1);
        }
        // The slot now belongs to the idle connection (or is freed): Drop must not free it.
        self.holds_slot = false;
        drop(pool);
        self.client.freed.notify_one();
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.holds_slot {
            return;
        }
        if let Some(conn) = self.conn.take() {
            conn.transport.shutdown();
        }
        let mut pool = lock(&self.client.pool);
        pool.open = pool.open.saturating_sub(1);
        drop(pool);
        self.client.freed.notify_one();
    }
}

impl RedisClient {
    /// Parses the URL and prepares TLS; connects lazily on the first call.
    pub fn new(url: &str, options: RedisOptions) -> Result<RedisClient, RedisError> {
        let url = RedisUrl::parse(url)?;
        let tls = if url.tls {
            let base = match &options.tls {
                Some(config) => Arc::clone(config),
                None => crate::net::client::tls_client_config(None, false)
                    .map_err(RedisError::Connect)?,
            };
            // The shared upstream config offers ALPN http/1.1; Redis speaks no HTTP.
            let mut config = (*base).clone();
            config.alpn_protocols.clear();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(RedisClient {
            inner: Arc::new(ClientInner {
                url,
                options,
                tls,
                pool: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
            }),
        })
    }

    pub fn url(&self) -> &RedisUrl {
        &self.inner.url
    }

    /// The configured per-call budget.
    pub fn timeout(&self) -> Duration {
        self.inner.options.timeout
    }

    /// `now + timeout`: the deadline of a call made now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.inner.options.timeout
    }

    /// Connections currently open (idle or in use).
    pub fn open_connections(&self) -> usize {
        lock(&self.inner.pool).open
    }

    /// Closes every idle connection (they reconnect on demand).
    pub fn close_idle(&self) {
        let idle = {
            let mut pool = lock(&self.inner.pool);
            let idle = std::mem::take(&mut pool.idle);
            pool.open = pool.open.saturating_sub(idle.len());
            idle
        };
        for conn in idle {
            conn.transport.shutdown();
        }
        self.inner.freed.notify_all();
    }

    /// One command; an error reply becomes `Err` (`Auth` for `NOAUTH`/`WRONGPASS`,
    /// else `Server`).
    pub fn query(&self, cmd: &Cmd, deadline: Instant) -> Result<Value, RedisError> {
        let mut replies = self.pipeline(std::slice::from_ref(cmd), deadline)?;
        let reply = replies
            .pop()
            .ok_or_else(|| RedisError::Protocol("no reply".into()))?;
        reply_to_result(reply)
    }

    /// Sends every command in one write and returns one reply per command, in order.
    /// Error replies are returned as `Value::Error` (one failing command does not hide
    /// the others' results).
    pub fn pipeline(&self, cmds: &[Cmd], deadline: Instant) -> Result<Vec<Value>, RedisError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut lease = self.checkout(deadline)?;
        let replies = lease.conn()?.round_trip(cmds, deadline)?;
        lease.release();
        Ok(replies)
    }

    /// `PING`: connects (and authenticates) if needed and checks the server answers.
    pub fn ping(&self, deadline: Instant) -> Result<(), RedisError> {
        match self.query(&Cmd::new("PING"), deadline)? {
            Value::Simple(s) if s == "PONG" => Ok(()),
            other => Err(RedisError::Protocol(format!("PING answered {other:?}"))),
        }
    }

    /// Runs a script with `EVALSHA`. When the server does not have it (first use, a
    /// restart, `SCRIPT FLUSH`), loads it with `SCRIPT LOAD` and runs it again, both in
    /// one round trip. A script error reply becomes `Err(Server)`.
    pub fn eval<K: AsRef<[u8]>, A: AsRef<[u8]>>(
        &self,
        script: &Script,
        keys: &[K],
        args: &[A],
        deadline: Instant,
    ) -> Result<Value, RedisError> {
        let call = script.evalsha(keys, args);
        let mut replies = self.pipeline(std::slice::from_ref(&call), deadline)?;
        let first = replies
            .pop()
            .ok_or_else(|| RedisError::Protocol("no reply".into()))?;
        if first.error_code() != Some("NOSCRIPT") {
            return reply_to_result(first);
        }
        let load = Cmd::new("SCRIPT").arg("LOAD").arg(script.source());
        let mut replies = self.pipeline(&[load, call], deadline)?.into_iter();
        let loaded = reply_to_result(replies.next().unwrap_or(Value::Nil))?;
        if loaded.as_bytes() != Some(script.sha1().as_bytes()) {
            return Err(RedisError::Protocol(format!(
                "SCRIPT LOAD returned {loaded:?}, expected {}",
                script.sha1()
            )));
        }
        reply_to_result(replies.next().unwrap_or(Value::Nil))
    }

    fn checkout(&self, deadline: Instant) -> Result<Lease<'_>, RedisError> {
        let inner = &*self.inner;
        let mut pool = lock(&inner.pool);
        loop {
            while let Some(conn) = pool.idle.pop() {
                if conn.is_stale() {
                    pool.open = pool.open.saturating_sub(1);
                    conn.transport.shutdown();
                    continue;
                }
                return Ok(Lease {
                    client: inner,
                    conn: Some(conn),
                    holds_slot: true,
                });
            }
            if pool.open < inner.options.max_open.max(1) {
                pool.open += 1;
                drop(pool);
                // The lease owns the slot from here: dropping it on failure frees it.
                let mut lease = Lease {
                    client: inner,
                    conn: None,
                    holds_slot: true,
                };
                lease.conn = Some(self.connect(deadline)?);
                return Ok(lease);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RedisError::Timeout("waiting for a free connection"));
            }
            pool = inner
                .freed
                .wait_timeout(pool, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn connect(&self, deadline: Instant) -> Result<Connection, RedisError> {
        let url = &self.inner.url;
        // Same lookup as upstreams: our stub resolver in a static build.
        let tcp =
            crate::net::client::connect_tcp(&url.host, url.port, deadline, ResolverMode::Auto)
                .map_err(|e| {
                    if is_timeout(&e) {
                        RedisError::Timeout("connecting")
                    } else {
                        RedisError::Connect(format!("{}: {e}", url.address()))
                    }
                })?;
        // Commands are small and latency is the point.
        let _ = tcp.set_nodelay(true);
        let transport = match &self.inner.tls {
            None => Transport::plain(tcp),
            Some(config) => {
                let name = rustls_pki_types::ServerName::try_from(url.host.clone())
                    .map_err(|e| RedisError::Connect(format!("TLS name {}: {e}", url.host)))?;
                let session = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| RedisError::Connect(format!("TLS: {e}")))?;
                Transport::tls_client(rustls::StreamOwned::new(session, tcp))
            }
        };
        let mut conn = Connection {
            transport,
            decoder: Resp2Decoder::with_limits(self.inner.options.limits),
            out: Vec::new(),
        };
        let handshake = url.handshake();
        if !handshake.is_empty() {
            let replies = conn.round_trip(&handshake, deadline).map_err(|e| match e {
                // A TLS failure surfaces on the first write or read.
                RedisError::Io(m) if url.tls => RedisError::Connect(format!("TLS: {m}")),
                other => other,
            })?;
            for (cmd, reply) in handshake.iter().zip(replies) {
                if let Value::Error(text) = reply {
                    return Err(if cmd.name() == "AUTH" {
                        RedisError::Auth(format!("{} ({})", text, url.redacted()))
                    } else {
                        RedisError::Server(format!("{} {}: {text}", cmd.name(), url.db))
                    });
                }
            }
        }
        Ok(conn)
    }
}

/// An error reply as `Err`, anything else as `Ok`.
fn reply_to_result(reply: Value) -> Result<Value, RedisError> {
    match reply {
        Value::Error(text) => Err(match text.split(' ').next() {
            Some("NOAUTH") => RedisError::Auth(format!(
                "{text} (the server needs a password: put it in cache.redis.url)"
            )),
            Some("WRONGPASS") => RedisError::Auth(text),
            _ => RedisError::Server(text),
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let u = RedisUrl::parse("redis://localhost").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.db),
            (false, "localhost", 6379, 0)
        );
        assert!(u.username.is_none() && !u.has_password());

        let u = RedisUrl::parse("rediss://app:p%40ss@cache.example:6380/3").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.db),
            (true, "cache.example", 6380, 3)
        );
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some(&b"p@ss"[..]));
        assert_eq!(u.to_string(), "rediss://app:***@cache.example:6380/3");
        assert_eq!(
            format!("{u:?}"),
            "RedisUrl(rediss://app:***@cache.example:6380/3)"
        );

        let u = RedisUrl::parse("redis://:secret@[::1]:7000/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 7000, 0));
        assert!(u.username.is_none());
        assert_eq!(u.redacted(), "redis://:***@[::1]:7000/0");

        for bad in [
            "http://h",
            "redis://",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/x",
            "redis://h/1?x=1",
            "redis://user@h",
            "redis://:p%zz@h",
            "redis://[::1",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(matches!(e, RedisError::BadUrl(_)), "{bad}: {e:?}");
        }
        let e = RedisUrl::parse("redis://:hunter2@h:x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn handshake_commands() {
        let u = RedisUrl::parse("redis://u:pw@h/2").unwrap();
        let cmds = u.handshake();
        assert_eq!(
            cmds[0].args(),
            [b"AUTH".to_vec(), b"u".to_vec(), b"pw".to_vec()]
        );
        assert_eq!(cmds[1].args(), [b"SELECT".to_vec(), b"2".to_vec()]);
        assert_eq!(format!("{:?}", cmds[0]), "Cmd(AUTH +2 args)");
        let u = RedisUrl::parse("redis://:pw@h").unwrap();
        assert_eq!(u.handshake()[0].args(), [b"AUTH".to_vec(), b"pw".to_vec()]);
        assert!(RedisUrl::parse("redis://h").unwrap().handshake().is_empty());
    }

    #[test]
    fn script_sha1_matches_redis_naming() {
        // sha1("return 1"), as `SCRIPT LOAD "return 1"` answers.
        assert_eq!(
            Script::new("return 1").sha1(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
