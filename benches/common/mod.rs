//! Bench support shared by the relay benches: a loopback mock upstream that answers
//! Anthropic-shaped JSON or paced SSE streams whose events carry their send time, a raw
//! HTTP/1.1 client that timestamps every read, the relay under test (by default this very
//! bench binary re-executed as a child process, so the relay's RSS, threads and log lines
//! are its own), percentile math and the report format (a table plus `BENCH` lines).
//! It only measures: it must not change how the relay behaves or judge anything beyond
//! comparing a figure with its stated goal.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cc_relay::codec::chunked::ChunkedDecoder;
use cc_relay::config::{Config, KeyConfig, ProviderConfig, ProviderType};

// ---------------------------------------------------------------------------------------
// Clock and options

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Monotonic nanoseconds since the first call in this process. The mock stamps events
/// with it and the client compares against it, so both must live in one process.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn sleep_until_ns(target: u64) {
    let now = now_ns();
    if target > now {
        std::thread::sleep(Duration::from_nanos(target - now));
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// One tiny iteration of everything, for CI smoke runs.
    pub quick: bool,
}

impl Options {
    /// `--quick` on the command line or `CC_RELAY_BENCH_QUICK=1`. Other arguments
    /// (cargo passes `--bench`) are ignored.
    pub fn from_env() -> Options {
        let flag = std::env::args().any(|a| a == "--quick");
        let env = std::env::var("CC_RELAY_BENCH_QUICK")
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false);
        Options { quick: flag || env }
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1 over one TCP connection, with the time of the read that delivered each byte

/// A response or request head as raw lines.
#[derive(Debug, Clone)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> u16 {
        self.start_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// One connection with a read buffer. `last_read_ns` is when the most recent read
/// returned: the receive time of every byte that read delivered.
pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
    last_read_ns: u64,
    decoded: Vec<u8>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Wire {
    pub fn new(stream: TcpStream) -> io::Result<Wire> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Wire {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            last_read_ns: 0,
            decoded: Vec::with_capacity(16 * 1024),
        })
    }

    pub fn connect(addr: SocketAddr) -> io::Result<Wire> {
        Wire::new(TcpStream::connect(addr)?)
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads once; Ok(0) at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.last_read_ns = now_ns();
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one head. None when the peer closed before sending anything.
    pub fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                let mut lines = text.split("\r\n");
                let start_line = lines.next().unwrap_or("").to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Ok(Some(Head {
                    start_line,
                    headers,
                }));
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(bad("connection closed inside a head"));
            }
        }
    }

    pub fn read_exact_body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(bad("connection closed inside a body"));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// Reads a chunked body to its end, handing each run of de-chunked bytes to
    /// `on_data` with the time of the read that delivered it.
    pub fn read_chunked(&mut self, mut on_data: impl FnMut(&[u8], u64)) -> io::Result<()> {
        let mut decoder = ChunkedDecoder::new();
        loop {
            if !self.buf.is_empty() {
                self.decoded.clear();
                let used = decoder
                    .decode(&self.buf, &mut self.decoded)
                    .map_err(|e| bad(format!("chunked body: {e}")))?;
                self.buf.drain(..used);
                if !self.decoded.is_empty() {
                    on_data(&self.decoded, self.last_read_ns);
                }
                if decoder.is_done() {
                    return Ok(());
                }
            }
            if self.fill()? == 0 {
                return Err(bad("connection closed inside a chunked body"));
            }
        }
    }

    /// Reads a response body by its framing and drops it.
    pub fn skip_body(&mut self, head: &Head) -> io::Result<()> {
        if head.is_chunked() {
            self.read_chunked(|_, _| {})
        } else {
            self.read_exact_body(head.content_length().unwrap_or(0))
                .map(|_| ())
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The number after `"key":` in a flat JSON text (bench parameters and stamps only).
pub fn json_u64(text: &[u8], key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let start = find(text, pat.as_bytes())? + pat.len();
    let digits = text.get(start..)?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

/// Cuts a byte stream into SSE events at blank lines (the mock and the relay both
/// write `\n\n`-terminated events).
#[derive(Default)]
pub struct EventSplitter {
    pending: Vec<u8>,
}

impl EventSplitter {
    pub fn push(&mut self, data: &[u8], mut on_event: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = find(&self.pending[start..], b"\n\n") {
            on_event(&self.pending[start..start + end + 2]);
            start += end + 2;
        }
        self.pending.drain(..start);
    }
}

// ---------------------------------------------------------------------------------------
// Requests the client sends

pub const PLAIN_BODY: &str =
    r#"{"model":"claude-bench","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;

/// A streamed Messages body; the `bench_*` fields tell the mock how to pace the answer
/// (the relay forwards unknown fields untouched). `pace_us` 0 = send everything at once.
pub fn stream_body(events: usize, pace_us: u64, phase_us: u64) -> String {
    format!(
        r#"{{"model":"claude-bench","max_tokens":64,"stream":true,"messages":[{{"role":"user","content":"hi"}}],"bench_events":{events},"bench_pace_us":{pace_us},"bench_phase_us":{phase_us}}}"#
    )
}

pub fn messages_request(body: &str) -> Vec<u8> {
    format!(
        "POST /v1/messages HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What one streamed request showed the client.
#[derive(Debug, Default)]
pub struct StreamSeen {
    /// From writing the request to having the first whole event.
    pub ttfb_ns: u64,
    pub events: usize,
    pub saw_message_stop: bool,
}

/// Sends one streamed request on `wire` and reads the whole answer; pushes
/// `receive - send` of every stamped event onto `latencies`.
pub fn stream_once(
    wire: &mut Wire,
    request: &[u8],
    latencies: &mut Vec<u64>,
) -> io::Result<StreamSeen> {
    let sent = now_ns();
    wire.send(request)?;
    let head = wire
        .read_head()?
        .ok_or_else(|| bad("closed before the response head"))?;
    if head.status() != 200 || !head.is_chunked() {
        let status = head.status();
        let _ = wire.skip_body(&head);
        return Err(bad(format!(
            "stream answered {status}, expected chunked 200"
        )));
    }
    let mut seen = StreamSeen::default();
    let mut splitter = EventSplitter::default();
    wire.read_chunked(|data, received| {
        splitter.push(data, |event| {
            if seen.events == 0 {
                seen.ttfb_ns = received.saturating_sub(sent);
            }
            seen.events += 1;
            if find(event, b"event: message_stop").is_some() {
                seen.saw_message_stop = true;
            }
            if let Some(t) = json_u64(event, "t") {
                latencies.push(received.saturating_sub(t));
            }
        })
    })?;
    Ok(seen)
}

/// Sends one non-streamed request on `wire`, reads the answer; returns the round trip.
pub fn request_once(wire: &mut Wire, request: &[u8]) -> io::Result<u64> {
    let sent = now_ns();
    wire.send(request)?;
    let head = wire
        .read_head()?
        .ok_or_else(|| bad("closed before the response head"))?;
    wire.skip_body(&head)?;
    let done = now_ns();
    if head.status() != 200 {
        return Err(bad(format!("answered {}", head.status())));
    }
    Ok(done.saturating_sub(sent))
}

// ---------------------------------------------------------------------------------------
// Mock upstream

/// An Anthropic-compatible upstream on loopback, one thread per connection, keep-alive.
/// Non-streamed requests get a small message; streamed ones get `message_start`,
/// `bench_events` text deltas stamped `"t":<now_ns>` and paced `bench_pace_us` apart on a
/// grid shifted by `bench_phase_us` (so concurrent streams interleave evenly instead of
/// bursting together), then `message_delta` and `message_stop`.
pub struct MockUpstream {
    pub addr: SocketAddr,
    accepted: Arc<AtomicU64>,
}

impl MockUpstream {
    pub fn start() -> io::Result<MockUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        std::thread::Builder::new()
            .name("mock-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = std::thread::Builder::new()
                        .name("mock-conn".into())
                        .stack_size(256 * 1024)
                        .spawn(move || {
                            let _ = serve_mock_connection(stream);
                        });
                }
            })?;
        Ok(MockUpstream { addr, accepted })
    }

    /// Connections accepted so far (the relay's pool reuse shows here).
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

const MOCK_MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello from the bench mock."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":8}}"#;

fn serve_mock_connection(stream: TcpStream) -> io::Result<()> {
    let mut wire = Wire::new(stream)?;
    // The relay keeps pooled upstream connections for a while; do not time them out here.
    wire.stream.set_read_timeout(None)?;
    while let Some(head) = wire.read_head()? {
        let body = wire.read_exact_body(head.content_length().unwrap_or(0))?;
        if find(&body, b"\"stream\":true").is_some() {
            write_mock_stream(&mut wire.stream, &body)?;
        } else {
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_mock\r\ncontent-length: {}\r\n\r\n{MOCK_MESSAGE}",
                MOCK_MESSAGE.len()
            );
            wire.stream.write_all(response.as_bytes())?;
        }
    }
    Ok(())
}

/// Writes `data` as one chunk with a single write, as a real upstream flushing an event.
fn write_chunk(stream: &mut TcpStream, scratch: &mut Vec<u8>, data: &[u8]) -> io::Result<()> {
    scratch.clear();
    write!(scratch, "{:x}\r\n", data.len())?;
    scratch.extend_from_slice(data);
    scratch.extend_from_slice(b"\r\n");
    stream.write_all(scratch)
}

fn write_mock_stream(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let events = json_u64(body, "bench_events").unwrap_or(0);
    let pace = json_u64(body, "bench_pace_us").unwrap_or(0) * 1000;
    let phase = json_u64(body, "bench_phase_us").unwrap_or(0) * 1000;
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nrequest-id: req_mock\r\ntransfer-encoding: chunked\r\n\r\n",
    )?;
    let mut scratch = Vec::with_capacity(1024);
    let mut event = Vec::with_capacity(512);
    // message_start goes out on the next slot of this stream's grid, the first measured
    // event one pace later; unpaced streams start at once.
    let now = now_ns();
    let start = match now.saturating_sub(phase).checked_div(pace) {
        Some(slots) => (slots + 1) * pace + phase,
        None => now,
    };
    sleep_until_ns(start);
    write_chunk(
        stream,
        &mut scratch,
        br#"event: message_start
data: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","content":[],"model":"claude-bench","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}

"#,
    )?;
    write_chunk(
        stream,
        &mut scratch,
        b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    )?;
    for i in 0..events {
        sleep_until_ns(start + (i + 1) * pace);
        event.clear();
        let t = now_ns();
        write!(
            event,
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"Hello, bench world. \"}},\"t\":{t}}}\n\n"
        )?;
        write_chunk(stream, &mut scratch, &event)?;
    }
    write_chunk(
        stream,
        &mut scratch,
        b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":8}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    )?;
    stream.write_all(b"0\r\n\r\n")
}

// ---------------------------------------------------------------------------------------
// The floor: a bare byte forwarder

/// The least any thread-per-connection proxy can add: per client connection, one
/// upstream connection and two threads copying bytes each way, no parsing at all. Its
/// added latency is the price of the extra hop (a thread wake-up and two syscalls) on
/// this machine, which the relay cannot beat; the relay's figure minus this one is
/// what its own code costs.
pub struct Forwarder {
    pub addr: SocketAddr,
}

impl Forwarder {
    pub fn start(upstream: SocketAddr) -> io::Result<Forwarder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::Builder::new()
            .name("fwd-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    let _ = forward_connection(client, upstream);
                }
            })?;
        Ok(Forwarder { addr })
    }
}

fn forward_connection(client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let pairs = [(client.try_clone()?, server.try_clone()?), (server, client)];
    for (mut from, mut to) in pairs {
        std::thread::Builder::new()
            .name("fwd-copy".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
            })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The relay under test

/// Set in the environment of a re-executed bench binary: run only the relay, in front
/// of this upstream URL.
const CHILD_ENV: &str = "CC_RELAY_BENCH_RELAY_FOR";
/// Likewise: run only a bare `Forwarder` to this upstream address.
const FORWARDER_ENV: &str = "CC_RELAY_BENCH_FORWARD_TO";

/// The relay configuration every bench uses: one anthropic provider at the mock, with a
/// pool key so clients need no credentials; logging as shipped.
pub fn relay_config(upstream_url: &str) -> Config {
    let mut provider = ProviderConfig::new("mock", ProviderType::Anthropic);
    provider.base_url = Some(upstream_url.to_string());
    provider.keys.push(KeyConfig::new("sk-bench-key"));
    let mut config = Config::with_providers(vec![provider]);
    config.server.max_connections = 4096;
    config
}

/// Call first in `main`: when this process is a relay (or forwarder) child, runs it
/// until the parent closes our stdin, then exits.
pub fn run_child_if_asked() {
    let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let addr = if let Ok(upstream) = std::env::var(CHILD_ENV) {
        match cc_relay::cli::serve::spawn(relay_config(&upstream), Some(listen)) {
            // Leaked on purpose: the relay runs until this process exits.
            Ok(running) => Box::leak(Box::new(running)).handle.addr,
            Err(e) => {
                eprintln!("bench relay child: {e}");
                std::process::exit(1);
            }
        }
    } else if let Ok(upstream) = std::env::var(FORWARDER_ENV) {
        let forwarder = upstream
            .parse()
            .map_err(|e| bad(format!("{upstream}: {e}")))
            .and_then(Forwarder::start);
        match forwarder {
            Ok(f) => f.addr,
            Err(e) => {
                eprintln!("bench forwarder child: {e}");
                std::process::exit(1);
            }
        }
    } else {
        return;
    };
    println!("LISTEN {addr}");
    let _ = io::stdout().flush();
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

/// A child process running `cmd`, which must print `LISTEN <addr>` on stdout (the bench
/// binary in child mode), or listen on a known address (the real `cc-relay` binary).
/// Killed when dropped.
pub struct ChildRelay {
    child: Child,
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
}

impl ChildRelay {
    /// Re-executes this bench binary as a relay in front of `upstream_url`.
    pub fn start_self(upstream_url: &str) -> io::Result<ChildRelay> {
        ChildRelay::start_self_as(CHILD_ENV, upstream_url)
    }

    /// Re-executes this bench binary as a bare `Forwarder` to `upstream`.
    pub fn start_forwarder(upstream: SocketAddr) -> io::Result<ChildRelay> {
        ChildRelay::start_self_as(FORWARDER_ENV, &upstream.to_string())
    }

    fn start_self_as(env: &str, value: &str) -> io::Result<ChildRelay> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .env(env, value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| bad("no child stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("LISTEN ")
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(ChildRelay { child, stdin, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(bad(format!("relay child said {line:?}, not LISTEN <addr>")))
            }
        }
    }

    /// Runs `program args` (the real binary), expected to listen on `addr`; waits until
    /// it accepts connections.
    pub fn start_binary(
        program: &std::path::Path,
        args: &[&str],
        addr: SocketAddr,
    ) -> io::Result<ChildRelay> {
        let child = Command::new(program)
            .args(args)
            .env_remove("ANTHROPIC_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut relay = ChildRelay {
            child,
            stdin: None,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = relay.child.try_wait()? {
                return Err(bad(format!("{} exited with {status}", program.display())));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(relay);
            }
            if Instant::now() > deadline {
                return Err(bad(format!(
                    "{} never listened on {addr}",
                    program.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay the latency benches talk to: a child process by default (its log lines go
/// to /dev/null, its threads are its own); in this process with
/// `CC_RELAY_BENCH_INPROC=1` (handy under a profiler, but its log lines hit stderr).
pub enum RelayUnderTest {
    Child(ChildRelay),
    InProcess(cc_relay::cli::serve::Running),
}

impl RelayUnderTest {
    pub fn start(upstream_url: &str) -> io::Result<RelayUnderTest> {
        let inproc = std::env::var("CC_RELAY_BENCH_INPROC").is_ok_and(|v| v == "1");
        if inproc {
            let listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let running = cc_relay::cli::serve::spawn(relay_config(upstream_url), Some(listen))
                .map_err(bad)?;
            Ok(RelayUnderTest::InProcess(running))
        } else {
            Ok(RelayUnderTest::Child(ChildRelay::start_self(upstream_url)?))
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            RelayUnderTest::Child(c) => c.addr,
            RelayUnderTest::InProcess(r) => r.handle.addr,
        }
    }

    /// The relay's own process, when it has one.
    pub fn pid(&self) -> Option<u32> {
        match self {
            RelayUnderTest::Child(c) => Some(c.pid()),
            RelayUnderTest::InProcess(_) => None,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            RelayUnderTest::Child(_) => "relay in a child process (this bench binary re-executed)",
            RelayUnderTest::InProcess(_) => "relay in the bench process",
        }
    }
}

/// `/proc/loadavg`'s first three fields: how busy the shared machine was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// Memory

/// `VmRSS` of a process in KiB, from /proc.
pub fn rss_kb(pid: u32) -> io::Result<u64> {
    proc_status_field(pid, "VmRSS:")
}

/// CPU time (user + system, every thread, live or exited) of a process in µs, from
/// /proc/<pid>/stat. Its unit is USER_HZ, 100 on Linux, so the resolution is 10 ms: use
/// it over runs that burn at least a few hundred ms.
pub fn cpu_time_us(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad("odd /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| bad("odd /proc stat"))
    };
    // After ')' comes field 3 (state); utime and stime are fields 14 and 15.
    Ok((tick(11)? + tick(12)?) * 10_000)
}

pub fn threads(pid: u32) -> io::Result<u64> {
    proc_status_field(pid, "Threads:")
}

fn proc_status_field(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(format!("no {field} in /proc/{pid}/status")))
}

// ---------------------------------------------------------------------------------------
// Statistics

/// Percentiles of a sample, in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `q` of
/// the sample at or below it.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(values: &mut [u64]) -> Summary {
    values.sort_unstable();
    Summary {
        n: values.len(),
        p50: percentile(values, 0.50),
        p90: percentile(values, 0.90),
        p99: percentile(values, 0.99),
        max: values.last().copied().unwrap_or(0),
    }
}

pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------
// Report

/// A baseline (direct) figure this many times over an added-latency goal means the
/// machine's own jitter exceeds what we try to measure: the verdict is "unsure".
pub const NOISE_FACTOR: f64 = 4.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Met,
    Missed,
    /// The direct baseline itself was too noisy to tell.
    Unsure,
}

/// One number: printed in the table and as `BENCH name=<name> <tags> value=<v>`.
struct Figure {
    name: String,
    tags: String,
    value: f64,
    /// Upper bound the value should stay under, when the issue sets one.
    goal: Option<(f64, Verdict)>,
}

pub struct Report {
    title: String,
    notes: Vec<String>,
    /// label, direct, floor, relay, added, goal
    rows: Vec<[String; 6]>,
    figures: Vec<Figure>,
    /// While set, goals are judged "unsure" (the run saturated the machine).
    unsure: bool,
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn judge(value: f64, goal: f64, baseline: Option<f64>) -> Verdict {
    if baseline.is_some_and(|b| b > goal * NOISE_FACTOR) {
        Verdict::Unsure
    } else if value < goal {
        Verdict::Met
    } else {
        Verdict::Missed
    }
}

fn goal_text(goal: Option<(f64, Verdict)>) -> String {
    match goal {
        Some((g, Verdict::Met)) => format!("< {g} ok"),
        Some((g, Verdict::Missed)) => format!("< {g} MISSED"),
        Some((g, Verdict::Unsure)) => format!("< {g} unsure"),
        None => String::new(),
    }
}

/// The same figure measured three ways, in µs or req/s.
#[derive(Debug, Clone, Copy)]
pub struct Trio {
    pub direct: f64,
    /// Through the bare forwarder, when measured.
    pub floor: Option<f64>,
    pub relay: f64,
}

impl Report {
    pub fn new(title: impl Into<String>) -> Report {
        Report {
            title: title.into(),
            notes: Vec::new(),
            rows: Vec::new(),
            figures: Vec::new(),
            unsure: false,
        }
    }

    fn judge(&self, value: f64, goal: f64, baseline: Option<f64>) -> Verdict {
        if self.unsure {
            Verdict::Unsure
        } else {
            judge(value, goal, baseline)
        }
    }

    /// Judge the goals of the figures added from now on "unsure" (or normally again):
    /// for runs that need more CPU than the machine has, whose tails measure the wait for
    /// a CPU.
    pub fn set_unsure(&mut self, unsure: bool) {
        self.unsure = unsure;
    }

    /// A line printed above the table (and at once on stderr, as progress).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  .. {note}");
        self.notes.push(note);
    }

    fn figure(&mut self, name: String, tags: &str, value: f64, goal: Option<(f64, Verdict)>) {
        self.figures.push(Figure {
            name,
            tags: tags.to_string(),
            value,
            goal,
        });
    }

    /// A direct-vs-relay comparison: a table row and the figures `<key>_direct_<stat>`,
    /// `<key>_floor_<stat>` (bare forwarder, when measured), `<key>_proxy_<stat>` and
    /// `<key>_added_<stat>` (relay - direct: a difference of percentiles, since samples
    /// cannot be paired one to one). A goal applies to "added"; when the direct figure
    /// alone is over `NOISE_FACTOR` times the goal the verdict is "unsure".
    pub fn compare(
        &mut self,
        label: &str,
        key: &str,
        stat: &str,
        tags: &str,
        trio: Trio,
        goal_added: Option<f64>,
    ) {
        let added = trio.relay - trio.direct;
        let goal = goal_added.map(|g| (g, self.judge(added, g, Some(trio.direct))));
        self.figure(format!("{key}_direct_{stat}"), tags, trio.direct, None);
        if let Some(floor) = trio.floor {
            self.figure(format!("{key}_floor_{stat}"), tags, floor, None);
        }
        self.figure(format!("{key}_proxy_{stat}"), tags, trio.relay, None);
        self.figure(format!("{key}_added_{stat}"), tags, added, goal);
        self.rows.push([
            label.to_string(),
            fmt_value(trio.direct),
            trio.floor.map(fmt_value).unwrap_or_default(),
            fmt_value(trio.relay),
            fmt_value(added),
            goal_text(goal),
        ]);
    }

    /// Latency summaries (ns in, µs out): rows and figures for p50, p90, p99 and max.
    #[allow(clippy::too_many_arguments)]
    pub fn compare_latency(
        &mut self,
        label: &str,
        key: &str,
        tags: &str,
        direct: Summary,
        floor: Option<Summary>,
        relay: Summary,
        goal_p99_added: Option<f64>,
    ) {
        type Pick = fn(&Summary) -> u64;
        let stats: [(&str, Pick, Option<f64>); 4] = [
            ("p50", |s| s.p50, None),
            ("p90", |s| s.p90, None),
            ("p99", |s| s.p99, goal_p99_added),
            ("max", |s| s.max, None),
        ];
        for (stat, pick, goal) in stats {
            let trio = Trio {
                direct: us(pick(&direct)),
                floor: floor.as_ref().map(|f| us(pick(f))),
                relay: us(pick(&relay)),
            };
            let row_label = format!("{label} {stat} (us)");
            self.compare(&row_label, key, &format!("{stat}_us"), tags, trio, goal);
        }
    }

    /// A single figure (memory, CPU, counts) with an optional upper-bound goal.
    pub fn single(&mut self, label: &str, name: &str, tags: &str, value: f64, goal: Option<f64>) {
        let goal = goal.map(|g| (g, self.judge(value, g, None)));
        self.figure(name.to_string(), tags, value, goal);
        self.rows.push([
            label.to_string(),
            String::new(),
            String::new(),
            fmt_value(value),
            String::new(),
            goal_text(goal),
        ]);
    }

    pub fn print(&self) {
        println!();
        println!("== {}", self.title);
        for n in &self.notes {
            println!("   {n}");
        }
        let header = ["figure", "direct", "floor", "relay", "added", "goal"];
        let mut widths = [0; 6];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        // Columns no row uses (e.g. "direct" in a memory report) are left out.
        let used = widths.map(|w| w > 0);
        for (w, h) in widths.iter_mut().zip(header) {
            if *w > 0 {
                *w = (*w).max(h.len());
            }
        }
        let line = |cells: [&str; 6]| {
            let mut out = format!("{:<w$}", cells[0], w = widths[0]);
            for i in 1..6 {
                if used[i] {
                    out.push_str(&format!("  {:>w$}", cells[i], w = widths[i]));
                }
            }
            println!("{}", out.trim_end());
        };
        line(header);
        for r in &self.rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
        }
        println!();
        for f in &self.figures {
            let mut out = format!("BENCH name={}", f.name);
            if !f.tags.is_empty() {
                out.push(' ');
                out.push_str(&f.tags);
            }
            out.push_str(&format!(" value={:.1}", f.value));
            if let Some((goal, verdict)) = f.goal {
                let met = match verdict {
                    Verdict::Met => "yes",
                    Verdict::Missed => "no",
                    Verdict::Unsure => "unsure",
                };
                out.push_str(&format!(" goal_lt={goal} met={met}"));
            }
            println!("{out}");
        }
    }
}
