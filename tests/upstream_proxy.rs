//! Upstreams behind an outbound proxy: HTTPS through `CONNECT` (HTTPS_PROXY), plain HTTP
//! in absolute form (HTTP_PROXY), and NO_PROXY bypass. One test, because the proxy
//! settings come from the process environment.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use cc_relay::config::ProviderType;
use common::tls::{fixture, start_tls_mock};
use common::*;

/// A CONNECT proxy that records each request line and tunnels bytes both ways.
fn start_connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let lines2 = lines.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let lines = lines2.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                lines.lock().unwrap().push(line.trim_end().to_string());
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim_end().is_empty() {
                        break;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap().to_string();
                let target = target.replace("localhost", "127.0.0.1");
                let upstream = TcpStream::connect(target).unwrap();
                let mut client_w = client.try_clone().unwrap();
                client_w
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_r = upstream.try_clone().unwrap();
                let mut up_w = upstream;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_r, &mut client_w);
                });
                let _ = std::io::copy(&mut reader, &mut up_w);
            });
        }
    });
    (format!("http://{addr}"), lines)
}

#[test]
fn proxies_from_the_environment_are_used_and_bypassed() {
    let (proxy_url, connect_lines) = start_connect_proxy();
    let plain_proxy =
        MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"via":"http-proxy"}"#));
    let direct = MockUpstream::start(|_req, s| write_json(s, 200, "", r#"{"via":"direct"}"#));
    std::env::set_var("HTTPS_PROXY", &proxy_url);
    std::env::set_var("HTTP_PROXY", plain_proxy.url());
    std::env::set_var("NO_PROXY", "bypass.invalid,127.0.0.2");

    let tls = start_tls_mock(r#"{"via":"connect"}"#);
    let https_url = format!("https://localhost:{}", tls.addr.port());
    let mut config = config_with(vec![provider("a", ProviderType::Anthropic, &https_url)]);
    config.server.upstream_ca_file = Some(fixture("ca.pem"));
    let relay = start_relay(config);
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.json()["via"], "connect", "{}", resp.text());
    let expected = format!("CONNECT localhost:{} HTTP/1.1", tls.addr.port());
    assert_eq!(connect_lines.lock().unwrap()[0], expected);

    // Plain HTTP goes to HTTP_PROXY in absolute form.
    let relay = start_relay(config_with(vec![provider(
        "b",
        ProviderType::Anthropic,
        "http://upstream.example:8080/base",
    )]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(resp.json()["via"], "http-proxy");
    assert_eq!(
        plain_proxy.requests()[0].target,
        "http://upstream.example:8080/base/v1/messages"
    );

    // NO_PROXY hosts are dialled directly.
    let direct_url = format!("http://127.0.0.2:{}", direct.addr.port());
    let relay = start_relay(config_with(vec![provider(
        "c",
        ProviderType::Anthropic,
        &direct_url,
    )]));
    let resp = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(
        resp.status, 502,
        "127.0.0.2 has no mock listening: dialled directly, not via the proxy"
    );
    assert_eq!(plain_proxy.requests().len(), 1);
}
