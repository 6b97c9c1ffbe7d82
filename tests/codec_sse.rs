//! The SSE parser and writer against all 29 cases of `shared/vectors/sse/cases.json`
//! (fed as the vector's reads, then byte by byte and at every 2- and 3-way split), plus
//! limits, offsets, UTF-8 repair, BOM handling and the exact bytes the writer produces.

use cc_relay::codec::sse::{write_event, SseError, SseEvent, SseParser};
use serde_json::Value;

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/sse/cases.json"
);

/// (event, data, id) as the vectors state them; id "" when the case sets none.
type Seen = (String, String, String);

struct Case {
    name: String,
    reads: Vec<Vec<u8>>,
    expect: Vec<Seen>,
    retry: Option<u64>,
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn load_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(CASES).expect("sse cases.json");
    let json: Value = serde_json::from_str(&text).expect("cases.json parses");
    let mut cases = Vec::new();
    for case in json["cases"].as_array().unwrap() {
        let reads: Vec<Vec<u8>> = if let Some(chunks) = case.get("chunks") {
            chunks
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().as_bytes().to_vec())
                .collect()
        } else if let Some(chunks) = case.get("chunks_hex") {
            chunks
                .as_array()
                .unwrap()
                .iter()
                .map(|c| hex_decode(c.as_str().unwrap()))
                .collect()
        } else {
            case["chunks_split_each_char"]
                .as_str()
                .unwrap()
                .chars()
                .map(|c| c.to_string().into_bytes())
                .collect()
        };
        let expect = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event"].as_str().unwrap().to_string(),
                    e["data"].as_str().unwrap().to_string(),
                    e.get("id")
                        .map_or("", |id| id.as_str().unwrap())
                        .to_string(),
                )
            })
            .collect();
        let retry = case
            .get("retry")
            .and_then(|r| r.as_array().unwrap().last().map(|v| v.as_u64().unwrap()));
        cases.push(Case {
            name: case["name"].as_str().unwrap().to_string(),
            reads,
            expect,
            retry,
        });
    }
    cases
}

/// Feeds `reads` in order; returns the events, the final retry, and finish()'s answer.
fn parse(reads: &[&[u8]]) -> (Vec<Seen>, Option<u64>, bool) {
    let mut parser = SseParser::new();
    let mut seen = Vec::new();
    for read in reads {
        parser
            .feed(read, |e| {
                seen.push((e.event.to_string(), e.data.to_string(), e.id.to_string()))
            })
            .expect("no event is too large");
    }
    let retry = parser.retry();
    (seen, retry, parser.finish())
}

#[test]
fn all_29_cases_as_given() {
    let cases = load_cases();
    assert_eq!(cases.len(), 29);
    let mut passed = 0;
    for case in &cases {
        let reads: Vec<&[u8]> = case.reads.iter().map(Vec::as_slice).collect();
        let (seen, retry, pending) = parse(&reads);
        assert_eq!(seen, case.expect, "{}", case.name);
        assert_eq!(retry, case.retry, "{}", case.name);
        let unterminated = case.name.starts_with("unterminated");
        assert_eq!(pending, unterminated, "{}: finish()", case.name);
        passed += 1;
    }
    assert_eq!(passed, 29);
}

#[test]
fn all_29_cases_at_every_split() {
    for case in load_cases() {
        let stream = case.reads.concat();
        let want = parse(&[&stream]);
        assert_eq!(want.0, case.expect, "{} whole", case.name);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse(&bytes), want, "{} byte by byte", case.name);
        for a in 0..=stream.len() {
            let (x, y) = stream.split_at(a);
            assert_eq!(parse(&[x, y]), want, "{} split at {a}", case.name);
            for b in a..=stream.len() {
                let (y1, y2) = stream[a..].split_at(b - a);
                assert_eq!(parse(&[x, y1, y2]), want, "{} split {a},{b}", case.name);
            }
        }
    }
}

#[test]
fn event_carries_id_and_retry_that_persist() {
    let mut parser = SseParser::new();
    let mut seen = Vec::new();
    let stream = b"id: 1\nretry: 250\ndata: a\n\ndata: b\n\nid\ndata: c\n\n";
    parser
        .feed(stream, |e: &SseEvent<'_>| {
            seen.push((e.data.to_string(), e.id.to_string(), e.retry))
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            ("a".to_string(), "1".to_string(), Some(250)),
            ("b".to_string(), "1".to_string(), Some(250)),
            ("c".to_string(), String::new(), Some(250)),
        ]
    );
    assert_eq!(parser.last_event_id(), "");
}

#[test]
fn retry_that_overflows_is_ignored() {
    let (_, retry, _) = parse(&[b"retry: 7\n\nretry: 99999999999999999999999\n\n"]);
    assert_eq!(retry, Some(7));
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let (seen, _, _) = parse(&[
        b"data: a\xFFb\n",
        b"data: \xF0\x9F\n",
        b"data: \xE2\x82",
        b"\xAC\n\n",
    ]);
    assert_eq!(seen.len(), 1);
    // One U+FFFD per maximal invalid subpart, as the WHATWG decoder gives.
    assert_eq!(seen[0].1, "a\u{FFFD}b\n\u{FFFD}\n\u{20AC}");
}

#[test]
fn bom_is_stripped_once_and_only_at_the_start() {
    let want = vec![("message".to_string(), "x".to_string(), String::new())];
    let stream = b"\xEF\xBB\xBFdata: x\n\n";
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(parse(&bytes).0, want);
    // A second BOM is text: the field name becomes "\u{FEFF}data", which is ignored.
    assert_eq!(parse(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"]).0, []);
    assert_eq!(parse(&[b"data: y\n\n\xEF\xBB\xBFdata: x\n\n"]).0.len(), 1);
    // A BOM prefix that is not a BOM is replayed as text, whatever the split.
    let not_bom = b"\xEF\xBB\ndata: x\n\n";
    let bytes: Vec<&[u8]> = not_bom.chunks(1).collect();
    assert_eq!(parse(&bytes).0, want);
    assert_eq!(parse(&[not_bom]).0, want);
    let mut parser = SseParser::new();
    parser.feed(b"\xEF", |_| {}).unwrap();
    assert!(
        parser.finish(),
        "held BOM byte is discarded at end of stream"
    );
}

#[test]
fn oversize_event_is_dropped_and_parsing_resumes() {
    let stream = b"data: 0123456789\ndata: more\n\nevent: e\ndata: ok\n\n";
    for piece in [1, 3, stream.len()] {
        let mut parser = SseParser::with_limit(12);
        let mut seen = Vec::new();
        let mut errors = 0;
        for read in stream.chunks(piece) {
            let result = parser.feed(read, |e| {
                seen.push((e.event.to_string(), e.data.to_string()))
            });
            if let Err(err) = result {
                assert_eq!(err, SseError::EventTooLarge);
                errors += 1;
            }
        }
        assert_eq!(errors, 1, "piece {piece}");
        assert_eq!(seen, [("e".to_string(), "ok".to_string())], "piece {piece}");
        assert!(!parser.finish());
    }
}

#[test]
fn comments_are_never_buffered_so_do_not_count_against_the_limit() {
    let mut parser = SseParser::with_limit(8);
    let mut seen = Vec::new();
    let mut stream = b": ".to_vec();
    stream.extend_from_slice(&[b'p'; 1000]);
    stream.extend_from_slice(b"\ndata: ok\n\n");
    parser
        .feed(&stream, |e| seen.push(e.data.to_string()))
        .unwrap();
    assert_eq!(seen, ["ok"]);
}

#[test]
fn offsets_point_just_past_the_dispatching_line_end() {
    let mut parser = SseParser::new();
    let mut offsets = Vec::new();
    let read = b"data: a\n\ndata: b\r\n\r\n: c\n";
    parser
        .feed_with_offsets(read, |e, end| offsets.push((e.data.to_string(), end)))
        .unwrap();
    assert_eq!(offsets, [("a".to_string(), 9), ("b".to_string(), 20)]);
    // A lone CR dispatches at once; the LF of the next read is part of that line end.
    let mut parser = SseParser::new();
    let mut offsets = Vec::new();
    parser
        .feed_with_offsets(b"data: a\r\r", |e, end| {
            offsets.push((e.data.to_string(), end))
        })
        .unwrap();
    parser
        .feed_with_offsets(b"\ndata: b\n\n", |e, end| {
            offsets.push((e.data.to_string(), end))
        })
        .unwrap();
    assert_eq!(offsets, [("a".to_string(), 9), ("b".to_string(), 10)]);
}

#[test]
fn finish_starts_a_new_stream_keeping_id_and_retry() {
    let mut parser = SseParser::new();
    parser.feed(b"id: 9\nretry: 5\ndata: lost", |_| {}).unwrap();
    assert!(parser.finish());
    assert!(!parser.finish());
    let mut seen = Vec::new();
    parser
        .feed(b"\xEF\xBB\xBFdata: new\n\n", |e| {
            seen.push((e.data.to_string(), e.id.to_string(), e.retry))
        })
        .unwrap();
    assert_eq!(seen, [("new".to_string(), "9".to_string(), Some(5))]);
}

#[test]
fn writer_produces_anthropic_style_bytes() {
    let mut out = Vec::new();
    write_event(&mut out, "message_start", r#"{"type":"message_start"}"#);
    assert_eq!(
        out,
        b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
    );

    out.clear();
    write_event(&mut out, "x", "a\nb\r\nc\rd");
    assert_eq!(out, b"event: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n");

    out.clear();
    write_event(&mut out, "bad\r\nname", "");
    assert_eq!(out, b"event: badname\ndata: \n\n");

    out.clear();
    write_event(&mut out, " spaced", " lead\n");
    let (seen, _, _) = parse(&[&out]);
    assert_eq!(
        seen,
        [(" spaced".to_string(), " lead\n".to_string(), String::new())]
    );
}

#[test]
fn fuzz_entry_accepts_the_vectors() {
    for case in load_cases() {
        cc_relay::codec::sse::fuzz_entry(&case.reads.concat());
    }
}
