//! The chunked decoder, encoder and Transfer-Encoding checks against all 41 llhttp
//! transfer-encoding fixtures (`shared/vectors/http-chunked/llhttp/cases.json`), plus the
//! limits and splits the fixtures do not cover.
//!
//! Each fixture is a whole HTTP message. A tiny stand-in for the HTTP layer (httparse for
//! the head, TE + CL rejected, `transfer_encoding_is_chunked` for requests,
//! `transfer_framing` for responses) decides the framing; the body goes through
//! `ChunkedDecoder`. Verdicts: llhttp error -> we reject; no error and "message complete"
//! in llhttp's log -> we finish the message; otherwise llhttp was waiting for more bytes
//! and so must we. Cases that need an llhttp leniency flag must be rejected.

use cc_relay::codec::chunked::{
    encode_chunk, transfer_encoding_is_chunked, transfer_framing, ChunkedDecoder, ChunkedError,
    TransferFraming, LAST_CHUNK, MAX_SIZE_LINE_BYTES, MAX_TRAILER_BYTES,
};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/http-chunked/llhttp"
);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Complete,
    Waiting,
    Rejected,
}

struct Case {
    index: usize,
    title: String,
    is_request: bool,
    lenient: bool,
    input: Vec<u8>,
    expected: Verdict,
    expected_body: Vec<u8>,
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            other => panic!("bad base64 byte {other}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The contents of every ```http block of one llhttp markdown file, in order.
fn http_blocks(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{VECTORS}/{file}")).expect("llhttp markdown");
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```http\n") {
        let after = &rest[start + "```http\n".len()..];
        let end = after.find("```").expect("closing fence");
        blocks.push(after[..end].to_string());
        rest = &after[end..][3..];
    }
    blocks
}

/// The bytes llhttp actually parsed. `raw_base64` in cases.json drops one CRLF too many
/// when a markdown block ends with a blank line: llhttp's logs report offsets (headers
/// complete at 49, message complete at 69, ...) two bytes past the stored raw. Add that
/// CRLF back and prove it against the log: no logged event lies beyond the input.
fn llhttp_input(raw: Vec<u8>, block: &str, log: &[Value]) -> Vec<u8> {
    let mut input = raw;
    if block.ends_with("\n\n") {
        input.extend_from_slice(b"\r\n");
    }
    for line in log {
        let line = line.as_str().expect("log line");
        let mut words = line.split(' ');
        let off: usize = words.next().unwrap()[4..].parse().unwrap();
        let len: usize = words
            .next()
            .and_then(|w| w.strip_prefix("len="))
            .map_or(0, |n| n.parse().unwrap());
        assert!(off + len <= input.len(), "log line {line:?} beyond input");
    }
    input
}

fn load_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(format!("{VECTORS}/cases.json")).expect("cases.json");
    let json: Value = serde_json::from_str(&text).expect("cases.json parses");
    let mut blocks = std::collections::HashMap::new();
    let mut next_block = std::collections::HashMap::new();
    let mut cases = Vec::new();
    for (index, case) in json["cases"].as_array().unwrap().iter().enumerate() {
        let file = case["file"].as_str().unwrap().to_string();
        let file_blocks = blocks
            .entry(file.clone())
            .or_insert_with(|| http_blocks(&file));
        let block_index = next_block.entry(file.clone()).or_insert(0usize);
        let block = file_blocks[*block_index].clone();
        *block_index += 1;

        let meta_type = case["meta"]["type"].as_str().unwrap();
        let lenient = meta_type.contains("lenient");
        assert_eq!(lenient, case["lenient"].as_bool().unwrap());
        let log = case["expected_log"].as_array().unwrap();
        let raw = base64_decode(case["raw_base64"].as_str().unwrap());
        let expected = if lenient || !case["expected_error"].is_null() {
            Verdict::Rejected
        } else if log
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("message complete"))
        {
            Verdict::Complete
        } else {
            Verdict::Waiting
        };
        cases.push(Case {
            index,
            title: case["title"].as_str().unwrap().to_string(),
            is_request: meta_type.starts_with("request"),
            lenient,
            input: llhttp_input(raw, &block, log),
            expected,
            expected_body: base64_decode(case["expected_body_base64"].as_str().unwrap()),
        });
    }
    cases
}

/// How the stand-in HTTP layer frames the body after the head.
enum Framing {
    Chunked,
    UntilClose,
    Empty,
}

/// Parses the head; returns (head length, framing) or the verdict that ends it early.
fn frame(case: &Case) -> Result<(usize, Framing), Verdict> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let status = if case.is_request {
        httparse::Request::new(&mut headers).parse(&case.input)
    } else {
        httparse::Response::new(&mut headers).parse(&case.input)
    };
    let head_len = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(Verdict::Waiting),
        Err(_) => return Err(Verdict::Rejected),
    };
    let te: Vec<&[u8]> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .map(|h| h.value)
        .collect();
    let has_cl = headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("content-length"));
    if !te.is_empty() && has_cl {
        return Err(Verdict::Rejected);
    }
    let framing = if case.is_request {
        match transfer_encoding_is_chunked(&te) {
            Ok(true) => Framing::Chunked,
            Ok(false) if te.is_empty() => Framing::Empty,
            Ok(false) | Err(_) => return Err(Verdict::Rejected),
        }
    } else {
        match transfer_framing(&te) {
            Ok(TransferFraming::Chunked) => Framing::Chunked,
            Ok(TransferFraming::NotChunked) => Framing::UntilClose,
            Ok(TransferFraming::Absent) => Framing::Empty,
            Err(_) => return Err(Verdict::Rejected),
        }
    };
    Ok((head_len, framing))
}

/// Decodes `body` fed in pieces ending at `splits` (sorted); returns verdict, body bytes,
/// and bytes consumed.
fn decode_split(body: &[u8], splits: &[usize]) -> (Verdict, Vec<u8>, usize) {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    for end in splits.iter().copied().chain([body.len()]) {
        let piece = &body[start..end];
        start = end;
        match decoder.decode(piece, &mut out) {
            Ok(n) => {
                consumed += n;
                if decoder.is_done() {
                    assert_eq!(decoder.decode(b"more", &mut out), Ok(0));
                    return (Verdict::Complete, out, consumed);
                }
                assert_eq!(n, piece.len(), "unfinished decoder must take everything");
            }
            Err(_) => return (Verdict::Rejected, out, consumed),
        }
    }
    (Verdict::Waiting, out, consumed)
}

fn run_case(case: &Case, splits: &[usize]) -> (Verdict, Vec<u8>) {
    match frame(case) {
        Err(verdict) => (verdict, Vec::new()),
        Ok((head_len, Framing::Empty)) => (Verdict::Complete, case.input[head_len..].to_vec()),
        Ok((head_len, Framing::UntilClose)) => (Verdict::Waiting, case.input[head_len..].to_vec()),
        Ok((head_len, Framing::Chunked)) => {
            let body = &case.input[head_len..];
            let splits: Vec<usize> = splits.iter().copied().filter(|&s| s < body.len()).collect();
            let (verdict, out, consumed) = decode_split(body, &splits);
            if verdict == Verdict::Complete {
                assert_eq!(
                    consumed,
                    body.len(),
                    "case {}: no pipelined bytes",
                    case.index
                );
            }
            (verdict, out)
        }
    }
}

#[test]
fn all_41_llhttp_cases_match_strict_verdict_and_body() {
    let cases = load_cases();
    assert_eq!(cases.len(), 41);
    let mut passed = 0;
    for case in &cases {
        let (verdict, body) = run_case(case, &[]);
        assert_eq!(
            verdict, case.expected,
            "case {} {:?}: verdict",
            case.index, case.title
        );
        if case.lenient {
            // The expected body shows llhttp's lenient parse; ours stops at the error.
            assert!(
                case.expected_body.starts_with(&body),
                "case {} {:?}: body {:?} not a prefix of the lenient body",
                case.index,
                case.title,
                String::from_utf8_lossy(&body)
            );
        } else {
            assert_eq!(
                body, case.expected_body,
                "case {} {:?}: body",
                case.index, case.title
            );
        }
        passed += 1;
    }
    assert_eq!(passed, 41);
    let rejected = cases
        .iter()
        .filter(|c| c.expected == Verdict::Rejected)
        .count();
    let complete = cases
        .iter()
        .filter(|c| c.expected == Verdict::Complete)
        .count();
    // Pin the mix so a change to the vectors or to the harness is noticed.
    assert_eq!((rejected, complete), (26, 8));
}

#[test]
fn every_case_gives_the_same_result_whatever_the_split() {
    for case in load_cases() {
        let whole = run_case(&case, &[]);
        let n = case.input.len();
        let bytewise: Vec<usize> = (1..n).collect();
        let mut split_sets = vec![bytewise];
        for a in 1..n.min(40) {
            split_sets.push(vec![a]);
            split_sets.push(vec![a, (a + 1 + n / 3).min(n)]);
        }
        for i in 0..3 {
            split_sets.push(vec![(i * n) / 3, ((i + 1) * n) / 3]);
        }
        for splits in split_sets {
            let mut splits = splits;
            splits.sort_unstable();
            splits.dedup();
            assert_eq!(
                run_case(&case, &splits),
                whole,
                "case {} {:?} split at {:?}",
                case.index,
                case.title,
                splits
            );
        }
    }
}

fn decode_whole(input: &[u8]) -> (Result<usize, ChunkedError>, Vec<u8>, bool) {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let result = decoder.decode(input, &mut out);
    (result, out, decoder.is_done())
}

#[test]
fn stops_after_final_crlf_leaving_pipelined_bytes() {
    let input = b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\n";
    let (result, body, done) = decode_whole(input);
    assert_eq!(result, Ok(input.len() - b"GET / HTTP/1.1\r\n".len()));
    assert_eq!(body, b"hello");
    assert!(done);
}

#[test]
fn extensions_with_bws_and_quoted_pairs_are_accepted() {
    let input = b"3 ; a = b ;c=\"x\\\"y;z\"\t;d\r\nabc\r\n0;last\r\n\r\n";
    let (result, body, done) = decode_whole(input);
    assert_eq!(result, Ok(input.len()));
    assert_eq!(body, b"abc");
    assert!(done);
}

#[test]
fn malformed_lines_are_rejected_with_the_right_error() {
    let cases: &[(&[u8], ChunkedError)] = &[
        (b"\r\n", ChunkedError::InvalidChunkSize),
        (b"-1\r\n", ChunkedError::InvalidChunkSize),
        (b"0x5\r\n", ChunkedError::InvalidChunkSize),
        (b"5 \r\n", ChunkedError::InvalidChunkSize),
        (b"5\n", ChunkedError::InvalidChunkSize),
        (b"5\r\r", ChunkedError::ExpectedCrlfAfterSize),
        (b"5;\r\n", ChunkedError::InvalidChunkExtension),
        (b"5;a \r\n", ChunkedError::InvalidChunkExtension),
        (b"5;a=\r\n", ChunkedError::InvalidChunkExtension),
        (b"5;a=\"b\r\n", ChunkedError::InvalidChunkExtension),
        (b"5;a=\"b\"c\r\n", ChunkedError::InvalidChunkExtension),
        (b"5;a=b c\r\n", ChunkedError::InvalidChunkExtension),
        (b"1\r\nab", ChunkedError::ExpectedCrlfAfterData),
        (b"1\r\na\n", ChunkedError::ExpectedCrlfAfterData),
        (b"1\r\na\r\r", ChunkedError::ExpectedCrlfAfterData),
        (b"0\r\n\n", ChunkedError::InvalidTrailer),
        (b"0\r\n\r\r", ChunkedError::InvalidTrailer),
        (b"0\r\n folded: x\r\n\r\n", ChunkedError::InvalidTrailer),
        (b"0\r\nNo-Colon\r\n\r\n", ChunkedError::InvalidTrailer),
        (b"0\r\nA: b\nB: c\r\n\r\n", ChunkedError::InvalidTrailer),
        (b"0\r\nA: \x00\r\n\r\n", ChunkedError::InvalidTrailer),
        (b"10000000000000000\r\n", ChunkedError::ChunkSizeOverflow),
    ];
    for (input, want) in cases {
        let (result, _, done) = decode_whole(input);
        assert_eq!(
            result.as_ref(),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert!(!done);
    }
}

#[test]
fn the_error_sticks() {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    assert_eq!(
        decoder.decode(b"z", &mut out),
        Err(ChunkedError::InvalidChunkSize)
    );
    assert_eq!(
        decoder.decode(b"0\r\n\r\n", &mut out),
        Err(ChunkedError::InvalidChunkSize)
    );
    assert!(!decoder.is_done());
}

#[test]
fn largest_size_and_leading_zeros_are_fine() {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let line = b"0000000000000000000000ffffffffffffffff\r\nab";
    assert_eq!(decoder.decode(line, &mut out), Ok(line.len()));
    assert_eq!(out, b"ab");
    assert!(!decoder.is_done());
}

#[test]
fn size_line_and_trailers_are_bounded() {
    let mut long_ext = b"1;a=".to_vec();
    long_ext.resize(MAX_SIZE_LINE_BYTES - 2, b'b');
    long_ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    assert_eq!(decode_whole(&long_ext).0, Ok(long_ext.len()));

    let mut too_long = b"1;a=".to_vec();
    too_long.resize(MAX_SIZE_LINE_BYTES + 1, b'b');
    assert_eq!(
        decode_whole(&too_long).0,
        Err(ChunkedError::SizeLineTooLong)
    );

    // Fed a byte at a time, the bound still holds (the count survives across calls).
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut verdict = Ok(0);
    for byte in &too_long {
        verdict = decoder.decode(std::slice::from_ref(byte), &mut out);
        if verdict.is_err() {
            break;
        }
    }
    assert_eq!(verdict, Err(ChunkedError::SizeLineTooLong));

    let mut trailers = b"0\r\n".to_vec();
    while trailers.len() < MAX_TRAILER_BYTES + 3 {
        trailers.extend_from_slice(b"X-Pad: 0123456789\r\n");
    }
    assert_eq!(
        decode_whole(&trailers).0,
        Err(ChunkedError::TrailersTooLarge)
    );
}

#[test]
fn encoder_writes_exact_bytes_and_skips_empty_chunks() {
    let mut out = Vec::new();
    encode_chunk(b"hello", &mut out);
    encode_chunk(b"", &mut out);
    encode_chunk(&[b'x'; 26], &mut out);
    out.extend_from_slice(LAST_CHUNK);
    let mut want = b"5\r\nhello\r\n1a\r\n".to_vec();
    want.extend_from_slice(&[b'x'; 26]);
    want.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(out, want);

    let (result, body, done) = decode_whole(&out);
    assert_eq!(result, Ok(out.len()));
    assert!(done);
    let mut plain = b"hello".to_vec();
    plain.extend_from_slice(&[b'x'; 26]);
    assert_eq!(body, plain);
}

#[test]
fn transfer_encoding_lists() {
    let ok: &[(&[&[u8]], bool, TransferFraming)] = &[
        (&[b"chunked"], true, TransferFraming::Chunked),
        (&[b"CHUNKED"], true, TransferFraming::Chunked),
        (&[b"gzip, chunked"], true, TransferFraming::Chunked),
        (&[b"gzip", b" chunked "], true, TransferFraming::Chunked),
        (&[b" , gzip ,, chunked,"], true, TransferFraming::Chunked),
        (
            &[b"gzip;q=\"a b\", chunked"],
            true,
            TransferFraming::Chunked,
        ),
        (&[b"identity"], false, TransferFraming::NotChunked),
        (&[b"chunkedchunked"], false, TransferFraming::NotChunked),
        (&[b""], false, TransferFraming::Absent),
        (&[], false, TransferFraming::Absent),
    ];
    for (values, chunked, framing) in ok {
        assert_eq!(
            transfer_encoding_is_chunked(values),
            Ok(*chunked),
            "{values:?}"
        );
        assert_eq!(transfer_framing(values), Ok(*framing), "{values:?}");
    }
    let not_last: &[&[&[u8]]] = &[
        &[b"chunked, gzip"],
        &[b"chunked", b"identity"],
        &[b"chunked, chunked"],
    ];
    for values in not_last {
        assert_eq!(
            transfer_encoding_is_chunked(values),
            Err(ChunkedError::ChunkedNotLast)
        );
        assert_eq!(transfer_framing(values), Ok(TransferFraming::NotChunked));
    }
    let malformed: &[&[&[u8]]] = &[
        &[b"chunked chunked"],
        &[b"\"chunked\""],
        &[b"chunked;"],
        &[b"gzip;q, chunked"],
        &[b"chu\x00nked"],
    ];
    for values in malformed {
        assert_eq!(
            transfer_encoding_is_chunked(values),
            Err(ChunkedError::MalformedTransferEncoding),
            "{values:?}"
        );
    }
}

#[test]
fn fuzz_entry_accepts_the_fixtures() {
    for case in load_cases() {
        cc_relay::codec::chunked::fuzz_entry(&case.input);
        if let Some(start) = case.input.windows(4).position(|w| w == b"\r\n\r\n") {
            cc_relay::codec::chunked::fuzz_entry(&case.input[start + 4..]);
        }
    }
}
