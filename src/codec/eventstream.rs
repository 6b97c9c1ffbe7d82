//! AWS event-stream binary framing (`application/vnd.amazon.eventstream`, PROTOCOLS §3):
//! an incremental decoder that turns arbitrarily split body bytes into [`Message`]s, and
//! an encoder for tests and round-trip fuzzing.
//!
//! This module owns the frame layout, both CRCs, the header value types and the size
//! caps. It must not interpret messages (what `:event-type` or `:message-type` mean is
//! the Bedrock transcoder's business), must not touch sockets or clocks, and allocates
//! only its own buffer and the messages it returns.
//!
//! Call order: [`EventStreamDecoder::push`] every read from the upstream, then call
//! [`EventStreamDecoder::next_message`] until it returns `Ok(None)` (more bytes needed);
//! at end of body call [`EventStreamDecoder::finish`] to learn whether the stream stopped
//! mid-frame. Once any call has returned an error the decoder stays failed: every later
//! call returns the same error and pushed bytes are dropped.
//!
//! ```
//! use cc_relay::codec::eventstream::{encode_message, EventStreamDecoder, Header, HeaderValue};
//!
//! let mut wire = Vec::new();
//! let headers = [Header::new(":event-type", HeaderValue::String("chunk".into()))];
//! encode_message(&headers, b"{}", &mut wire).unwrap();
//!
//! let mut decoder = EventStreamDecoder::new();
//! let (first, rest) = wire.split_at(5); // reads split frames anywhere
//! decoder.push(first);
//! assert_eq!(decoder.next_message(), Ok(None));
//! decoder.push(rest);
//! let message = decoder.next_message().unwrap().unwrap();
//! assert_eq!(message.header_str(":event-type"), Some("chunk"));
//! assert_eq!(message.payload, b"{}");
//! assert_eq!(decoder.next_message(), Ok(None));
//! assert_eq!(decoder.finish(), Ok(()));
//! ```

use std::collections::HashSet;
use std::fmt;

use crate::codec::crc32::{crc32, Crc32};

/// total_length, headers_length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// Prelude plus the trailing message CRC: the size of a message with no headers and no
/// payload.
pub const MESSAGE_OVERHEAD: usize = 16;
/// Default cap on one whole message. Bedrock chunks are at most ~1.4 MB (1,000,000
/// payload bytes in base64 plus JSON), so 16 MiB leaves room without letting a hostile
/// length make us buffer without bound.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// Cap on the header block, the same as botocore's.
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// One typed header value; the variant fixes the wire type code (PROTOCOLS §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false); no value bytes on the wire.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6: u16 length + bytes.
    Bytes(Vec<u8>),
    /// Type 7: u16 length + UTF-8.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The wire type code of this value.
    pub fn type_code(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Int16(_) => 3,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) => 5,
            HeaderValue::Bytes(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        }
    }

    /// The text of a string header, `None` for every other type.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(text) => Some(text),
            _ => None,
        }
    }
}

/// A named header. Names are unique within a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: HeaderValue,
}

impl Header {
    pub fn new(name: impl Into<String>, value: HeaderValue) -> Self {
        Header {
            name: name.into(),
            value,
        }
    }
}

/// One decoded message: its headers in wire order and its payload.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<Header>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of the header called `name`, if present.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|header| header.name == name)
            .map(|header| &header.value)
    }

    /// The text of the string header called `name`; `None` when absent or not a string
    /// (Bedrock's `:event-type`, `:message-type`, `:exception-type` are strings).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }
}

/// Why bytes are not a valid event stream (or a message cannot be encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventStreamError {
    /// The CRC of the first 8 bytes does not match; the lengths cannot be trusted.
    PreludeChecksumMismatch { expected: u32, computed: u32 },
    /// The CRC of the whole message does not match.
    MessageChecksumMismatch { expected: u32, computed: u32 },
    /// total_length below the 16-byte minimum.
    InvalidTotalLength { total_length: u32 },
    /// headers_length does not fit inside total_length.
    InvalidHeadersLength {
        headers_length: u32,
        total_length: u32,
    },
    /// total_length above the decoder's cap.
    MessageTooLarge { total_length: u32, max: usize },
    /// headers_length above [`MAX_HEADERS_LEN`].
    HeadersTooLarge { headers_length: u32 },
    /// A header name of length 0, one running past the header block, or (when encoding)
    /// one over 255 bytes.
    InvalidHeaderNameLength { length: usize },
    /// The header block ends in the middle of a header.
    TruncatedHeader,
    /// A header type code outside 0..=9.
    InvalidHeaderType(u8),
    /// A header name or string value that is not UTF-8.
    InvalidUtf8,
    /// The same header name twice in one message.
    DuplicateHeader(String),
    /// A byte-array or string value longer than 65535 bytes (encoding only).
    HeaderValueTooLong { name: String, length: usize },
    /// The message would exceed the u32 length field (encoding only).
    EncodedMessageTooLarge { length: usize },
    /// The body ended with this many bytes of an unfinished frame buffered.
    TruncatedStream { buffered: usize },
}

impl fmt::Display for EventStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventStreamError::PreludeChecksumMismatch { expected, computed } => write!(
                f,
                "event-stream prelude checksum mismatch (frame says 0x{expected:08x}, computed 0x{computed:08x})"
            ),
            EventStreamError::MessageChecksumMismatch { expected, computed } => write!(
                f,
                "event-stream message checksum mismatch (frame says 0x{expected:08x}, computed 0x{computed:08x})"
            ),
            EventStreamError::InvalidTotalLength { total_length } => {
                write!(f, "event-stream total length {total_length} is below 16")
            }
            EventStreamError::InvalidHeadersLength {
                headers_length,
                total_length,
            } => write!(
                f,
                "event-stream headers length {headers_length} does not fit in total length {total_length}"
            ),
            EventStreamError::MessageTooLarge { total_length, max } => write!(
                f,
                "event-stream message of {total_length} bytes exceeds the {max}-byte cap"
            ),
            EventStreamError::HeadersTooLarge { headers_length } => write!(
                f,
                "event-stream header block of {headers_length} bytes exceeds the {MAX_HEADERS_LEN}-byte cap"
            ),
            EventStreamError::InvalidHeaderNameLength { length } => {
                write!(f, "event-stream header name length {length} is invalid")
            }
            EventStreamError::TruncatedHeader => {
                f.write_str("event-stream header block ends inside a header")
            }
            EventStreamError::InvalidHeaderType(code) => {
                write!(f, "event-stream header type {code} is unknown")
            }
            EventStreamError::InvalidUtf8 => {
                f.write_str("event-stream header name or string value is not UTF-8")
            }
            EventStreamError::DuplicateHeader(name) => {
                write!(f, "event-stream header {name:?} appears twice")
            }
            EventStreamError::HeaderValueTooLong { name, length } => write!(
                f,
                "event-stream header {name:?} value of {length} bytes exceeds 65535"
            ),
            EventStreamError::EncodedMessageTooLarge { length } => {
                write!(f, "event-stream message of {length} bytes cannot be encoded")
            }
            EventStreamError::TruncatedStream { buffered } => write!(
                f,
                "event stream ended inside a frame ({buffered} bytes of it buffered)"
            ),
        }
    }
}

impl std::error::Error for EventStreamError {}

/// Incremental decoder; see the module doc for the call order.
#[derive(Debug)]
pub struct EventStreamDecoder {
    /// Received bytes; everything before `consumed` has already been returned.
    buffer: Vec<u8>,
    consumed: usize,
    /// total_length of the frame at `consumed`, once its prelude has been verified, so
    /// the prelude is checked once however many pushes the frame takes.
    verified_total: Option<usize>,
    max_message_len: usize,
    /// Set by the first error; the decoder never leaves this state.
    failure: Option<EventStreamError>,
}

impl Default for EventStreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStreamDecoder {
    /// A decoder with the [`DEFAULT_MAX_MESSAGE_LEN`] cap.
    pub fn new() -> Self {
        Self::with_max_message_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// A decoder that rejects messages longer than `max_message_len` bytes (the cap is
    /// never below the 16-byte minimum message).
    pub fn with_max_message_len(max_message_len: usize) -> Self {
        EventStreamDecoder {
            buffer: Vec::new(),
            consumed: 0,
            verified_total: None,
            max_message_len: max_message_len.max(MESSAGE_OVERHEAD),
            failure: None,
        }
    }

    /// Appends bytes read from the body. Ignored once the decoder has failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        if self.consumed > 0 {
            // Drop returned frames before growing, so the buffer holds at most one
            // unfinished frame plus the latest read.
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or the error
    /// that made the stream unusable (returned again on every later call).
    pub fn next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        match self.try_next_message() {
            Ok(message) => Ok(message),
            Err(error) => {
                self.failure = Some(error.clone());
                self.buffer = Vec::new();
                self.consumed = 0;
                self.verified_total = None;
                Err(error)
            }
        }
    }

    /// Call at the end of the body: `Ok` when it ended on a frame boundary, the stored
    /// error when decoding failed, `TruncatedStream` when a frame was cut off.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        match self.buffered_len() {
            0 => Ok(()),
            buffered => Err(EventStreamError::TruncatedStream { buffered }),
        }
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len().saturating_sub(self.consumed)
    }

    /// Whether an error has been returned (the decoder is then permanently failed).
    pub fn has_failed(&self) -> bool {
        self.failure.is_some()
    }

    fn try_next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        let available = self.buffer.get(self.consumed..).unwrap_or_default();
        let total_length = match self.verified_total {
            Some(total_length) => total_length,
            None => {
                let Some(prelude) = available.get(..PRELUDE_LEN) else {
                    return Ok(None);
                };
                let total_length = check_prelude(prelude, self.max_message_len)?;
                self.verified_total = Some(total_length);
                total_length
            }
        };
        let Some(frame) = available.get(..total_length) else {
            return Ok(None);
        };
        let message = decode_frame(frame)?;
        self.consumed += total_length;
        self.verified_total = None;
        Ok(Some(message))
    }
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(offset..offset + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(field))
}

/// Verifies the prelude CRC first and only then trusts the lengths (PROTOCOLS §3.2).
/// Returns total_length.
fn check_prelude(prelude: &[u8], max_message_len: usize) -> Result<usize, EventStreamError> {
    let (Some(total_length), Some(headers_length), Some(expected)) = (
        read_u32(prelude, 0),
        read_u32(prelude, 4),
        read_u32(prelude, 8),
    ) else {
        return Err(EventStreamError::TruncatedStream {
            buffered: prelude.len(),
        });
    };
    let computed = crc32(prelude.get(..8).unwrap_or_default());
    if computed != expected {
        return Err(EventStreamError::PreludeChecksumMismatch { expected, computed });
    }
    if (total_length as usize) < MESSAGE_OVERHEAD {
        return Err(EventStreamError::InvalidTotalLength { total_length });
    }
    if headers_length as usize > total_length as usize - MESSAGE_OVERHEAD {
        return Err(EventStreamError::InvalidHeadersLength {
            headers_length,
            total_length,
        });
    }
    if total_length as usize > max_message_len {
        return Err(EventStreamError::MessageTooLarge {
            total_length,
            max: max_message_len,
        });
    }
    if headers_length as usize > MAX_HEADERS_LEN {
        return Err(EventStreamError::HeadersTooLarge { headers_length });
    }
    Ok(total_length as usize)
}

/// Decodes exactly one whole frame whose prelude has been checked: message CRC first
/// (so corrupted bytes are reported as corruption), then the headers.
fn decode_frame(frame: &[u8]) -> Result<Message, EventStreamError> {
    let crc_offset = frame.len().saturating_sub(4);
    let expected = read_u32(frame, crc_offset).unwrap_or_default();
    let computed = crc32(frame.get(..crc_offset).unwrap_or_default());
    if computed != expected {
        return Err(EventStreamError::MessageChecksumMismatch { expected, computed });
    }
    let headers_length = read_u32(frame, 4).unwrap_or_default() as usize;
    let headers_end = PRELUDE_LEN + headers_length;
    let header_block = frame
        .get(PRELUDE_LEN..headers_end)
        .ok_or(EventStreamError::TruncatedHeader)?;
    let payload = frame
        .get(headers_end..crc_offset)
        .ok_or(EventStreamError::TruncatedHeader)?;
    Ok(Message {
        headers: decode_headers(header_block)?,
        payload: payload.to_vec(),
    })
}

/// Reads fixed-size pieces off the header block, failing instead of running past it.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], EventStreamError> {
        if count > self.bytes.len() {
            return Err(EventStreamError::TruncatedHeader);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], EventStreamError> {
        self.take(N)?
            .try_into()
            .map_err(|_| EventStreamError::TruncatedHeader)
    }

    fn take_u8(&mut self) -> Result<u8, EventStreamError> {
        Ok(self.take_array::<1>()?[0])
    }

    fn take_u16(&mut self) -> Result<u16, EventStreamError> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }
}

fn decode_headers(block: &[u8]) -> Result<Vec<Header>, EventStreamError> {
    let mut cursor = Cursor { bytes: block };
    let mut headers = Vec::new();
    let mut seen = HashSet::new();
    while !cursor.bytes.is_empty() {
        let name_length = usize::from(cursor.take_u8()?);
        if name_length == 0 || name_length > cursor.bytes.len() {
            return Err(EventStreamError::InvalidHeaderNameLength {
                length: name_length,
            });
        }
        let name = std::str::from_utf8(cursor.take(name_length)?)
            .map_err(|_| EventStreamError::InvalidUtf8)?;
        let value = match cursor.take_u8()? {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(cursor.take_array()?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(cursor.take_array()?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(cursor.take_array()?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(cursor.take_array()?)),
            6 => {
                let length = usize::from(cursor.take_u16()?);
                HeaderValue::Bytes(cursor.take(length)?.to_vec())
            }
            7 => {
                let length = usize::from(cursor.take_u16()?);
                let text = std::str::from_utf8(cursor.take(length)?)
                    .map_err(|_| EventStreamError::InvalidUtf8)?;
                HeaderValue::String(text.to_owned())
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(cursor.take_array()?)),
            9 => HeaderValue::Uuid(cursor.take_array()?),
            unknown => return Err(EventStreamError::InvalidHeaderType(unknown)),
        };
        if !seen.insert(name) {
            return Err(EventStreamError::DuplicateHeader(name.to_owned()));
        }
        headers.push(Header {
            name: name.to_owned(),
            value,
        });
    }
    Ok(headers)
}

/// Appends one complete frame to `out`. On error nothing is appended. Names must be
/// 1..=255 bytes and unique; byte and string values at most 65535 bytes.
pub fn encode_message(
    headers: &[Header],
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EventStreamError> {
    let start = out.len();
    let result = encode_into(headers, payload, start, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_into(
    headers: &[Header],
    payload: &[u8],
    start: usize,
    out: &mut Vec<u8>,
) -> Result<(), EventStreamError> {
    out.extend_from_slice(&[0; PRELUDE_LEN]);
    let mut seen = HashSet::new();
    for header in headers {
        let name = header.name.as_bytes();
        let name_length = u8::try_from(name.len())
            .ok()
            .filter(|&length| length > 0)
            .ok_or(EventStreamError::InvalidHeaderNameLength { length: name.len() })?;
        if !seen.insert(header.name.as_str()) {
            return Err(EventStreamError::DuplicateHeader(header.name.clone()));
        }
        out.push(name_length);
        out.extend_from_slice(name);
        out.push(header.value.type_code());
        match &header.value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(value) => out.extend_from_slice(&value.to_be_bytes()),
            HeaderValue::Int16(value) => out.extend_from_slice(&value.to_be_bytes()),
            HeaderValue::Int32(value) => out.extend_from_slice(&value.to_be_bytes()),
            HeaderValue::Int64(value) | HeaderValue::Timestamp(value) => {
                out.extend_from_slice(&value.to_be_bytes())
            }
            HeaderValue::Bytes(bytes) => push_u16_prefixed(&header.name, bytes, out)?,
            HeaderValue::String(text) => push_u16_prefixed(&header.name, text.as_bytes(), out)?,
            HeaderValue::Uuid(bytes) => out.extend_from_slice(bytes),
        }
    }
    let headers_length = out.len() - start - PRELUDE_LEN;
    out.extend_from_slice(payload);
    let total = out.len() - start + 4;
    let (Ok(total_length), Ok(headers_length)) =
        (u32::try_from(total), u32::try_from(headers_length))
    else {
        return Err(EventStreamError::EncodedMessageTooLarge { length: total });
    };
    let mut prelude = [0u8; PRELUDE_LEN];
    prelude[..4].copy_from_slice(&total_length.to_be_bytes());
    prelude[4..8].copy_from_slice(&headers_length.to_be_bytes());
    let prelude_crc = crc32(&prelude[..8]);
    prelude[8..].copy_from_slice(&prelude_crc.to_be_bytes());
    out[start..start + PRELUDE_LEN].copy_from_slice(&prelude);
    let mut message_crc = Crc32::new();
    message_crc.update(&out[start..]);
    out.extend_from_slice(&message_crc.finish().to_be_bytes());
    Ok(())
}

fn push_u16_prefixed(name: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), EventStreamError> {
    let length = u16::try_from(value.len()).map_err(|_| EventStreamError::HeaderValueTooLong {
        name: name.to_owned(),
        length: value.len(),
    })?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// What decoding a whole input yields: the messages with their frame lengths, then how
/// the input ended.
type DecodeRun = (Vec<(Message, usize)>, Result<(), EventStreamError>);

fn decode_in_pieces(data: &[u8], piece_lengths: &mut dyn Iterator<Item = usize>) -> DecodeRun {
    let mut decoder = EventStreamDecoder::with_max_message_len(64 * 1024);
    let mut messages = Vec::new();
    let mut rest = data;
    let mut last_end = 0;
    loop {
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    let end = data.len() - rest.len() - decoder.buffered_len();
                    messages.push((message, end - last_end));
                    last_end = end;
                }
                Ok(None) => break,
                Err(error) => {
                    // Failed state is sticky and drops further input.
                    assert_eq!(decoder.next_message(), Err(error.clone()));
                    decoder.push(rest);
                    assert_eq!(decoder.buffered_len(), 0);
                    return (messages, Err(error));
                }
            }
        }
        if rest.is_empty() {
            return (messages, decoder.finish());
        }
        let take = piece_lengths
            .next()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (piece, tail) = rest.split_at(take);
        decoder.push(piece);
        rest = tail;
    }
}

/// Fuzz entry (`fuzz/fuzz_targets/eventstream.rs`). Arbitrary bytes never panic; any
/// split of the input decodes exactly like the whole input; every decoded message
/// re-encodes to the very bytes it came from; and a message built from the input
/// survives encode -> decode. The input is also tried with the first frame's CRCs
/// repaired, so mutations reach the header parser instead of stopping at a checksum.
pub fn fuzz_entry(data: &[u8]) {
    check_decoding(data);
    check_decoding(&with_repaired_crcs(data));

    let message = message_from_bytes(data);
    let mut encoded = Vec::new();
    if encode_message(&message.headers, &message.payload, &mut encoded).is_ok() {
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&encoded);
        assert_eq!(decoder.next_message(), Ok(Some(message)));
        assert_eq!(decoder.next_message(), Ok(None));
        assert_eq!(decoder.finish(), Ok(()));
    }
}

/// Rewrites the prelude CRC, and the message CRC when the whole first frame is present.
fn with_repaired_crcs(data: &[u8]) -> Vec<u8> {
    let mut repaired = data.to_vec();
    if let Some(prelude) = repaired.get(..8) {
        let crc = crc32(prelude).to_be_bytes();
        if let Some(slot) = repaired.get_mut(8..12) {
            slot.copy_from_slice(&crc);
        }
    }
    let total = read_u32(&repaired, 0).map_or(0, |total| total as usize);
    if total >= MESSAGE_OVERHEAD && total <= repaired.len() {
        let crc = crc32(&repaired[..total - 4]).to_be_bytes();
        repaired[total - 4..total].copy_from_slice(&crc);
    }
    repaired
}

fn check_decoding(data: &[u8]) {
    let whole = decode_in_pieces(data, &mut std::iter::empty());
    let split_seed = data.first().copied().unwrap_or(1);
    let mut piece_lengths = data
        .iter()
        .map(move |&byte| usize::from((byte ^ split_seed) % 17) + 1);
    let split = decode_in_pieces(data, &mut piece_lengths);
    assert_eq!(whole, split);
    let one_byte = decode_in_pieces(data, &mut std::iter::repeat(1));
    assert_eq!(whole, one_byte);

    let mut offset = 0;
    for (message, length) in &whole.0 {
        let mut encoded = Vec::new();
        assert_eq!(
            encode_message(&message.headers, &message.payload, &mut encoded),
            Ok(())
        );
        assert_eq!(Some(encoded.as_slice()), data.get(offset..offset + length));
        offset += length;
    }
}

/// Builds a message with one header of every type from fuzz bytes.
fn message_from_bytes(data: &[u8]) -> Message {
    let byte_at = |index: usize| data.get(index).copied().unwrap_or_default();
    let eight = |index: usize| {
        let mut value = [0u8; 8];
        for (slot, position) in value.iter_mut().zip(index..) {
            *slot = byte_at(position);
        }
        i64::from_be_bytes(value)
    };
    let mut uuid = [0u8; 16];
    for (slot, position) in uuid.iter_mut().zip(0..) {
        *slot = byte_at(position);
    }
    let text = String::from_utf8_lossy(data);
    let mut name: String = text.chars().take(40).collect();
    if name.is_empty() {
        name.push('n');
    }
    Message {
        headers: vec![
            Header::new(name, HeaderValue::Bool(byte_at(0) % 2 == 0)),
            Header::new(":byte", HeaderValue::Byte(byte_at(1) as i8)),
            Header::new(":short", HeaderValue::Int16(eight(2) as i16)),
            Header::new(":int", HeaderValue::Int32(eight(3) as i32)),
            Header::new(":long", HeaderValue::Int64(eight(4))),
            Header::new(":bytes", HeaderValue::Bytes(data.to_vec())),
            Header::new(":string", HeaderValue::String(text.into_owned())),
            Header::new(":time", HeaderValue::Timestamp(eight(5))),
            Header::new(":uuid", HeaderValue::Uuid(uuid)),
        ],
        payload: data.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(headers: &[Header], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_message(headers, payload, &mut out).unwrap();
        out
    }

    #[test]
    fn minimal_message_bytes() {
        assert_eq!(
            encode(&[], b""),
            [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xC2, 0x48, 0xEB, 0x7D, 0x98, 0xC8, 0xFF]
        );
    }

    #[test]
    fn huge_length_with_valid_prelude_crc_is_rejected_before_buffering() {
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&prelude);
        assert_eq!(
            decoder.next_message(),
            Err(EventStreamError::MessageTooLarge {
                total_length: 0xFFFF_FFF0,
                max: DEFAULT_MAX_MESSAGE_LEN
            })
        );
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn encoder_rejects_what_the_decoder_would() {
        let mut out = vec![7];
        let duplicate = [
            Header::new("a", HeaderValue::Bool(true)),
            Header::new("a", HeaderValue::Bool(false)),
        ];
        assert_eq!(
            encode_message(&duplicate, b"", &mut out),
            Err(EventStreamError::DuplicateHeader("a".into()))
        );
        assert_eq!(
            encode_message(&[Header::new("", HeaderValue::Bool(true))], b"", &mut out),
            Err(EventStreamError::InvalidHeaderNameLength { length: 0 })
        );
        let long_name = "x".repeat(256);
        assert_eq!(
            encode_message(
                &[Header::new(long_name, HeaderValue::Bool(true))],
                b"",
                &mut out
            ),
            Err(EventStreamError::InvalidHeaderNameLength { length: 256 })
        );
        let long_value = HeaderValue::Bytes(vec![0; 65536]);
        assert_eq!(
            encode_message(&[Header::new("v", long_value)], b"", &mut out),
            Err(EventStreamError::HeaderValueTooLong {
                name: "v".into(),
                length: 65536
            })
        );
        assert_eq!(out, [7], "a failed encode appends nothing");
    }

    /// Encodes one string header, lets `corrupt` edit the frame, then repairs both CRCs
    /// so the header parser is what sees the damage.
    fn corrupted(corrupt: impl Fn(&mut Vec<u8>)) -> Result<Option<Message>, EventStreamError> {
        let mut frame = encode(&[Header::new("k", HeaderValue::String("vv".into()))], b"");
        corrupt(&mut frame);
        let total = frame.len();
        let prelude_crc = crc32(&frame[..8]);
        frame[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
        let message_crc = crc32(&frame[..total - 4]);
        frame[total - 4..].copy_from_slice(&message_crc.to_be_bytes());
        let mut decoder = EventStreamDecoder::new();
        decoder.push(&frame);
        decoder.next_message()
    }

    #[test]
    fn header_parser_rejects_damage_behind_valid_crcs() {
        // Frame layout: 12 prelude, [1]'k' [7] [0 2] 'v' 'v', 4 CRC.
        assert!(corrupted(|_| {}).unwrap().is_some());
        for code in 10..=255u8 {
            assert_eq!(
                corrupted(|f| f[14] = code),
                Err(EventStreamError::InvalidHeaderType(code))
            );
        }
        assert_eq!(
            corrupted(|f| f[17] = 0xC3),
            Err(EventStreamError::InvalidUtf8)
        );
        assert_eq!(
            corrupted(|f| f[13] = 0xFF),
            Err(EventStreamError::InvalidUtf8)
        );
        assert_eq!(
            corrupted(|f| f[16] = 3),
            Err(EventStreamError::TruncatedHeader)
        );
        assert_eq!(
            corrupted(|f| f[12] = 0),
            Err(EventStreamError::InvalidHeaderNameLength { length: 0 })
        );
    }

    #[test]
    fn fuzz_entry_on_samples() {
        fuzz_entry(b"");
        fuzz_entry(&encode(&[], b"payload"));
        fuzz_entry(&[
            0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xC2, 0x48, 0xEB, 0, 0, 0, 0,
        ]);
    }
}
