//! RESP2, the Redis serialization protocol version 2: an encoder for commands (arrays of
//! bulk strings, the only form a client sends) and an incremental decoder for replies
//! (simple string, error, integer, bulk string incl. null, array incl. null and nested).
//! This module owns the bytes only: it never opens a socket, never reads a clock and
//! never interprets what a reply means (that is `state::redis`).
//!
//! Call order: `encode_command(&mut out, ["SET", "k", "v"])` for every command to send
//! (pipelining is just several in one buffer). For replies, one [`Resp2Decoder`] per
//! connection; for every read, loop
//! `let step = decoder.decode(&input[pos..])?; pos += step.consumed;` while `step.value`
//! is `Some` (one complete top-level reply each time). A `None` means the whole input was
//! consumed and the decoder needs more bytes. A reply may be split across reads at any
//! byte; the decoder keeps the partial line, bulk payload or array it is in the middle of.
//!
//! Strictness: every line must end in CRLF, integers and lengths are plain decimal
//! (optional `-`, no `+`, no spaces, no overflow), a bulk payload must be followed by
//! CRLF, a simple string or error may not contain CR or LF, and RESP3-only type bytes are
//! refused. Bounds ([`Resp2Limits`]): line length, bulk length, array length, nesting
//! depth and the total wire bytes of one reply, so a hostile or broken server cannot make
//! the decoder allocate without limit. The first error poisons the decoder: the
//! connection is out of sync and must be closed.

use std::fmt;

/// Bounds on what one reply may hold. Defaults fit cc-relay's own replies (small) with a
/// wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resp2Limits {
    /// Bytes of one line before its LF (type byte and CR included).
    pub max_line: usize,
    /// Payload bytes of one bulk string.
    pub max_bulk: usize,
    /// Elements of one array.
    pub max_array: usize,
    /// Arrays open at once (1 = a flat array, no nesting).
    pub max_depth: usize,
    /// Wire bytes of one top-level reply.
    pub max_reply: usize,
}

impl Default for Resp2Limits {
    fn default() -> Self {
        Resp2Limits {
            max_line: 64 * 1024,
            max_bulk: 8 * 1024 * 1024,
            max_array: 1024 * 1024,
            max_depth: 16,
            max_reply: 16 * 1024 * 1024,
        }
    }
}

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK` (text; invalid UTF-8 is replaced, Redis only sends ASCII here).
    Simple(String),
    /// `-ERR message`: the whole line after `-`; the first word is the error code.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`
    Bulk(Vec<u8>),
    /// `$-1`: a missing value (GET of an absent key).
    Nil,
    /// `*2\r\n...`
    Array(Vec<Value>),
    /// `*-1`: a null array (e.g. a timed-out blocking pop).
    NilArray,
}

impl Value {
    /// The error code of an error reply (`NOSCRIPT`, `WRONGPASS`, `ERR`); None otherwise.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Value::Error(text) => Some(text.split(' ').next().unwrap_or("")),
            _ => None,
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The number of an integer reply, or of a bulk/simple string holding a decimal
    /// integer (Redis returns numbers both ways).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            Value::Bulk(_) | Value::Simple(_) => parse_decimal(self.as_bytes()?),
            _ => None,
        }
    }

    /// The elements of an array reply.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Writes this value in RESP2. A client never sends replies; this exists for tests,
    /// mock servers and the fuzz round trip. CR and LF inside a simple string or error
    /// (which RESP2 cannot carry) are written as spaces.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => encode_line(out, b'+', s.as_bytes()),
            Value::Error(s) => encode_line(out, b'-', s.as_bytes()),
            Value::Integer(n) => {
                out.push(b':');
                push_decimal(out, *n);
                out.extend_from_slice(b"\r\n");
            }
            Value::Bulk(b) => encode_bulk(out, b),
            Value::Nil => out.extend_from_slice(b"$-1\r\n"),
            Value::Array(items) => {
                out.push(b'*');
                push_decimal(out, items.len() as i64);
                out.extend_from_slice(b"\r\n");
                for item in items {
                    item.encode(out);
                }
            }
            Value::NilArray => out.extend_from_slice(b"*-1\r\n"),
        }
    }
}

fn encode_line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn encode_bulk(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(b'$');
    push_decimal(out, payload.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, n: i64) {
    // Formatting through a stack buffer keeps the encoder free of temporary Strings.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends one command as RESP2 (an array of bulk strings) to `out`.
pub fn encode_command<I, A>(out: &mut Vec<u8>, args: I)
where
    I: IntoIterator<Item = A>,
    I::IntoIter: ExactSizeIterator,
    A: AsRef<[u8]>,
{
    let args = args.into_iter();
    out.push(b'*');
    push_decimal(out, args.len() as i64);
    out.extend_from_slice(b"\r\n");
    for arg in args {
        encode_bulk(out, arg.as_ref());
    }
}

/// Why the decoder gave up. Every variant means the stream is unusable from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp2Error {
    /// A byte that starts no RESP2 reply (RESP3 types included).
    UnknownType(u8),
    /// A line not ending in CRLF, or a CR/LF inside a line.
    BadLineEnd,
    /// A length or integer that is not plain decimal, or a negative length other than -1.
    BadNumber,
    /// A bulk payload not followed by CRLF.
    BadBulkEnd,
    LineTooLong,
    BulkTooLong,
    ArrayTooLong,
    TooDeep,
    ReplyTooLarge,
}

impl fmt::Display for Resp2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resp2Error::UnknownType(b) => write!(f, "unknown RESP2 reply type byte 0x{b:02x}"),
            Resp2Error::BadLineEnd => f.write_str("RESP2 line not terminated by CRLF"),
            Resp2Error::BadNumber => f.write_str("invalid RESP2 integer or length"),
            Resp2Error::BadBulkEnd => f.write_str("RESP2 bulk string not followed by CRLF"),
            Resp2Error::LineTooLong => f.write_str("RESP2 line exceeds the limit"),
            Resp2Error::BulkTooLong => f.write_str("RESP2 bulk string exceeds the limit"),
            Resp2Error::ArrayTooLong => f.write_str("RESP2 array exceeds the limit"),
            Resp2Error::TooDeep => f.write_str("RESP2 arrays nested too deeply"),
            Resp2Error::ReplyTooLarge => f.write_str("RESP2 reply exceeds the size limit"),
        }
    }
}

impl std::error::Error for Resp2Error {}

/// The result of one [`Resp2Decoder::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input used; the caller passes the rest next time.
    pub consumed: usize,
    /// A complete top-level reply, if one ended within the consumed bytes.
    pub value: Option<Value>,
}

/// An array still waiting for elements.
#[derive(Debug, Clone)]
struct OpenArray {
    remaining: usize,
    items: Vec<Value>,
}

/// A bulk payload being read: `len` payload bytes then CRLF, gathered in `data`.
#[derive(Debug, Clone)]
struct OpenBulk {
    len: usize,
    data: Vec<u8>,
}

/// Incremental reply decoder; see the module docs for the call order.
#[derive(Debug, Clone)]
pub struct Resp2Decoder {
    limits: Resp2Limits,
    /// The current line's bytes so far (up to, not including, its LF).
    line: Vec<u8>,
    bulk: Option<OpenBulk>,
    arrays: Vec<OpenArray>,
    /// Wire bytes of the reply in progress.
    reply_bytes: usize,
    failed: Option<Resp2Error>,
}

impl Default for Resp2Decoder {
    fn default() -> Self {
        Resp2Decoder::new()
    }
}

impl Resp2Decoder {
    pub fn new() -> Resp2Decoder {
        Resp2Decoder::with_limits(Resp2Limits::default())
    }

    pub fn with_limits(limits: Resp2Limits) -> Resp2Decoder {
        Resp2Decoder {
            limits,
            line: Vec::new(),
            bulk: None,
            arrays: Vec::new(),
            reply_bytes: 0,
            failed: None,
        }
    }

    /// True between replies: no partial reply is held. A connection may only be reused
    /// when this holds after its last reply.
    pub fn is_idle(&self) -> bool {
        self.failed.is_none()
            && self.line.is_empty()
            && self.bulk.is_none()
            && self.arrays.is_empty()
    }

    /// Consumes bytes of `input` up to the end of the next complete top-level reply
    /// (or all of it when none completes) and returns that reply.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, Resp2Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode_inner(input) {
            Ok(d) => Ok(d),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    fn decode_inner(&mut self, input: &[u8]) -> Result<Decoded, Resp2Error> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            let complete = if let Some(bulk) = &mut self.bulk {
                let wanted = bulk.len + 2 - bulk.data.len();
                let take = wanted.min(rest.len());
                let chunk = rest.get(..take).unwrap_or(&[]);
                self.reply_bytes = self.reply_bytes.saturating_add(take);
                if self.reply_bytes > self.limits.max_reply {
                    return Err(Resp2Error::ReplyTooLarge);
                }
                bulk.data.extend_from_slice(chunk);
                pos += take;
                if bulk.data.len() < bulk.len + 2 {
                    return Ok(Decoded {
                        consumed: pos,
                        value: None,
                    });
                }
                if !bulk.data.ends_with(b"\r\n") {
                    return Err(Resp2Error::BadBulkEnd);
                }
                let mut data = std::mem::take(&mut bulk.data);
                data.truncate(bulk.len);
                self.bulk = None;
                Value::Bulk(data)
            } else {
                let newline = rest.iter().position(|&b| b == b'\n');
                let take = newline.unwrap_or(rest.len());
                let chunk = rest.get(..take).unwrap_or(&[]);
                self.reply_bytes = self
                    .reply_bytes
                    .saturating_add(take + usize::from(newline.is_some()));
                if self.line.len() + chunk.len() > self.limits.max_line {
                    return Err(Resp2Error::LineTooLong);
                }
                if self.reply_bytes > self.limits.max_reply {
                    return Err(Resp2Error::ReplyTooLarge);
                }
                self.line.extend_from_slice(chunk);
                let Some(newline) = newline else {
                    return Ok(Decoded {
                        consumed: input.len(),
                        value: None,
                    });
                };
                pos += newline + 1;
                let line = std::mem::take(&mut self.line);
                let parsed = self.parse_line(&line);
                // Keep the buffer's capacity for the next line.
                self.line = line;
                self.line.clear();
                match parsed? {
                    Some(value) => value,
                    // A bulk or array header: its contents follow.
                    None => continue,
                }
            };
            if let Some(value) = self.finish(complete) {
                self.reply_bytes = 0;
                return Ok(Decoded {
                    consumed: pos,
                    value: Some(value),
                });
            }
        }
    }

    /// One whole line (without its LF). Returns the value it completes, or None when it
    /// opened a bulk string or an array.
    fn parse_line(&mut self, line: &[u8]) -> Result<Option<Value>, Resp2Error> {
        let Some((&kind, body)) = line.split_first() else {
            return Err(Resp2Error::BadLineEnd);
        };
        let Some(body) = body.strip_suffix(b"\r") else {
            return Err(Resp2Error::BadLineEnd);
        };
        if body.contains(&b'\r') {
            return Err(Resp2Error::BadLineEnd);
        }
        match kind {
            b'+' => Ok(Some(Value::Simple(
                String::from_utf8_lossy(body).into_owned(),
            ))),
            b'-' => Ok(Some(Value::Error(
                String::from_utf8_lossy(body).into_owned(),
            ))),
            b':' => parse_decimal(body)
                .map(|n| Some(Value::Integer(n)))
                .ok_or(Resp2Error::BadNumber),
            b'$' => match parse_decimal(body).ok_or(Resp2Error::BadNumber)? {
                -1 => Ok(Some(Value::Nil)),
                n if n < 0 => Err(Resp2Error::BadNumber),
                n => {
                    let len = usize::try_from(n).map_err(|_| Resp2Error::BulkTooLong)?;
                    if len > self.limits.max_bulk || len > usize::MAX - 2 {
                        return Err(Resp2Error::BulkTooLong);
                    }
                    // Grows with the bytes that arrive, never with what the header claims.
                    self.bulk = Some(OpenBulk {
                        len,
                        data: Vec::with_capacity((len + 2).min(4096)),
                    });
                    Ok(None)
                }
            },
            b'*' => match parse_decimal(body).ok_or(Resp2Error::BadNumber)? {
                -1 => Ok(Some(Value::NilArray)),
                0 => Ok(Some(Value::Array(Vec::new()))),
                n if n < 0 => Err(Resp2Error::BadNumber),
                n => {
                    let len = usize::try_from(n).map_err(|_| Resp2Error::ArrayTooLong)?;
                    if len > self.limits.max_array {
                        return Err(Resp2Error::ArrayTooLong);
                    }
                    if self.arrays.len() >= self.limits.max_depth {
                        return Err(Resp2Error::TooDeep);
                    }
                    self.arrays.push(OpenArray {
                        remaining: len,
                        items: Vec::with_capacity(len.min(64)),
                    });
                    Ok(None)
                }
            },
            other => Err(Resp2Error::UnknownType(other)),
        }
    }

    /// Places a finished value into the innermost open array, closing every array it
    /// completes. Returns the top-level reply once nothing is left open.
    fn finish(&mut self, mut value: Value) -> Option<Value> {
        loop {
            let Some(open) = self.arrays.last_mut() else {
                return Some(value);
            };
            open.items.push(value);
            open.remaining -= 1;
            if open.remaining > 0 {
                return None;
            }
            let items = self.arrays.pop().map(|a| a.items).unwrap_or_default();
            value = Value::Array(items);
        }
    }
}

/// Plain decimal: optional `-`, then 1..=19 digits, no overflow.
fn parse_decimal(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        // Accumulating negatively reaches i64::MIN, whose magnitude i64::MAX lacks.
        n = n.checked_mul(10)?.checked_sub(digit)?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// Decodes `data` fed in the given pieces; returns the replies and whether it failed.
fn decode_pieces(data: &[u8], cuts: &[usize], limits: Resp2Limits) -> (Vec<Value>, bool) {
    let mut decoder = Resp2Decoder::with_limits(limits);
    let mut values = Vec::new();
    let mut start = 0;
    let ends = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < data.len())
        .chain(std::iter::once(data.len()));
    for end in ends {
        if end < start {
            continue;
        }
        let Some(mut piece) = data.get(start..end) else {
            continue;
        };
        start = end;
        loop {
            match decoder.decode(piece) {
                Ok(step) => {
                    piece = piece.get(step.consumed..).unwrap_or(&[]);
                    match step.value {
                        Some(v) => values.push(v),
                        None => break,
                    }
                }
                Err(_) => return (values, true),
            }
        }
    }
    (values, false)
}

/// Fuzz entry (also replayed by `tests/fuzz_replay.rs`): decoding must never panic, must
/// not depend on how the input is split into reads, must stay within tight limits when
/// asked to, and every decoded reply must survive encode + decode unchanged.
pub fn fuzz_entry(data: &[u8]) {
    let stride = data.first().map_or(1, |&b| usize::from(b % 7) + 1);
    let every: Vec<usize> = (1..data.len()).step_by(stride).collect();
    let thirds = [data.len() / 3, data.len() * 2 / 3];
    let bytewise: Vec<usize> = (1..data.len().min(256)).collect();
    let tight = Resp2Limits {
        max_line: 16,
        max_bulk: 16,
        max_array: 4,
        max_depth: 3,
        max_reply: 64,
    };
    for limits in [Resp2Limits::default(), tight] {
        let whole = decode_pieces(data, &[], limits);
        for cuts in [&every[..], &thirds[..], &bytewise[..]] {
            assert_eq!(
                decode_pieces(data, cuts, limits),
                whole,
                "replies depend on how the input was split"
            );
        }
    }

    let (values, _) = decode_pieces(data, &[], Resp2Limits::default());
    let mut encoded = Vec::new();
    for value in &values {
        encoded.clear();
        value.encode(&mut encoded);
        let (again, failed) = decode_pieces(&encoded, &[], Resp2Limits::default());
        assert!(!failed, "re-encoded reply does not decode");
        assert_eq!(again, std::slice::from_ref(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bounds() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"-1"), Some(-1));
        assert_eq!(parse_decimal(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_decimal(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_decimal(b"9223372036854775808"), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"-"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b" 1"), None);
    }

    #[test]
    fn push_decimal_extremes() {
        for n in [0, 7, -7, 10, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
