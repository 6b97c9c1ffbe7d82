//! The stub resolver end to end against a mock DNS server on loopback (UDP + TCP on a
//! random port; `tests/fixtures/dns/resolv.conf` names 127.0.0.1 and the test sets the
//! port with `with_port`): hosts file, UDP answers, TC -> TCP, wrong-id and spoofed
//! replies ignored, timeout then the next nameserver, SERVFAIL / NXDOMAIN / NODATA, search
//! list per ndots, CNAME re-query, EDNS FORMERR fallback, rotate, cache hits and TTL expiry
//! with an injected clock, deadlines; then the resolv.conf / hosts parsers and the cache
//! on their own.

mod dns_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_relay::net::resolver::{
    DnsCache, HostsFile, ResolvConf, ResolveError, Resolver, MAX_CACHE_TTL,
};
use dns_support::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dns")
        .join(name)
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// The fixture files, pointed at `mock`.
fn resolver_for(mock: &MockDns) -> Resolver {
    Resolver::from_files(&fixture("hosts"), &fixture("resolv.conf"))
        .unwrap()
        .with_port(mock.port)
}

/// The fixture files with the conf adjusted and the given nameservers.
fn resolver_with(
    mock: &MockDns,
    servers: &[IpAddr],
    adjust: impl FnOnce(&mut ResolvConf),
) -> Resolver {
    let text = std::fs::read_to_string(fixture("resolv.conf")).unwrap();
    let mut conf = ResolvConf::parse(&text);
    conf.nameservers = servers.iter().map(|ip| SocketAddr::new(*ip, 53)).collect();
    adjust(&mut conf);
    let hosts = HostsFile::parse(&std::fs::read_to_string(fixture("hosts")).unwrap());
    Resolver::new(hosts, conf).with_port(mock.port)
}

fn api_zone() -> Zone {
    Zone::new(vec![
        a("api.anthropic.com", 30, [192, 0, 2, 10]),
        a("api.anthropic.com", 30, [192, 0, 2, 11]),
        aaaa("api.anthropic.com", 60, "2001:db8::10"),
    ])
}

const LOCAL_1: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const LOCAL_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOCAL_3: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

#[test]
fn fixture_conf_is_what_the_tests_assume() {
    let resolver = Resolver::from_files(&fixture("hosts"), &fixture("resolv.conf")).unwrap();
    let conf = resolver.conf();
    assert_eq!(conf.nameservers, vec!["127.0.0.1:53".parse().unwrap()]);
    assert_eq!(conf.search, vec!["corp.example", "svc.example"]);
    assert_eq!(conf.ndots, 2);
    assert_eq!(conf.timeout, Duration::from_secs(2));
    assert_eq!(conf.attempts, 1);
    assert!(!conf.rotate && !conf.edns0);
    let moved = resolver.with_port(5353);
    assert_eq!(
        moved.conf().nameservers,
        vec!["127.0.0.1:5353".parse().unwrap()]
    );
}

#[test]
fn hosts_file_answers_without_asking_dns() {
    let mock = MockDns::on_localhost(api_zone().script());
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("upstream.internal", soon()),
        Ok(vec![v4(192, 0, 2, 50), v6("2001:db8::50")])
    );
    assert_eq!(
        resolver.resolve("UPSTREAM.", soon()),
        Ok(vec![v4(192, 0, 2, 50)])
    );
    assert_eq!(
        resolver.resolve("mixed.case.internal", soon()),
        Ok(vec![v4(192, 0, 2, 51)])
    );
    assert_eq!(
        resolver.resolve("localhost", soon()),
        Ok(vec![v4(127, 0, 0, 1), v6("::1")])
    );
    assert_eq!(mock.count(), 0);
}

#[test]
fn ip_literals_and_dot_localhost_bypass_everything() {
    let mock = MockDns::on_localhost(api_zone().script());
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("10.1.2.3", soon()),
        Ok(vec![v4(10, 1, 2, 3)])
    );
    assert_eq!(
        resolver.resolve("2001:db8::1", soon()),
        Ok(vec![v6("2001:db8::1")])
    );
    assert_eq!(
        resolver.resolve("[2001:db8::1]", soon()),
        Ok(vec![v6("2001:db8::1")])
    );
    assert_eq!(
        resolver.resolve("app.localhost", soon()),
        Ok(vec![v6("::1"), v4(127, 0, 0, 1)])
    );
    assert_eq!(
        resolver.resolve("bad name", soon()),
        Err(ResolveError::InvalidName("bad name".into()))
    );
    assert_eq!(
        resolver.resolve("a..b", soon()),
        Err(ResolveError::InvalidName("a..b".into()))
    );
    assert_eq!(mock.count(), 0);
}

#[test]
fn udp_answer_for_a_and_aaaa() {
    let mock = MockDns::on_localhost(api_zone().script());
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("api.anthropic.com", soon()),
        Ok(vec![
            v6("2001:db8::10"),
            v4(192, 0, 2, 10),
            v4(192, 0, 2, 11)
        ])
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|q| !q.over_tcp && !q.edns && q.server == LOCAL_1));
    let mut asked = mock.asked();
    asked.sort();
    assert_eq!(
        asked,
        vec![
            ("api.anthropic.com".to_string(), TYPE_A),
            ("api.anthropic.com".to_string(), TYPE_AAAA)
        ]
    );
    assert_ne!(seen[0].id, seen[1].id, "queries in flight share no id");
}

#[test]
fn truncated_udp_answer_is_asked_again_over_tcp() {
    let many: Vec<Rr> = (1..=60)
        .map(|i| a("big.example.com", 300, [198, 51, 100, i]))
        .collect();
    let full = Zone::new(many.clone());
    let script: Script = Arc::new(move |q| {
        if q.over_tcp {
            vec![Reply::Packet(full.answer(q))]
        } else if q.qtype == TYPE_A {
            vec![Reply::Packet(response(
                q.id,
                &q.name,
                q.qtype,
                NOERROR,
                true,
                &[],
            ))]
        } else {
            vec![Reply::Packet(reply_to(q, NOERROR, &[]))]
        }
    });
    let mock = MockDns::on_localhost(script);
    let resolver = resolver_for(&mock);
    let expect: Vec<IpAddr> = (1..=60).map(|i| v4(198, 51, 100, i)).collect();
    assert_eq!(resolver.resolve("big.example.com", soon()), Ok(expect));
    let tcp: Vec<SeenQuery> = mock.seen().into_iter().filter(|q| q.over_tcp).collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(
        (tcp[0].name.as_str(), tcp[0].qtype),
        ("big.example.com", TYPE_A)
    );
}

#[test]
fn wrong_id_wrong_question_and_spoofed_source_are_ignored() {
    let script: Script = Arc::new(|q| {
        let good = a(&q.name, 60, [192, 0, 2, 1]);
        if q.qtype != TYPE_A {
            return vec![Reply::Packet(reply_to(q, NOERROR, &[]))];
        }
        vec![
            // Right question, wrong id.
            Reply::Packet(response(
                q.id ^ 0x5555,
                &q.name,
                q.qtype,
                NOERROR,
                false,
                &[a(&q.name, 60, [6, 6, 6, 6])],
            )),
            // Right id, another name.
            Reply::Packet(response(
                q.id,
                "evil.example",
                q.qtype,
                NOERROR,
                false,
                &[a("evil.example", 60, [6, 6, 6, 7])],
            )),
            // Right id, right question, another type.
            Reply::Packet(response(q.id, &q.name, TYPE_AAAA, NOERROR, false, &[])),
            // Everything right, but from another source port.
            Reply::FromOtherPort(reply_to(q, NOERROR, &[a(&q.name, 60, [6, 6, 6, 8])])),
            // Garbage.
            Reply::Packet(vec![0xFF; 7]),
            // Finally the real answer.
            Reply::Packet(reply_to(q, NOERROR, &[good])),
        ]
    });
    let mock = MockDns::on_localhost(script);
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("api.anthropic.com", soon()),
        Ok(vec![v4(192, 0, 2, 1)])
    );
    assert_eq!(mock.count(), 2, "the bad replies caused no retry");
}

#[test]
fn silent_nameserver_times_out_then_the_next_one_answers() {
    let zone = api_zone();
    let script: Script = Arc::new(move |q| {
        if q.server == LOCAL_1 {
            vec![]
        } else {
            vec![Reply::Packet(zone.answer(q))]
        }
    });
    let mock = MockDns::start(&[LOCAL_1, LOCAL_2], script);
    let per_try = Duration::from_millis(300);
    let resolver = resolver_with(&mock, &[LOCAL_1, LOCAL_2], |conf| conf.timeout = per_try);
    let started = Instant::now();
    let result = resolver.resolve("api.anthropic.com", soon());
    let took = started.elapsed();
    assert_eq!(
        result,
        Ok(vec![
            v6("2001:db8::10"),
            v4(192, 0, 2, 10),
            v4(192, 0, 2, 11)
        ])
    );
    assert!(took >= per_try, "moved on before the timeout: {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let servers: Vec<IpAddr> = mock.seen().iter().map(|q| q.server).collect();
    assert_eq!(servers, vec![LOCAL_1, LOCAL_1, LOCAL_2, LOCAL_2]);
}

#[test]
fn refused_port_moves_to_the_next_nameserver_without_waiting() {
    // Nothing listens on 127.0.0.3 at the mock's port: the kernel answers with ICMP
    // port unreachable, which a connected UDP socket reports at once.
    let mock = MockDns::start(&[LOCAL_2], api_zone().script());
    let resolver = resolver_with(&mock, &[LOCAL_3, LOCAL_2], |conf| {
        conf.timeout = Duration::from_secs(20);
    });
    let started = Instant::now();
    assert_eq!(
        resolver
            .resolve("api.anthropic.com", soon())
            .map(|a| a.len()),
        Ok(3)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_refusing_nameserver_is_a_network_error_not_a_timeout() {
    let mock = MockDns::start(&[LOCAL_2], api_zone().script());
    let resolver = resolver_with(&mock, &[LOCAL_3], |conf| {
        conf.timeout = Duration::from_secs(20);
    });
    let started = Instant::now();
    let result = resolver.resolve("api.anthropic.com", soon());
    assert!(
        matches!(&result, Err(ResolveError::Network(host, why))
            if host == "api.anthropic.com" && why.contains("refused")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn resolver_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Resolver>();
    let mock = MockDns::on_localhost(api_zone().script());
    let resolver = Arc::new(resolver_for(&mock));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let resolver = resolver.clone();
            std::thread::spawn(move || resolver.resolve("api.anthropic.com", soon()))
        })
        .collect();
    for worker in workers {
        assert_eq!(worker.join().unwrap().map(|a| a.len()), Ok(3));
    }
}

#[test]
fn servfail_tries_the_next_nameserver_then_reports_it() {
    let zone = api_zone();
    let script: Script = Arc::new(move |q| {
        if q.server == LOCAL_1 || q.name == "broken.example.com" {
            vec![Reply::Packet(reply_to(q, SERVFAIL, &[]))]
        } else {
            vec![Reply::Packet(zone.answer(q))]
        }
    });
    let mock = MockDns::start(&[LOCAL_1, LOCAL_2], script);
    let resolver = resolver_with(&mock, &[LOCAL_1, LOCAL_2], |_| {});
    assert_eq!(
        resolver
            .resolve("api.anthropic.com", soon())
            .map(|a| a.len()),
        Ok(3)
    );
    let before = mock.count();
    assert_eq!(
        resolver.resolve("broken.example.com.", soon()),
        Err(ResolveError::ServerFailure(
            "broken.example.com.".into(),
            "server answered SERVFAIL".into()
        ))
    );
    // Two types, two servers, one attempt: four queries and no more.
    assert_eq!(mock.count() - before, 4);
}

#[test]
fn nxdomain_and_nodata_are_told_apart() {
    let zone = Zone::new(vec![a("v4only.example.com", 60, [192, 0, 2, 4])]);
    let mock = MockDns::on_localhost(zone.script());
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("nope.example.com.", soon()),
        Err(ResolveError::NotFound("nope.example.com.".into()))
    );
    assert_eq!(
        resolver.resolve("v4only.example.com", soon()),
        Ok(vec![v4(192, 0, 2, 4)])
    );
    let only_aaaa_missing = Zone::new(vec![cname("alias.example.com", 60, "v4only.example.com")]);
    let mock = MockDns::on_localhost(only_aaaa_missing.script());
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("alias.example.com.", soon()),
        Err(ResolveError::NoAddresses("alias.example.com.".into()))
    );
}

#[test]
fn search_list_and_ndots_order_the_candidates() {
    let zone = Zone::new(vec![
        a("db.corp.example", 60, [10, 0, 0, 1]),
        a("x.y", 60, [10, 0, 0, 2]),
        a("a.b.c", 60, [10, 0, 0, 3]),
        a("q.svc.example", 60, [10, 0, 0, 4]),
    ]);
    let mock = MockDns::on_localhost(zone.script());
    let resolver = resolver_for(&mock);
    let names = |mock: &MockDns, from: usize| -> Vec<String> {
        let mut names: Vec<String> = mock.asked()[from..]
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        names.dedup();
        names
    };

    // No dot (< ndots 2): the search list first, and the first hit ends it.
    assert_eq!(resolver.resolve("db", soon()), Ok(vec![v4(10, 0, 0, 1)]));
    assert_eq!(names(&mock, 0), vec!["db.corp.example"]);

    // One dot: every search domain, then the name as is.
    let from = mock.count();
    assert_eq!(resolver.resolve("x.y", soon()), Ok(vec![v4(10, 0, 0, 2)]));
    assert_eq!(
        names(&mock, from),
        vec!["x.y.corp.example", "x.y.svc.example", "x.y"]
    );

    // Two dots (>= ndots): the name as is first.
    let from = mock.count();
    assert_eq!(resolver.resolve("a.b.c", soon()), Ok(vec![v4(10, 0, 0, 3)]));
    assert_eq!(names(&mock, from), vec!["a.b.c"]);

    // The second search domain.
    let from = mock.count();
    assert_eq!(resolver.resolve("q", soon()), Ok(vec![v4(10, 0, 0, 4)]));
    assert_eq!(names(&mock, from), vec!["q.corp.example", "q.svc.example"]);

    // A trailing dot: only the name itself.
    let from = mock.count();
    assert_eq!(
        resolver.resolve("db.", soon()),
        Err(ResolveError::NotFound("db.".into()))
    );
    assert_eq!(names(&mock, from), vec!["db"]);
}

#[test]
fn cname_chain_leaving_the_answer_is_asked_for_again() {
    let mut zone = Zone::new(vec![
        cname("www.example.com", 300, "www.example.com.cdn.example.net"),
        cname("www.example.com.cdn.example.net", 40, "edge.example.net"),
        a("edge.example.net", 50, [198, 51, 100, 9]),
    ]);
    zone.complete_chains = false;
    let mock = MockDns::on_localhost(zone.script());
    let resolver = resolver_for(&mock);
    let now = Instant::now();
    assert_eq!(
        resolver.resolve_at("www.example.com", now, soon()),
        Ok(vec![v4(198, 51, 100, 9)])
    );
    let a_names: Vec<String> = mock
        .asked()
        .into_iter()
        .filter(|(_, t)| *t == TYPE_A)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        a_names,
        vec![
            "www.example.com",
            "www.example.com.cdn.example.net",
            "edge.example.net"
        ]
    );
    // Cached for the smallest TTL along the chain (40 s).
    let count = mock.count();
    let at = |secs| now + Duration::from_secs(secs);
    assert!(resolver
        .resolve_at("www.example.com", at(39), soon())
        .is_ok());
    assert_eq!(mock.count(), count);
    assert!(resolver
        .resolve_at("www.example.com", at(40), soon())
        .is_ok());
    assert!(mock.count() > count);
}

#[test]
fn cname_chain_inside_one_answer_needs_no_second_query() {
    let zone = Zone::new(vec![
        cname("www.example.com", 300, "edge.example.net"),
        a("edge.example.net", 50, [198, 51, 100, 9]),
    ]);
    let mock = MockDns::on_localhost(zone.script());
    let resolver = resolver_for(&mock);
    assert_eq!(
        resolver.resolve("www.example.com", soon()),
        Ok(vec![v4(198, 51, 100, 9)])
    );
    assert_eq!(mock.count(), 2);
}

#[test]
fn formerr_to_edns_is_asked_again_without_it() {
    let zone = api_zone();
    let script: Script = Arc::new(move |q| {
        if q.edns {
            vec![Reply::Packet(reply_to(q, FORMERR, &[]))]
        } else {
            vec![Reply::Packet(zone.answer(q))]
        }
    });
    let mock = MockDns::on_localhost(script);
    let resolver = resolver_with(&mock, &[LOCAL_1], |conf| conf.edns0 = true);
    assert_eq!(
        resolver
            .resolve("api.anthropic.com", soon())
            .map(|a| a.len()),
        Ok(3)
    );
    let edns: Vec<bool> = mock.seen().iter().map(|q| q.edns).collect();
    assert_eq!(edns.iter().filter(|e| **e).count(), 2);
    assert_eq!(edns.iter().filter(|e| !**e).count(), 2);
}

#[test]
fn rotate_starts_each_lookup_at_the_next_nameserver() {
    let mock = MockDns::start(
        &[LOCAL_1, LOCAL_2],
        Zone::new(vec![
            a("one.example.com", 60, [192, 0, 2, 1]),
            a("two.example.com", 60, [192, 0, 2, 2]),
        ])
        .script(),
    );
    let resolver = resolver_with(&mock, &[LOCAL_1, LOCAL_2], |conf| conf.rotate = true);
    assert!(resolver.resolve("one.example.com", soon()).is_ok());
    assert!(resolver.resolve("two.example.com", soon()).is_ok());
    let by_name: Vec<(String, IpAddr)> = mock
        .seen()
        .into_iter()
        .map(|q| (q.name, q.server))
        .collect();
    assert!(by_name
        .iter()
        .all(|(n, s)| (n == "one.example.com") == (*s == LOCAL_1)));
}

#[test]
fn cache_hit_and_ttl_expiry_with_an_injected_clock() {
    let mock = MockDns::on_localhost(api_zone().script());
    let resolver = resolver_for(&mock);
    let now = Instant::now();
    let at = |secs| now + Duration::from_secs(secs);
    let first = resolver
        .resolve_at("api.anthropic.com", now, soon())
        .unwrap();
    assert_eq!(mock.count(), 2);
    // A TTL 30, AAAA TTL 60: the entry lives 30 s.
    assert_eq!(
        resolver.resolve_at("api.anthropic.com", at(29), soon()),
        Ok(first.clone())
    );
    assert_eq!(
        resolver.resolve_at("API.anthropic.com", at(1), soon()),
        Ok(first.clone())
    );
    assert_eq!(mock.count(), 2, "cache hits ask nobody");
    assert_eq!(resolver.cache().len(), 1);
    assert_eq!(
        resolver.resolve_at("api.anthropic.com", at(30), soon()),
        Ok(first)
    );
    assert_eq!(mock.count(), 4, "expired entry asked again");
}

#[test]
fn zero_ttl_answers_are_not_cached() {
    let mock =
        MockDns::on_localhost(Zone::new(vec![a("zero.example.com", 0, [192, 0, 2, 9])]).script());
    let resolver = resolver_for(&mock);
    for _ in 0..2 {
        assert_eq!(
            resolver.resolve("zero.example.com", soon()),
            Ok(vec![v4(192, 0, 2, 9)])
        );
    }
    assert_eq!(mock.count(), 4);
    assert!(resolver.cache().is_empty());
}

#[test]
fn deadline_bounds_a_lookup_against_a_silent_server() {
    let mock = MockDns::on_localhost(Arc::new(|_| vec![]));
    let resolver = resolver_with(&mock, &[LOCAL_1], |conf| {
        conf.timeout = Duration::from_secs(30);
        conf.attempts = 5;
    });
    let started = Instant::now();
    let result = resolver.resolve("api.anthropic.com", started + Duration::from_millis(200));
    let took = started.elapsed();
    assert_eq!(
        result,
        Err(ResolveError::Timeout("api.anthropic.com".into()))
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn attempts_repeat_the_round_over_all_servers() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let zone = api_zone();
    // Silent for the first round (2 queries), then answers.
    let script: Script = Arc::new(move |q| {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            vec![]
        } else {
            vec![Reply::Packet(zone.answer(q))]
        }
    });
    let mock = MockDns::on_localhost(script);
    let resolver = resolver_with(&mock, &[LOCAL_1], |conf| {
        conf.timeout = Duration::from_millis(200);
        conf.attempts = 2;
    });
    assert_eq!(
        resolver
            .resolve("api.anthropic.com", soon())
            .map(|a| a.len()),
        Ok(3)
    );
    assert_eq!(asked.load(Ordering::SeqCst), 4);
}

#[test]
fn connect_resolves_then_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mock =
        MockDns::on_localhost(Zone::new(vec![a("svc.example.com", 60, [127, 0, 0, 1])]).script());
    let resolver = resolver_for(&mock);
    let stream = resolver.connect("svc.example.com", port, soon()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    assert_eq!(stream.local_addr().unwrap(), accepted.peer_addr().unwrap());

    let error = resolver
        .connect("missing.example.com.", port, soon())
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(
        error.to_string(),
        "resolve missing.example.com.: no such host"
    );
}

#[test]
fn resolv_conf_parsing_follows_glibc() {
    let conf = ResolvConf::parse(
        "# comment\n\
         ; another\n\
         nameserver 192.0.2.53\n\
         nameserver 2001:db8::53   # trailing comment\n\
         nameserver not-an-ip\n\
         nameserver 192.0.2.53\n\
         nameserver fe80::1%7\n\
         nameserver 198.51.100.53\n\
         domain first.example\n\
         search Second.Example. third.example bad..domain\n\
         options ndots:99 timeout:0 attempts:9 rotate edns0 unknown:3 ndots:x\n",
    );
    let scoped = std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 7);
    assert_eq!(
        conf.nameservers,
        vec![
            "192.0.2.53:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            SocketAddr::V6(scoped),
        ]
    );
    assert_eq!(conf.search, vec!["second.example", "third.example"]);
    assert_eq!(conf.ndots, 15);
    assert_eq!(conf.timeout, Duration::from_secs(1));
    assert_eq!(conf.attempts, 5);
    assert!(conf.rotate && conf.edns0);

    let later_domain = ResolvConf::parse("search a.example b.example\ndomain c.example\n");
    assert_eq!(later_domain.search, vec!["c.example"]);

    let empty = ResolvConf::parse("");
    assert_eq!(empty, ResolvConf::default());
    assert_eq!(empty.nameservers, vec!["127.0.0.1:53".parse().unwrap()]);
    assert_eq!(
        (
            empty.ndots,
            empty.timeout,
            empty.attempts,
            empty.rotate,
            empty.edns0
        ),
        (1, Duration::from_secs(5), 2, false, false)
    );
}

#[test]
fn hosts_parsing() {
    let hosts = HostsFile::parse(&std::fs::read_to_string(fixture("hosts")).unwrap());
    assert_eq!(hosts.lookup("upstream"), Some(&[v4(192, 0, 2, 50)][..]));
    assert_eq!(
        hosts.lookup("ip6-localhost"),
        Some(&[IpAddr::V6(Ipv6Addr::LOCALHOST)][..])
    );
    assert_eq!(
        hosts.lookup("linklocal.internal"),
        Some(&[v6("fe80::1")][..])
    );
    assert_eq!(hosts.lookup("ignored.internal"), None);
    assert_eq!(hosts.lookup("comment"), None);
    assert_eq!(
        hosts.lookup("Mixed.Case.Internal"),
        None,
        "lookups take normalized names"
    );
}

#[test]
fn missing_files_count_as_empty() {
    let resolver =
        Resolver::from_files(&fixture("no-such-hosts"), &fixture("no-such-resolv.conf")).unwrap();
    assert_eq!(resolver.conf(), &ResolvConf::default());
    assert_eq!(resolver.hosts(), &HostsFile::default());
}

#[test]
fn cache_expiry_capacity_and_ttl_cap() {
    let cache = DnsCache::new(2);
    let now = Instant::now();
    let at = |secs| now + Duration::from_secs(secs);
    let one = vec![v4(192, 0, 2, 1)];
    cache.insert("one", one.clone(), Duration::from_secs(10), now);
    assert_eq!(cache.get("one", at(9)), Some(one.clone()));
    assert_eq!(cache.get("one", at(10)), None);
    assert!(cache.is_empty(), "an expired entry is dropped when seen");

    cache.insert("zero", one.clone(), Duration::ZERO, now);
    cache.insert("empty", vec![], Duration::from_secs(10), now);
    assert!(cache.is_empty());

    // Full: the entry closest to expiry makes room.
    cache.insert("short", one.clone(), Duration::from_secs(5), now);
    cache.insert("long", one.clone(), Duration::from_secs(50), now);
    cache.insert("new", one.clone(), Duration::from_secs(20), now);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get("short", now), None);
    assert!(cache.get("long", now).is_some() && cache.get("new", now).is_some());

    // Never longer than MAX_CACHE_TTL.
    let capped = DnsCache::new(4);
    capped.insert("week", one.clone(), Duration::from_secs(7 * 86_400), now);
    assert!(capped
        .get("week", now + MAX_CACHE_TTL - Duration::from_secs(1))
        .is_some());
    assert_eq!(capped.get("week", now + MAX_CACHE_TTL), None);
}
