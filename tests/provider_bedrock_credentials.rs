//! Bedrock with no keys in the config: credentials come from the container endpoint
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, as on ECS/EKS), are cached until shortly before
//! they expire, and the session token is signed into every request. One test, because
//! the chain reads the process environment.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cc_relay::config::ProviderType;
use common::*;

#[test]
fn container_credentials_are_fetched_cached_and_signed_with() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let f = fetches.clone();
    let mock = MockUpstream::start(move |req, s| {
        if req.target == "/creds" {
            f.fetch_add(1, Ordering::SeqCst);
            write_json(
                s,
                200,
                "",
                r#"{"AccessKeyId":"ASIAFROMCONTAINER","SecretAccessKey":"container-secret","Token":"container-session-token","Expiration":"2099-01-01T00:00:00Z"}"#,
            );
            return;
        }
        write_json(
            s,
            200,
            "",
            r#"{"id":"msg_bdrk","type":"message","content":[]}"#,
        );
    });
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("HOME", std::env::temp_dir().join("cc-relay-no-aws-home"));
    std::env::set_var(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/creds", mock.url()),
    );
    let mut p = provider("bedrock", ProviderType::Bedrock, &mock.url());
    p.aws_region = Some("eu-west-1".into());
    p.model_mapping = vec![(
        "claude-*".into(),
        "anthropic.claude-haiku-4-5-20251001-v1:0".into(),
    )];
    let relay = start_relay(config_with(vec![p]));
    for _ in 0..3 {
        let r = post_messages(relay.addr, PLAIN_BODY, "");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "credentials cached until near expiry"
    );
    let invoke = mock
        .requests()
        .into_iter()
        .find(|r| r.target != "/creds")
        .unwrap();
    assert_eq!(
        invoke.header("x-amz-security-token"),
        Some("container-session-token")
    );
    let auth = invoke.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=ASIAFROMCONTAINER/"),
        "{auth}"
    );
    assert!(auth.contains("/eu-west-1/bedrock/aws4_request"));
    assert!(
        auth.contains("x-amz-security-token"),
        "the token is signed: {auth}"
    );
}
