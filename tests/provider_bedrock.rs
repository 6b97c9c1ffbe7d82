//! Bedrock end to end. The mock checks the SigV4 signature with its own small
//! implementation of the AWS rules (not the signer under test), checks the body
//! transform, and streams the real Bedrock capture split at uneven boundaries; the client
//! must receive exactly the Anthropic SSE the capture stands for.

mod common;

use std::io::Write;

use cc_relay::config::{KeyConfig, ProviderType};
use common::vectors::vectors_dir;
use common::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// URI-encodes every byte but the unreserved set and '/', as SigV4 does for non-S3.
fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The signature the request should carry, computed from what arrived on the wire.
fn expected_authorization(req: &Seen) -> Result<String, String> {
    let auth = req.header("authorization").ok_or("no authorization")?;
    let signed = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .ok_or("no SignedHeaders")?;
    let amz_date = req.header("x-amz-date").ok_or("no x-amz-date")?;
    let date = &amz_date[..8];
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        let value = req
            .header(name)
            .ok_or(format!("signed header {name} missing"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let creq = format!(
        "POST\n{}\n\n{canonical_headers}\n{signed}\n{}",
        encode_path(&req.target),
        hex(&Sha256::digest(&req.body))
    );
    let scope = format!("{date}/us-east-1/bedrock/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let key = hmac(
        &hmac(
            &hmac(
                &hmac(format!("AWS4{SECRET_KEY}").as_bytes(), date),
                "us-east-1",
            ),
            "bedrock",
        ),
        "aws4_request",
    );
    Ok(format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed}, Signature={}",
        hex(&hmac(&key, &sts))
    ))
}

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(
        vectors_dir()
            .join("eventstream/bedrock-anthropic-real-capture")
            .join(name),
    )
    .unwrap()
}

fn bedrock_provider(url: &str) -> cc_relay::config::ProviderConfig {
    let mut p = provider("bedrock", ProviderType::Bedrock, url);
    p.aws_region = Some("us-east-1".into());
    p.aws_access_key_id = Some(ACCESS_KEY.into());
    p.aws_secret_access_key = Some(SECRET_KEY.into());
    p.model_mapping = vec![("claude-*".into(), MODEL.into())];
    p
}

fn signature_ok(req: &Seen) -> bool {
    expected_authorization(req).ok().as_deref() == req.header("authorization")
}

#[test]
fn signed_stream_is_transcoded_to_the_expected_sse() {
    let stream = capture("stream.bin");
    let mock = MockUpstream::start(move |req, s| {
        if !signature_ok(req) {
            write_json(s, 403, "x-amzn-ErrorType: InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/\r\n", r#"{"message":"The request signature we calculated does not match the signature you provided."}"#);
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\ntransfer-encoding: chunked\r\n\r\n");
        // Uneven splits, including inside preludes and CRCs.
        let mut at = 0;
        for (i, size) in [1usize, 7, 3, 200, 13, 64, 5].iter().cycle().enumerate() {
            if at >= stream.len() || i > 10_000 {
                break;
            }
            let end = (at + size).min(stream.len());
            let _ = write_chunk(s, &stream[at..end]);
            at = end;
        }
        end_chunks(s);
    });
    let relay = start_relay(config_with(vec![bedrock_provider(&mock.url())]));
    let resp = post_messages(
        relay.addr,
        STREAM_BODY,
        "anthropic-beta: interleaved-thinking-2025-05-14,not-allowed-beta\r\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(
        resp.text(),
        String::from_utf8(capture("expected.sse")).unwrap()
    );

    let seen = &mock.requests()[0];
    assert!(signature_ok(seen), "independent SigV4 check");
    assert_eq!(
        seen.target,
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"
    );
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        body["anthropic_beta"],
        serde_json::json!(["interleaved-thinking-2025-05-14"])
    );
    assert!(body.get("model").is_none() && body.get("stream").is_none());
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(seen.header("anthropic-beta"), None);
}

#[test]
fn exception_mid_stream_becomes_an_error_event() {
    let dir = vectors_dir().join("eventstream/synthetic-bedrock-exceptions");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let stream_file = files
        .iter()
        .find(|p| {
            p.to_string_lossy().contains("chunk") && p.extension().is_some_and(|e| e == "bin")
        })
        .cloned()
        .expect("a chunk+exception stream in the synthetic set");
    let stream = std::fs::read(&stream_file).unwrap();
    let mock = MockUpstream::start(move |_req, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\ntransfer-encoding: chunked\r\n\r\n");
        let _ = write_chunk(s, &stream);
        end_chunks(s);
    });
    let relay = start_relay(config_with(vec![bedrock_provider(&mock.url())]));
    let resp = post_messages(relay.addr, STREAM_BODY, "");
    assert_eq!(resp.status, 200);
    let text = resp.text();
    assert!(
        text.contains("event: error\ndata: {\"type\":\"error\""),
        "{} -> {text}",
        stream_file.display()
    );
    assert!(!text.contains("message_stop"));
}

#[test]
fn non_stream_invoke_and_bedrock_errors() {
    let mock = MockUpstream::start(|req, s| {
        if req.target.contains("throttled") {
            write_json(s, 429, "x-amzn-ErrorType: ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n", r#"{"message":"Too many requests, please wait before trying again."}"#);
        } else if req.target.ends_with("/invoke") {
            write_json(
                s,
                200,
                "",
                r#"{"id":"msg_bdrk_1","type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":1,"output_tokens":1}}"#,
            );
        } else if req.target.ends_with("/count-tokens") {
            write_json(s, 200, "", r#"{"inputTokens":17}"#);
        } else {
            write_json(s, 404, "", r#"{"message":"unexpected path"}"#);
        }
    });
    let relay = start_relay(config_with(vec![bedrock_provider(&mock.url())]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["id"], "msg_bdrk_1");
    assert!(mock.requests()[0].target.ends_with("v1%3A0/invoke"));

    let req = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\ncontent-length: {}\r\n\r\n{}",
        PLAIN_BODY.len(),
        PLAIN_BODY
    );
    let resp = raw_request(relay.addr, req.as_bytes());
    assert_eq!(
        (resp.status, resp.json()["input_tokens"].as_u64()),
        (200, Some(17))
    );
    let counted = mock
        .requests()
        .into_iter()
        .find(|r| r.target.ends_with("/count-tokens"))
        .unwrap();
    let wrapped: serde_json::Value = serde_json::from_slice(&counted.body).unwrap();
    let inner =
        cc_relay::codec::base64::decode(wrapped["input"]["invokeModel"]["body"].as_str().unwrap())
            .unwrap();
    let inner: serde_json::Value = serde_json::from_slice(&inner).unwrap();
    assert_eq!(inner["anthropic_version"], "bedrock-2023-05-31");

    // A throttled model answers 429 ThrottlingException: relayed as rate_limit_error.
    let mut p = bedrock_provider(&mock.url());
    p.model_mapping = vec![("claude-*".into(), "throttled-model".into())];
    p.keys.push(KeyConfig::new("unused"));
    let relay = start_relay(config_with(vec![p]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.json()["error"]["type"], "rate_limit_error");
    assert!(resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Too many requests"));
}
