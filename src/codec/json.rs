//! Byte-level JSON helpers for bodies we forward without re-serialising: find where a
//! top-level field's value sits, so one field can be replaced and every other byte of the
//! client's body goes upstream untouched. The scanner never allocates beyond key
//! decoding, never recurses (nesting is tracked with a counter), and on invalid input
//! returns `None` instead of guessing.

use std::ops::Range;

/// A byte scanner over JSON the caller has already validated: one pass finds where
/// members and elements sit, so kept parts can be copied verbatim. On malformed input it
/// answers `None` instead of guessing. Nesting beyond the levels the caller parses itself
/// is skipped with a counter, never by recursion.
pub mod scan {
    use std::borrow::Cow;
    use std::ops::Range;

    pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    /// Position of the first `"` or `\` in `s`. Strings are most of a conversation's bytes
    /// (tool results, thinking text), so this looks at eight bytes per step: a byte equal
    /// to the target becomes zero after the XOR, and the classic "has a zero byte" test
    /// flags it; the lowest flag is always exact.
    fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let mut chunks = s.chunks_exact(8);
        let mut offset = 0;
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let quote = w ^ (ONES * u64::from(b'"'));
            let backslash = w ^ (ONES * u64::from(b'\\'));
            let hits = ((quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash))
                & HIGHS;
            if hits != 0 {
                return Some(offset + (hits.trailing_zeros() / 8) as usize);
            }
            offset += 8;
        }
        chunks
            .remainder()
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
            .map(|p| offset + p)
    }

    /// `b[i]` is an opening quote; the index just past the closing one.
    fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        loop {
            i += find_quote_or_backslash(b.get(i..)?)?;
            if b.get(i) == Some(&b'"') {
                return Some(i + 1);
            }
            i += 2;
        }
    }

    /// The index just past the JSON value starting at `i`.
    pub fn skip_value(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => skip_string(b, i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match *b.get(j)? {
                        b'"' => {
                            j = skip_string(b, j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {
                let mut j = i;
                while !matches!(
                    b.get(j),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    j += 1;
                }
                (j > i).then_some(j)
            }
        }
    }

    /// Walks the object whose `{` is at `start`: `each(key, value_start)` is called per
    /// member (the key range includes its quotes) and returns the index just past the
    /// value (`skip_value`, or a parser of it). Returns the index just past the `}`.
    pub fn members(
        b: &[u8],
        start: usize,
        mut each: impl FnMut(Range<usize>, usize) -> Option<usize>,
    ) -> Option<usize> {
        if b.get(start) != Some(&b'{') {
            return None;
        }
        let mut i = skip_ws(b, start + 1);
        if b.get(i) == Some(&b'}') {
            return Some(i + 1);
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = skip_string(b, i)?;
            let key = i..key_end;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let value_end = each(key, skip_ws(b, i + 1))?;
            i = skip_ws(b, value_end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// Walks the array whose `[` is at `start`: `each(element_start)` returns the index
    /// just past the element. Returns the index just past the `]`.
    pub fn elements(
        b: &[u8],
        start: usize,
        mut each: impl FnMut(usize) -> Option<usize>,
    ) -> Option<usize> {
        if b.get(start) != Some(&b'[') {
            return None;
        }
        let mut i = skip_ws(b, start + 1);
        if b.get(i) == Some(&b']') {
            return Some(i + 1);
        }
        loop {
            let end = each(i)?;
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// Skips the value at `start`, returning its range.
    pub fn value(b: &[u8], start: usize) -> Option<Range<usize>> {
        skip_value(b, start).map(|end| start..end)
    }

    /// The string at `range` (quotes included), decoded.
    pub fn string<'b>(b: &'b [u8], range: &Range<usize>) -> Option<Cow<'b, str>> {
        let raw = b.get(range.clone())?;
        if raw.len() < 2 || raw.first() != Some(&b'"') {
            return None;
        }
        if raw.contains(&b'\\') {
            serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
        } else {
            std::str::from_utf8(raw.get(1..raw.len() - 1)?)
                .ok()
                .map(Cow::Borrowed)
        }
    }

    /// Whether the raw key at `range` decodes to `name`.
    pub fn key_is(b: &[u8], range: &Range<usize>, name: &str) -> bool {
        match b.get(range.clone()) {
            Some(raw) if !raw.contains(&b'\\') => {
                raw.len() == name.len() + 2 && raw.get(1..raw.len() - 1) == Some(name.as_bytes())
            }
            Some(_) => string(b, range).as_deref() == Some(name),
            None => false,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_quotes_and_backslashes_at_every_offset() {
            for len in 0..40 {
                for at in 0..len {
                    for target in [b'"', b'\\'] {
                        let mut s = vec![b'a'; len];
                        s[at] = target;
                        if at + 1 < len {
                            s[at + 1] = b'"';
                        }
                        assert_eq!(find_quote_or_backslash(&s), Some(at), "{len} {at}");
                    }
                }
                assert_eq!(find_quote_or_backslash(&vec![0xffu8; len]), None);
            }
            // Bytes one bit away from the targets, and bytes whose subtraction borrows
            // (0x00, 0x01, 0x80), must not be flagged inside a word.
            let near: &[u8] = b"#\x20\x02b\xa2]\x5bL\xdc\x1c\x00\x01\x80\x23\x5d\x21\\";
            assert_eq!(find_quote_or_backslash(near), Some(16));
            let near_quote: &[u8] = b"\x00\x01\x80\x21\x23\x5d\x5b\x00\x01\"";
            assert_eq!(find_quote_or_backslash(near_quote), Some(9));
        }

        #[test]
        fn skips_strings_with_escapes() {
            let b = br#""a\"b\\" x"#;
            assert_eq!(skip_value(b, 0), Some(8));
        }
    }
}

/// One top-level member of an object: where its key starts, where its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    key_start: usize,
    value: Range<usize>,
    matches: bool,
}

/// The members of the top-level object, marking those named `key`. None when `body`
/// is not a well-formed object at this level.
fn members(body: &[u8], key: &str) -> Option<Vec<Member>> {
    let start = scan::skip_ws(body, 0);
    let mut out = Vec::new();
    scan::members(body, start, |name, value_start| {
        let value_end = scan::skip_value(body, value_start)?;
        out.push(Member {
            key_start: name.start,
            value: value_start..value_end,
            matches: scan::key_is(body, &name, key),
        });
        Some(value_end)
    })?;
    Some(out)
}

/// Byte range of the value of top-level field `key` in the JSON object `body` (the last
/// occurrence wins, as serde_json and most parsers read duplicates).
pub fn top_level_value_span(body: &[u8], key: &str) -> Option<Range<usize>> {
    members(body, key)?
        .into_iter()
        .rfind(|m| m.matches)
        .map(|m| m.value)
}

/// `body` without every top-level member named `key` (and its separating comma); the
/// other bytes stay as they were. None when the body is not an object.
pub fn remove_top_level_field(body: &[u8], key: &str) -> Option<Vec<u8>> {
    let mut out = body.to_vec();
    // One member at a time, so the separators around each removal are always right.
    loop {
        let list = members(&out, key)?;
        let Some(n) = list.iter().position(|m| m.matches) else {
            return Some(out);
        };
        let m = &list[n];
        // Take our comma: up to the next member's key, or for the last member, from the
        // end of the previous value.
        let range = match (list.get(n + 1), n.checked_sub(1).and_then(|p| list.get(p))) {
            (Some(next), _) => m.key_start..next.key_start,
            (None, Some(prev)) => prev.value.end..m.value.end,
            (None, None) => m.key_start..m.value.end,
        };
        out.drain(range);
    }
}

/// `body` with `key: value_json` as its first member (any earlier `key` removed).
pub fn insert_top_level_field(body: &[u8], key: &str, value_json: &[u8]) -> Option<Vec<u8>> {
    let body = remove_top_level_field(body, key)?;
    let open = body.iter().position(|&b| b == b'{')?;
    let empty = members(&body, key)?.is_empty();
    let mut out = Vec::with_capacity(body.len() + key.len() + value_json.len() + 4);
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(&serde_json::to_vec(key).ok()?);
    out.push(b':');
    out.extend_from_slice(value_json);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&body[open + 1..]);
    Some(out)
}

/// `body` with the value of top-level field `key` replaced by `new_value_json` (already
/// JSON-encoded); None when the field is absent or the body is not an object.
pub fn replace_top_level_value(body: &[u8], key: &str, new_value_json: &[u8]) -> Option<Vec<u8>> {
    let span = top_level_value_span(body, key)?;
    let mut out = Vec::with_capacity(body.len() + new_value_json.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(new_value_json);
    out.extend_from_slice(&body[span.end..]);
    Some(out)
}

/// Fuzz entry: on any input the scanner terminates without panicking, and whenever
/// serde_json accepts an object, the span it finds re-parses to the same value.
pub fn fuzz_entry(data: &[u8]) {
    let span = top_level_value_span(data, "model");
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(data) {
        let expected = map.get("model");
        let got = span.and_then(|r| serde_json::from_slice::<serde_json::Value>(&data[r]).ok());
        assert_eq!(expected, got.as_ref());
        if let Some(out) = replace_top_level_value(data, "model", b"\"m\"") {
            let v: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
            assert_eq!(v.get("model"), Some(&serde_json::Value::from("m")));
        }
        let removed = remove_top_level_field(data, "model").expect("object");
        let v: serde_json::Value = serde_json::from_slice(&removed).expect("still JSON");
        let mut expected_map = map.clone();
        expected_map.remove("model");
        assert_eq!(v, serde_json::Value::Object(expected_map));
        let added = insert_top_level_field(data, "anthropic_version", b"\"x\"").expect("object");
        let v: serde_json::Value = serde_json::from_slice(&added).expect("still JSON");
        assert_eq!(
            v.get("anthropic_version"),
            Some(&serde_json::Value::from("x"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_text<'a>(body: &'a str, key: &str) -> Option<&'a str> {
        top_level_value_span(body.as_bytes(), key).map(|r| &body[r])
    }

    #[test]
    fn finds_top_level_only() {
        let body =
            r#"{"messages":[{"model":"inner"}],"x":{"model":1}, "model" : "claude-x" ,"z":2}"#;
        assert_eq!(span_text(body, "model"), Some("\"claude-x\""));
        assert_eq!(span_text(body, "z"), Some("2"));
        assert_eq!(span_text(body, "nope"), None);
    }

    #[test]
    fn strings_with_braces_and_escapes() {
        let body = r#"{"a":"}\"{[","model":"m\"q"}"#;
        assert_eq!(span_text(body, "model"), Some(r#""m\"q""#));
    }

    #[test]
    fn escaped_key_matches() {
        let body = r#"{"mod\u0065l":"x"}"#;
        assert_eq!(span_text(body, "model"), Some("\"x\""));
    }

    #[test]
    fn replace_keeps_every_other_byte() {
        let body = br#"{ "model": "a",  "unknown_field": {"k": [1, 2]} }"#;
        let out = replace_top_level_value(body, "model", b"\"bbb\"").unwrap();
        assert_eq!(
            out,
            br#"{ "model": "bbb",  "unknown_field": {"k": [1, 2]} }"#
        );
    }

    #[test]
    fn invalid_input_is_none() {
        for bad in [
            "",
            "[]",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1 \"b\":2}",
            "{\"a\":\"x}",
        ] {
            assert_eq!(top_level_value_span(bad.as_bytes(), "a"), None, "{bad}");
        }
    }

    #[test]
    fn remove_keeps_other_bytes_and_commas_right() {
        let cases: [(&str, &str); 7] = [
            (r#"{"model":"a","b":1}"#, r#"{"b":1}"#),
            (r#"{"b":1, "model" : "a"}"#, r#"{"b":1}"#),
            (r#"{"b":1,"model":"a","c":[2]}"#, r#"{"b":1,"c":[2]}"#),
            (r#"{"model":"a"}"#, r#"{}"#),
            (r#"{ "model":1, "x":2, "model":3 }"#, r#"{ "x":2 }"#),
            (r#"{"x":2}"#, r#"{"x":2}"#),
            (r#"{"a":1,"model":2,"model":3}"#, r#"{"a":1}"#),
        ];
        for (input, want) in cases {
            let out = remove_top_level_field(input.as_bytes(), "model").unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn insert_goes_first_and_replaces() {
        let out = insert_top_level_field(
            br#"{"anthropic_version":"old","a":1}"#,
            "anthropic_version",
            br#""new""#,
        );
        assert_eq!(out.unwrap(), br#"{"anthropic_version":"new","a":1}"#);
        let out = insert_top_level_field(b"{}", "k", b"[1]").unwrap();
        assert_eq!(out, br#"{"k":[1]}"#);
    }
}
