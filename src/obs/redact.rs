//! The one choke point that keeps secrets out of logs, error messages and `config show`
//! (SPEC §6). A [`Redactor`] masks, with `***`:
//!
//! - every occurrence of a configured secret (pool keys, `server.auth` secrets, AWS keys
//!   and session tokens, Google private keys and tokens, passwords in URLs), and
//! - things shaped like secrets even when nobody configured them: `Authorization:` /
//!   `x-api-key:` header values, `sk-ant-…`/`sk-…` keys, AWS access key ids, Google API
//!   keys and `ya29.` tokens, JWTs, `Bearer` tokens, `-----BEGIN … PRIVATE KEY-----`
//!   bodies, URL userinfo passwords, and the values of JSON fields / `name=value` pairs
//!   whose name says token, secret, password, signature or key.
//!
//! It must stay cheap on the common path (a log line with no secret in it): one pass
//! that hashes every 3-byte window against a 64 Kibit table of literal prefixes and
//! stops at `:` and `=` to look at the name before them. It is linear; rules that read
//! ahead (JSON values, PEM bodies) make the scan skip what they consumed. It does not
//! decide *where* text goes and never logs anything itself.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use crate::config::Config;

/// What every masked span becomes.
pub const MASK: &str = "***";

/// Secret-shaped tokens recognised by a fixed literal prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `sk-ant-…`: Anthropic keys of any length.
    AnthropicKey,
    /// `sk-` followed by at least 20 key characters (OpenAI-style and similar keys).
    DashKey,
    /// `AKIA`/`ASIA` + exactly 16 upper-case alphanumerics.
    AwsAccessKeyId,
    /// `AIza` + 30 or more key characters.
    GoogleApiKey,
    /// `ya29.` OAuth access tokens.
    GoogleAccessToken,
    /// `eyJ….….…`: a JWT (Google id tokens, MiniMax keys).
    Jwt,
    /// `Bearer <token>` anywhere: the token is masked, the word kept.
    Bearer,
    /// `-----BEGIN … PRIVATE KEY-----`: the body up to `-----END` is masked.
    PemPrivateKey,
}

const SHAPE_PREFIXES: &[(&str, Shape)] = &[
    ("sk-ant-", Shape::AnthropicKey),
    ("sk-", Shape::DashKey),
    ("AKIA", Shape::AwsAccessKeyId),
    ("ASIA", Shape::AwsAccessKeyId),
    ("AIza", Shape::GoogleApiKey),
    ("ya29.", Shape::GoogleAccessToken),
    ("eyJ", Shape::Jwt),
    ("Bearer ", Shape::Bearer),
    ("bearer ", Shape::Bearer),
    ("-----BEGIN ", Shape::PemPrivateKey),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LiteralKind {
    Secret,
    Shape(Shape),
}

#[derive(Debug, Clone)]
struct Literal {
    bytes: Box<[u8]>,
    kind: LiteralKind,
}

/// 65536 bits = 8 KiB, stays in L1; a fixed size lets the index need no bounds check.
const WINDOW_TABLE_WORDS: usize = 1024;

/// Masks secrets in text. Build it once per configuration (building sorts and hashes the
/// secrets); [`Redactor::redact`] is then safe to call from any thread.
#[derive(Debug, Clone)]
pub struct Redactor {
    literals: Vec<Literal>,
    /// A set bit means "some literal may start with a 3-byte window hashing here"; a clear
    /// bit lets the scanner move on after one multiply and one load.
    window_table: Box<[u64; WINDOW_TABLE_WORDS]>,
    /// Literal indices by their first three bytes, longest literal first.
    buckets: HashMap<[u8; 3], Vec<usize>>,
    /// Secrets of one or two bytes, too short for the window table (and a poor idea, but
    /// a configured secret is masked however short it is).
    short_secrets: Vec<String>,
    secret_count: usize,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(std::iter::empty::<&str>())
    }
}

/// Passes after the first while they still find something; masks only shrink text, so
/// real inputs settle in one or two.
const MAX_EXTRA_PASSES: usize = 8;

impl Redactor {
    /// A redactor for the given secrets (empty strings are ignored) plus the built-in
    /// secret shapes. Each secret is also masked in its JSON-escaped spelling.
    pub fn new<I, S>(secrets: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut unique: BTreeSet<String> = BTreeSet::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            if let Some(escaped) = json_escaped_variant(secret) {
                unique.insert(escaped);
            }
            unique.insert(secret.to_string());
        }
        let secret_count = unique.len();

        let mut literals = Vec::new();
        let mut short_secrets = Vec::new();
        for secret in unique {
            if secret.len() < 3 {
                short_secrets.push(secret);
            } else {
                literals.push(Literal {
                    bytes: secret.into_bytes().into_boxed_slice(),
                    kind: LiteralKind::Secret,
                });
            }
        }
        for (prefix, shape) in SHAPE_PREFIXES {
            literals.push(Literal {
                bytes: prefix.as_bytes().into(),
                kind: LiteralKind::Shape(*shape),
            });
        }

        let mut window_table = Box::new([0u64; WINDOW_TABLE_WORDS]);
        let mut buckets: HashMap<[u8; 3], Vec<usize>> = HashMap::new();
        for (index, literal) in literals.iter().enumerate() {
            if let [a, b, c, ..] = *literal.bytes {
                let (word, bit) = window_slot(window_of(a, b, c));
                window_table[word] |= bit;
                buckets.entry([a, b, c]).or_default().push(index);
            }
        }
        for bucket in buckets.values_mut() {
            bucket.sort_by_key(|&index| {
                std::cmp::Reverse(literals.get(index).map_or(0, |l| l.bytes.len()))
            });
        }

        Redactor {
            literals,
            window_table,
            buckets,
            short_secrets,
            secret_count,
        }
    }

    /// A redactor for every secret a configuration holds (see [`config_secrets`]).
    pub fn from_config(config: &Config) -> Redactor {
        Redactor::new(config_secrets(config))
    }

    /// How many distinct secret spellings are masked (JSON-escaped variants count).
    pub fn secret_count(&self) -> usize {
        self.secret_count
    }

    /// `text` with every secret masked; borrowed (no allocation) when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.find_spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut masked = apply_masks(text.as_bytes(), spans);
        // A mask can expose a shape a match used to cover (a `name: value` pair whose
        // name began inside the masked token), so repeat until nothing changes: the
        // result of a redaction is always itself fully redacted. Each extra pass runs
        // only when the previous one masked something.
        for _ in 0..MAX_EXTRA_PASSES {
            let spans = self.find_spans(&masked);
            if spans.is_empty() {
                break;
            }
            let again = apply_masks(masked.as_bytes(), spans);
            if again == masked {
                break;
            }
            masked = again;
        }
        Cow::Owned(masked)
    }

    /// Appends the redacted `text` to `out`.
    pub fn redact_into(&self, text: &str, out: &mut String) {
        out.push_str(&self.redact(text));
    }

    /// One pass over the bytes doing two jobs: probing each 3-byte window for a literal
    /// (configured secret or shape prefix), and stopping at `:`/`=` for URL userinfo and
    /// secret-named fields.
    fn find_spans(&self, text: &str) -> Vec<Span> {
        let bytes = text.as_bytes();
        let mut spans = Vec::new();
        for secret in &self.short_secrets {
            for (start, matched) in text.match_indices(secret.as_str()) {
                spans.push(Span::new(start, start + matched.len()));
            }
        }
        // A private-key body already masked needs no second search for its `-----END`;
        // skipping nested BEGINs keeps the END searches disjoint, hence linear.
        let mut pem_masked_until = 0usize;
        // Separators inside a value already masked or skipped are not visited again.
        let mut fields_resume_at = 0usize;
        let mut from = 0usize;
        let mut window = 0u32;
        while let Some((index, at_window)) = next_event(&self.window_table, bytes, from, window) {
            let byte = bytes.get(index).copied().unwrap_or(0);
            if (byte == b':' || byte == b'=') && index >= fields_resume_at {
                fields_resume_at = separator_at(bytes, index, &mut spans);
            }
            if index >= 2 && window_bit_set(&self.window_table, at_window) {
                self.literals_at(
                    text,
                    index - 2,
                    at_window,
                    &mut pem_masked_until,
                    &mut spans,
                );
            }
            from = index + 1;
            window = at_window;
        }
        spans
    }

    fn literals_at(
        &self,
        text: &str,
        start: usize,
        window: u32,
        pem_masked_until: &mut usize,
        spans: &mut Vec<Span>,
    ) {
        let bytes = text.as_bytes();
        let key = [(window >> 16) as u8, (window >> 8) as u8, window as u8];
        let Some(bucket) = self.buckets.get(&key) else {
            return;
        };
        let rest = bytes.get(start..).unwrap_or_default();
        for literal in bucket.iter().filter_map(|&i| self.literals.get(i)) {
            if !rest.starts_with(&literal.bytes) {
                continue;
            }
            match literal.kind {
                LiteralKind::Secret => {
                    spans.push(Span::new(start, start + literal.bytes.len()));
                }
                LiteralKind::Shape(Shape::PemPrivateKey) => {
                    if start < *pem_masked_until {
                        continue;
                    }
                    if let Some(span) = pem_body(text, start + literal.bytes.len()) {
                        *pem_masked_until = span.end;
                        spans.push(span);
                    }
                }
                LiteralKind::Shape(shape) => {
                    if let Some(span) = shape_span(bytes, start, literal.bytes.len(), shape) {
                        spans.push(span);
                    }
                }
            }
        }
    }
}

/// Every secret a configuration holds, for [`Redactor::new`]: provider keys, AWS access
/// key ids, secret keys and session tokens, `server.auth.api_key`/`bearer_secret`,
/// values of extra headers with a secret-looking name, and passwords inside URLs
/// (`cache.redis.url`, `base_url`), both as written and percent-decoded. Disabled
/// providers count too: their secrets are no less secret.
///
/// Google private keys and tokens live in files and token responses, not in the config;
/// feed them in with [`secrets_from_google_credentials`] and runtime secret slots.
pub fn config_secrets(config: &Config) -> Vec<String> {
    let mut secrets = Vec::new();
    let auth = &config.server.auth;
    secrets.extend(auth.api_key.iter().cloned());
    secrets.extend(auth.bearer_secret.iter().cloned());
    for provider in &config.providers {
        secrets.extend(provider.keys.iter().map(|k| k.key.clone()));
        secrets.extend(provider.aws_access_key_id.iter().cloned());
        secrets.extend(provider.aws_secret_access_key.iter().cloned());
        secrets.extend(provider.aws_session_token.iter().cloned());
        for (name, value) in &provider.headers {
            if field_sensitivity(name.as_bytes()) != Sensitivity::None {
                secrets.push(value.clone());
                // `Bearer xyz` is configured whole but logged in parts.
                if let Some((_, token)) = value.split_once(' ') {
                    secrets.push(token.trim().to_string());
                }
            }
        }
        if let Some(base_url) = &provider.base_url {
            secrets.extend(url_password_secrets(base_url));
        }
    }
    if let Some(url) = &config.cache.redis.url {
        secrets.extend(url_password_secrets(url));
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// The secrets inside a Google credentials JSON file (service account or authorized
/// user): `private_key` (whole and line by line), `private_key_id`, `client_secret`,
/// `refresh_token`. Invalid JSON yields nothing; the loader reports that error itself.
pub fn secrets_from_google_credentials(json_text: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json_text) else {
        return Vec::new();
    };
    let mut secrets = Vec::new();
    for field in [
        "private_key",
        "private_key_id",
        "client_secret",
        "refresh_token",
    ] {
        if let Some(text) = value.get(field).and_then(|v| v.as_str()) {
            secrets.push(text.to_string());
            if field == "private_key" {
                // A key body logged one line at a time is still the key.
                secrets.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|line| line.len() >= 16 && !line.starts_with("-----"))
                        .map(str::to_string),
                );
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// The password of `scheme://user:password@host`, as written and percent-decoded.
fn url_password_secrets(url: &str) -> Vec<String> {
    let Some((_, after_scheme)) = url.split_once("://") else {
        return Vec::new();
    };
    // Lenient on purpose: a password with an unencoded '/' or '@' is still a password.
    let Some(at) = after_scheme.rfind('@') else {
        return Vec::new();
    };
    let userinfo = after_scheme.get(..at).unwrap_or_default();
    let Some((_, password)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    let mut secrets = vec![password.to_string()];
    let decoded = percent_decode(password);
    if decoded != password {
        secrets.push(decoded);
    }
    secrets
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let hex = |offset: usize| {
            bytes
                .get(index + offset)
                .and_then(|b| (*b as char).to_digit(16))
        };
        match (byte, hex(1), hex(2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a secret containing quotes, backslashes or control characters looks inside JSON.
fn json_escaped_variant(secret: &str) -> Option<String> {
    let encoded = serde_json::to_string(secret).ok()?;
    let inner = encoded.get(1..encoded.len().saturating_sub(1))?;
    (inner != secret).then(|| inner.to_string())
}

/// The hot loop, kept small so its few variables live in registers: the first index
/// at or after `from` holding a `:`/`=` or ending a 3-byte window whose table bit is set,
/// with that window. `window` is the window ending just before `from`.
fn next_event(
    table: &[u64; WINDOW_TABLE_WORDS],
    bytes: &[u8],
    from: usize,
    mut window: u32,
) -> Option<(usize, u32)> {
    let rest = bytes.get(from..)?;
    for (offset, &byte) in rest.iter().enumerate() {
        window = ((window << 8) | u32::from(byte)) & 0x00FF_FFFF;
        if byte == b':' || byte == b'=' || window_bit_set(table, window) {
            return Some((from + offset, window));
        }
    }
    None
}

fn window_bit_set(table: &[u64; WINDOW_TABLE_WORDS], window: u32) -> bool {
    let (word, bit) = window_slot(window);
    table[word] & bit != 0
}

fn window_of(a: u8, b: u8, c: u8) -> u32 {
    (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c)
}

/// (word index, bit mask) of a 24-bit window in the 65536-bit table. Multiplicative
/// hashing spreads similar prefixes (`sk-`, `sk-ant-`) and English trigrams apart.
fn window_slot(window: u32) -> (usize, u64) {
    let hash = window.wrapping_mul(0x9E37_79B1) >> 16; // 0..65536
    (
        (hash >> 6) as usize % WINDOW_TABLE_WORDS,
        1u64 << (hash & 63),
    )
}

/// A byte range to mask, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// Rebuilds the text with each merged span replaced by one `***`.
fn apply_masks(bytes: &[u8], mut spans: Vec<Span>) -> String {
    spans.retain(|s| s.start < s.end);
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            // Touching spans merge too: `******` would only say "two secrets here".
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut copied_until = 0usize;
    for span in merged {
        out.extend_from_slice(bytes.get(copied_until..span.start).unwrap_or_default());
        out.extend_from_slice(MASK.as_bytes());
        copied_until = span.end.min(bytes.len());
    }
    out.extend_from_slice(bytes.get(copied_until..).unwrap_or_default());
    // Spans start and end on ASCII bytes or on whole UTF-8 secrets, so this is valid
    // UTF-8; lossy conversion is only a guard against a bug, never a panic.
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

fn is_key_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

fn is_token_char(byte: u8) -> bool {
    is_key_char(byte) || matches!(byte, b'.' | b'~' | b'+' | b'/' | b'=')
}

fn run_end(bytes: &[u8], from: usize, accept: impl Fn(u8) -> bool) -> usize {
    let mut end = from;
    while bytes.get(end).is_some_and(|&b| accept(b)) {
        end += 1;
    }
    end
}

fn preceded_by(bytes: &[u8], start: usize, reject: impl Fn(u8) -> bool) -> bool {
    start
        .checked_sub(1)
        .and_then(|i| bytes.get(i))
        .is_some_and(|&b| reject(b))
}

/// The span to mask for a secret-shaped token whose literal prefix matched at `start`.
fn shape_span(bytes: &[u8], start: usize, prefix_len: usize, shape: Shape) -> Option<Span> {
    let after_prefix = start + prefix_len;
    match shape {
        Shape::AnthropicKey | Shape::DashKey => {
            if preceded_by(bytes, start, |b| b.is_ascii_alphanumeric()) {
                return None;
            }
            let end = run_end(bytes, after_prefix, is_key_char);
            let minimum = if shape == Shape::AnthropicKey { 1 } else { 20 };
            (end - after_prefix >= minimum).then(|| Span::new(start, end))
        }
        Shape::AwsAccessKeyId => {
            if preceded_by(bytes, start, |b| b.is_ascii_alphanumeric()) {
                return None;
            }
            let end = run_end(bytes, after_prefix, |b| {
                b.is_ascii_uppercase() || b.is_ascii_digit()
            });
            let followed_by_alnum = bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
            (end - after_prefix == 16 && !followed_by_alnum).then(|| Span::new(start, end))
        }
        Shape::GoogleApiKey => {
            if preceded_by(bytes, start, is_key_char) {
                return None;
            }
            let end = run_end(bytes, after_prefix, is_key_char);
            (end - after_prefix >= 30).then(|| Span::new(start, end))
        }
        Shape::GoogleAccessToken => {
            if preceded_by(bytes, start, is_key_char) {
                return None;
            }
            let end = run_end(bytes, after_prefix, |b| is_key_char(b) || b == b'.');
            (end - after_prefix >= 10).then(|| Span::new(start, end))
        }
        Shape::Jwt => {
            if preceded_by(bytes, start, |b| is_key_char(b) || b == b'.') {
                return None;
            }
            let header_end = run_end(bytes, after_prefix, is_key_char);
            if bytes.get(header_end) != Some(&b'.') {
                return None;
            }
            let payload_end = run_end(bytes, header_end + 1, is_key_char);
            if payload_end == header_end + 1 || bytes.get(payload_end) != Some(&b'.') {
                return None;
            }
            let signature_end = run_end(bytes, payload_end + 1, is_key_char);
            Some(Span::new(start, signature_end))
        }
        Shape::Bearer => {
            let end = run_end(bytes, after_prefix, is_token_char);
            (end - after_prefix >= 8).then(|| Span::new(after_prefix, end))
        }
        Shape::PemPrivateKey => None, // needs the text; see `pem_body`
    }
}

/// After `-----BEGIN `: when the label says PRIVATE KEY, the body up to `-----END`
/// (or to the end of the text: a truncated key is still a key).
fn pem_body(text: &str, label_start: usize) -> Option<Span> {
    let bytes = text.as_bytes();
    let label_end = run_end(bytes, label_start, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    if label_end - label_start > 64 {
        return None;
    }
    let label = bytes.get(label_start..label_end)?;
    if !label.windows(11).any(|w| w == b"PRIVATE KEY") {
        return None;
    }
    if !bytes.get(label_end..)?.starts_with(b"-----") {
        return None;
    }
    let body_start = label_end + 5;
    let body_end = text
        .get(body_start..)
        .and_then(|rest| rest.find("-----END"))
        .map_or(bytes.len(), |offset| body_start + offset);
    Some(Span::new(body_start, body_end))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sensitivity {
    None,
    /// Masked as a quoted JSON field or `name=value`, not after a bare `Name:` (so prose
    /// like "token: expired" keeps its meaning).
    Quoted,
    /// Masked in every form, including `Name: value` header lines.
    Always,
}

/// Header names whose value is always a credential, compared lower-case without `-`/`_`,
/// as suffixes so `proxy-authorization` and `x-goog-api-key` need no entry of their own.
const CREDENTIAL_HEADERS: &[&[u8]] = &[
    b"authorization",
    b"apikey",
    b"securitytoken",
    b"cookie",
    b"subscriptionkey",
    b"password",
    b"passwd",
    b"secret",
];

/// `Authorization` schemes shown in front of the mask.
const AUTH_SCHEMES: &[&[u8]] = &[
    b"Bearer",
    b"Basic",
    b"Digest",
    b"Token",
    b"Negotiate",
    b"NTLM",
    b"AWS4-HMAC-SHA256",
    b"GOOG4-RSA-SHA256",
];

/// Name suffixes (normalised) that mark a value as secret in quoted/`=` forms.
const SECRET_NAME_SUFFIXES: &[&[u8]] = &[
    b"token",
    b"secret",
    b"password",
    b"passwd",
    b"signature",
    b"key",
    b"keyid",
    b"credential",
];

/// Field names that mean "secret", normalised to lower case without `-`, `_`, `.`.
/// `input_tokens`/`max_tokens` are counts, not tokens, hence suffixes and not substrings.
fn field_sensitivity(name: &[u8]) -> Sensitivity {
    if name.is_empty() || name.len() > 64 {
        return Sensitivity::None;
    }
    let mut normalised = [0u8; 64];
    let mut length = 0;
    let mut has_separator = false;
    for &byte in name {
        if matches!(byte, b'-' | b'_' | b'.') {
            has_separator = true;
            continue;
        }
        if let Some(slot) = normalised.get_mut(length) {
            *slot = byte.to_ascii_lowercase();
            length += 1;
        }
    }
    let normalised = normalised.get(..length).unwrap_or_default();
    if CREDENTIAL_HEADERS.iter().any(|h| normalised.ends_with(h)) {
        return Sensitivity::Always;
    }
    let contains = |needle: &[u8]| normalised.windows(needle.len()).any(|w| w == needle);
    let secret_like = SECRET_NAME_SUFFIXES.iter().any(|s| normalised.ends_with(s))
        || contains(b"secret")
        || contains(b"password")
        || contains(b"privatekey");
    match (secret_like, has_separator) {
        (false, _) => Sensitivity::None,
        // `client_secret:` or `x-auth-token:` is a field name, not an English word.
        (true, true) => Sensitivity::Always,
        (true, false) => Sensitivity::Quoted,
    }
}

fn is_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.')
}

fn is_horizontal_space(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// At a `:` or `=`: a `://` may open URL userinfo; any other separator may end a field
/// name. Pushes what must be masked and returns where the next separator may be looked
/// at (past a value that was masked or skipped whole, which keeps the scan linear).
fn separator_at(bytes: &[u8], index: usize, spans: &mut Vec<Span>) -> usize {
    if bytes.get(index) == Some(&b':') && bytes.get(index + 1..index + 3) == Some(b"//") {
        if let Some(span) = url_password(bytes, index + 3) {
            spans.push(span);
        }
        // `secret://…` is odd but still a secret's field; without this, masking the URL
        // password would leave `secret:***`, which a second pass would treat differently.
        if let Some((Some(span), value_end)) = field_value(bytes, index) {
            spans.push(span);
            return value_end.max(index + 3);
        }
        return index + 3;
    }
    match field_value(bytes, index) {
        Some((span, value_end)) => {
            if let Some(span) = span {
                spans.push(span);
            }
            value_end.max(index + 1)
        }
        None => index + 1,
    }
}

/// `scheme://user:password@host`: the password span. The authority ends at whitespace
/// or a quote; the last `@` before that ends the userinfo.
fn url_password(bytes: &[u8], authority_start: usize) -> Option<Span> {
    // Characters that cannot appear unencoded in userinfo or host end the authority.
    let authority_end = run_end(bytes, authority_start, |b| {
        !(b.is_ascii_whitespace()
            || b.is_ascii_control()
            || matches!(
                b,
                b'"' | b'\'' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^'
            ))
    });
    let authority = bytes.get(authority_start..authority_end)?;
    let at = authority.iter().rposition(|&b| b == b'@')?;
    let colon = authority.get(..at)?.iter().position(|&b| b == b':')?;
    let span = Span::new(authority_start + colon + 1, authority_start + at);
    (span.start < span.end).then_some(span)
}

/// At a `:` or `=`: when the name before it is a secret's name, the span of its value
/// to mask (None when the value is empty, structured or a literal), and where the value
/// ends. Returns None when there is no secret-looking name here.
fn field_value(bytes: &[u8], separator: usize) -> Option<(Option<Span>, usize)> {
    let is_colon = bytes.get(separator) == Some(&b':');
    let name_info = name_before(bytes, separator, is_colon)?;
    let sensitivity = field_sensitivity(bytes.get(name_info.start..name_info.end)?);
    let masked = match (sensitivity, name_info.quote, is_colon) {
        (Sensitivity::None, _, _) => false,
        (_, Quote::Plain | Quote::Escaped, _) => true,
        (_, Quote::None, false) => true,
        (Sensitivity::Always, Quote::None, true) => true,
        (Sensitivity::Quoted, Quote::None, true) => false,
    };
    if !masked {
        return None;
    }
    let keeps_scheme = {
        let name = bytes
            .get(name_info.start..name_info.end)
            .unwrap_or_default();
        name.len() >= 13
            && name
                .get(name.len() - 13..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(b"authorization"))
    };

    let mut value_start = separator + 1;
    if is_colon {
        value_start = run_end(bytes, value_start, is_horizontal_space);
    }
    let rest = bytes.get(value_start..).unwrap_or_default();
    let (mut span, value_end) = if rest.starts_with(b"\\\"") {
        let content = value_start + 2;
        let end = escaped_string_end(bytes, content);
        (Span::new(content, end), end + 2)
    } else if rest.first() == Some(&b'"') {
        let content = value_start + 1;
        let end = string_end(bytes, content);
        (Span::new(content, end), end + 1)
    } else if rest.first() == Some(&b'\'') {
        let content = value_start + 1;
        let end = run_end(bytes, content, |b| b != b'\'' && b != b'\n');
        (Span::new(content, end), end + 1)
    } else if name_info.quote != Quote::None && matches!(rest.first(), Some(b'{' | b'[')) {
        // A nested JSON structure: its own fields are visited one by one.
        return Some((None, value_start));
    } else if is_colon && name_info.quote == Quote::None {
        // A header line: the value runs to the end of the line.
        let end = run_end(bytes, value_start, |b| b != b'\r' && b != b'\n');
        (Span::new(value_start, end), end)
    } else {
        let end = run_end(bytes, value_start, |b| {
            !(b.is_ascii_whitespace()
                || matches!(
                    b,
                    b'&' | b',' | b';' | b'"' | b'\'' | b')' | b']' | b'}' | b'>' | b'<' | b'\\'
                ))
        });
        let literal = bytes.get(value_start..end).unwrap_or_default();
        if is_colon && matches!(literal, b"null" | b"true" | b"false") {
            return Some((None, end));
        }
        (Span::new(value_start, end), end)
    };

    if keeps_scheme {
        // `Authorization: Bearer ***` says more than `Authorization: ***` and leaks nothing.
        // Only well-known schemes are kept: an unknown first word may be part of the
        // credential itself.
        let scheme_end = run_end(bytes, span.start, is_key_char);
        let scheme = bytes.get(span.start..scheme_end).unwrap_or_default();
        let known = AUTH_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s));
        if known && bytes.get(scheme_end) == Some(&b' ') && scheme_end + 1 < span.end {
            span.start = scheme_end + 1;
        }
    }
    let span = (span.start < span.end).then_some(span);
    Some((span, value_end.min(bytes.len())))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `name:` / `name=`
    None,
    /// `"name":`
    Plain,
    /// `\"name\":` (JSON inside a JSON string)
    Escaped,
}

struct NameInfo {
    start: usize,
    end: usize,
    quote: Quote,
}

/// The field name ending just before the separator: `"name" :` (JSON, spaces allowed),
/// `\"name\":`, or a bare `name:` / `name=`.
fn name_before(bytes: &[u8], separator: usize, is_colon: bool) -> Option<NameInfo> {
    let mut end = separator;
    if is_colon {
        while end > 0 && bytes.get(end - 1).is_some_and(|&b| is_horizontal_space(b)) {
            end -= 1;
        }
    }
    let quoted = is_colon && end > 0 && bytes.get(end - 1) == Some(&b'"');
    if quoted {
        end -= 1;
        let escaped = end > 0 && bytes.get(end - 1) == Some(&b'\\');
        if escaped {
            end -= 1;
        }
        let start = name_start(bytes, end);
        let opening_ok = if escaped {
            start >= 2 && bytes.get(start - 2..start) == Some(b"\\\"")
        } else {
            start >= 1 && bytes.get(start - 1) == Some(&b'"')
        };
        if !opening_ok || start == end {
            return None;
        }
        let quote = if escaped {
            Quote::Escaped
        } else {
            Quote::Plain
        };
        return Some(NameInfo { start, end, quote });
    }
    if end != separator {
        return None; // `name :` unquoted is prose, not a field
    }
    let start = name_start(bytes, end);
    (start < end).then_some(NameInfo {
        start,
        end,
        quote: Quote::None,
    })
}

/// Start of the run of name characters ending at `end`, looking back at most 65 bytes
/// (longer names are never secret names, and the bound keeps the pass linear).
fn name_start(bytes: &[u8], end: usize) -> usize {
    let mut start = end;
    while start > 0 && end - start <= 64 && bytes.get(start - 1).is_some_and(|&b| is_name_char(b)) {
        start -= 1;
    }
    start
}

/// Index of the closing `"` of a JSON string whose content starts at `from` (or the end
/// of the text when it is unterminated: the value is masked to the end).
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut index = from;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'\\' => index += 2,
            b'"' => return index,
            _ => index += 1,
        }
    }
    bytes.len()
}

/// Index of the closing `\"` of a string inside a JSON string.
fn escaped_string_end(bytes: &[u8], from: usize) -> usize {
    let mut index = from;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'\\' {
            if bytes.get(index + 1) == Some(&b'"') {
                return index;
            }
            index += 2;
        } else {
            index += 1;
        }
    }
    bytes.len()
}

/// Fuzz entry: `secrets (one per line) NUL text`. Checks that no configured secret
/// survives redaction, and that pattern redaction (no secrets) changes nothing more when
/// run over its own output. (With secrets configured it need not: a mask can put `*`
/// where a letter used to stop a key shape from matching — `dsk-ant-x` with secret `d`.)
pub fn fuzz_entry(data: &[u8]) {
    let (secret_part, text_part) = match data.iter().position(|&b| b == 0) {
        Some(split) => (
            data.get(..split).unwrap_or_default(),
            data.get(split + 1..).unwrap_or_default(),
        ),
        None => (&[][..], data),
    };
    let secrets_text = String::from_utf8_lossy(secret_part);
    let secrets: Vec<&str> = secrets_text.split('\n').collect();
    let text = String::from_utf8_lossy(text_part);

    let redactor = Redactor::new(secrets.iter().copied());
    let redacted = redactor.redact(&text);
    for secret in &secrets {
        // A mask next to leftover text can spell a secret that contains '*' itself.
        if !secret.is_empty() && !secret.contains('*') {
            assert!(
                !redacted.contains(secret),
                "secret {secret:?} survived in {redacted:?}"
            );
        }
    }

    let patterns_only = Redactor::default();
    let once = patterns_only.redact(&text).into_owned();
    let twice = patterns_only.redact(&once);
    assert_eq!(
        twice, once,
        "pattern redaction is not idempotent for {text:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(text: &str) -> String {
        Redactor::default().redact(text).into_owned()
    }

    #[test]
    fn redaction_is_a_fixpoint_when_a_mask_exposes_another_shape() {
        // Found by the fuzzer: masking the Google-style key made `key: value` readable.
        let text = "AIzaSyA-1234567891abcdefghijklprivatekeyJhbGcfciJSUzI2NiJ9.eyJkey: s3cretvalue";
        let once = patterns(text);
        assert_eq!(patterns(&once), once);
        assert!(!once.contains("s3cretvalue"), "{once}");
    }

    #[test]
    fn clean_text_is_borrowed() {
        let redactor = Redactor::new(["sk-ant-api03-secretsecret", "hunter22"]);
        let line = "POST /v1/messages model=claude-sonnet-4 status=200 input_tokens=12";
        assert!(matches!(redactor.redact(line), Cow::Borrowed(_)));
    }

    #[test]
    fn configured_secrets_are_masked_anywhere() {
        let redactor = Redactor::new(["zai.key.12345", "hunter22", "xy", "q"]);
        assert_eq!(
            redactor
                .redact("upstream said: bad key zai.key.12345!")
                .as_ref(),
            "upstream said: bad key ***!"
        );
        assert_eq!(redactor.redact("pw=xhunter22x").as_ref(), "pw=x***x");
        assert_eq!(redactor.redact("axyb").as_ref(), "a***b");
        assert_eq!(redactor.redact("Q q").as_ref(), "Q ***");
        assert_eq!(redactor.redact("hunter22hunter22").as_ref(), "***");
    }

    #[test]
    fn json_escaped_spelling_of_a_secret_is_masked() {
        let redactor = Redactor::new(["pa\"ss\\word"]);
        assert_eq!(
            redactor.redact(r#"{"note":"pa\"ss\\word"}"#).as_ref(),
            r#"{"note":"***"}"#
        );
    }

    #[test]
    fn header_lines_keep_the_scheme() {
        assert_eq!(
            patterns("Authorization: Bearer abc.def\r\nx-api-key: k1\r\nAccept: */*"),
            "Authorization: Bearer ***\r\nx-api-key: ***\r\nAccept: */*"
        );
        assert_eq!(
            patterns("authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101, Signature=ab"),
            "authorization: AWS4-HMAC-SHA256 ***"
        );
        assert_eq!(patterns("Authorization: opaque"), "Authorization: ***");
        // An unknown first word may be half of the credential: no scheme is kept.
        assert_eq!(patterns("Authorization: sk-live abc"), "Authorization: ***");
        assert_eq!(
            patterns("proxy-authorization: Basic dXNlcjpwYXNz"),
            "proxy-authorization: Basic ***"
        );
        assert_eq!(
            patterns("x-amz-security-token: FQoG"),
            "x-amz-security-token: ***"
        );
        assert_eq!(patterns("api-key: azure1"), "api-key: ***");
    }

    #[test]
    fn prose_with_a_bare_word_is_left_alone() {
        for text in [
            "token: expired, refreshing",
            "key: …ab12 cooling down",
            "signature: invalid for provider zai",
            "input_tokens=12 output_tokens=34 max_tokens=1024",
        ] {
            assert_eq!(patterns(text), text);
        }
    }

    #[test]
    fn json_fields_named_like_secrets_are_masked() {
        assert_eq!(
            patterns(r#"{"type":"signature_delta","signature":"EqQBCkgIARAB"}"#),
            r#"{"type":"signature_delta","signature":"***"}"#
        );
        assert_eq!(
            patterns(r#"{"access_token" : "tok\"en", "expires_in": 3599, "token_type":"Bearer"}"#),
            r#"{"access_token" : "***", "expires_in": 3599, "token_type":"Bearer"}"#
        );
        assert_eq!(
            patterns(r#"{"password": 123456, "secret": null, "api_key": {"x":1}}"#),
            r#"{"password": ***, "secret": null, "api_key": {"x":1}}"#
        );
        assert_eq!(
            patterns(r#"{"usage":{"input_tokens":5,"output_tokens":7}}"#),
            r#"{"usage":{"input_tokens":5,"output_tokens":7}}"#
        );
        assert_eq!(
            patterns(r#"{"message":"{\"client_secret\":\"abc\",\"n\":1}"}"#),
            r#"{"message":"{\"client_secret\":\"***\",\"n\":1}"}"#
        );
        assert_eq!(patterns(r#"{"key":"unterminated"#), r#"{"key":"***"#);
    }

    #[test]
    fn name_value_pairs_are_masked() {
        assert_eq!(
            patterns("GET /v1/models?key=AIzaShort&alt=json"),
            "GET /v1/models?key=***&alt=json"
        );
        assert_eq!(
            patterns("X-Amz-Signature=abcdef01 X-Amz-Security-Token=\"FQo G\" done"),
            "X-Amz-Signature=*** X-Amz-Security-Token=\"***\" done"
        );
        assert_eq!(
            patterns("aws_secret_access_key: wJalr"),
            "aws_secret_access_key: ***"
        );
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            patterns("redis down: rediss://default:p%40ss@cache:6380/0 refused"),
            "redis down: rediss://default:***@cache:6380/0 refused"
        );
        assert_eq!(patterns("redis://:pw@h"), "redis://:***@h");
        assert_eq!(patterns("redis://user@h:1/x"), "redis://user@h:1/x");
        assert_eq!(patterns("https://h:443/a"), "https://h:443/a");
        assert_eq!(
            patterns("see https://u:pw@[::1]:8080/x"),
            "see https://u:***@[::1]:8080/x"
        );
        // Found by fuzzing: a secret-named field right before `://`.
        assert_eq!(patterns("client_secret://x:y@h"), "client_secret:***");
    }

    #[test]
    fn secret_shapes_are_masked_without_configuration() {
        assert_eq!(
            patterns("key sk-ant-api03-AbC_d-9 rejected"),
            "key *** rejected"
        );
        assert_eq!(patterns("sk-proj-abcdefghijklmnopqrstu."), "***.");
        assert_eq!(
            patterns("risk-assessment-framework-doc"),
            "risk-assessment-framework-doc"
        );
        assert_eq!(patterns("sk-short"), "sk-short");
        assert_eq!(patterns("id AKIAIOSFODNN7EXAMPLE."), "id ***.");
        assert_eq!(patterns("AKIAIOSFODNN7EXAMPLEX"), "AKIAIOSFODNN7EXAMPLEX");
        assert_eq!(
            patterns("AIzaSyA-1234567890abcdefghijklmnopqrs used"),
            "*** used"
        );
        assert_eq!(patterns("got ya29.a0AfB_byC-1234 ok"), "got *** ok");
        assert_eq!(
            patterns("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln end"),
            "jwt *** end"
        );
        assert_eq!(patterns("eyJhbGciOiJ9 alone"), "eyJhbGciOiJ9 alone");
        assert_eq!(patterns("sent Bearer abcdefgh1234"), "sent Bearer ***");
        assert_eq!(patterns("Bearer short"), "Bearer short");
    }

    #[test]
    fn private_key_bodies_are_masked() {
        let pem = "k=\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----\nafter";
        assert_eq!(
            patterns(pem),
            "k=\n-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----\nafter"
        );
        assert_eq!(
            patterns("-----BEGIN PRIVATE KEY-----\\nMIIE\\n"),
            "-----BEGIN PRIVATE KEY-----***"
        );
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(patterns(cert), cert);
    }

    #[test]
    fn sensitivity_of_names() {
        assert_eq!(field_sensitivity(b"Authorization"), Sensitivity::Always);
        assert_eq!(field_sensitivity(b"x-goog-api-key"), Sensitivity::Always);
        assert_eq!(field_sensitivity(b"client_secret"), Sensitivity::Always);
        assert_eq!(field_sensitivity(b"token"), Sensitivity::Quoted);
        assert_eq!(field_sensitivity(b"key"), Sensitivity::Quoted);
        assert_eq!(field_sensitivity(b"SecretAccessKey"), Sensitivity::Quoted);
        assert_eq!(field_sensitivity(b"max_tokens"), Sensitivity::None);
        assert_eq!(field_sensitivity(b"token_type"), Sensitivity::None);
        assert_eq!(field_sensitivity(b"model"), Sensitivity::None);
    }

    #[test]
    fn pathological_inputs_stay_linear() {
        // Would take minutes if any rule re-scanned from every match.
        let many_begins = "-----BEGIN PRIVATE KEY-----".repeat(20_000);
        assert_eq!(patterns(&many_begins), "-----BEGIN PRIVATE KEY-----***");
        let many_fields = "\"token\":\"".repeat(20_000);
        assert_eq!(patterns(&many_fields), many_fields);
        let colons = "a:".repeat(100_000);
        assert_eq!(patterns(&colons), colons);
        let redactor = Redactor::new(["aaaa"]);
        assert_eq!(redactor.redact(&"a".repeat(100_000)).as_ref(), "***");
    }

    #[test]
    fn url_password_secrets_include_decoded_form() {
        assert_eq!(
            url_password_secrets("rediss://u:p%40ss%2Fw@host:1/0"),
            vec!["p%40ss%2Fw".to_string(), "p@ss/w".to_string()]
        );
        assert_eq!(
            url_password_secrets("redis://:a/b@c@host"),
            vec!["a/b@c".to_string()]
        );
        assert!(url_password_secrets("redis://host:6379").is_empty());
    }

    #[test]
    fn google_credentials_yield_their_secrets() {
        let json = r#"{"type":"service_account","private_key_id":"abc123",
            "private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
            "client_email":"x@y.iam.gserviceaccount.com"}"#;
        let secrets = secrets_from_google_credentials(json);
        assert!(secrets.contains(&"abc123".to_string()));
        assert!(secrets.contains(&"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_string()));
        assert!(!secrets.iter().any(|s| s.contains("gserviceaccount")));
        assert!(secrets_from_google_credentials("not json").is_empty());
    }

    #[test]
    fn fuzz_entry_accepts_odd_inputs() {
        fuzz_entry(b"");
        fuzz_entry(b"\0");
        fuzz_entry(b"abc\nsk-\0xx abc sk-ant-1 \"token\":\"\\");
        fuzz_entry(b"\xff\xfe\0\xff-----BEGIN PRIVATE KEY-----");
    }
}
