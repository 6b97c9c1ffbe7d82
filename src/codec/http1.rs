//! HTTP/1.1 message heads, sans-IO: parse request and response heads (through httparse),
//! decide how a body is framed, and write heads. No sockets here: the caller owns the
//! buffer and calls `parse_*_head` again when more bytes arrived.
//!
//! Framing rules follow RFC 9112 §6 and the request-smuggling advice of PROTOCOLS.md §9:
//! `Transfer-Encoding` together with `Content-Length` is rejected, `chunked` must be the
//! last coding, and differing `Content-Length` values are rejected.

use std::fmt;

use crate::codec::chunked;

/// Most headers a head may carry; more is answered 431.
pub const MAX_HEADERS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// The head is not HTTP/1.x (garbage, bad token, bad version).
    Malformed(&'static str),
    /// Head larger than the limit, or too many headers.
    TooLarge,
    /// A framing header that cannot be trusted (smuggling vectors, bad lengths).
    BadFraming(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Malformed(what) => write!(f, "malformed HTTP head: {what}"),
            HeadError::TooLarge => write!(f, "HTTP head too large"),
            HeadError::BadFraming(what) => write!(f, "bad message framing: {what}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Header list in arrival order; names keep their case, lookups ignore it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.0.push((name.into(), value.into()));
    }

    /// Whether a comma-separated header (e.g. `Connection`) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent: path plus optional `?query`.
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Headers,
}

impl RequestHead {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close.
    pub fn wants_keep_alive(&self) -> bool {
        if self.headers.has_token("connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.headers.has_token("connection", "keep-alive")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub minor_version: u8,
    pub headers: Headers,
}

/// How the bytes after a head are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    /// Responses only: the body runs until the connection closes.
    UntilClose,
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Headers {
    Headers(
        raw.iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
    )
}

fn map_parse_error(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
        httparse::Error::Status => HeadError::Malformed("invalid status"),
        httparse::Error::Token => HeadError::Malformed("invalid token"),
        httparse::Error::Version => HeadError::Malformed("invalid HTTP version"),
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)` means more bytes are
/// needed; a buffer over `max_head` bytes without a complete head is `TooLarge`.
pub fn parse_request_head(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            if len > max_head {
                return Err(HeadError::TooLarge);
            }
            let head = RequestHead {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                minor_version: req.version.unwrap_or(1),
                headers: collect_headers(req.headers),
            };
            Ok(Some((head, len)))
        }
        Ok(httparse::Status::Partial) if buf.len() > max_head => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(map_parse_error(e)),
    }
}

/// Parses a response head from the start of `buf` (see `parse_request_head`).
pub fn parse_response_head(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let head = ResponseHead {
                status: resp.code.unwrap_or(0),
                reason: resp.reason.unwrap_or("").to_string(),
                minor_version: resp.version.unwrap_or(1),
                headers: collect_headers(resp.headers),
            };
            Ok(Some((head, len)))
        }
        Ok(httparse::Status::Partial) if buf.len() > max_head => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(map_parse_error(e)),
    }
}

fn content_length(headers: &Headers) -> Result<Option<u64>, HeadError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all("content-length") {
        // A list such as "5, 5" is allowed when every member agrees (RFC 9110 §8.6).
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) || part.len() > 18 {
                return Err(HeadError::BadFraming("invalid Content-Length"));
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(HeadError::BadFraming("invalid Content-Length"))?;
            if found.is_some_and(|f| f != n) {
                return Err(HeadError::BadFraming("conflicting Content-Length"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn transfer_encoding(headers: &Headers) -> Result<Option<bool>, HeadError> {
    let values: Vec<&[u8]> = headers.get_all("transfer-encoding").collect();
    if values.is_empty() {
        return Ok(None);
    }
    chunked::transfer_encoding_is_chunked(&values)
        .map(Some)
        .map_err(|_| HeadError::BadFraming("invalid Transfer-Encoding"))
}

/// Body framing of a request: chunked, a length, or none. A request whose
/// Transfer-Encoding does not end in `chunked` cannot be delimited and is rejected.
pub fn request_body_framing(head: &RequestHead) -> Result<BodyFraming, HeadError> {
    let te = transfer_encoding(&head.headers)?;
    let cl = content_length(&head.headers)?;
    match (te, cl) {
        (Some(_), Some(_)) => Err(HeadError::BadFraming(
            "both Transfer-Encoding and Content-Length",
        )),
        (Some(true), None) => Ok(BodyFraming::Chunked),
        (Some(false), None) => Err(HeadError::BadFraming("chunked is not the last coding")),
        (None, Some(0)) | (None, None) => Ok(BodyFraming::None),
        (None, Some(n)) => Ok(BodyFraming::Length(n)),
    }
}

/// Body framing of a response to a request with `request_method`.
pub fn response_body_framing(
    request_method: &str,
    head: &ResponseHead,
) -> Result<BodyFraming, HeadError> {
    if request_method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304
    {
        return Ok(BodyFraming::None);
    }
    let te = transfer_encoding(&head.headers)?;
    let cl = content_length(&head.headers)?;
    match (te, cl) {
        (Some(_), Some(_)) => Err(HeadError::BadFraming(
            "both Transfer-Encoding and Content-Length",
        )),
        (Some(true), None) => Ok(BodyFraming::Chunked),
        (Some(false), None) | (None, None) => Ok(BodyFraming::UntilClose),
        (None, Some(n)) => Ok(BodyFraming::Length(n)),
    }
}

/// Headers that describe one connection, not the message; a proxy never forwards them.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "",
    }
}

/// Appends a response status line and headers, ending with the blank line.
pub fn write_response_head<'a>(
    out: &mut Vec<u8>,
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        write_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value\r\n`, dropping any CR/LF in the value so that a value taken from
/// one peer can never inject a header toward the other.
pub fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(value.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
    out.extend_from_slice(b"\r\n");
}

/// Fuzz entry: request and response heads of arbitrary bytes never panic, and framing
/// decisions are consistent.
pub fn fuzz_entry(data: &[u8]) {
    if let Ok(Some((head, len))) = parse_request_head(data, 64 * 1024) {
        assert!(len <= data.len());
        let _ = request_body_framing(&head);
        let _ = head.wants_keep_alive();
        let _ = (head.path(), head.query());
    }
    if let Ok(Some((head, len))) = parse_response_head(data, 64 * 1024) {
        assert!(len <= data.len());
        let _ = response_body_framing("POST", &head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> RequestHead {
        parse_request_head(text.as_bytes(), 65536)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn partial_head_needs_more() {
        assert_eq!(parse_request_head(b"POST /v1/mes", 1024), Ok(None));
    }

    #[test]
    fn oversized_partial_head_is_too_large() {
        let big = vec![b'a'; 2000];
        let mut buf = b"GET / HTTP/1.1\r\nx: ".to_vec();
        buf.extend_from_slice(&big);
        assert_eq!(parse_request_head(&buf, 1024), Err(HeadError::TooLarge));
    }

    #[test]
    fn path_and_query_split() {
        let h = req("POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path(), "/v1/messages");
        assert_eq!(h.query(), Some("beta=true"));
    }

    #[test]
    fn te_and_cl_together_rejected() {
        let h = req("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(request_body_framing(&h).is_err());
    }

    #[test]
    fn conflicting_lengths_rejected_equal_list_accepted() {
        let h = req("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
        assert!(request_body_framing(&h).is_err());
        let h = req("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n");
        assert_eq!(request_body_framing(&h), Ok(BodyFraming::Length(3)));
        let h = req("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n");
        assert!(request_body_framing(&h).is_err());
    }

    #[test]
    fn keep_alive_defaults() {
        assert!(req("GET / HTTP/1.1\r\n\r\n").wants_keep_alive());
        assert!(!req("GET / HTTP/1.0\r\n\r\n").wants_keep_alive());
        assert!(!req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").wants_keep_alive());
        assert!(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wants_keep_alive());
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let mut out = Vec::new();
        write_header(&mut out, "x", b"a\r\nevil: 1");
        assert_eq!(out, b"x: aevil: 1\r\n");
    }

    #[test]
    fn response_without_length_reads_until_close() {
        let (h, _) = parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(
            response_body_framing("POST", &h),
            Ok(BodyFraming::UntilClose)
        );
        assert_eq!(response_body_framing("HEAD", &h), Ok(BodyFraming::None));
    }
}
