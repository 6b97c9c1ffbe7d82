//! The AWS event-stream decoder against every stored vector (PROTOCOLS §3,
//! `vectors/eventstream/*`): positive files decode to exactly the recorded headers and
//! payload and re-encode to the same bytes; negative files are rejected, and the decoder
//! then stays failed.

use std::path::PathBuf;

use cc_relay::codec::base64;
use cc_relay::codec::eventstream::{
    encode_message, EventStreamDecoder, EventStreamError, Header, HeaderValue, Message,
};
use serde_json::Value;

#[path = "common/vectors.rs"]
mod vectors;
use vectors::vectors_dir;

fn set_dir(set: &str) -> PathBuf {
    vectors_dir().join("eventstream").join(set)
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(&read(path)).expect("vector JSON")
}

/// Decodes `bytes` pushed in pieces of `piece` bytes; returns the messages and how the
/// stream ended.
fn decode_pieces(bytes: &[u8], piece: usize) -> (Vec<Message>, Result<(), EventStreamError>) {
    let mut decoder = EventStreamDecoder::new();
    let mut messages = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => {
                    assert!(decoder.has_failed());
                    return (messages, Err(error));
                }
            }
        }
    }
    (messages, decoder.finish())
}

/// Decodes a file that holds exactly one valid message, whole and byte by byte.
fn decode_single(bytes: &[u8]) -> Message {
    let (whole, end) = decode_pieces(bytes, bytes.len());
    assert_eq!(end, Ok(()));
    assert_eq!(whole.len(), 1);
    let (bytewise, end) = decode_pieces(bytes, 1);
    assert_eq!(end, Ok(()));
    assert_eq!(bytewise, whole);
    let message = whole.into_iter().next().expect("one message");
    let mut encoded = Vec::new();
    encode_message(&message.headers, &message.payload, &mut encoded).expect("re-encode");
    assert_eq!(
        encoded, bytes,
        "re-encoding reproduces the frame byte for byte"
    );
    message
}

fn be_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

/// Checks the recorded prelude and CRC fields against the frame bytes (unsigned form).
fn assert_frame_fields(case: &Value, frame: &[u8]) {
    assert_eq!(case["total_length"].as_u64(), Some(frame.len() as u64));
    assert_eq!(
        case["total_length"].as_u64(),
        Some(u64::from(be_u32(frame, 0)))
    );
    assert_eq!(
        case["headers_length"].as_u64(),
        Some(u64::from(be_u32(frame, 4)))
    );
    let prelude_crc = case["prelude_crc"].as_i64().unwrap();
    let message_crc = case["message_crc"].as_i64().unwrap();
    // aws-sdk-go records CRCs as signed int32, the project's cases.json as unsigned.
    assert_eq!(prelude_crc as u32, be_u32(frame, 8));
    assert_eq!(message_crc as u32, be_u32(frame, frame.len() - 4));
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A header as written in the project's `cases.json` files.
fn header_from_cases_json(header: &Value) -> Header {
    let name = header["name"].as_str().unwrap();
    let int = || header["value"].as_i64().unwrap();
    let value = match header["type"].as_u64().unwrap() {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(int() as i8),
        3 => HeaderValue::Int16(int() as i16),
        4 => HeaderValue::Int32(int() as i32),
        5 => HeaderValue::Int64(int()),
        6 => HeaderValue::Bytes(base64::decode(header["value_base64"].as_str().unwrap()).unwrap()),
        7 => HeaderValue::String(header["value"].as_str().unwrap().to_owned()),
        8 => HeaderValue::Timestamp(int()),
        9 => HeaderValue::Uuid(
            hex_bytes(header["value_hex"].as_str().unwrap())
                .try_into()
                .unwrap(),
        ),
        other => panic!("unexpected type {other}"),
    };
    if let Some(flag) = header["value"].as_bool() {
        assert_eq!(value, HeaderValue::Bool(flag));
    }
    Header::new(name, value)
}

/// A header as written in aws-sdk-go's `decoded/*` (byte, string and uuid values base64).
fn header_from_go_json(header: &Value) -> Header {
    let name = header["name"].as_str().unwrap();
    let int = || header["value"].as_i64().unwrap();
    let b64 = || base64::decode(header["value"].as_str().unwrap()).unwrap();
    let value = match header["type"].as_u64().unwrap() {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(int() as i8),
        3 => HeaderValue::Int16(int() as i16),
        4 => HeaderValue::Int32(int() as i32),
        5 => HeaderValue::Int64(int()),
        6 => HeaderValue::Bytes(b64()),
        7 => HeaderValue::String(String::from_utf8(b64()).unwrap()),
        8 => HeaderValue::Timestamp(int()),
        9 => HeaderValue::Uuid(b64().try_into().unwrap()),
        other => panic!("unexpected type {other}"),
    };
    Header::new(name, value)
}

#[test]
fn aws_sdk_go_positive_files_decode_exactly() {
    let names = [
        "all_headers",
        "empty_message",
        "int32_header",
        "payload_no_headers",
        "payload_one_str_header",
    ];
    let dir = set_dir("aws-sdk-go-testdata");
    let stored = std::fs::read_dir(dir.join("encoded/positive"))
        .unwrap()
        .count();
    assert_eq!(stored, names.len(), "every stored positive file is listed");
    for name in names {
        let frame = read(dir.join("encoded/positive").join(name));
        let expected = read_json(dir.join("decoded/positive").join(name));
        let message = decode_single(&frame);
        assert_frame_fields(&expected, &frame);
        let headers: Vec<Header> = expected["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(header_from_go_json)
            .collect();
        assert_eq!(message.headers, headers, "{name}");
        let payload = base64::decode(expected["payload"].as_str().unwrap()).unwrap();
        assert_eq!(message.payload, payload, "{name}");
    }
}

#[test]
fn aws_sdk_go_negative_files_are_rejected_with_the_recorded_check() {
    let dir = set_dir("aws-sdk-go-testdata");
    let names = [
        "corrupted_header_len",
        "corrupted_headers",
        "corrupted_length",
        "corrupted_payload",
    ];
    let stored = std::fs::read_dir(dir.join("encoded/negative"))
        .unwrap()
        .count();
    assert_eq!(stored, names.len());
    for name in names {
        let frame = read(dir.join("encoded/negative").join(name));
        let reason = String::from_utf8(read(dir.join("decoded/negative").join(name))).unwrap();
        for piece in [frame.len(), 1, 7] {
            let (messages, end) = decode_pieces(&frame, piece);
            assert!(messages.is_empty(), "{name}");
            match (reason.trim(), end) {
                (
                    "Prelude checksum mismatch",
                    Err(EventStreamError::PreludeChecksumMismatch { .. }),
                ) => {}
                (
                    "Message checksum mismatch",
                    Err(EventStreamError::MessageChecksumMismatch { .. }),
                ) => {}
                (reason, end) => panic!("{name}: expected {reason}, got {end:?}"),
            }
        }
    }
}

#[test]
fn smithy_rs_cases() {
    let dir = set_dir("smithy-rs-test_data");
    let cases = read_json(dir.join("cases.json"));
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    // Our decoder checks the message CRC before parsing headers (PROTOCOLS §3.2), so
    // where smithy-rs names a header error we may name the CRC; the verdict is the same.
    let our_error = |name: &str| -> fn(&EventStreamError) -> bool {
        match name {
            "invalid_prelude_checksum" => {
                |e| matches!(e, EventStreamError::PreludeChecksumMismatch { .. })
            }
            "invalid_headers_length" => {
                |e| matches!(e, EventStreamError::InvalidHeadersLength { .. })
            }
            _ => |e| matches!(e, EventStreamError::MessageChecksumMismatch { .. }),
        }
    };
    let mut ok = 0;
    let mut rejected = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let frame = read(dir.join(case["file"].as_str().unwrap()));
        assert_eq!(
            case["file_length"]
                .as_u64()
                .map(|l| l as usize)
                .unwrap_or(frame.len()),
            frame.len()
        );
        match case["expect"].as_str().unwrap() {
            "ok" => {
                let message = decode_single(&frame);
                assert_frame_fields(case, &frame);
                let headers: Vec<Header> = case["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(header_from_cases_json)
                    .collect();
                assert_eq!(message.headers, headers, "{name}");
                let payload = base64::decode(case["payload_base64"].as_str().unwrap()).unwrap();
                assert_eq!(message.payload, payload, "{name}");
                ok += 1;
            }
            "error" => {
                for piece in [frame.len(), 1, 5] {
                    let (messages, end) = decode_pieces(&frame, piece);
                    assert!(messages.is_empty(), "{name}");
                    let error = end.expect_err(name);
                    assert!(our_error(name)(&error), "{name}: {error:?}");
                }
                rejected += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((ok, rejected), (3, 8));
}

/// Rewrites both CRCs of the first frame in `bytes` so that a decoder gets past them,
/// keeping only that frame.
fn with_valid_crcs(bytes: &[u8]) -> Vec<u8> {
    let total = be_u32(bytes, 0) as usize;
    let mut frame = bytes[..total].to_vec();
    let prelude_crc = cc_relay::codec::crc32::crc32(&frame[..8]);
    frame[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
    let message_crc = cc_relay::codec::crc32::crc32(&frame[..total - 4]);
    frame[total - 4..].copy_from_slice(&message_crc.to_be_bytes());
    frame
}

#[test]
fn smithy_rs_header_errors_once_the_crcs_are_made_valid() {
    // With the checksums repaired, the header parser itself must reject each file for
    // the reason smithy-rs names.
    let dir = set_dir("smithy-rs-test_data");
    let cases = [
        (
            "invalid_header_name_length",
            EventStreamError::InvalidHeaderNameLength { length: 255 },
        ),
        // smithy-rs reads the 102-byte name past the end of the header block and then
        // fails on UTF-8; we stop at the block boundary and name the length.
        (
            "invalid_header_name_length_too_long",
            EventStreamError::InvalidHeaderNameLength { length: 102 },
        ),
        (
            "invalid_header_string_length_cut_off",
            EventStreamError::TruncatedHeader,
        ),
        (
            "invalid_header_string_value_length",
            EventStreamError::TruncatedHeader,
        ),
        (
            "invalid_header_value_type",
            EventStreamError::InvalidHeaderType(0x60),
        ),
    ];
    for (name, expected) in cases {
        let frame = with_valid_crcs(&read(dir.join(name)));
        let (messages, end) = decode_pieces(&frame, frame.len());
        assert!(messages.is_empty(), "{name}");
        assert_eq!(end, Err(expected), "{name}");
    }
}

#[test]
fn smithy_rs_three_messages_in_chunks_of_1_to_11_bytes() {
    let dir = set_dir("smithy-rs-test_data");
    let mut stream = Vec::new();
    for name in [
        "valid_with_all_headers_and_payload",
        "valid_empty_payload",
        "valid_no_headers",
    ] {
        stream.extend(read(dir.join(name)));
    }
    let (reference, end) = decode_pieces(&stream, stream.len());
    assert_eq!(end, Ok(()));
    assert_eq!(reference.len(), 3);
    for piece in 1..=11 {
        let (messages, end) = decode_pieces(&stream, piece);
        assert_eq!(end, Ok(()), "piece {piece}");
        assert_eq!(messages, reference, "piece {piece}");
    }
    // Every single split point of the stream, too.
    for split in 0..=stream.len() {
        let mut decoder = EventStreamDecoder::new();
        let mut messages = Vec::new();
        for part in [&stream[..split], &stream[split..]] {
            decoder.push(part);
            while let Some(message) = decoder.next_message().unwrap() {
                messages.push(message);
            }
        }
        assert_eq!(decoder.finish(), Ok(()));
        assert_eq!(messages, reference, "split at {split}");
    }
}

#[test]
fn botocore_cases() {
    let dir = set_dir("botocore-test_eventstream");
    let cases = read_json(dir.join("cases.json"));
    let cases = cases["cases"].as_array().unwrap();
    let mut ok = 0;
    let mut rejected = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let Some(file) = case["file"].as_str() else {
            continue; // the 24 MiB case is rebuilt in its own test below
        };
        let frame = read(dir.join(file));
        match case["expect"].as_str().unwrap() {
            "ok" => {
                let message = decode_single(&frame);
                assert_frame_fields(case, &frame);
                let headers: Vec<Header> = case["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(header_from_cases_json)
                    .collect();
                assert_eq!(message.headers, headers, "{name}");
                let payload = base64::decode(case["payload_base64"].as_str().unwrap()).unwrap();
                assert_eq!(message.payload, payload, "{name}");
                ok += 1;
            }
            "error" => {
                let (messages, end) = decode_pieces(&frame, frame.len());
                assert!(messages.is_empty(), "{name}");
                let error = end.expect_err(name);
                let matches = match case["first_failing_check"].as_str().unwrap() {
                    "prelude_crc_mismatch" => {
                        matches!(error, EventStreamError::PreludeChecksumMismatch { .. })
                    }
                    "message_crc_mismatch" => {
                        matches!(error, EventStreamError::MessageChecksumMismatch { .. })
                    }
                    "duplicate_header" => error == EventStreamError::DuplicateHeader("test".into()),
                    "invalid_headers_length" => {
                        matches!(error, EventStreamError::InvalidHeadersLength { .. })
                    }
                    other => panic!("unknown check {other}"),
                };
                assert!(matches, "{name}: {error:?}");
                let (_, bytewise) = decode_pieces(&frame, 1);
                assert_eq!(bytewise, Err(error), "{name} byte by byte");
                rejected += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((ok, rejected), (9, 6));
}

#[test]
fn botocore_oversized_payload_is_rejected_from_the_prelude_alone() {
    // botocore's invalid_payload_length case (not stored: 24 MiB). Only its prelude is
    // needed: the cap must trip before the decoder waits for 24 MiB.
    let mut prelude = Vec::new();
    prelude.extend_from_slice(&0x0180_0021u32.to_be_bytes());
    prelude.extend_from_slice(&0u32.to_be_bytes());
    prelude.extend_from_slice(&0xdd3f_33b1u32.to_be_bytes());
    prelude.extend_from_slice(b"0000");
    let mut decoder = EventStreamDecoder::new();
    decoder.push(&prelude);
    assert_eq!(
        decoder.next_message(),
        Err(EventStreamError::MessageTooLarge {
            total_length: 0x0180_0021,
            max: 16 * 1024 * 1024
        })
    );
}

fn real_capture_messages() -> (Value, Vec<Vec<u8>>) {
    let dir = set_dir("bedrock-anthropic-real-capture");
    let cases = read_json(dir.join("cases.json"));
    let reads = (0..7)
        .map(|n| read(dir.join(format!("read_{n:02}.bin"))))
        .collect();
    (cases, reads)
}

#[test]
fn bedrock_real_capture_every_frame() {
    let dir = set_dir("bedrock-anthropic-real-capture");
    let (cases, reads) = real_capture_messages();
    let stream = read(dir.join("stream.bin"));
    assert_eq!(reads.concat(), stream);
    let read_lengths: Vec<u64> = reads.iter().map(|r| r.len() as u64).collect();
    let recorded: Vec<u64> = cases["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(read_lengths, recorded);

    // Fed exactly as the reads arrived.
    let mut decoder = EventStreamDecoder::new();
    let mut messages = Vec::new();
    for read in &reads {
        decoder.push(read);
        while let Some(message) = decoder.next_message().unwrap() {
            messages.push(message);
        }
    }
    assert_eq!(decoder.finish(), Ok(()));
    let (bytewise, end) = decode_pieces(&stream, 1);
    assert_eq!(end, Ok(()));
    assert_eq!(bytewise, messages);

    let expected = cases["messages"].as_array().unwrap();
    assert_eq!(messages.len(), expected.len());
    assert_eq!(messages.len(), 10);
    for (message, case) in messages.iter().zip(expected) {
        let offset = case["offset"].as_u64().unwrap() as usize;
        let length = case["total_length"].as_u64().unwrap() as usize;
        let frame = &stream[offset..offset + length];
        assert_frame_fields(case, frame);
        let headers: Vec<Header> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(header_from_cases_json)
            .collect();
        assert_eq!(message.headers, headers);
        assert_eq!(message.header_str(":event-type"), Some("chunk"));
        assert_eq!(message.header_str(":message-type"), Some("event"));
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(payload, case["payload_json"]);
        let decoded = base64::decode(payload["bytes"].as_str().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            case["decoded_bytes_utf8"].as_str().unwrap()
        );
        let mut encoded = Vec::new();
        encode_message(&message.headers, &message.payload, &mut encoded).unwrap();
        assert_eq!(encoded, frame);
    }
}

#[test]
fn synthetic_bedrock_exception_frames() {
    let dir = set_dir("synthetic-bedrock-exceptions");
    let cases = read_json(dir.join("cases.json"));
    let frames = cases["exception_frames"].as_array().unwrap();
    assert_eq!(frames.len(), 6);
    for case in frames {
        let file = case["file"].as_str().unwrap();
        let message = decode_single(&read(dir.join(file)));
        let headers: Vec<Header> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(header_from_cases_json)
            .collect();
        assert_eq!(message.headers, headers, "{file}");
        assert_eq!(message.header_str(":message-type"), Some("exception"));
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(payload, case["payload_json"], "{file}");
    }

    let unknown = decode_single(&read(dir.join("event_unknown_type.bin")));
    assert_eq!(unknown.header_str(":event-type"), Some("someFutureEvent"));
    assert_eq!(unknown.header_str(":message-type"), Some("event"));
    assert_eq!(unknown.payload, b"{}");

    let stream = read(dir.join("stream_chunk_chunk_exception.bin"));
    for piece in [stream.len(), 1, 3] {
        let (messages, end) = decode_pieces(&stream, piece);
        assert_eq!(end, Ok(()));
        let kinds: Vec<_> = messages
            .iter()
            .map(|m| {
                (
                    m.header_str(":message-type").unwrap(),
                    m.header_str(":event-type")
                        .or(m.header_str(":exception-type"))
                        .unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("event", "chunk"),
                ("event", "chunk"),
                ("exception", "throttlingException")
            ]
        );
    }
}

#[test]
fn failed_decoder_stays_failed_and_drops_input() {
    let dir = set_dir("botocore-test_eventstream");
    let bad = read(dir.join("negative/corrupted_payload.bin"));
    let good = read(dir.join("positive/payload_one_str_header.bin"));
    let mut decoder = EventStreamDecoder::new();
    decoder.push(&bad);
    let error = decoder.next_message().unwrap_err();
    assert!(matches!(
        error,
        EventStreamError::MessageChecksumMismatch { .. }
    ));
    decoder.push(&good);
    assert_eq!(decoder.buffered_len(), 0);
    assert_eq!(decoder.next_message(), Err(error.clone()));
    assert_eq!(decoder.next_message(), Err(error.clone()));
    assert_eq!(decoder.finish(), Err(error));
}

#[test]
fn truncated_stream_is_reported_by_finish() {
    let dir = set_dir("botocore-test_eventstream");
    let good = read(dir.join("positive/payload_one_str_header.bin"));
    for cut in 1..good.len() {
        let (messages, end) = decode_pieces(&good[..cut], 3);
        assert!(messages.is_empty());
        assert_eq!(
            end,
            Err(EventStreamError::TruncatedStream { buffered: cut })
        );
    }
}

#[test]
fn lookups_by_name() {
    let dir = set_dir("aws-sdk-go-testdata");
    let message = decode_single(&read(dir.join("encoded/positive/all_headers")));
    assert_eq!(message.header_str("content-type"), Some("application/json"));
    assert_eq!(
        message.header("event-type"),
        Some(&HeaderValue::Int32(40972))
    );
    assert_eq!(message.header_str("event-type"), None);
    assert_eq!(
        message.header("timestamp"),
        Some(&HeaderValue::Timestamp(8675309))
    );
    assert_eq!(message.header("missing"), None);
}
