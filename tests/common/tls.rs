//! A TLS mock upstream for tests: the test CA's `localhost` certificate, one JSON
//! answer per request, and a record of the SNI name each handshake asked for.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn server_config() -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

pub struct TlsMock {
    pub addr: SocketAddr,
    pub sni: Arc<Mutex<Vec<Option<String>>>>,
}

/// Answers every request with `body` as JSON (status 200).
pub fn start_tls_mock(body: &'static str) -> TlsMock {
    start_tls_mock_with(200, body)
}

/// Answers every request with `status` and `body` as JSON.
pub fn start_tls_mock_with(status: u16, body: &'static str) -> TlsMock {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sni = Arc::new(Mutex::new(Vec::new()));
    let sni2 = sni.clone();
    let config = server_config();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let config = config.clone();
            let sni = sni2.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                while tls.conn.is_handshaking() {
                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                        return;
                    }
                }
                sni.lock()
                    .unwrap()
                    .push(tls.conn.server_name().map(String::from));
                let mut reader = BufReader::new(tls);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((n, v)) = h.split_once(':') {
                            if n.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut req_body = vec![0u8; len];
                    if reader.read_exact(&mut req_body).is_err() {
                        return;
                    }
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let tls = reader.get_mut();
                    if tls
                        .write_all(resp.as_bytes())
                        .and_then(|_| tls.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    TlsMock { addr, sni }
}

/// `GET /health` over HTTPS to a relay, trusting only the fixture CA `ca`; the status or
/// why there was none (e.g. the certificate is not from that CA).
pub fn https_get_health(addr: SocketAddr, ca: &str) -> Result<u16, String> {
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let config = cc_relay::net::client::tls_client_config(Some(&fixture(ca)), true).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))
}
