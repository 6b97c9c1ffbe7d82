//! Checks that the bench harness (benches/common) measures what it claims: percentile
//! math, stamp parsing, event splitting, and that the mock's stamped stream arrives
//! whole directly, through the bare forwarder and through the relay. Runs under
//! `cargo test`, so a relay change that would silently break the benches fails here.

#[path = "../benches/common/mod.rs"]
mod bench_common;

use bench_common::*;

#[test]
fn nearest_rank_percentiles() {
    let mut v: Vec<u64> = (1..=100).rev().collect();
    let s = summarize(&mut v);
    assert_eq!((s.n, s.p50, s.p90, s.p99, s.max), (100, 50, 90, 99, 100));
    let mut one = vec![7];
    let s = summarize(&mut one);
    assert_eq!((s.p50, s.p99, s.max), (7, 7, 7));
    assert_eq!(percentile(&[], 0.5), 0);
    // 10 values: p99 is the largest (rank ceil(9.9) = 10), p90 the ninth.
    let sorted: Vec<u64> = (10..20).collect();
    assert_eq!(
        (percentile(&sorted, 0.9), percentile(&sorted, 0.99)),
        (18, 19)
    );
}

#[test]
fn stamps_and_parameters_are_read_exactly() {
    let event = br#"data: {"delta":{"text":"x"},"t":123456789}"#;
    assert_eq!(json_u64(event, "t"), Some(123456789));
    assert_eq!(
        json_u64(br#"{"bench_events":40,"x":1}"#, "bench_events"),
        Some(40)
    );
    assert_eq!(json_u64(br#"{"t":"no"}"#, "t"), None);
    assert_eq!(json_u64(br#"{"other":1}"#, "t"), None);
}

#[test]
fn events_split_at_blank_lines_across_reads() {
    let mut splitter = EventSplitter::default();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    splitter.push(b"event: a\ndata: 1\n", |e| seen.push(e.to_vec()));
    assert!(seen.is_empty());
    splitter.push(b"\nevent: b\ndata: 2\n\nevent: c", |e| {
        seen.push(e.to_vec())
    });
    splitter.push(b"\ndata: 3\n\n", |e| seen.push(e.to_vec()));
    assert_eq!(
        seen,
        vec![
            b"event: a\ndata: 1\n\n".to_vec(),
            b"event: b\ndata: 2\n\n".to_vec(),
            b"event: c\ndata: 3\n\n".to_vec(),
        ]
    );
}

/// One unpaced stream of 3 stamped deltas and one plain request via `addr`.
fn check_path(addr: std::net::SocketAddr) {
    let mut wire = Wire::connect(addr).expect("connect");
    let mut latencies = Vec::new();
    let request = messages_request(&stream_body(3, 0, 0));
    let seen = stream_once(&mut wire, &request, &mut latencies).expect("stream");
    // message_start, content_block_start, 3 deltas, content_block_stop, message_delta,
    // message_stop.
    assert_eq!(seen.events, 8);
    assert!(seen.saw_message_stop);
    assert_eq!(latencies.len(), 3);
    assert!(seen.ttfb_ns > 0);
    // Same connection, kept alive: a plain request right after.
    let took = request_once(&mut wire, &messages_request(PLAIN_BODY)).expect("plain");
    assert!(took > 0);
}

#[test]
fn mock_stream_arrives_whole_directly() {
    let mock = MockUpstream::start().expect("mock");
    check_path(mock.addr);
    assert_eq!(mock.connections_accepted(), 1);
}

#[test]
fn mock_stream_arrives_whole_through_the_forwarder() {
    let mock = MockUpstream::start().expect("mock");
    let forwarder = Forwarder::start(mock.addr).expect("forwarder");
    check_path(forwarder.addr);
}

#[test]
fn mock_stream_arrives_whole_through_the_relay() {
    let mock = MockUpstream::start().expect("mock");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let relay =
        cc_relay::cli::serve::spawn(relay_config(&mock.url()), Some(listen)).expect("relay");
    check_path(relay.handle.addr);
    // Both requests went over one pooled upstream connection.
    assert_eq!(mock.connections_accepted(), 1);
}

#[test]
fn own_process_figures_are_readable() {
    let pid = std::process::id();
    assert!(rss_kb(pid).expect("VmRSS") > 0);
    assert!(threads(pid).expect("Threads") >= 1);
    cpu_time_us(pid).expect("cpu time");
    assert!(cpu_time_us(u32::MAX).is_err());
}
