//! Extended thinking across providers (SPEC §4.4), the pure part: which signatures a
//! response carried (`SignatureTap` for streams, `signatures_in_response` for JSON
//! bodies), what a request's history holds (`analyze`), and the history rewrite that makes
//! a request valid for a provider of another signature family (`rewrite_for_target`,
//! `strip_all_thinking`), with the message-rule checker both the tests and the fuzz target
//! hold the rewrite to (`validate`).
//!
//! It must not do I/O, read clocks, or decide routing: the relay asks the signature store
//! which family issued a block and passes that answer in as `keep`. Bodies are never
//! re-serialised: the rewrite splices the client's own bytes (every kept block, every
//! untouched message, every other field goes out byte for byte), and when nothing has to
//! change it says so and the original bytes are sent.
//!
//! Call order in the relay: `analyze(body)` before routing (affinity uses
//! `newest_signed_hash`); for the chosen target `rewrite_for_target(body, |h| accepted(h))`;
//! on a 400 invalid-signature answer before any byte went out, `strip_all_thinking(body)`
//! and retry once. While streaming, `tap.observe(event, data)` per SSE event and
//! `tap.finish()` at the end; record each hash with the provider's family.
//!
//! The rewrite rules (issue 8 item 3): drop `thinking` / `redacted_thinking` blocks the
//! target does not accept; a turn left with no content is dropped and the two turns of the
//! same role it separated are merged (string content becomes a text block); `tool_use` and
//! `tool_result` blocks are never removed, so no pairing breaks. If thinking is on and the
//! conversation ends in an open tool loop whose opening assistant turn does not start with
//! an accepted thinking block — or any assistant turn of that loop lost its leading
//! thinking block here — thinking is switched off for this request by setting
//! `"thinking": {"type": "disabled"}` (removing the field would leave thinking on for
//! models where it is the default). With thinking off, no `temperature`, `top_p`, `top_k`
//! or `max_tokens` constraint applies any more, so nothing else changes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use serde::Deserialize;
use serde_json::Value;

pub use crate::state::signatures::SignatureHash;

/// The cache key of a thinking `signature` or a `redacted_thinking` `data` string (as
/// decoded from JSON). A thinking block without a signature is keyed as `signature_key("")`.
pub fn signature_key(signature: &str) -> SignatureHash {
    SignatureHash::of(signature.as_bytes())
}

/// What the rewrite puts in place of an enabled `thinking` configuration.
const THINKING_DISABLED: &[u8] = br#"{"type":"disabled"}"#;

// ---------------------------------------------------------------------------------------
// Signature taps
// ---------------------------------------------------------------------------------------

/// Bounds on what a misbehaving upstream can make the tap buffer: signatures are a few
/// hundred bytes, a response has a handful of thinking blocks.
const MAX_PENDING_SIGNATURE_BYTES: usize = 64 * 1024;
const MAX_PENDING_BLOCKS: usize = 64;

/// Collects the signature hashes a streamed response carries, event by event, without
/// holding any byte back: `signature_delta` deltas (joined per content block until its
/// `content_block_stop`), `redacted_thinking` `data` and any signature already present in
/// a `content_block_start`. Events that cannot carry one cost a name comparison and at
/// most one substring search; JSON is parsed only for the few that can.
#[derive(Debug, Default)]
pub struct SignatureTap {
    /// Signatures of blocks still streaming: (content block index, signature so far).
    pending: Vec<(u64, String)>,
    completed: Vec<SignatureHash>,
}

#[derive(Deserialize)]
struct DeltaEvent<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    delta: DeltaBody<'a>,
}

#[derive(Deserialize)]
struct DeltaBody<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StartEvent<'a> {
    #[serde(borrow)]
    content_block: ResponseBlock<'a>,
}

#[derive(Deserialize)]
struct StopEvent {
    #[serde(default)]
    index: u64,
}

/// A content block of a response, reduced to what carries a signature.
#[derive(Deserialize)]
struct ResponseBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
}

impl ResponseBlock<'_> {
    fn signature_hash(&self) -> Option<SignatureHash> {
        let value = match self.kind.as_ref() {
            "thinking" => self.signature.as_deref(),
            "redacted_thinking" => self.data.as_deref(),
            _ => None,
        }?;
        (!value.is_empty()).then(|| signature_key(value))
    }
}

#[derive(Deserialize)]
struct ResponseBody<'a> {
    #[serde(default, borrow)]
    content: Vec<ResponseBlock<'a>>,
}

impl SignatureTap {
    pub fn new() -> SignatureTap {
        SignatureTap::default()
    }

    /// Looks at one SSE event as the parser dispatched it (`event` is `message` when the
    /// stream sent no event name).
    pub fn observe(&mut self, event: &str, data: &str) {
        match event {
            "content_block_delta" if data.contains("signature_delta") => self.on_delta(data),
            "content_block_start" if data.contains("thinking") => self.on_start(data),
            "content_block_stop" if !self.pending.is_empty() => self.on_stop(data),
            "message_stop" => self.flush_pending(),
            // Unnamed events (some adapters): the payload's own `type` says what it is.
            "message" | "" => {
                if data.contains("signature_delta") {
                    self.on_delta(data);
                } else if data.contains("content_block_start") && data.contains("thinking") {
                    self.on_start(data);
                } else if !self.pending.is_empty() && data.contains("content_block_stop") {
                    self.on_stop(data);
                } else if data.contains("message_stop") {
                    self.flush_pending();
                }
            }
            _ => {}
        }
    }

    /// The hashes completed since the last call.
    pub fn take(&mut self) -> Vec<SignatureHash> {
        std::mem::take(&mut self.completed)
    }

    /// End of stream: the hashes not yet taken, including signatures whose block never saw
    /// its `content_block_stop` (a signature delta is whole when it arrives).
    pub fn finish(&mut self) -> Vec<SignatureHash> {
        self.flush_pending();
        self.take()
    }

    fn on_delta(&mut self, data: &str) {
        let Ok(event) = serde_json::from_str::<DeltaEvent>(data) else {
            return;
        };
        if event.delta.kind != "signature_delta" {
            return;
        }
        let Some(piece) = event.delta.signature else {
            return;
        };
        if let Some((_, so_far)) = self.pending.iter_mut().find(|(i, _)| *i == event.index) {
            if so_far.len() + piece.len() <= MAX_PENDING_SIGNATURE_BYTES {
                so_far.push_str(&piece);
            }
        } else if self.pending.len() < MAX_PENDING_BLOCKS
            && piece.len() <= MAX_PENDING_SIGNATURE_BYTES
        {
            self.pending.push((event.index, piece.into_owned()));
        }
    }

    fn on_start(&mut self, data: &str) {
        if let Ok(event) = serde_json::from_str::<StartEvent>(data) {
            if let Some(hash) = event.content_block.signature_hash() {
                self.completed.push(hash);
            }
        }
    }

    fn on_stop(&mut self, data: &str) {
        let Ok(event) = serde_json::from_str::<StopEvent>(data) else {
            return;
        };
        if let Some(at) = self.pending.iter().position(|(i, _)| *i == event.index) {
            let (_, signature) = self.pending.swap_remove(at);
            if !signature.is_empty() {
                self.completed.push(signature_key(&signature));
            }
        }
    }

    fn flush_pending(&mut self) {
        for (_, signature) in self.pending.drain(..) {
            if !signature.is_empty() {
                self.completed.push(signature_key(&signature));
            }
        }
    }
}

/// The signature hashes in a non-streamed Messages response body: `thinking` blocks'
/// `signature` and `redacted_thinking` blocks' `data`. Anything unreadable yields none.
pub fn signatures_in_response(body: &[u8]) -> Vec<SignatureHash> {
    if !contains(body, b"thinking") {
        return Vec::new();
    }
    match serde_json::from_slice::<ResponseBody>(body) {
        Ok(response) => response
            .content
            .iter()
            .filter_map(ResponseBlock::signature_hash)
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(pos) = haystack
        .get(from..)
        .and_then(|h| h.iter().position(|&b| b == first))
    {
        let at = from + pos;
        if haystack.get(at + 1..at + 1 + rest.len()) == Some(rest) {
            return true;
        }
        from = at + 1;
    }
    false
}

// ---------------------------------------------------------------------------------------
// Locating things in the request body without re-serialising it
// ---------------------------------------------------------------------------------------

use crate::codec::json::scan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Thinking { key: SignatureHash, signed: bool },
    RedactedThinking { key: SignatureHash, signed: bool },
    ToolUse,
    ToolResult,
    Other,
}

#[derive(Debug)]
struct Block {
    span: Range<usize>,
    kind: BlockKind,
}

impl Block {
    /// The signature key when this is a thinking or redacted_thinking block.
    fn thinking_key(&self) -> Option<&SignatureHash> {
        match &self.kind {
            BlockKind::Thinking { key, .. } | BlockKind::RedactedThinking { key, .. } => Some(key),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Content {
    /// `"content": "..."`; `blank` when it holds nothing but whitespace.
    Text { span: Range<usize>, blank: bool },
    Blocks {
        span: Range<usize>,
        blocks: Vec<Block>,
    },
    /// Missing or of a shape the API does not define: left exactly as it is.
    Opaque,
}

#[derive(Debug)]
struct Turn {
    span: Range<usize>,
    role: Role,
    content: Content,
}

/// The request as far as thinking is concerned, with byte positions into the body.
struct Conversation {
    turns: Vec<Turn>,
    messages_span: Range<usize>,
    thinking_span: Option<Range<usize>>,
    thinking_on: bool,
}

/// Whether a `thinking` configuration asks for thinking (`enabled`, or `adaptive`, which
/// may think and is held to the same history rules to be safe).
fn thinking_type_is_on(kind: Option<&str>) -> bool {
    matches!(kind, Some("enabled" | "adaptive"))
}

impl Conversation {
    /// One pass over the body. Duplicate keys: the last one wins, as serde_json and the
    /// API read them.
    fn parse(body: &[u8]) -> Option<Conversation> {
        // Validate once with serde so the scanner only ever sees well-formed JSON.
        serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
        let mut messages = None;
        let mut thinking_span = None;
        scan::members(body, scan::skip_ws(body, 0), |key, start| {
            if scan::key_is(body, &key, "messages") {
                if body.get(start) != Some(&b'[') {
                    messages = None;
                    return scan::skip_value(body, start);
                }
                let mut turns = Vec::new();
                let end = scan::elements(body, start, |at| {
                    let (turn, end) = parse_turn(body, at)?;
                    turns.push(turn);
                    Some(end)
                })?;
                messages = Some((start..end, turns));
                Some(end)
            } else {
                let span = scan::value(body, start)?;
                let end = span.end;
                if scan::key_is(body, &key, "thinking") {
                    thinking_span = Some(span);
                }
                Some(end)
            }
        })?;
        let (messages_span, turns) = messages?;
        let mut kind = None;
        if let Some(span) = &thinking_span {
            // Not an object: no `type`, so thinking is off.
            let _ = scan::members(body, span.start, |key, start| {
                let value = scan::value(body, start)?;
                let end = value.end;
                if scan::key_is(body, &key, "type") {
                    kind = Some(value);
                }
                Some(end)
            });
        }
        let thinking_on = thinking_type_is_on(kind.and_then(|k| scan::string(body, &k)).as_deref());
        Some(Conversation {
            turns,
            messages_span,
            thinking_span,
            thinking_on,
        })
    }
}

/// Reads the message at `start`; returns it and the index just past it.
fn parse_turn(body: &[u8], start: usize) -> Option<(Turn, usize)> {
    let opaque = |end: usize| Turn {
        span: start..end,
        role: Role::Other,
        content: Content::Opaque,
    };
    if body.get(start) != Some(&b'{') {
        let end = scan::skip_value(body, start)?;
        return Some((opaque(end), end));
    }
    let mut role = None;
    let mut content = Content::Opaque;
    let end = scan::members(body, start, |key, at| {
        if scan::key_is(body, &key, "content") {
            let span = scan::value(body, at)?;
            let end = span.end;
            content = match body.get(at) {
                Some(b'[') => {
                    let mut blocks = Vec::new();
                    scan::elements(body, at, |block_at| {
                        let block = parse_block(body, block_at)?;
                        let end = block.span.end;
                        blocks.push(block);
                        Some(end)
                    })?;
                    Content::Blocks { span, blocks }
                }
                Some(b'"') => match scan::string(body, &span) {
                    Some(text) => Content::Text {
                        blank: text.trim().is_empty(),
                        span,
                    },
                    None => Content::Opaque,
                },
                _ => Content::Opaque,
            };
            Some(end)
        } else {
            let value = scan::value(body, at)?;
            let end = value.end;
            if scan::key_is(body, &key, "role") {
                role = Some(value);
            }
            Some(end)
        }
    })?;
    let role = match role.and_then(|r| scan::string(body, &r)).as_deref() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => Role::Other,
    };
    Some((
        Turn {
            span: start..end,
            role,
            content,
        },
        end,
    ))
}

fn parse_block(body: &[u8], start: usize) -> Option<Block> {
    let mut kind = None;
    let mut signature = None;
    let mut data = None;
    let end = if body.get(start) == Some(&b'{') {
        scan::members(body, start, |key, at| {
            let value = scan::value(body, at)?;
            let end = value.end;
            if scan::key_is(body, &key, "type") {
                kind = Some(value);
            } else if scan::key_is(body, &key, "signature") {
                signature = Some(value);
            } else if scan::key_is(body, &key, "data") {
                data = Some(value);
            }
            Some(end)
        })?
    } else {
        scan::skip_value(body, start)?
    };
    let secret = |field: Option<Range<usize>>| {
        let text = field.and_then(|f| scan::string(body, &f));
        let text = text.as_deref().unwrap_or("");
        (signature_key(text), !text.is_empty())
    };
    let kind = match kind.and_then(|k| scan::string(body, &k)).as_deref() {
        Some("thinking") => {
            let (key, signed) = secret(signature);
            BlockKind::Thinking { key, signed }
        }
        Some("redacted_thinking") => {
            let (key, signed) = secret(data);
            BlockKind::RedactedThinking { key, signed }
        }
        Some("tool_use") => BlockKind::ToolUse,
        Some("tool_result") => BlockKind::ToolResult,
        _ => BlockKind::Other,
    };
    Some(Block {
        span: start..end,
        kind,
    })
}

// ---------------------------------------------------------------------------------------
// History analysis
// ---------------------------------------------------------------------------------------

/// One signed thinking or redacted_thinking block of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedBlock {
    pub message_index: usize,
    pub block_index: usize,
    pub hash: SignatureHash,
    pub redacted: bool,
}

/// What routing needs to know about a request's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryInfo {
    /// False when the body is not a Messages request we can read (then the rest is empty).
    pub readable: bool,
    /// Every signed block, oldest first.
    pub signed_blocks: Vec<SignedBlock>,
    /// The newest signed block's hash: its family is the one affinity prefers.
    pub newest_signed_hash: Option<SignatureHash>,
    /// Thinking blocks without a signature (accepted by no Claude platform).
    pub unsigned_thinking_blocks: usize,
    /// The request asks for thinking (`type` `enabled` or `adaptive`).
    pub thinking_enabled: bool,
    /// The last message is a user turn answering tool calls.
    pub open_tool_loop: bool,
}

/// Reads the history of a Messages request body. Never fails: an unreadable body gives a
/// default `HistoryInfo` with `readable: false`.
pub fn analyze(body: &[u8]) -> HistoryInfo {
    let Some(conversation) = Conversation::parse(body) else {
        return HistoryInfo::default();
    };
    let mut info = HistoryInfo {
        readable: true,
        thinking_enabled: conversation.thinking_on,
        ..HistoryInfo::default()
    };
    for (message_index, turn) in conversation.turns.iter().enumerate() {
        let Content::Blocks { blocks, .. } = &turn.content else {
            continue;
        };
        for (block_index, block) in blocks.iter().enumerate() {
            let (hash, signed, redacted) = match block.kind {
                BlockKind::Thinking { key, signed } => (key, signed, false),
                BlockKind::RedactedThinking { key, signed } => (key, signed, true),
                _ => continue,
            };
            if signed {
                info.signed_blocks.push(SignedBlock {
                    message_index,
                    block_index,
                    hash,
                    redacted,
                });
            } else {
                info.unsigned_thinking_blocks += 1;
            }
        }
    }
    info.newest_signed_hash = info.signed_blocks.last().map(|b| b.hash);
    info.open_tool_loop = conversation.turns.last().is_some_and(|t| {
        t.role == Role::User
            && matches!(&t.content, Content::Blocks { blocks, .. }
                if blocks.iter().any(|b| b.kind == BlockKind::ToolResult))
    });
    info
}

// ---------------------------------------------------------------------------------------
// The rewrite
// ---------------------------------------------------------------------------------------

/// The outcome of a rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// The body to send; `None` means nothing had to change: send the original bytes.
    pub body: Option<Vec<u8>>,
    /// Thinking was switched off for this request (say so in the debug header).
    pub thinking_disabled: bool,
    /// How many thinking / redacted_thinking blocks were dropped.
    pub removed: usize,
}

/// A piece of an output turn's content: a kept block, or a turn's string content that a
/// merge turns into a text block.
enum Piece<'c> {
    Block(&'c Block),
    Text { span: &'c Range<usize>, blank: bool },
}

struct OutTurn<'c> {
    turn: &'c Turn,
    pieces: Vec<Piece<'c>>,
    /// The content must be rebuilt (blocks dropped or another turn merged in).
    changed: bool,
    /// Its first block was a thinking block this rewrite dropped.
    lost_leading_thinking: bool,
    /// Content we do not model: copied as is and never merged.
    opaque: bool,
}

impl OutTurn<'_> {
    fn has_tool_result(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Block(b) if b.kind == BlockKind::ToolResult))
    }

    fn starts_with_thinking(&self) -> bool {
        matches!(self.pieces.first(), Some(Piece::Block(b)) if b.thinking_key().is_some())
    }
}

/// Rewrites the history of `body` for a target that accepts exactly the thinking blocks
/// for whose signature key `keep` answers true (see the module docs for the rules).
/// Bodies that are not readable Messages requests come back unchanged.
pub fn rewrite_for_target(body: &[u8], keep: impl Fn(&SignatureHash) -> bool) -> Rewrite {
    let Some(conversation) = Conversation::parse(body) else {
        return Rewrite::default();
    };
    let (out, removed) = filter_turns(&conversation, &keep);
    let disable = conversation.thinking_on && open_loop_lacks_thinking(&out);
    if removed == 0 && !disable {
        return Rewrite::default();
    }
    let messages = (removed > 0).then(|| render_messages(body, &out));
    let mut edits: Vec<(&Range<usize>, &[u8])> = Vec::with_capacity(2);
    if let Some(messages) = &messages {
        edits.push((&conversation.messages_span, messages));
    }
    if disable {
        // thinking_on implies the field is there.
        if let Some(span) = &conversation.thinking_span {
            edits.push((span, THINKING_DISABLED));
        }
    }
    let new_body = Some(splice(body, &mut edits));
    Rewrite {
        body: new_body,
        thinking_disabled: disable,
        removed,
    }
}

/// The recovery path (issue 8 item 4): every thinking and redacted_thinking block goes,
/// with the same turn repairs and the same thinking switch-off as `rewrite_for_target`.
pub fn strip_all_thinking(body: &[u8]) -> Rewrite {
    rewrite_for_target(body, |_| false)
}

/// Drops the blocks `keep` rejects, drops turns left empty and merges the same-role turns
/// that become neighbours. Returns the output turns and how many blocks were dropped.
fn filter_turns<'c>(
    conversation: &'c Conversation,
    keep: &impl Fn(&SignatureHash) -> bool,
) -> (Vec<OutTurn<'c>>, usize) {
    let mut out: Vec<OutTurn<'c>> = Vec::with_capacity(conversation.turns.len());
    let mut removed = 0;
    let mut dropped_a_turn = false;
    for turn in &conversation.turns {
        let mut dropped_here = 0;
        let mut lost_leading_thinking = false;
        let mut opaque = false;
        let pieces = match &turn.content {
            Content::Blocks { blocks, .. } => {
                let mut pieces = Vec::with_capacity(blocks.len());
                for (i, block) in blocks.iter().enumerate() {
                    match block.thinking_key() {
                        Some(key) if !keep(key) => {
                            dropped_here += 1;
                            lost_leading_thinking |= i == 0;
                        }
                        _ => pieces.push(Piece::Block(block)),
                    }
                }
                pieces
            }
            Content::Text { span, blank } => vec![Piece::Text {
                span,
                blank: *blank,
            }],
            Content::Opaque => {
                opaque = true;
                Vec::new()
            }
        };
        removed += dropped_here;
        if dropped_here > 0 && pieces.is_empty() {
            dropped_a_turn = true;
            continue;
        }
        if dropped_a_turn && !opaque && turn.role != Role::Other {
            if let Some(previous) = out.last_mut() {
                if previous.turn.role == turn.role && !previous.opaque {
                    previous.pieces.extend(pieces);
                    previous.changed = true;
                    dropped_a_turn = false;
                    continue;
                }
            }
        }
        dropped_a_turn = false;
        out.push(OutTurn {
            turn,
            pieces,
            changed: dropped_here > 0,
            lost_leading_thinking,
            opaque,
        });
    }
    (out, removed)
}

/// Whether the conversation ends in a tool loop that cannot run with thinking on for this
/// target: its opening assistant turn (found by walking back over user turns that answer
/// tool calls) does not start with a thinking block, or one of its assistant turns lost
/// its leading thinking block in this rewrite.
fn open_loop_lacks_thinking(out: &[OutTurn]) -> bool {
    let Some(last) = out.last() else {
        return false;
    };
    if last.turn.role != Role::User || !last.has_tool_result() {
        return false;
    }
    let mut user = out.len() - 1;
    loop {
        let Some(assistant) = user.checked_sub(1).and_then(|i| out.get(i)) else {
            return false;
        };
        if assistant.turn.role != Role::Assistant {
            return false;
        }
        if assistant.lost_leading_thinking {
            return true;
        }
        let before = user.checked_sub(2).and_then(|i| out.get(i));
        match before {
            Some(t) if t.turn.role == Role::User && t.has_tool_result() => user -= 2,
            _ => return !assistant.starts_with_thinking(),
        }
    }
}

/// `body` with each range replaced by its bytes (ranges must not overlap).
fn splice(body: &[u8], edits: &mut [(&Range<usize>, &[u8])]) -> Vec<u8> {
    edits.sort_by_key(|(range, _)| range.start);
    let extra: usize = edits.iter().map(|(_, b)| b.len()).sum();
    let mut out = Vec::with_capacity(body.len() + extra);
    let mut at = 0;
    for (range, replacement) in edits.iter() {
        out.extend_from_slice(bytes(body, &(at..range.start)));
        out.extend_from_slice(replacement);
        at = range.end;
    }
    out.extend_from_slice(bytes(body, &(at..body.len())));
    out
}

fn bytes<'b>(body: &'b [u8], range: &Range<usize>) -> &'b [u8] {
    body.get(range.clone()).unwrap_or_default()
}

/// The new `messages` array: untouched turns verbatim, changed turns with only their
/// `content` value rebuilt from verbatim blocks.
fn render_messages(body: &[u8], out: &[OutTurn]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len());
    m.push(b'[');
    for (i, t) in out.iter().enumerate() {
        if i > 0 {
            m.push(b',');
        }
        let content_span = match &t.turn.content {
            Content::Blocks { span, .. } | Content::Text { span, .. } if t.changed => span,
            _ => {
                m.extend_from_slice(bytes(body, &t.turn.span));
                continue;
            }
        };
        let start = m.len();
        m.extend_from_slice(bytes(body, &(t.turn.span.start..content_span.start)));
        m.push(b'[');
        let mut written = 0;
        for piece in &t.pieces {
            let (prefix, raw, suffix): (&[u8], _, &[u8]) = match piece {
                Piece::Block(block) => (b"", &block.span, b""),
                // Never create an empty text block (the API rejects them).
                Piece::Text { blank: true, .. } => continue,
                Piece::Text { span, .. } => (br#"{"type":"text","text":"#, *span, b"}"),
            };
            if written > 0 {
                m.push(b',');
            }
            m.extend_from_slice(prefix);
            m.extend_from_slice(bytes(body, raw));
            m.extend_from_slice(suffix);
            written += 1;
        }
        if written == 0 {
            // Only reachable from an input that already had blank content: keep that turn
            // as the client sent it rather than emit an empty content array.
            m.truncate(start);
            m.extend_from_slice(bytes(body, &t.turn.span));
            continue;
        }
        m.push(b']');
        m.extend_from_slice(bytes(body, &(content_span.end..t.turn.span.end)));
    }
    m.push(b']');
    m
}

// ---------------------------------------------------------------------------------------
// Message rules
// ---------------------------------------------------------------------------------------

/// Checks a Messages request body against Anthropic's documented message rules as far as
/// the rewrite can affect them: roles alternate starting with `user`; every content is a
/// non-empty string or array; no text is empty or whitespace only; `tool_use` ids are
/// unique and each is answered by a `tool_result` in the next user turn, whose results
/// come before its other blocks; every `tool_result` answers a `tool_use` of the turn
/// immediately before; thinking blocks appear only in assistant turns; with thinking on,
/// an open tool loop's opening assistant turn starts with a thinking block; with thinking
/// off, a final assistant turn holds none. The error names the offending message.
pub fn validate(body: &Value) -> Result<(), String> {
    let object = body.as_object().ok_or("body: not a JSON object")?;
    let messages = object
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: not an array")?;
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    let thinking_on = thinking_type_is_on(
        object
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str),
    );
    let mut tool_use_ids: HashSet<&str> = HashSet::new();
    // The tool calls of the previous assistant turn, still waiting for their results.
    let mut unanswered: Vec<&str> = Vec::new();
    let mut previous_role = None;
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages.{i}.role: missing"))?;
        if role != "user" && role != "assistant" {
            return Err(format!("messages.{i}.role: unknown role {role:?}"));
        }
        if i == 0 && role != "user" {
            return Err("messages.0.role: the first message must be a user turn".into());
        }
        if previous_role == Some(role) {
            return Err(format!("messages.{i}: two {role} turns in a row"));
        }
        previous_role = Some(role);
        let blocks: &[Value] = match message.get("content") {
            Some(Value::String(text)) => {
                if text.trim().is_empty() {
                    return Err(format!("messages.{i}.content: empty text"));
                }
                &[]
            }
            Some(Value::Array(blocks)) => {
                if blocks.is_empty() {
                    return Err(format!("messages.{i}.content: empty content array"));
                }
                blocks
            }
            _ => {
                return Err(format!(
                    "messages.{i}.content: missing or not a string/array"
                ))
            }
        };
        let mut answered: Vec<&str> = Vec::new();
        let mut past_results = false;
        let mut calls: Vec<&str> = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let at = || format!("messages.{i}.content.{j}");
            let kind = block
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{}.type: missing", at()))?;
            if kind != "tool_result" {
                past_results = true;
            }
            match kind {
                "text" => {
                    let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                    if text.trim().is_empty() {
                        return Err(format!("{}: text content blocks must be non-empty", at()));
                    }
                }
                "thinking" | "redacted_thinking" if role != "assistant" => {
                    return Err(format!("{}: {kind} outside an assistant turn", at()));
                }
                "tool_use" => {
                    if role != "assistant" {
                        return Err(format!("{}: tool_use outside an assistant turn", at()));
                    }
                    let id = block
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{}.id: missing", at()))?;
                    if !tool_use_ids.insert(id) {
                        return Err(format!("{}.id: duplicate tool_use id {id:?}", at()));
                    }
                    calls.push(id);
                }
                "tool_result" => {
                    if role != "user" {
                        return Err(format!("{}: tool_result outside a user turn", at()));
                    }
                    if past_results {
                        return Err(format!("{}: tool_result after other content", at()));
                    }
                    let id = block
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{}.tool_use_id: missing", at()))?;
                    if !unanswered.contains(&id) || answered.contains(&id) {
                        return Err(format!(
                            "{}: tool_result {id:?} does not answer a tool_use of the previous turn",
                            at()
                        ));
                    }
                    answered.push(id);
                }
                _ => {}
            }
        }
        if role == "user" {
            if let Some(missing) = unanswered.iter().find(|id| !answered.contains(id)) {
                return Err(format!(
                    "messages.{i}: tool_use {missing:?} has no tool_result right after it"
                ));
            }
            unanswered.clear();
        } else {
            unanswered = calls;
        }
    }
    check_thinking_rules(messages, thinking_on)
}

fn block_types(message: &Value) -> impl Iterator<Item = &str> {
    message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("type").and_then(Value::as_str))
}

fn check_thinking_rules(messages: &[Value], thinking_on: bool) -> Result<(), String> {
    let Some(last) = messages.len().checked_sub(1) else {
        return Ok(());
    };
    let is_thinking = |kind: &str| kind == "thinking" || kind == "redacted_thinking";
    let answers_tools = |i: usize| block_types(&messages[i]).any(|kind| kind == "tool_result");
    if !thinking_on {
        let final_is_assistant =
            messages[last].get("role").and_then(Value::as_str) == Some("assistant");
        if final_is_assistant && block_types(&messages[last]).any(is_thinking) {
            return Err(format!(
                "messages.{last}: thinking blocks in a final assistant turn while thinking is off"
            ));
        }
        return Ok(());
    }
    if !answers_tools(last) {
        return Ok(());
    }
    // Roles alternate here (checked before), so a user turn at index u follows an
    // assistant turn at u - 1 whenever u >= 1.
    let mut user = last;
    let opening = loop {
        let Some(assistant) = user.checked_sub(1) else {
            return Ok(());
        };
        match assistant.checked_sub(1) {
            Some(before) if answers_tools(before) => user = before,
            _ => break assistant,
        }
    };
    if block_types(&messages[opening])
        .next()
        .is_some_and(is_thinking)
    {
        Ok(())
    } else {
        Err(format!(
            "messages.{opening}.content.0: with thinking on, the assistant turn that opens the \
             final tool loop must start with a thinking block"
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------

/// Fuzz entry: JSON input is rewritten as it is; any other input is read as a recipe for
/// a Claude Code-shaped conversation (so the fuzzer explores tool loops, interleaved and
/// redacted thinking, prefills). Either way the rewrite must not panic, must produce JSON
/// that differs only in `messages` and `thinking`, must leave no rejected block behind,
/// must be idempotent, and must pass `validate` whenever the input did. The taps read the
/// same bytes and must not panic.
pub fn fuzz_entry(data: &[u8]) {
    if serde_json::from_slice::<Value>(data).is_ok() {
        check_rewrite(data, &|key: &SignatureHash| key.0[0] & 1 == 0);
        check_rewrite(data, &|_: &SignatureHash| false);
        check_rewrite(data, &|_: &SignatureHash| true);
    } else {
        let (body, accepted) = synthesize_conversation(data);
        check_rewrite(&body, &|key: &SignatureHash| accepted.contains(key));
        check_rewrite(&body, &|_: &SignatureHash| false);
    }
    let _ = signatures_in_response(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let mut tap = SignatureTap::new();
        for event in [
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message",
            "message_stop",
        ] {
            tap.observe(event, text);
        }
        let _ = tap.finish();
    }
}

fn check_rewrite(body: &[u8], keep: &dyn Fn(&SignatureHash) -> bool) {
    let info = analyze(body);
    let rewrite = rewrite_for_target(body, keep);
    let before = serde_json::from_slice::<Value>(body).ok();
    let Some(out) = rewrite.body.as_deref() else {
        assert_eq!(rewrite.removed, 0);
        assert!(!rewrite.thinking_disabled);
        if let Some(value) = &before {
            if validate(value).is_ok() {
                assert!(info.signed_blocks.iter().all(|b| keep(&b.hash)));
            }
        }
        return;
    };
    let after: Value = match serde_json::from_slice(out) {
        Ok(v) => v,
        Err(e) => panic!("rewrite produced invalid JSON: {e}"),
    };
    if let (Some(Value::Object(a)), Value::Object(b)) = (&before, &after) {
        for (key, value) in a {
            if key != "messages" && key != "thinking" {
                assert_eq!(b.get(key), Some(value), "field {key} changed");
            }
        }
        assert_eq!(a.len(), b.len());
    }
    let out_info = analyze(out);
    assert!(out_info.signed_blocks.iter().all(|b| keep(&b.hash)));
    let again = rewrite_for_target(out, keep);
    assert_eq!(again.body, None, "rewrite is not idempotent");
    if let Some(value) = &before {
        if validate(value).is_ok() {
            if let Err(why) = validate(&after) {
                panic!("valid input rewritten into an invalid request: {why}");
            }
        }
    }
}

/// The fuzzer's bytes, read one decision at a time (zeros once they run out).
struct Recipe<'a> {
    bytes: std::slice::Iter<'a, u8>,
}

impl Recipe<'_> {
    fn next(&mut self) -> u8 {
        self.bytes.next().copied().unwrap_or(0)
    }
}

/// Builds a Messages body from `data`: alternating turns, assistant turns with thinking
/// from family A or B (or redacted, or unsigned), text, tool calls with interleaved
/// thinking, user turns answering every call (sometimes with extra text), string content
/// and a possible final prefill. Returns the body and the keys of family A's blocks.
fn synthesize_conversation(data: &[u8]) -> (Vec<u8>, Vec<SignatureHash>) {
    use serde_json::json;
    let mut recipe = Recipe { bytes: data.iter() };
    let flags = recipe.next();
    let turns = 1 + usize::from(recipe.next() % 12);
    let mut accepted = Vec::new();
    let mut messages = Vec::new();
    let mut calls: Vec<String> = Vec::new();
    let mut serial = 0u32;
    let thinking = |recipe: &mut Recipe, serial: &mut u32, accepted: &mut Vec<_>| {
        *serial += 1;
        let pick = recipe.next();
        let family = if pick & 1 == 0 { "a" } else { "b" };
        let secret = match pick & 6 {
            6 => String::new(),
            _ => format!("sig-{family}-{serial}"),
        };
        if family == "a" {
            accepted.push(signature_key(&secret));
        }
        if pick & 8 != 0 {
            json!({"type": "redacted_thinking", "data": secret})
        } else {
            json!({"type": "thinking", "thinking": format!("t{serial}"), "signature": secret})
        }
    };
    for turn in 0..turns {
        let shape = recipe.next();
        if turn % 2 == 0 {
            let mut content: Vec<Value> = calls
                .drain(..)
                .map(|id| json!({"type": "tool_result", "tool_use_id": id, "content": "ok"}))
                .collect();
            if content.is_empty() && shape & 1 == 0 {
                messages.push(json!({"role": "user", "content": format!("u{turn}")}));
                continue;
            }
            if content.is_empty() || shape & 2 != 0 {
                content.push(json!({"type": "text", "text": format!("u{turn}")}));
            }
            messages.push(json!({"role": "user", "content": content}));
        } else {
            let mut content = Vec::new();
            if shape & 1 != 0 {
                content.push(thinking(&mut recipe, &mut serial, &mut accepted));
            }
            if shape & 2 != 0 {
                content.push(json!({"type": "text", "text": format!("a{turn}")}));
            }
            for _ in 0..(shape >> 2) % 4 {
                if recipe.next() & 1 != 0 {
                    content.push(thinking(&mut recipe, &mut serial, &mut accepted));
                }
                serial += 1;
                let id = format!("toolu_{serial}");
                content.push(json!({"type": "tool_use", "id": id, "name": "Read", "input": {}}));
                calls.push(id);
            }
            if content.is_empty() || (shape & 0x40 != 0 && calls.is_empty()) {
                if content.is_empty() && shape & 0x80 != 0 {
                    messages.push(json!({"role": "assistant", "content": format!("a{turn}")}));
                    continue;
                }
                content.push(json!({"type": "text", "text": format!("a{turn}")}));
            }
            messages.push(json!({"role": "assistant", "content": content}));
        }
    }
    // A final assistant turn with pending calls has no answer: make it a prefill without
    // calls, so most recipes describe a valid request.
    if !calls.is_empty() {
        if let Some(Value::Array(content)) = messages.last_mut().and_then(|m| m.get_mut("content"))
        {
            content.retain(|b| b.get("type").and_then(Value::as_str) != Some("tool_use"));
            if content.is_empty() {
                content.push(json!({"type": "text", "text": "prefill"}));
            }
        }
    }
    let mut body = json!({"model": "claude-x", "max_tokens": 4096, "messages": messages});
    match flags & 3 {
        1 => body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024}),
        2 => body["thinking"] = json!({"type": "adaptive"}),
        3 => body["thinking"] = json!({"type": "disabled"}),
        _ => {}
    }
    (serde_json::to_vec(&body).unwrap_or_default(), accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_joins_signature_deltas_per_block() {
        let mut tap = SignatureTap::new();
        tap.observe(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        );
        tap.observe(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
        );
        tap.observe(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"Ab"}}"#,
        );
        tap.observe(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"Cd"}}"#,
        );
        assert!(tap.take().is_empty());
        tap.observe(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        );
        assert_eq!(tap.take(), vec![signature_key("AbCd")]);
        tap.observe(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmRk"}}"#,
        );
        tap.observe(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"a signature_delta appears in text"}}"#,
        );
        assert_eq!(tap.finish(), vec![signature_key("EmRk")]);
    }

    #[test]
    fn tap_reads_unnamed_events_and_flushes_at_message_stop() {
        let mut tap = SignatureTap::new();
        tap.observe(
            "message",
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"signature_delta","signature":"Zz"}}"#,
        );
        tap.observe("message", r#"{"type":"message_stop"}"#);
        assert_eq!(tap.take(), vec![signature_key("Zz")]);
    }

    #[test]
    fn response_signatures() {
        let body = br#"{"content":[{"type":"thinking","thinking":"x","signature":"S1"},
            {"type":"redacted_thinking","data":"R1"},{"type":"text","text":"hi"},
            {"type":"thinking","thinking":"y","signature":""}]}"#;
        assert_eq!(
            signatures_in_response(body),
            vec![signature_key("S1"), signature_key("R1")]
        );
        assert!(signatures_in_response(b"{\"content\":[{\"type\":\"text\"}]}").is_empty());
        assert!(signatures_in_response(b"thinking but not json").is_empty());
    }

    #[test]
    fn scanner_handles_escaped_keys_and_strings() {
        let body = br#"{"messages":[{"r\u006fle":"assistant","content":[{"type":"thinkin\u0067","signature":"a\/b"}]}]}"#;
        let info = analyze(body);
        assert!(info.readable);
        assert_eq!(info.signed_blocks.len(), 1);
        assert_eq!(info.newest_signed_hash, Some(signature_key("a/b")));
    }

    #[test]
    fn unreadable_bodies_are_left_alone() {
        for body in [
            &b""[..],
            b"[]",
            b"{\"messages\":1}",
            b"{\"messages\":[",
            b"nope",
        ] {
            assert_eq!(rewrite_for_target(body, |_| false), Rewrite::default());
            assert!(!analyze(body).readable);
        }
    }

    /// A deterministic mini-fuzz: recipes from a fixed pseudo-random sequence. Most must
    /// describe valid requests (or the fuzzer would mostly test the "invalid input" path),
    /// and every one must hold the properties `fuzz_entry` asserts.
    #[test]
    fn synthesized_conversations_hold_the_rewrite_properties() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut valid = 0;
        let mut rewritten = 0;
        let mut disabled = 0;
        for _ in 0..400 {
            let recipe: Vec<u8> = (0..40)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            let (body, accepted) = synthesize_conversation(&recipe);
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if validate(&value).is_ok() {
                valid += 1;
                let rewrite = rewrite_for_target(&body, |k| accepted.contains(k));
                rewritten += usize::from(rewrite.body.is_some());
                disabled += usize::from(rewrite.thinking_disabled);
            }
            fuzz_entry(&recipe);
        }
        assert!(valid > 200, "only {valid} valid recipes");
        assert!(
            rewritten > 100 && disabled > 10,
            "{rewritten} rewritten, {disabled} disabled"
        );
    }

    #[test]
    fn contains_finds_needles() {
        assert!(contains(b"abcthinking", b"thinking"));
        assert!(!contains(b"thinkin", b"thinking"));
        assert!(contains(b"tthinking", b"thinking"));
    }
}
