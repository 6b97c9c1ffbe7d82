//! Vertex AI end to end: a mock Google token endpoint and a mock Vertex predict endpoint.
//! The relay signs a JWT assertion with the service-account key, exchanges it for a token,
//! calls `:streamRawPredict` with the model in the URL, and relays the SSE unchanged.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cc_relay::config::ProviderType;
use common::scratch::ScratchDir;
use common::*;

/// The synthetic service-account file of shared/vectors with its token_uri pointed at
/// the mock, written to a temp file.
/// The synthetic service account pointed at `token_uri`, in a folder removed when the
/// returned guard drops (keep it alive for the whole test).
fn credentials_file(token_uri: &str, name: &str) -> (ScratchDir, String) {
    let path = format!(
        "{}/../shared/vectors/jwt/google-service-account-synthetic/service_account.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["token_uri"] = serde_json::Value::from(token_uri);
    let dir = ScratchDir::new(name);
    let out = dir.write("service_account.json", &v.to_string());
    (dir, out.to_string_lossy().into_owned())
}

#[test]
fn vertex_token_flow_url_body_and_stream() {
    let token_calls = Arc::new(AtomicUsize::new(0));
    let calls = token_calls.clone();
    let mock = MockUpstream::start(move |req, s| {
        if req.target == "/token" {
            calls.fetch_add(1, Ordering::SeqCst);
            let form = String::from_utf8_lossy(&req.body).to_string();
            assert!(
                form.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
            );
            write_json(
                s,
                200,
                "",
                r#"{"access_token":"ya29.mock-token","expires_in":3600,"token_type":"Bearer"}"#,
            );
            return;
        }
        start_sse(s);
        for ev in text_stream_events("from vertex") {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let mut p = provider("v", ProviderType::Vertex, &mock.url());
    p.gcp_project_id = Some("my-proj".into());
    p.gcp_region = Some("us-east5".into());
    let (_credentials_dir, credentials) =
        credentials_file(&format!("{}/token", mock.url()), "vertex");
    p.gcp_credentials_file = Some(credentials);
    p.model_mapping = vec![("claude-x".into(), "claude-sonnet-4-5@20250929".into())];
    let relay = start_relay(config_with(vec![p]));

    for _ in 0..2 {
        let resp = post_messages(
            relay.addr,
            STREAM_BODY,
            "anthropic-beta: interleaved-thinking-2025-05-14,unknown-beta\r\n",
        );
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.text(), text_stream_events("from vertex").concat());
    }
    assert_eq!(
        token_calls.load(Ordering::SeqCst),
        1,
        "token cached between requests"
    );
    let predict: Vec<Seen> = mock
        .requests()
        .into_iter()
        .filter(|r| r.target != "/token")
        .collect();
    let seen = &predict[0];
    assert_eq!(
        seen.target,
        "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    );
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.mock-token"));
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(body["stream"], true);
    assert!(body.get("model").is_none());
    assert_eq!(body["messages"][0]["content"], "hi");
}

#[test]
fn vertex_google_errors_become_anthropic_errors() {
    let mock = MockUpstream::start(|req, s| {
        if req.target == "/token" {
            write_json(s, 200, "", r#"{"access_token":"ya29.t","expires_in":3600}"#);
            return;
        }
        write_json(
            s,
            429,
            "",
            r#"[{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
    });
    let mut p = provider("v", ProviderType::Vertex, &mock.url());
    p.gcp_project_id = Some("p".into());
    p.gcp_region = Some("global".into());
    let (_credentials_dir, credentials) =
        credentials_file(&format!("{}/token", mock.url()), "vertex-err");
    p.gcp_credentials_file = Some(credentials);
    let relay = start_relay(config_with(vec![p]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 429);
    let v = resp.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Quota exceeded"));
    let predict = mock
        .requests()
        .into_iter()
        .find(|r| r.target != "/token")
        .unwrap();
    assert!(predict
        .target
        .ends_with("/locations/global/publishers/anthropic/models/claude-x:rawPredict"));
}

#[test]
fn vertex_token_endpoint_failure_is_a_clear_502() {
    let mock = MockUpstream::start(|_req, s| {
        write_json(
            s,
            400,
            "",
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
    });
    let mut p = provider("v", ProviderType::Vertex, &mock.url());
    p.gcp_project_id = Some("p".into());
    p.gcp_region = Some("us-east5".into());
    let (_credentials_dir, credentials) =
        credentials_file(&format!("{}/token", mock.url()), "vertex-bad");
    p.gcp_credentials_file = Some(credentials);
    let relay = start_relay(config_with(vec![p]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 502);
    let msg = resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("Vertex AI credentials"), "{msg}");
    assert!(!msg.contains("PRIVATE KEY"));
}

#[test]
fn expiring_token_is_refreshed_once_for_concurrent_requests() {
    // The first token is due for refresh almost at once (google-auth refreshes 225 s
    // early); later ones last an hour.
    let token_calls = Arc::new(AtomicUsize::new(0));
    let calls = token_calls.clone();
    let mock = MockUpstream::start(move |req, s| {
        if req.target == "/token" {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let expires = if n == 0 { 226 } else { 3600 };
            write_json(
                s,
                200,
                "",
                &format!(r#"{{"access_token":"ya29.t{n}","expires_in":{expires}}}"#),
            );
            return;
        }
        write_json(
            s,
            200,
            "",
            &format!(
                r#"{{"auth":"{}"}}"#,
                req.header("authorization").unwrap_or("")
            ),
        );
    });
    let mut p = provider("v", ProviderType::Vertex, &mock.url());
    p.gcp_project_id = Some("p".into());
    p.gcp_region = Some("us-east5".into());
    let (_credentials_dir, credentials) =
        credentials_file(&format!("{}/token", mock.url()), "vertex-refresh");
    p.gcp_credentials_file = Some(credentials);
    let relay = start_relay(config_with(vec![p]));
    assert_eq!(
        post_messages(relay.addr, PLAIN_BODY, "").json()["auth"],
        "Bearer ya29.t0"
    );
    // Fire batches of 8 concurrent requests until the refresh happens; the batch that
    // triggers it must cause exactly one token call.
    let addr = relay.addr;
    let mut refreshed = false;
    for _ in 0..100 {
        let batch: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    post_messages(addr, PLAIN_BODY, "").json()["auth"].clone()
                })
            })
            .collect();
        let auths: Vec<serde_json::Value> = batch.into_iter().map(|t| t.join().unwrap()).collect();
        if token_calls.load(Ordering::SeqCst) > 1 {
            assert_eq!(
                token_calls.load(Ordering::SeqCst),
                2,
                "one refresh for the whole batch"
            );
            assert!(auths.iter().any(|a| a == "Bearer ya29.t1"));
            refreshed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(refreshed, "the token was refreshed before it expired");
    assert_eq!(
        post_messages(relay.addr, PLAIN_BODY, "").json()["auth"],
        "Bearer ya29.t1"
    );
}
