//! Reads the rate-limit facts an upstream response carries: `retry-after` and
//! `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
//! (resets are RFC 3339 timestamps). Pure: bytes in, numbers out; the wall-clock time is a
//! parameter. It must not decide anything about keys — `KeyPool::learn_limits` and
//! `KeyPool::cooldown_for` do that with what this returns. Input comes from the network:
//! malformed values are ignored, never a panic.

use std::time::Duration;

/// The three headers of one limit kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitHeaders {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// When the bucket is full again, as Unix milliseconds.
    pub reset_unix_ms: Option<i64>,
}

/// Everything rate-limit related in one response head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub requests: LimitHeaders,
    pub tokens: LimitHeaders,
    pub input_tokens: LimitHeaders,
    pub output_tokens: LimitHeaders,
    /// `retry-after` in delta-seconds (fractions accepted), as milliseconds. The HTTP-date
    /// form is not read.
    pub retry_after_ms: Option<u64>,
}

/// Cooldowns derived from a reset timestamp are at least this long: a reset that looks
/// already past is most likely clock skew, and retrying the key at once would only earn
/// another 429.
pub const MIN_RESET_COOLDOWN: Duration = Duration::from_secs(1);

impl RateLimitHeaders {
    /// Collects the relevant headers from `(name, value)` pairs in any form a caller has
    /// them (`&str`/`String`/`&[u8]`). Names are matched case-insensitively; a repeated
    /// header's last valid value wins.
    pub fn parse<I, K, V>(headers: I) -> RateLimitHeaders
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut out = RateLimitHeaders::default();
        for (name, value) in headers {
            out.absorb(name.as_ref(), value.as_ref());
        }
        out
    }

    fn absorb(&mut self, name: &[u8], value: &[u8]) {
        const PREFIX: &[u8] = b"anthropic-ratelimit-";
        if name.eq_ignore_ascii_case(b"retry-after") {
            if let Some(ms) = parse_delta_seconds_ms(trim(value)) {
                self.retry_after_ms = Some(ms);
            }
            return;
        }
        if name.len() <= PREFIX.len() || !name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
            return;
        }
        let rest = &name[PREFIX.len()..];
        let kinds: [(&[u8], &mut LimitHeaders); 4] = [
            (b"requests-", &mut self.requests),
            (b"input-tokens-", &mut self.input_tokens),
            (b"output-tokens-", &mut self.output_tokens),
            (b"tokens-", &mut self.tokens),
        ];
        for (kind, slot) in kinds {
            if rest.len() <= kind.len() || !rest[..kind.len()].eq_ignore_ascii_case(kind) {
                continue;
            }
            let field = &rest[kind.len()..];
            let value = trim(value);
            if field.eq_ignore_ascii_case(b"limit") {
                if let Some(v) = parse_u64(value) {
                    slot.limit = Some(v);
                }
            } else if field.eq_ignore_ascii_case(b"remaining") {
                if let Some(v) = parse_u64(value) {
                    slot.remaining = Some(v);
                }
            } else if field.eq_ignore_ascii_case(b"reset") {
                if let Some(v) = parse_rfc3339_unix_ms(value) {
                    slot.reset_unix_ms = Some(v);
                }
            }
            return;
        }
    }

    /// True when no header of interest was present.
    pub fn is_empty(&self) -> bool {
        *self == RateLimitHeaders::default()
    }

    /// The four kinds in `KeyPool`'s bucket order: requests, tokens, input, output.
    pub fn kinds(&self) -> [LimitHeaders; 4] {
        [
            self.requests,
            self.tokens,
            self.input_tokens,
            self.output_tokens,
        ]
    }

    /// How long a key that just got a 429 should rest, from these headers alone; `None`
    /// when they say nothing (the caller then uses its default, 60 s in SPEC §4.2).
    ///
    /// Rule: `retry-after` wins. Otherwise the reset headers: of the limits reported as
    /// exhausted (`remaining: 0`) the latest reset; if none is reported exhausted (the
    /// request was simply bigger than what was left), the latest reset of any limit, so
    /// the key is not hammered again early. Reset-derived values are at least
    /// [`MIN_RESET_COOLDOWN`].
    pub fn cooldown(&self, now_unix_ms: u64) -> Option<Duration> {
        if let Some(ms) = self.retry_after_ms {
            return Some(Duration::from_millis(ms));
        }
        let kinds = self.kinds();
        let exhausted = kinds
            .iter()
            .filter(|k| k.remaining == Some(0))
            .filter_map(|k| k.reset_unix_ms)
            .max();
        let reset = exhausted.or_else(|| kinds.iter().filter_map(|k| k.reset_unix_ms).max())?;
        let now = i64::try_from(now_unix_ms).unwrap_or(i64::MAX);
        let wait_ms = u64::try_from(reset.saturating_sub(now)).unwrap_or(0);
        Some(Duration::from_millis(wait_ms).max(MIN_RESET_COOLDOWN))
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    v.get(start..end).unwrap_or(&[])
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// `120` or `1.5` seconds -> milliseconds (fraction beyond ms dropped, huge values saturate).
fn parse_delta_seconds_ms(v: &[u8]) -> Option<u64> {
    let (whole, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &[][..]),
    };
    if whole.is_empty() || !whole.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if v.len() > whole.len() && (frac.is_empty() || !frac.iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let secs = parse_u64(whole).unwrap_or(u64::MAX);
    let mut ms = 0u64;
    for i in 0..3 {
        ms = ms * 10 + frac.get(i).map_or(0, |d| u64::from(d - b'0'));
    }
    Some(secs.saturating_mul(1000).saturating_add(ms))
}

/// RFC 3339 `date-time` (e.g. `2025-01-31T12:00:30.5Z`, `2025-01-31T14:00:30+02:00`) to
/// Unix milliseconds. Accepts `T`/`t`/space as separator and `Z`/`z`; fractions beyond
/// milliseconds are truncated; a leap second counts as the next second. `None` for anything
/// else.
pub fn parse_rfc3339_unix_ms(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|text| crate::obs::time::parse_rfc3339_unix_millis(text.trim()))
}

/// Fuzz entry: any bytes, split into header lines `name: value`, must parse without
/// panicking, and every derived cooldown must be computable.
pub fn fuzz_entry(data: &[u8]) {
    let pairs =
        data.split(|&b| b == b'\n')
            .map(|line| match line.iter().position(|&b| b == b':') {
                Some(colon) => (&line[..colon], &line[colon + 1..]),
                None => (line, &[][..]),
            });
    let parsed = RateLimitHeaders::parse(pairs);
    let _ = parsed.cooldown(0);
    let _ = parsed.cooldown(u64::MAX);
    let _ = parse_rfc3339_unix_ms(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_edges() {
        assert_eq!(trim(b"  12 \t"), b"12");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_delta_seconds_ms(b"0"), Some(0));
        assert_eq!(parse_delta_seconds_ms(b"17"), Some(17_000));
        assert_eq!(parse_delta_seconds_ms(b"1.5"), Some(1_500));
        assert_eq!(parse_delta_seconds_ms(b"1.2345"), Some(1_234));
        assert_eq!(parse_delta_seconds_ms(b"1."), None);
        assert_eq!(parse_delta_seconds_ms(b".5"), None);
        assert_eq!(parse_delta_seconds_ms(b"-1"), None);
        assert_eq!(
            parse_delta_seconds_ms(b"99999999999999999999999"),
            Some(u64::MAX)
        );
    }
}
