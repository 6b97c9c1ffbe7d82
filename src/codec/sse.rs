//! Server-Sent Events (`text/event-stream`): an incremental parser following the WHATWG
//! "event stream interpretation" algorithm, and the Anthropic-style writer. This module
//! owns the bytes of an event stream only: it never touches sockets or HTTP framing (the
//! body arrives already de-chunked), and never interprets the `data` payload (JSON is the
//! caller's business).
//!
//! Call order: `let mut parser = SseParser::new();` then `parser.feed(bytes, |event| ..)?`
//! for every read, in order, however the reads split the stream; `parser.finish()` at end
//! of stream. The relay forwards upstream bytes verbatim and uses `feed` (or
//! `feed_with_offsets`, which also says where in the read each event ended) only to learn
//! that an event completed. Writing: `write_event(&mut out, "message_start", json)`.
//!
//! Parsing rules, all split-proof: one UTF-8 BOM is dropped at stream start; lines end in
//! CRLF, LF or a lone CR (a CR ending one read and an LF starting the next are one line
//! end); an empty line dispatches; `:` starts a comment; one space after the colon is
//! dropped; `id` containing NUL is ignored; `retry` must be all digits. Text is decoded as
//! UTF-8 per line, which equals decoding the whole stream because CR and LF never occur
//! inside a multibyte sequence; invalid bytes become U+FFFD as the WHATWG decoder does.

use std::fmt;

/// Default bound on one event's buffered bytes (current line + data + event type).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event, borrowing the parser's buffers (valid during the callback only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event` field, or `message` when none was set.
    pub event: &'a str,
    /// The `data` lines joined with LF (no trailing LF).
    pub data: &'a str,
    /// The last event id seen on the stream so far (persists across events).
    pub id: &'a str,
    /// The last valid `retry` value seen on the stream so far (persists across events).
    pub retry: Option<u64>,
}

/// Why `feed` reported a problem. The parser stays usable: it drops the offending event,
/// resynchronises at the next blank line and keeps parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// An event (or one line) outgrew the parser's limit and was dropped.
    EventTooLarge,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge => f.write_str("server-sent event exceeds the size limit"),
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE parser. See the module docs for the call order.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// How many bytes of the stream-start BOM have matched; None once past the start.
    bom_matched: Option<usize>,
    /// The last byte fed was a CR, so an LF next is part of the same line end.
    after_cr: bool,
    /// Raw bytes of the current line (not kept for comments or dropped lines).
    line: Vec<u8>,
    /// The current line has at least one byte (even if not kept), so it is not blank.
    line_nonempty: bool,
    /// The rest of the current line is ignored (a comment, or part of a dropped event).
    discard_line: bool,
    /// An oversize event is being dropped until the next blank line.
    skipping_event: bool,
    data: String,
    event_type: String,
    last_id: String,
    retry: Option<u64>,
    /// The current line decoded, reused so decoding never allocates per line.
    decoded: String,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default 16 MiB event limit.
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that drops any event whose buffered bytes exceed `max_event_bytes`.
    pub fn with_limit(max_event_bytes: usize) -> Self {
        SseParser {
            bom_matched: Some(0),
            after_cr: false,
            line: Vec::new(),
            line_nonempty: false,
            discard_line: false,
            skipping_event: false,
            data: String::new(),
            event_type: String::new(),
            last_id: String::new(),
            retry: None,
            decoded: String::new(),
            max_event_bytes,
        }
    }

    /// The last event id seen (empty when none).
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// The last valid reconnection time (`retry` field, milliseconds).
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Feeds bytes; calls `on_event` for every event they complete, in order. Returns
    /// Err(EventTooLarge) after processing all of `input` if an event was dropped for
    /// exceeding the limit.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(&SseEvent<'_>),
    ) -> Result<(), SseError> {
        self.feed_with_offsets(input, |event, _| on_event(event))
    }

    /// Like `feed`, and also passes the number of bytes of `input` up to and including the
    /// line end that completed the event (a CRLF counts whole when its LF is in `input`),
    /// so a relay can flush exactly there.
    pub fn feed_with_offsets(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(&SseEvent<'_>, usize),
    ) -> Result<(), SseError> {
        let mut too_large = false;
        let mut rest = input;
        if let Some(matched) = self.bom_matched {
            let (consumed, outcome) = match_bom(matched, rest);
            rest = rest.get(consumed..).unwrap_or_default();
            match outcome {
                BomOutcome::NeedMore(n) => self.bom_matched = Some(n),
                BomOutcome::Matched => self.bom_matched = None,
                BomOutcome::NotBom(held) => {
                    self.bom_matched = None;
                    // Bytes held from earlier reads as a possible BOM are ordinary text.
                    // They hold no CR or LF, so no event can complete inside them.
                    let held_bytes = BOM.get(..held).unwrap_or_default();
                    self.scan(held_bytes, 0, &mut too_large, &mut |_, _| {});
                }
            }
        }
        let base = input.len() - rest.len();
        self.scan(rest, base, &mut too_large, &mut on_event);
        if too_large {
            Err(SseError::EventTooLarge)
        } else {
            Ok(())
        }
    }

    /// End of stream: discards an unterminated event and prepares for a new stream (the
    /// last event id and retry persist, as for an EventSource reconnection). Returns
    /// whether anything after the last blank line was discarded.
    pub fn finish(&mut self) -> bool {
        let pending = self.line_nonempty
            || !self.data.is_empty()
            || !self.event_type.is_empty()
            || self.skipping_event
            || matches!(self.bom_matched, Some(n) if n > 0);
        self.bom_matched = Some(0);
        self.after_cr = false;
        self.line.clear();
        self.line_nonempty = false;
        self.discard_line = false;
        self.skipping_event = false;
        self.data.clear();
        self.event_type.clear();
        pending
    }

    /// Splits `input` into lines and handles each; `base` is added to reported offsets.
    fn scan<F: FnMut(&SseEvent<'_>, usize)>(
        &mut self,
        input: &[u8],
        base: usize,
        too_large: &mut bool,
        on_event: &mut F,
    ) {
        let mut pos = 0usize;
        while pos < input.len() {
            let rest = input.get(pos..).unwrap_or_default();
            if self.after_cr {
                self.after_cr = false;
                if rest.first() == Some(&b'\n') {
                    pos += 1;
                    continue;
                }
            }
            let text_len = rest
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(rest.len());
            if text_len > 0 {
                let text = rest.get(..text_len).unwrap_or_default();
                self.take_text(text, too_large);
                pos += text_len;
            }
            if let Some(&terminator) = input.get(pos) {
                pos += 1;
                self.after_cr = terminator == b'\r';
                // Report the end after the LF of a CRLF when it is in this read, so a
                // relay flushing there never leaves half a line end behind.
                let lf_follows = self.after_cr && input.get(pos) == Some(&b'\n');
                let end = base + pos + usize::from(lf_follows);
                self.end_line(too_large, &mut |event| on_event(event, end));
            }
        }
    }

    /// Appends bytes of the current line (no CR/LF among them), within the limit.
    fn take_text(&mut self, text: &[u8], too_large: &mut bool) {
        if !self.line_nonempty && text.first() == Some(&b':') {
            // A comment: nothing of it is needed, so never buffer it.
            self.discard_line = true;
        }
        self.line_nonempty = true;
        if self.discard_line || self.skipping_event {
            return;
        }
        let buffered = self.line.len() + self.data.len() + self.event_type.len();
        if buffered.saturating_add(text.len()) > self.max_event_bytes {
            self.drop_event(too_large);
            return;
        }
        self.line.extend_from_slice(text);
    }

    fn drop_event(&mut self, too_large: &mut bool) {
        *too_large = true;
        self.line.clear();
        self.data.clear();
        self.event_type.clear();
        self.discard_line = true;
        self.skipping_event = true;
    }

    fn end_line(&mut self, too_large: &mut bool, on_event: &mut impl FnMut(&SseEvent<'_>)) {
        if !self.line_nonempty {
            if self.skipping_event {
                self.skipping_event = false;
            } else {
                self.dispatch(on_event);
            }
        } else if !self.discard_line && !self.skipping_event {
            self.process_line(too_large);
        }
        self.line.clear();
        self.line_nonempty = false;
        self.discard_line = false;
    }

    fn process_line(&mut self, too_large: &mut bool) {
        self.decoded.clear();
        for chunk in self.line.utf8_chunks() {
            self.decoded.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                self.decoded.push(char::REPLACEMENT_CHARACTER);
            }
        }
        let line = self.decoded.as_str();
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.last_id.clear();
                self.last_id.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Too many digits for u64 is no sensible delay: ignore like any bad value.
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        // Replacement characters can make decoded text longer than the raw line.
        if self.data.len() + self.event_type.len() > self.max_event_bytes {
            self.drop_event(too_large);
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(&SseEvent<'_>)) {
        if let Some(data) = self.data.strip_suffix('\n') {
            let event = SseEvent {
                event: if self.event_type.is_empty() {
                    "message"
                } else {
                    &self.event_type
                },
                data,
                id: &self.last_id,
                retry: self.retry,
            };
            on_event(&event);
        }
        self.data.clear();
        self.event_type.clear();
    }
}

enum BomOutcome {
    /// All input matched a BOM prefix of this length; more bytes are needed.
    NeedMore(usize),
    Matched,
    /// Not a BOM; this many bytes from earlier reads were held back and must be replayed.
    NotBom(usize),
}

/// Matches the stream start against the BOM, continuing from `matched` bytes held from
/// earlier reads. Returns how many bytes of `input` belong to the BOM and the outcome. On a
/// mismatch nothing of `input` is consumed: those bytes are ordinary text.
fn match_bom(matched: usize, input: &[u8]) -> (usize, BomOutcome) {
    let mut count = matched;
    for (i, &b) in input.iter().enumerate() {
        if BOM.get(count) != Some(&b) {
            return (0, BomOutcome::NotBom(matched));
        }
        count += 1;
        if count == BOM.len() {
            return (i + 1, BomOutcome::Matched);
        }
    }
    (input.len(), BomOutcome::NeedMore(count))
}

/// Appends one event in Anthropic style: `event: <name>\n`, one `data: ` line per line of
/// `data`, then a blank line. CR, LF and CRLF in `data` all become line breaks (SSE cannot
/// carry a CR, a receiver sees LF); CR and LF in `event` are left out so a name can never
/// inject fields.
pub fn write_event(out: &mut Vec<u8>, event: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend(event.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    out.push(b'\n');
    let bytes = data.as_bytes();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\r') | Some(b'\n') => {
                push_data_line(out, bytes.get(start..i).unwrap_or_default());
                let crlf = bytes.get(i) == Some(&b'\r') && bytes.get(i + 1) == Some(&b'\n');
                i += if crlf { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    push_data_line(out, bytes.get(start..).unwrap_or_default());
    out.push(b'\n');
}

fn push_data_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// Everything one parse produced, for comparing parses.
#[derive(Debug, PartialEq, Eq)]
struct ParseOutcome {
    events: Vec<(String, String, String, Option<u64>)>,
    too_large: bool,
    pending_at_end: bool,
}

fn parse_split(data: &[u8], splits: &[usize], limit: usize) -> ParseOutcome {
    let mut parser = SseParser::with_limit(limit);
    let mut events = Vec::new();
    let mut too_large = false;
    let mut start = 0usize;
    let ends = splits
        .iter()
        .copied()
        .filter(|&p| p < data.len())
        .chain([data.len()]);
    for end in ends {
        if end < start {
            continue;
        }
        let piece = data.get(start..end).unwrap_or_default();
        start = end;
        let result = parser.feed(piece, |e| {
            events.push((
                e.event.to_string(),
                e.data.to_string(),
                e.id.to_string(),
                e.retry,
            ));
        });
        too_large |= result.is_err();
    }
    ParseOutcome {
        events,
        too_large,
        pending_at_end: parser.finish(),
    }
}

/// Fuzz entry: parses `data` whole and with varied read splits (also under a tiny size
/// limit) and checks every split gives the same events; then writes each parsed event and
/// checks it re-parses to the same (event, data). Panics on any disagreement.
pub fn fuzz_entry(data: &[u8]) {
    let stride = data.first().map_or(1, |&b| usize::from(b % 5) + 1);
    let every: Vec<usize> = (1..data.len()).step_by(stride).collect();
    let thirds = [data.len() / 3, data.len() * 2 / 3];
    let bytewise: Vec<usize> = (1..data.len().min(64)).collect();
    let small_limit = usize::from(data.last().copied().unwrap_or(0) % 64) + 1;
    for limit in [DEFAULT_MAX_EVENT_BYTES, small_limit] {
        let whole = parse_split(data, &[], limit);
        for splits in [&every[..], &thirds[..], &bytewise[..]] {
            assert_eq!(
                parse_split(data, splits, limit),
                whole,
                "events depend on how the input was split"
            );
        }
    }

    let whole = parse_split(data, &[], DEFAULT_MAX_EVENT_BYTES);
    let mut written = Vec::new();
    for (event, event_data, _, _) in &whole.events {
        written.clear();
        write_event(&mut written, event, event_data);
        let again = parse_split(&written, &[], DEFAULT_MAX_EVENT_BYTES);
        let pairs: Vec<(&str, &str)> = again
            .events
            .iter()
            .map(|(e, d, _, _)| (e.as_str(), d.as_str()))
            .collect();
        assert_eq!(pairs, [(event.as_str(), event_data.as_str())]);
        assert!(!again.pending_at_end);
    }
}
