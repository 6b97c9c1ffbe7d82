//! The listener's life: graceful drain (streams finish, idle connections close, new
//! connections are refused) and the HTTPS listener with certificate rotation.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_relay::config::{ProviderType, TlsConfig};
use cc_relay::net::tls::server_config_from_files;
use common::tls::fixture;
use common::*;

fn paced_stream_mock(gap: Duration) -> MockUpstream {
    MockUpstream::start(move |_req, s| {
        start_sse(s);
        for ev in text_stream_events("paced") {
            if write_chunk(s, ev.as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(gap);
        }
        end_chunks(s);
    })
}

#[test]
fn drain_lets_streams_finish_and_refuses_new_connections() {
    let mock = paced_stream_mock(Duration::from_millis(60));
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let streams: Vec<_> = (0..4).map(|_| open_stream(relay.addr)).collect();
    // An idle keep-alive connection, too: draining must close it.
    let mut idle = connect(relay.addr);
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut idle_reader = BufReader::new(idle.try_clone().unwrap());
    assert_eq!(read_response(&mut idle_reader).status, 200);

    let handle = relay.running.handle.clone();
    let drainer = std::thread::spawn(move || handle.drain(Duration::from_secs(10)));

    // The idle connection is closed by the server.
    let mut buf = [0u8; 1];
    idle_reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        idle_reader.read(&mut buf).unwrap(),
        0,
        "idle connection closed on drain"
    );

    // New connections are refused once the listener is closed.
    assert!(wait_for(Duration::from_secs(5), || TcpStream::connect(
        relay.addr
    )
    .is_err()));

    for mut reader in streams {
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert!(
            rest.contains("message_stop"),
            "stream finished during drain: {rest}"
        );
    }
    assert!(
        drainer.join().unwrap(),
        "every request finished within the drain time"
    );
}

#[test]
fn drain_timeout_reports_cut_requests() {
    let mock = paced_stream_mock(Duration::from_millis(400));
    let relay = start_relay(config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        &mock.url(),
    )]));
    let _stream = open_stream(relay.addr);
    let started = Instant::now();
    assert!(!relay.running.handle.drain(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn https_listener_serves_and_rotates_its_certificate() {
    let mut config = config_with(vec![provider(
        "a",
        ProviderType::Anthropic,
        "http://127.0.0.1:9",
    )]);
    config.server.tls = Some(TlsConfig {
        cert_file: fixture("server.pem"),
        key_file: fixture("server.key"),
    });
    let relay = start_relay(config);
    // Garbage instead of a handshake costs only that connection.
    let mut junk = TcpStream::connect(relay.addr).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _ = junk.read(&mut [0u8; 64]);

    assert_eq!(common::tls::https_get_health(relay.addr, "ca.pem"), Ok(200));
    assert!(
        common::tls::https_get_health(relay.addr, "ca2.pem").is_err(),
        "old cert is not from CA 2"
    );

    let rotated =
        server_config_from_files(&fixture("server2.pem"), &fixture("server2.key")).unwrap();
    relay.running.handle.set_tls(Some(rotated));
    assert_eq!(
        common::tls::https_get_health(relay.addr, "ca2.pem"),
        Ok(200)
    );
    assert!(
        common::tls::https_get_health(relay.addr, "ca.pem").is_err(),
        "new cert is served"
    );
}

struct Panicking;

impl cc_relay::net::server::Handler for Panicking {
    fn handle(
        &self,
        req: &cc_relay::net::server::Request,
        _resp: &mut cc_relay::net::server::ResponseWriter<'_>,
    ) {
        if req.head.path() == "/boom" {
            panic!("handler bug");
        }
        let _ = _resp.send(200, &[], b"fine");
    }
}

fn bare_server(limits: cc_relay::net::server::ServerLimits) -> std::net::SocketAddr {
    let server = cc_relay::net::server::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        limits,
        Arc::new(Panicking),
    )
    .unwrap();
    let addr = server.handle().unwrap().addr;
    std::thread::spawn(move || server.run());
    addr
}

fn limits() -> cc_relay::net::server::ServerLimits {
    cc_relay::net::server::ServerLimits::from_config(&cc_relay::config::ServerConfig::default())
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_lives_on() {
    let addr = bare_server(limits());
    let r = raw_request(addr, b"GET /boom HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert_eq!(raw_request(addr, b"GET /ok HTTP/1.1\r\n\r\n").status, 200);
}

#[test]
fn connection_limit_refuses_with_503() {
    let mut l = limits();
    l.max_connections = 2;
    let addr = bare_server(l);
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Both are being served (their threads are up) before the third arrives.
    for mut c in &held {
        c.write_all(b"GET /ok HTTP/1.1\r\n\r\n").unwrap();
        let mut reader = BufReader::new(c.try_clone().unwrap());
        assert_eq!(read_response(&mut reader).status, 200);
    }
    let r = raw_request(addr, b"GET /ok HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    drop(held);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let mut l = limits();
    l.idle_timeout = Duration::from_millis(200);
    let addr = bare_server(l);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /ok HTTP/1.1\r\n\r\n").unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    assert_eq!(read_response(&mut reader).status, 200);
    reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        reader.read(&mut [0u8; 1]).unwrap(),
        0,
        "closed by the server"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}
