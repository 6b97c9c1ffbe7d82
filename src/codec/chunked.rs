//! HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): an incremental, strict decoder, the
//! encoder, and the pure `Transfer-Encoding` header checks that decide whether a body is
//! chunked at all. This module owns the bytes *after* a message head and nothing else: it
//! never reads sockets, never parses request or status lines, and never decides what to do
//! with `Content-Length` (the HTTP layer rejects TE + CL itself).
//!
//! Call order for a body: `let mut dec = ChunkedDecoder::new();` then repeatedly
//! `dec.decode(bytes, &mut body)?` with whatever the socket produced, advancing by the
//! returned count, until `dec.is_done()`. Bytes after the final CRLF (a pipelined next
//! message) are never consumed. To send a body: `encode_chunk` per piece, then `LAST_CHUNK`.
//!
//! Strictness follows llhttp without leniency flags (the request-smuggling defence): bare
//! CR or LF line ends, whitespace between the size and CRLF, `;` without an extension name
//! and unterminated quoted strings are all rejected. Unlike llhttp, `BWS` around `;` and
//! `=` inside extensions is accepted because RFC 9112's grammar allows it explicitly.

use std::fmt;

/// Longest chunk-size line (size, extensions, CRLF) we accept. Real senders write a few
/// hex digits; anything near this is an attack or garbage.
pub const MAX_SIZE_LINE_BYTES: usize = 8 * 1024;
/// Largest trailer section (all trailer field lines together) we accept.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// The terminating zero-size chunk plus the empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Why a chunked body or a `Transfer-Encoding` header was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedError {
    /// A byte that cannot start or continue a chunk size, or whitespace before CRLF.
    InvalidChunkSize,
    /// The chunk size does not fit in 64 bits.
    ChunkSizeOverflow,
    /// Malformed chunk extension (missing name, bad character, unterminated quote).
    InvalidChunkExtension,
    /// The chunk-size line was not ended by CRLF (bare CR, bare LF, or CR + other byte).
    ExpectedCrlfAfterSize,
    /// Chunk data was not followed by exactly CRLF.
    ExpectedCrlfAfterData,
    /// A trailer field line is malformed or not ended by CRLF.
    InvalidTrailer,
    /// The chunk-size line is longer than [`MAX_SIZE_LINE_BYTES`].
    SizeLineTooLong,
    /// The trailer section is longer than [`MAX_TRAILER_BYTES`].
    TrailersTooLarge,
    /// `chunked` appears in `Transfer-Encoding` but is not the final coding (or appears
    /// twice), so the body length cannot be determined safely.
    ChunkedNotLast,
    /// A `Transfer-Encoding` value is not a valid list of transfer codings.
    MalformedTransferEncoding,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ChunkedError::InvalidChunkSize => "invalid character in chunk size",
            ChunkedError::ChunkSizeOverflow => "chunk size overflows 64 bits",
            ChunkedError::InvalidChunkExtension => "invalid chunk extension",
            ChunkedError::ExpectedCrlfAfterSize => "expected CRLF after chunk size",
            ChunkedError::ExpectedCrlfAfterData => "expected CRLF after chunk data",
            ChunkedError::InvalidTrailer => "invalid trailer field",
            ChunkedError::SizeLineTooLong => "chunk size line too long",
            ChunkedError::TrailersTooLarge => "trailer section too large",
            ChunkedError::ChunkedNotLast => "`chunked` is not the final transfer coding",
            ChunkedError::MalformedTransferEncoding => "malformed Transfer-Encoding value",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ChunkedError {}

/// Where the decoder is inside the chunked body. Each state names the next byte it
/// expects, so a split at any byte boundary resumes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First hex digit of a chunk size.
    SizeStart,
    /// More hex digits, `;`, whitespace before `;`, or CR.
    SizeDigits,
    /// Whitespace after the size: only `;` may end it (never CRLF).
    SizeTrailingSpace,
    /// After `;` (and optional whitespace): an extension name must start.
    ExtNameStart,
    ExtName,
    /// Whitespace after an extension name: `=` or `;` must follow.
    ExtAfterName,
    /// After `=` (and optional whitespace): a token or quoted string must start.
    ExtValueStart,
    ExtTokenValue,
    ExtQuotedValue,
    /// Just after a backslash inside a quoted value.
    ExtQuotedPair,
    /// Just after the closing quote.
    ExtQuotedEnd,
    /// Whitespace after an extension value: only `;` may follow.
    ExtAfterValue,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// Inside chunk data; `remaining` bytes still to copy.
    Data,
    /// Chunk data complete; CR must follow.
    DataCr,
    DataLf,
    /// Start of a trailer line or of the final empty line.
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// CR of the final empty line seen; LF ends the message.
    FinalLf,
    Done,
}

/// Incremental strict decoder of one chunked message body. See the module docs for the
/// call order. After an error every later `decode` returns the same error.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, then bytes of it still to copy.
    remaining: u64,
    /// Bytes of the current chunk-size line seen so far (bounded).
    size_line_len: usize,
    /// Bytes of the trailer section seen so far (bounded).
    trailer_len: usize,
    failed: Option<ChunkedError>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// RFC 9110 `tchar`: the characters of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `qdtext` of RFC 9110 (inside a quoted string, excluding `"` and `\`).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// What may follow a backslash in a quoted string.
fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
}

/// Bytes allowed in a trailer field value (VCHAR, obs-text, SP, HTAB).
fn is_field_value_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            remaining: 0,
            size_line_len: 0,
            trailer_len: 0,
            failed: None,
        }
    }

    /// True once the final CRLF after the trailers has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds `input`; appends de-chunked body bytes to `out`; returns how many input bytes
    /// were consumed. Stops right after the message's final CRLF, leaving any following
    /// pipelined message unconsumed. Partial size lines are remembered (and consumed), so
    /// callers never need to re-present bytes. On error, `out` holds the body bytes that
    /// preceded the offending byte.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.decode_inner(input, out) {
            Ok(consumed) => Ok(consumed),
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    fn decode_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        let mut pos = 0usize;
        while pos < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                let rest = input.get(pos..).unwrap_or_default();
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                out.extend_from_slice(rest.get(..take).unwrap_or_default());
                pos += take;
                // `take <= remaining`, so this never underflows.
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let Some(&byte) = input.get(pos) else { break };
            pos += 1;
            self.step(byte)?;
        }
        Ok(pos)
    }

    /// Advances the state machine over one byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        use State::*;
        if self.in_size_line() {
            self.size_line_len += 1;
            if self.size_line_len > MAX_SIZE_LINE_BYTES {
                return Err(ChunkedError::SizeLineTooLong);
            }
        }
        if self.in_trailers() {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(ChunkedError::TrailersTooLarge);
            }
        }
        let ext_err = ChunkedError::InvalidChunkExtension;
        self.state = match self.state {
            SizeStart => {
                let digit = hex_value(b).ok_or(ChunkedError::InvalidChunkSize)?;
                self.remaining = digit;
                SizeDigits
            }
            SizeDigits => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b' ' | b'\t' => SizeTrailingSpace,
                _ => {
                    let digit = hex_value(b).ok_or(ChunkedError::InvalidChunkSize)?;
                    self.remaining = self
                        .remaining
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(digit))
                        .ok_or(ChunkedError::ChunkSizeOverflow)?;
                    SizeDigits
                }
            },
            SizeTrailingSpace => match b {
                b';' => ExtNameStart,
                b' ' | b'\t' => SizeTrailingSpace,
                _ => return Err(ChunkedError::InvalidChunkSize),
            },
            ExtNameStart => match b {
                b' ' | b'\t' => ExtNameStart,
                _ if is_tchar(b) => ExtName,
                _ => return Err(ext_err),
            },
            ExtName => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b'=' => ExtValueStart,
                b' ' | b'\t' => ExtAfterName,
                _ if is_tchar(b) => ExtName,
                _ => return Err(ext_err),
            },
            ExtAfterName => match b {
                b';' => ExtNameStart,
                b'=' => ExtValueStart,
                b' ' | b'\t' => ExtAfterName,
                _ => return Err(ext_err),
            },
            ExtValueStart => match b {
                b' ' | b'\t' => ExtValueStart,
                b'"' => ExtQuotedValue,
                _ if is_tchar(b) => ExtTokenValue,
                _ => return Err(ext_err),
            },
            ExtTokenValue => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b' ' | b'\t' => ExtAfterValue,
                _ if is_tchar(b) => ExtTokenValue,
                _ => return Err(ext_err),
            },
            ExtQuotedValue => match b {
                b'"' => ExtQuotedEnd,
                b'\\' => ExtQuotedPair,
                _ if is_qdtext(b) => ExtQuotedValue,
                _ => return Err(ext_err),
            },
            ExtQuotedPair if is_quoted_pair_char(b) => ExtQuotedValue,
            ExtQuotedPair => return Err(ext_err),
            ExtQuotedEnd => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                b' ' | b'\t' => ExtAfterValue,
                _ => return Err(ext_err),
            },
            ExtAfterValue => match b {
                b';' => ExtNameStart,
                b' ' | b'\t' => ExtAfterValue,
                _ => return Err(ext_err),
            },
            SizeLf if b == b'\n' => {
                self.size_line_len = 0;
                if self.remaining == 0 {
                    TrailerLineStart
                } else {
                    Data
                }
            }
            SizeLf => return Err(ChunkedError::ExpectedCrlfAfterSize),
            DataCr if b == b'\r' => DataLf,
            DataLf if b == b'\n' => SizeStart,
            DataCr | DataLf => return Err(ChunkedError::ExpectedCrlfAfterData),
            TrailerLineStart => match b {
                b'\r' => FinalLf,
                _ if is_tchar(b) => TrailerName,
                _ => return Err(ChunkedError::InvalidTrailer),
            },
            TrailerName => match b {
                b':' => TrailerValue,
                _ if is_tchar(b) => TrailerName,
                _ => return Err(ChunkedError::InvalidTrailer),
            },
            TrailerValue => match b {
                b'\r' => TrailerLf,
                _ if is_field_value_char(b) => TrailerValue,
                _ => return Err(ChunkedError::InvalidTrailer),
            },
            TrailerLf if b == b'\n' => TrailerLineStart,
            TrailerLf => return Err(ChunkedError::InvalidTrailer),
            FinalLf if b == b'\n' => Done,
            FinalLf => return Err(ChunkedError::InvalidTrailer),
            // Data and Done are handled by the caller and never reach here.
            Data | Done => self.state,
        };
        Ok(())
    }

    fn in_size_line(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            SizeStart
                | SizeDigits
                | SizeTrailingSpace
                | ExtNameStart
                | ExtName
                | ExtAfterName
                | ExtValueStart
                | ExtTokenValue
                | ExtQuotedValue
                | ExtQuotedPair
                | ExtQuotedEnd
                | ExtAfterValue
                | SizeLf
        )
    }

    fn in_trailers(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            TrailerLineStart | TrailerName | TrailerValue | TrailerLf | FinalLf
        )
    }
}

/// Appends one chunk (`hex-size CRLF data CRLF`). Empty `data` appends nothing, because an
/// empty chunk is the last-chunk and would end the body.
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    push_hex(data.len() as u64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Lowercase hex without leading zeros (and without `format!`, to avoid an allocation).
fn push_hex(value: u64, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in (0..16).rev() {
        let nibble = ((value >> (shift * 4)) & 0xF) as usize;
        if nibble != 0 || started || shift == 0 {
            started = true;
            out.push(DIGITS[nibble]);
        }
    }
}

/// The verdict on a message's `Transfer-Encoding` header values (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFraming {
    /// `chunked` is the final coding (and appears once): decode with [`ChunkedDecoder`].
    Chunked,
    /// Codings are present but `chunked` is not the final one (e.g. `gzip`,
    /// `chunkedchunked`, `chunked, gzip`). A request like this must be answered 400; a
    /// response body runs until the connection closes and still carries those codings,
    /// which a relay cannot undo.
    NotChunked,
    /// No coding at all (absent header, or only empty list elements).
    Absent,
}

/// Classifies every `Transfer-Encoding` value of one message, in order. Coding names are
/// case-insensitive; empty list elements are ignored (RFC 9110 §5.6.1). Only a value that
/// is not a coding list is an error (`MalformedTransferEncoding`).
pub fn transfer_framing(values: &[&[u8]]) -> Result<TransferFraming, ChunkedError> {
    Ok(scan_codings(values)?.framing)
}

/// Ok(true) when `chunked` is the final coding of the message's `Transfer-Encoding` values
/// (all of them, in order); Ok(false) when there is no `chunked`; Err(`ChunkedNotLast`)
/// when `chunked` appears but not last (or twice), Err(`MalformedTransferEncoding`) when a
/// value is not a coding list. The caller still rejects TE together with Content-Length,
/// and a request with Ok(false) and a non-empty TE must be rejected too.
pub fn transfer_encoding_is_chunked(values: &[&[u8]]) -> Result<bool, ChunkedError> {
    let scan = scan_codings(values)?;
    if scan.chunked_not_last {
        return Err(ChunkedError::ChunkedNotLast);
    }
    Ok(scan.framing == TransferFraming::Chunked)
}

struct CodingScan {
    framing: TransferFraming,
    /// Some `chunked` was followed by another coding (possibly `chunked` again).
    chunked_not_last: bool,
}

fn scan_codings(values: &[&[u8]]) -> Result<CodingScan, ChunkedError> {
    let mut count = 0usize;
    let mut last_is_chunked = false;
    let mut chunked_not_last = false;
    for value in values {
        for element in value.split(|&b| b == b',') {
            let Some(name) = coding_name(element)? else {
                continue;
            };
            if last_is_chunked {
                chunked_not_last = true;
            }
            count += 1;
            last_is_chunked = name.eq_ignore_ascii_case(b"chunked");
        }
    }
    let framing = if count == 0 {
        TransferFraming::Absent
    } else if last_is_chunked && !chunked_not_last {
        TransferFraming::Chunked
    } else {
        TransferFraming::NotChunked
    };
    Ok(CodingScan {
        framing,
        chunked_not_last,
    })
}

/// Parses one list element `OWS token *( OWS ";" OWS param ) OWS` and returns its coding
/// name, or None for an empty element.
fn coding_name(element: &[u8]) -> Result<Option<&[u8]>, ChunkedError> {
    let bad = ChunkedError::MalformedTransferEncoding;
    let trimmed = trim_ows(element);
    if trimmed.is_empty() {
        return Ok(None);
    }
    let mut parts = trimmed.split(|&b| b == b';');
    let name = trim_ows(parts.next().unwrap_or_default());
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(bad);
    }
    for param in parts {
        let param = trim_ows(param);
        let (key, value) = match param.iter().position(|&b| b == b'=') {
            Some(eq) => (
                trim_ows(param.get(..eq).unwrap_or_default()),
                trim_ows(param.get(eq + 1..).unwrap_or_default()),
            ),
            None => return Err(bad.clone()),
        };
        let key_ok = !key.is_empty() && key.iter().all(|&b| is_tchar(b));
        let value_ok =
            (!value.is_empty() && value.iter().all(|&b| is_tchar(b))) || is_quoted_string(value);
        if !key_ok || !value_ok {
            return Err(bad);
        }
    }
    Ok(Some(name))
}

/// A whole quoted string (no `,` or `;` inside, since the caller split on those; such
/// values are rare enough in Transfer-Encoding that rejecting them is fine).
fn is_quoted_string(value: &[u8]) -> bool {
    let Some(inner) = value
        .strip_prefix(b"\"")
        .and_then(|rest| rest.strip_suffix(b"\""))
    else {
        return false;
    };
    let mut escaped = false;
    for &b in inner {
        if escaped {
            if !is_quoted_pair_char(b) {
                return false;
            }
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if !is_qdtext(b) {
            return false;
        }
    }
    !escaped
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// What one full decode of `input` produced: the verdict, the body, bytes consumed.
fn decode_all(
    input: &[u8],
    split_points: &[usize],
) -> (Result<usize, ChunkedError>, Vec<u8>, bool) {
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut consumed_total = 0usize;
    let mut start = 0usize;
    let mut ends: Vec<usize> = split_points
        .iter()
        .copied()
        .filter(|&p| p < input.len())
        .collect();
    ends.sort_unstable();
    ends.push(input.len());
    for end in ends {
        if end < start {
            continue;
        }
        let piece = input.get(start..end).unwrap_or_default();
        start = end;
        match decoder.decode(piece, &mut body) {
            Ok(n) => {
                consumed_total += n;
                if n < piece.len() {
                    // Done: the rest belongs to the next message.
                    break;
                }
            }
            Err(err) => return (Err(err), body, decoder.is_done()),
        }
    }
    (Ok(consumed_total), body, decoder.is_done())
}

/// Fuzz entry: decodes `data` whole, then split at points derived from the data, and
/// checks every split gives the same verdict, body and consumed count; then re-encodes the
/// body and checks it decodes back to the same bytes. Panics on any disagreement.
pub fn fuzz_entry(data: &[u8]) {
    let whole = decode_all(data, &[]);

    let stride = data.first().map_or(1, |&b| usize::from(b % 7) + 1);
    let every: Vec<usize> = (1..data.len()).step_by(stride).collect();
    let thirds = [data.len() / 3, data.len() * 2 / 3];
    let bytewise: Vec<usize> = (1..data.len().min(64)).collect();
    for splits in [&every[..], &thirds[..], &bytewise[..]] {
        let split = decode_all(data, splits);
        assert_eq!(whole, split, "verdict depends on how the input was split");
    }

    let (verdict, body, done) = whole;
    if let Ok(consumed) = verdict {
        assert!(consumed <= data.len());
        assert!(
            done || consumed == data.len(),
            "stopped early without finishing"
        );
        let mut encoded = Vec::new();
        let piece = usize::from(data.last().copied().unwrap_or(1)).max(1);
        for part in body.chunks(piece) {
            encode_chunk(part, &mut encoded);
        }
        encoded.extend_from_slice(LAST_CHUNK);
        let again = decode_all(&encoded, &[]);
        assert_eq!(
            again,
            (Ok(encoded.len()), body, true),
            "round trip changed the body"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_encoding_has_no_leading_zeros() {
        let mut out = Vec::new();
        push_hex(0, &mut out);
        out.push(b' ');
        push_hex(0x1a2b, &mut out);
        out.push(b' ');
        push_hex(u64::MAX, &mut out);
        assert_eq!(out, b"0 1a2b ffffffffffffffff");
    }
}
