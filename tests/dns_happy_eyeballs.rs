//! `connect_happy_eyeballs` on loopback: the interleaved order, moving on at once when an
//! attempt fails, starting the next attempt after the delay when one hangs, closing an
//! attempt that connects after the race is won, and the deadline. A connect is made to
//! hang by filling a listener's accept queue (Linux then drops further SYNs); each test
//! checks the hang really happens before relying on it.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cc_relay::net::resolver::{
    connect_happy_eyeballs, interleave_families, CONNECTION_ATTEMPT_DELAY,
};

const LOCAL_1: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const LOCAL_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOCAL_3: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const LOCAL_4: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A listener whose accept queue is full, and the connections that fill it.
struct Hanging {
    listener: TcpListener,
    fillers: Vec<TcpStream>,
}

fn hanging_listener(address: SocketAddr) -> Hanging {
    let listener = TcpListener::bind(address).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4096 {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                return Hanging { listener, fillers };
            }
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled: connects cannot be made to hang here");
}

/// Binds accepting listeners at `accepting` and full ones at `hanging`, all on one port.
fn listeners(accepting: &[IpAddr], hanging: &[IpAddr]) -> (u16, Vec<TcpListener>, Vec<Hanging>) {
    for _ in 0..50 {
        let Ok(probe) = TcpListener::bind(SocketAddr::new(LOCAL_1, 0)) else {
            continue;
        };
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let open: Result<Vec<TcpListener>, _> = accepting
            .iter()
            .map(|ip| TcpListener::bind(SocketAddr::new(*ip, port)))
            .collect();
        let Ok(open) = open else { continue };
        if hanging
            .iter()
            .any(|ip| TcpListener::bind(SocketAddr::new(*ip, port)).is_err())
        {
            continue;
        }
        let full = hanging
            .iter()
            .map(|ip| hanging_listener(SocketAddr::new(*ip, port)))
            .collect();
        return (port, open, full);
    }
    panic!("no free port");
}

/// A port nothing listens on (the probe is closed on return), so connects are refused.
fn unused_port() -> u16 {
    let probe = TcpListener::bind(SocketAddr::new(LOCAL_1, 0)).unwrap();
    probe.local_addr().unwrap().port()
}

#[test]
fn families_alternate_starting_with_the_first() {
    let v6a = ip("2001:db8::1");
    let v6b = ip("2001:db8::2");
    let v4a = ip("192.0.2.1");
    let v4b = ip("192.0.2.2");
    let v4c = ip("192.0.2.3");
    assert_eq!(
        interleave_families(&[v6a, v6b, v4a, v4b, v4c]),
        vec![v6a, v4a, v6b, v4b, v4c]
    );
    assert_eq!(interleave_families(&[v4a, v4b, v6a]), vec![v4a, v6a, v4b]);
    assert_eq!(interleave_families(&[v4a, v4a, v6a, v4a]), vec![v4a, v6a]);
    assert_eq!(interleave_families(&[]), Vec::<IpAddr>::new());
}

#[test]
fn no_addresses_is_invalid_input() {
    let deadline = Instant::now() + Duration::from_secs(1);
    let error = connect_happy_eyeballs(&[], 80, deadline).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn refused_attempts_move_on_at_once() {
    let (port, open, _) = listeners(&[LOCAL_3], &[]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    // Nothing listens on .1 and .2 at this port: both are refused at once, and the
    // third address must be tried immediately, not after two attempt delays.
    let stream = connect_happy_eyeballs(&[LOCAL_1, LOCAL_2, LOCAL_3], port, deadline).unwrap();
    let took = started.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), SocketAddr::new(LOCAL_3, port));
    assert!(
        took < CONNECTION_ATTEMPT_DELAY * 2,
        "waited after failures: {took:?}"
    );
    drop(open);
}

#[test]
fn every_attempt_refused_reports_the_error() {
    let port = unused_port();
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = connect_happy_eyeballs(&[LOCAL_2, LOCAL_3], port, deadline).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
    let single = connect_happy_eyeballs(&[LOCAL_2], port, deadline).unwrap_err();
    assert_eq!(single.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn a_hanging_attempt_gets_company_after_the_delay_and_loses() {
    let (port, open, mut full) = listeners(&[LOCAL_1], &[LOCAL_2]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let stream = connect_happy_eyeballs(&[LOCAL_2, LOCAL_1], port, deadline).unwrap();
    let took = started.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), SocketAddr::new(LOCAL_1, port));
    assert!(
        took >= CONNECTION_ATTEMPT_DELAY,
        "second attempt too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Make room in the hanging listener's queue: the losing attempt's retransmitted SYN
    // now connects, and the connection must be closed by us, not kept.
    let hanging = full.remove(0);
    let fillers: Vec<SocketAddr> = hanging
        .fillers
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    let mut late = None;
    for accepted in hanging.listener.incoming() {
        let accepted = accepted.unwrap();
        if !fillers.contains(&accepted.peer_addr().unwrap()) {
            late = Some(accepted);
            break;
        }
    }
    let mut late = late.expect("the losing attempt connected");
    late.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(late.read(&mut byte).unwrap(), 0, "the loser was closed");
    drop(open);
}

#[test]
fn the_deadline_ends_attempts_that_never_connect() {
    let (port, _open, _full) = listeners(&[], &[LOCAL_3, LOCAL_4]);
    let started = Instant::now();
    let error = connect_happy_eyeballs(
        &[LOCAL_3, LOCAL_4],
        port,
        started + Duration::from_millis(600),
    )
    .unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
