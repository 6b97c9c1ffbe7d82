//! Bedrock event-stream -> Anthropic SSE transcoding (PROTOCOLS §2.4–2.5) and Bedrock
//! HTTP error -> Anthropic error JSON (§2.3), asserted byte for byte.

use cc_relay::codec::base64;
use cc_relay::codec::eventstream::{encode_message, EventStreamError, Header, HeaderValue};
use cc_relay::provider::bedrock_stream::{
    bedrock_error_to_anthropic, BedrockStreamTranscoder, StreamFailure,
};

#[path = "common/vectors.rs"]
mod vectors;
use vectors::vectors_dir;

fn read(set: &str, file: &str) -> Vec<u8> {
    let path = vectors_dir().join("eventstream").join(set).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn capture_reads() -> Vec<Vec<u8>> {
    (0..7)
        .map(|n| {
            read(
                "bedrock-anthropic-real-capture",
                &format!("read_{n:02}.bin"),
            )
        })
        .collect()
}

fn error_event(error_type: &str, message: &str) -> String {
    format!(
        "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{error_type}\",\"message\":\"{message}\"}}}}\n\n"
    )
}

/// Feeds `pieces` one by one, checking after each that `out` holds whole events only.
fn transcode_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (BedrockStreamTranscoder, Vec<u8>, Result<(), StreamFailure>) {
    let mut transcoder = BedrockStreamTranscoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        let result = transcoder.feed(piece, &mut out);
        assert!(
            out.is_empty() || out.ends_with(b"\n\n"),
            "only whole events"
        );
        if result.is_err() {
            return (transcoder, out, result);
        }
    }
    let result = transcoder.finish(&mut out);
    (transcoder, out, result)
}

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers: Vec<Header> = headers
        .iter()
        .map(|(name, value)| Header::new(*name, HeaderValue::String((*value).into())))
        .collect();
    let mut out = Vec::new();
    encode_message(&headers, payload, &mut out).unwrap();
    out
}

fn chunk(event_json: &[u8]) -> Vec<u8> {
    let payload = format!(r#"{{"bytes":"{}","p":"abcd"}}"#, base64::encode(event_json));
    frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

#[test]
fn real_capture_in_its_original_reads_matches_expected_sse() {
    let expected = read("bedrock-anthropic-real-capture", "expected.sse");
    let reads = capture_reads();
    let (transcoder, out, result) = transcode_pieces(reads.iter().map(Vec::as_slice));
    assert_eq!(result, Ok(()));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(expected).unwrap()
    );
    assert!(transcoder.saw_message_stop());
    assert_eq!(transcoder.events_written(), 10);
    assert_eq!(transcoder.failure(), None);
}

#[test]
fn real_capture_one_byte_at_a_time_matches_expected_sse() {
    let expected = read("bedrock-anthropic-real-capture", "expected.sse");
    let stream = read("bedrock-anthropic-real-capture", "stream.bin");
    let mut transcoder = BedrockStreamTranscoder::new();
    let mut out = Vec::new();
    let mut events_seen = 0;
    for byte in &stream {
        let before = out.len();
        transcoder
            .feed(std::slice::from_ref(byte), &mut out)
            .unwrap();
        if out.len() > before {
            // An event appears on the very byte that completes its frame.
            events_seen += 1;
            assert!(out.ends_with(b"\n\n"));
            assert_eq!(&expected[..out.len()], &out[..]);
        }
        assert_eq!(transcoder.saw_message_stop(), out.len() == expected.len());
    }
    assert_eq!(events_seen, 10);
    assert_eq!(transcoder.finish(&mut out), Ok(()));
    assert_eq!(out, expected);
}

#[test]
fn real_capture_at_every_single_split_point() {
    let expected = read("bedrock-anthropic-real-capture", "expected.sse");
    let stream = read("bedrock-anthropic-real-capture", "stream.bin");
    for split in 0..=stream.len() {
        let (_, out, result) = transcode_pieces([&stream[..split], &stream[split..]]);
        assert_eq!(result, Ok(()), "split {split}");
        assert_eq!(out, expected, "split {split}");
    }
}

#[test]
fn each_synthetic_exception_becomes_the_matching_error_event() {
    let cases = [
        (
            "exception_throttlingException.bin",
            "throttlingException",
            "rate_limit_error",
            "Too many requests, please wait before trying again.",
        ),
        (
            "exception_modelStreamErrorException.bin",
            "modelStreamErrorException",
            "api_error",
            "The model returned an error mid-stream. (model returned 400: upstream model error)",
        ),
        (
            "exception_internalServerException.bin",
            "internalServerException",
            "api_error",
            "An internal server error occurred.",
        ),
        (
            "exception_validationException.bin",
            "validationException",
            "invalid_request_error",
            "Input is too long for requested model.",
        ),
        (
            "exception_serviceUnavailableException.bin",
            "serviceUnavailableException",
            "overloaded_error",
            "Service unavailable.",
        ),
        (
            "exception_modelTimeoutException.bin",
            "modelTimeoutException",
            "api_error",
            "Model has timed out in processing the request.",
        ),
    ];
    for (file, exception, error_type, message) in cases {
        let bytes = read("synthetic-bedrock-exceptions", file);
        for piece in [bytes.len(), 1] {
            let (transcoder, out, result) = transcode_pieces(bytes.chunks(piece));
            let failure = StreamFailure::Exception {
                exception_type: exception.into(),
                message: message.into(),
            };
            assert_eq!(result, Err(failure.clone()), "{file}");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                error_event(error_type, message)
            );
            assert_eq!(transcoder.failure(), Some(&failure));
            assert!(!transcoder.saw_message_stop());
        }
    }
}

#[test]
fn chunk_chunk_exception_stream_relays_two_events_then_one_error() {
    let bytes = read(
        "synthetic-bedrock-exceptions",
        "stream_chunk_chunk_exception.bin",
    );
    let expected = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_bdrk_synthetic","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        "\n\n",
        "event: ping\n",
        "data: {\"type\":\"ping\"}\n\n",
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"rate_limit_error","message":"Too many requests, please wait before trying again."}}"#,
        "\n\n",
    );
    for piece in [bytes.len(), 1, 13] {
        let mut transcoder = BedrockStreamTranscoder::new();
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in bytes.chunks(piece) {
            result = transcoder.feed(chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        let failure = result.unwrap_err();
        assert_eq!(failure.anthropic_error_type(), "rate_limit_error");
        assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
        assert_eq!(transcoder.events_written(), 3);
        // Over: later input and finish add nothing and repeat the failure.
        let before = out.len();
        assert_eq!(
            transcoder.feed(&chunk(br#"{"type":"ping"}"#), &mut out),
            Err(failure.clone())
        );
        assert_eq!(transcoder.finish(&mut out), Err(failure));
        assert_eq!(out.len(), before);
    }
}

#[test]
fn unknown_event_type_is_skipped() {
    let bytes = read("synthetic-bedrock-exceptions", "event_unknown_type.bin");
    let mut transcoder = BedrockStreamTranscoder::new();
    let mut out = Vec::new();
    assert_eq!(transcoder.feed(&bytes, &mut out), Ok(()));
    assert!(out.is_empty());
    let mut stream = bytes.clone();
    stream.extend(chunk(br#"{"type":"message_stop"}"#));
    let (_, out, result) = transcode_pieces([stream.as_slice()]);
    assert_eq!(result, Ok(()));
    assert_eq!(
        out,
        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
}

#[test]
fn unmodelled_error_frame_becomes_an_error_event() {
    // botocore's `:message-type error` frame: `:error-code` code, `:error-message` message.
    let bytes = read(
        "botocore-test_eventstream",
        "positive/error_event_message.bin",
    );
    let (_, out, result) = transcode_pieces([bytes.as_slice()]);
    assert_eq!(
        result,
        Err(StreamFailure::ErrorFrame {
            code: "code".into(),
            message: "message".into()
        })
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        error_event("api_error", "message")
    );

    let throttled = frame(
        &[
            (":message-type", "error"),
            (":error-code", "ThrottlingException"),
            (":error-message", "slow down"),
        ],
        b"",
    );
    let (_, out, _) = transcode_pieces([throttled.as_slice()]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        error_event("rate_limit_error", "slow down")
    );
}

#[test]
fn truncated_capture_is_reported_at_finish() {
    let stream = read("bedrock-anthropic-real-capture", "stream.bin");
    let expected = read("bedrock-anthropic-real-capture", "expected.sse");
    let cut = &stream[..stream.len() - 5];
    let mut transcoder = BedrockStreamTranscoder::new();
    let mut out = Vec::new();
    transcoder.feed(cut, &mut out).unwrap();
    let nine_events = out.clone();
    assert!(expected.starts_with(&nine_events));
    assert!(!transcoder.saw_message_stop());
    let failure = transcoder.finish(&mut out).unwrap_err();
    assert!(matches!(
        failure,
        StreamFailure::Framing(EventStreamError::TruncatedStream { .. })
    ));
    let tail = String::from_utf8(out[nine_events.len()..].to_vec()).unwrap();
    assert!(tail.starts_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"malformed upstream event stream: event stream ended inside a frame"));
    assert!(tail.ends_with("\"}}\n\n"));
}

#[test]
fn clean_end_without_message_stop_is_incomplete() {
    let reads = capture_reads();
    // The first read holds 4 whole frames and no message_stop.
    let (transcoder, out, result) = transcode_pieces([reads[0].as_slice()]);
    assert_eq!(result, Err(StreamFailure::EndedBeforeMessageStop));
    assert!(!transcoder.saw_message_stop());
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with(&error_event(
        "api_error",
        "upstream stream ended before message_stop"
    )));
    assert_eq!(text.matches("event: ").count(), 5);
}

#[test]
fn corrupted_frame_mid_stream_keeps_earlier_events_then_errors() {
    let mut stream = read("bedrock-anthropic-real-capture", "stream.bin");
    // Flip a payload byte of the second message (offset 648, 247 bytes long).
    stream[648 + 100] ^= 0x01;
    let expected = read("bedrock-anthropic-real-capture", "expected.sse");
    let first_event_len = expected.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    let (_, out, result) = transcode_pieces([stream.as_slice()]);
    assert!(matches!(
        result,
        Err(StreamFailure::Framing(
            EventStreamError::MessageChecksumMismatch { .. }
        ))
    ));
    assert_eq!(&out[..first_event_len], &expected[..first_event_len]);
    assert!(out[first_event_len..].starts_with(b"event: error\n"));
}

#[test]
fn chunk_contents_edge_cases() {
    // Pretty-printed event JSON is put on one line without reordering anything.
    let pretty = chunk(b"{\r\n  \"type\": \"ping\",\n  \"n\": [1,\n2]\n}");
    let (_, out, _) = transcode_pieces([pretty.as_slice()]);
    assert!(out.starts_with(b"event: ping\ndata: {  \"type\": \"ping\",  \"n\": [1,2]}\n\n"));

    // No string `type`: a keep-alive, dropped.
    for event in [&b"{}"[..], br#"{"type":7}"#, br#"{"other":"x"}"#] {
        let (transcoder, out, _) = transcode_pieces([chunk(event).as_slice()]);
        assert_eq!(
            transcoder.events_written(),
            1,
            "only the incomplete-stream error"
        );
        assert!(out.starts_with(b"event: error\n"));
    }

    let bad_payloads: [(&[u8], &str); 4] = [
        (
            b"not json",
            "chunk payload is not JSON with a string \\\"bytes\\\"",
        ),
        (
            br#"{"bytes":"%%%%"}"#,
            "chunk bytes: invalid base64 byte 0x25 at offset 0",
        ),
        (br#"{"bytes":"WzFd"}"#, "chunk bytes are not a JSON object"), // [1]
        (
            br#"{"p":"abc"}"#,
            "chunk payload is not JSON with a string \\\"bytes\\\"",
        ),
    ];
    for (payload, reason) in bad_payloads {
        let bad = frame(
            &[(":event-type", "chunk"), (":message-type", "event")],
            payload,
        );
        let (_, out, result) = transcode_pieces([bad.as_slice()]);
        assert!(matches!(result, Err(StreamFailure::BadChunk(_))));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            error_event("api_error", &format!("malformed upstream event: {reason}"))
        );
    }

    // A type that would break SSE framing is refused, not written.
    let (_, out, result) = transcode_pieces([chunk(br#"{"type":"a\nb"}"#).as_slice()]);
    assert!(matches!(result, Err(StreamFailure::BadChunk(_))));
    assert!(out.starts_with(b"event: error\n"));
}

#[test]
fn exception_payload_variants() {
    let exception = |payload: &[u8]| {
        frame(
            &[
                (":exception-type", "throttlingException"),
                (":message-type", "exception"),
            ],
            payload,
        )
    };
    let cases: [(&[u8], &str); 4] = [
        (br#"{"Message":"capital M"}"#, "capital M"),
        (b"", "throttlingException"),
        (b"plain text reason", "plain text reason"),
        (br#"{"message":"say \"hi\""}"#, "say \\\"hi\\\""),
    ];
    for (payload, message) in cases {
        let (_, out, _) = transcode_pieces([exception(payload).as_slice()]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            error_event("rate_limit_error", message)
        );
    }
}

#[test]
fn http_errors_map_to_anthropic_errors() {
    let body = |message: &str| format!(r#"{{"message":"{message}"}}"#).into_bytes();
    let json = |error_type: &str, message: &str| {
        format!(r#"{{"type":"error","error":{{"type":"{error_type}","message":"{message}"}}}}"#)
    };
    /// (upstream status, x-amzn-ErrorType, body, expected status, expected JSON)
    type HttpErrorCase = (u16, Option<&'static str>, Vec<u8>, u16, String);
    let cases: Vec<HttpErrorCase> = vec![
        (
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            body("messages: field required"),
            400,
            json("invalid_request_error", "messages: field required"),
        ),
        (
            429,
            Some("ThrottlingException"),
            body("Too many requests"),
            429,
            json("rate_limit_error", "Too many requests"),
        ),
        (
            400,
            Some("ServiceQuotaExceededException:http://internal.amazon.com/coral/"),
            body("quota"),
            429,
            json("rate_limit_error", "quota"),
        ),
        (
            403,
            Some("AccessDeniedException:http://internal.amazon.com/coral/"),
            body("no access to model"),
            403,
            json("permission_error", "no access to model"),
        ),
        (
            403,
            Some("InvalidSignatureException"),
            body("The request signature we calculated does not match"),
            403,
            json("authentication_error", "The request signature we calculated does not match"),
        ),
        (
            404,
            Some("ResourceNotFoundException"),
            Vec::new(),
            404,
            json("not_found_error", "ResourceNotFoundException"),
        ),
        (
            424,
            Some("ModelErrorException"),
            body("model failed"),
            424,
            json("api_error", "model failed"),
        ),
        (
            429,
            Some("ModelNotReadyException"),
            body("warming up"),
            429,
            json("overloaded_error", "warming up"),
        ),
        (
            503,
            Some("ServiceUnavailableException"),
            body("busy"),
            503,
            json("overloaded_error", "busy"),
        ),
        (
            500,
            Some("InternalServerException"),
            br#"{"Message":"boom"}"#.to_vec(),
            500,
            json("api_error", "boom"),
        ),
        // No header: the restJson1 `__type` names the exception.
        (
            403,
            None,
            br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"bad token"}"#
                .to_vec(),
            403,
            json("authentication_error", "bad token"),
        ),
        // Unknown exception name: the status decides.
        (
            413,
            Some("SomethingNewException"),
            body("too big"),
            413,
            json("request_too_large", "too big"),
        ),
        // A proxy's non-JSON page, no header.
        (502, None, b"Bad Gateway".to_vec(), 502, json("api_error", "Bad Gateway")),
        (500, None, Vec::new(), 500, json("api_error", "Bedrock returned HTTP 500")),
        (200, None, Vec::new(), 502, json("api_error", "Bedrock returned HTTP 200")),
    ];
    for (status, header, body, want_status, want_json) in cases {
        let (got_status, got_json) = bedrock_error_to_anthropic(status, header, &body);
        assert_eq!(
            (got_status, got_json),
            (want_status, want_json),
            "{header:?}"
        );
    }
}
