//! Test support: a scriptable mock upstream on loopback that records every request it
//! receives, a raw HTTP client for talking to the relay, and a relay started in-process.
#![allow(dead_code)]

pub mod scratch;
pub mod tls;
pub mod vectors;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cc_relay::codec::chunked::ChunkedDecoder;
use cc_relay::config::{Config, ProviderConfig, ProviderType};

/// A request as the mock upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Responder = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

pub struct MockUpstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockUpstream {
    /// Starts a mock that answers every request with `respond`, which writes whatever
    /// bytes it likes to the socket (and may close it).
    pub fn start(respond: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static) -> MockUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen2.clone();
                let respond = respond.clone();
                std::thread::spawn(move || serve_mock_connection(stream, &seen, &*respond));
            }
        });
        MockUpstream { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_mock_connection(stream: TcpStream, seen: &Mutex<Vec<Seen>>, respond: &Responder) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Seen {
            method,
            target,
            headers,
            body,
        };
        seen.lock().unwrap().push(req.clone());
        respond(&req, &mut stream);
    }
}

/// Writes a complete JSON response with content-length.
pub fn write_json(stream: &mut TcpStream, status: u16, extra_headers: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// Starts a chunked SSE response; follow with `write_chunk` calls.
pub fn start_sse(stream: &mut TcpStream) {
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nrequest-id: req_upstream\r\n\r\n",
    );
    let _ = stream.flush();
}

pub fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    stream.write_all(data)?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

pub fn end_chunks(stream: &mut TcpStream) {
    let _ = stream.write_all(b"0\r\n\r\n");
    let _ = stream.flush();
}

pub fn sse_event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A complete Anthropic text stream, as the API sends it.
pub fn text_stream_events(text: &str) -> Vec<String> {
    vec![
        sse_event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
        ),
        sse_event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        sse_event("ping", r#"{"type": "ping"}"#),
        sse_event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{text}"}}}}"#
            ),
        ),
        sse_event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        sse_event(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}"#,
        ),
        sse_event("message_stop", r#"{"type":"message_stop"}"#),
    ]
}

pub fn provider(name: &str, kind: ProviderType, url: &str) -> ProviderConfig {
    let mut p = ProviderConfig::new(name, kind);
    p.base_url = Some(url.to_string());
    p
}

pub struct Relay {
    pub addr: SocketAddr,
    pub running: cc_relay::cli::serve::Running,
}

pub fn start_relay(config: Config) -> Relay {
    let running = cc_relay::cli::serve::spawn(config, Some("127.0.0.1:0".parse().unwrap()))
        .expect("relay starts");
    Relay {
        addr: running.handle.addr,
        running,
    }
}

/// A response as a client saw it on the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect relay");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one response (content-length, chunked, or until close) from `reader`.
pub fn read_response(reader: &mut BufReader<TcpStream>) -> Response {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).expect("header line");
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').expect("header colon");
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut decoder = ChunkedDecoder::new();
        while !decoder.is_done() {
            let buf = reader.fill_buf().expect("chunked body read");
            assert!(!buf.is_empty(), "connection closed inside a chunked body");
            let used = decoder.decode(buf, &mut body).expect("valid chunked body");
            reader.consume(used);
        }
    } else if let Some(len) = get("content-length") {
        body = vec![0u8; len.parse().unwrap()];
        reader.read_exact(&mut body).expect("body");
    } else if status != 100 {
        reader.read_to_end(&mut body).expect("body until close");
    }
    Response {
        status,
        headers,
        body,
    }
}

/// Sends raw request bytes on a fresh connection and reads one response.
pub fn raw_request(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
    let mut reader = BufReader::new(s);
    read_response(&mut reader)
}

pub fn post_messages(addr: SocketAddr, body: &str, extra_headers: &str) -> Response {
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\n{extra_headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_request(addr, req.as_bytes())
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

pub fn config_with(providers: Vec<ProviderConfig>) -> Config {
    Config::with_providers(providers)
}

pub const STREAM_BODY: &str = r#"{"model":"claude-x","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
pub const PLAIN_BODY: &str =
    r#"{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;

/// Sends a streamed Messages request and reads until `message_start` arrived; the rest
/// of the stream is left for the caller.
pub fn open_stream(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut s = connect(addr);
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{}",
        STREAM_BODY.len(),
        STREAM_BODY
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    while !line.contains("message_start") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0);
    }
    reader
}

/// An upstream that answers every request 500 `api_error` (a provider that is down).
pub fn down_mock() -> MockUpstream {
    MockUpstream::start(|_req, s| {
        write_json(
            s,
            500,
            "",
            r#"{"type":"error","error":{"type":"api_error","message":"down"}}"#,
        )
    })
}
