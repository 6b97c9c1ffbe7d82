//! HTTPS upstreams: certificate verification against the built-in roots or a private CA
//! file (`server.upstream_ca_file`), with SNI.

mod common;

use cc_relay::config::ProviderType;
use common::tls::{fixture, start_tls_mock};
use common::*;

#[test]
fn https_upstream_verified_with_a_private_ca_file() {
    let mock = start_tls_mock(r#"{"via":"tls"}"#);
    let url = format!("https://localhost:{}", mock.addr.port());
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &url)]);
    config.server.upstream_ca_file = Some(fixture("ca.pem"));
    let relay = start_relay(config);
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["via"], "tls");
    assert_eq!(mock.sni.lock().unwrap()[0].as_deref(), Some("localhost"));
}

#[test]
fn ca_only_trusts_just_the_given_file() {
    let mock = start_tls_mock(r#"{"via":"tls"}"#);
    let url = format!("https://localhost:{}", mock.addr.port());
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &url)]);
    config.server.upstream_ca_file = Some(fixture("ca.pem"));
    config.server.upstream_ca_only = true;
    let relay = start_relay(config);
    assert_eq!(post_messages(relay.addr, PLAIN_BODY, "").status, 200);
}

#[test]
fn unknown_certificate_is_refused_with_502() {
    let mock = start_tls_mock(r#"{"via":"tls"}"#);
    let url = format!("https://localhost:{}", mock.addr.port());
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &url,
    )]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.status, 502);
    let msg = resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("certificate"), "{msg}");
}
