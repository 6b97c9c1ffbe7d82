//! Test support for the resolver tests: a scriptable DNS server on loopback (UDP and TCP
//! on the same port, on one or more loopback addresses) that records every query, a
//! `Zone` script for the common case, and an answer writer that lays messages out plainly
//! (no compression) so it shares nothing with the codec under test.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;

use cc_relay::codec::dns::parse_message;

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;

pub const NOERROR: u8 = 0;
pub const FORMERR: u8 = 1;
pub const SERVFAIL: u8 = 2;
pub const NXDOMAIN: u8 = 3;
pub const REFUSED: u8 = 5;

/// One query as the mock saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenQuery {
    /// The mock address it arrived at.
    pub server: IpAddr,
    pub over_tcp: bool,
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    /// The query carried an additional record (our only one is the EDNS0 OPT).
    pub edns: bool,
}

/// What the mock sends back for one query.
#[derive(Debug, Clone)]
pub enum Reply {
    /// From the socket the query arrived on (over TCP: length-prefixed on the connection).
    Packet(Vec<u8>),
    /// UDP only: from another socket of the same address (another source port), as an
    /// off-path spoofer would.
    FromOtherPort(Vec<u8>),
}

pub type Script = Arc<dyn Fn(&SeenQuery) -> Vec<Reply> + Send + Sync>;

/// The mock server. Its threads live until the test process ends.
pub struct MockDns {
    pub port: u16,
    seen: Arc<Mutex<Vec<SeenQuery>>>,
}

impl MockDns {
    /// Listens on UDP and TCP at `ips` (all loopback), one port for all.
    pub fn start(ips: &[IpAddr], script: Script) -> MockDns {
        let seen = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..50 {
            if let Some(sockets) = bind_all(ips) {
                let port = sockets[0].0.local_addr().unwrap().port();
                for (udp, tcp) in sockets {
                    spawn_udp(udp, script.clone(), seen.clone());
                    spawn_tcp(tcp, script.clone(), seen.clone());
                }
                return MockDns { port, seen };
            }
        }
        panic!("no free port for the mock DNS server");
    }

    /// Listens on UDP and TCP at exactly `addr` (e.g. port 53, which needs root); None
    /// when it cannot be bound.
    pub fn start_at(addr: SocketAddr, script: Script) -> Option<MockDns> {
        let udp = UdpSocket::bind(addr).ok()?;
        let tcp = TcpListener::bind(addr).ok()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        spawn_udp(udp, script.clone(), seen.clone());
        spawn_tcp(tcp, script, seen.clone());
        Some(MockDns {
            port: addr.port(),
            seen,
        })
    }

    pub fn on_localhost(script: Script) -> MockDns {
        MockDns::start(&[IpAddr::V4(Ipv4Addr::LOCALHOST)], script)
    }

    pub fn seen(&self) -> Vec<SeenQuery> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// `(name, qtype)` of every query, in arrival order.
    pub fn asked(&self) -> Vec<(String, u16)> {
        self.seen().into_iter().map(|q| (q.name, q.qtype)).collect()
    }
}

fn bind_all(ips: &[IpAddr]) -> Option<Vec<(UdpSocket, TcpListener)>> {
    let first = UdpSocket::bind(SocketAddr::new(ips[0], 0)).ok()?;
    let port = first.local_addr().ok()?.port();
    let mut sockets = vec![(
        first,
        TcpListener::bind(SocketAddr::new(ips[0], port)).ok()?,
    )];
    for ip in &ips[1..] {
        let udp = UdpSocket::bind(SocketAddr::new(*ip, port)).ok()?;
        let tcp = TcpListener::bind(SocketAddr::new(*ip, port)).ok()?;
        sockets.push((udp, tcp));
    }
    Some(sockets)
}

fn seen_query(bytes: &[u8], server: IpAddr, over_tcp: bool) -> Option<SeenQuery> {
    let message = parse_message(bytes).ok()?;
    let question = message.question?;
    Some(SeenQuery {
        server,
        over_tcp,
        id: message.header.id,
        name: question.name,
        qtype: question.qtype,
        edns: message.header.additional_count > 0,
    })
}

fn spawn_udp(socket: UdpSocket, script: Script, seen: Arc<Mutex<Vec<SeenQuery>>>) {
    thread::spawn(move || {
        let server = socket.local_addr().unwrap().ip();
        let mut buf = [0u8; 4096];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let Some(query) = seen_query(&buf[..len], server, false) else {
                continue;
            };
            seen.lock().unwrap().push(query.clone());
            for reply in script(&query) {
                match reply {
                    Reply::Packet(bytes) => {
                        let _ = socket.send_to(&bytes, from);
                    }
                    Reply::FromOtherPort(bytes) => {
                        let other = UdpSocket::bind(SocketAddr::new(server, 0)).unwrap();
                        let _ = other.send_to(&bytes, from);
                    }
                }
            }
        }
    });
}

fn spawn_tcp(listener: TcpListener, script: Script, seen: Arc<Mutex<Vec<SeenQuery>>>) {
    thread::spawn(move || {
        let server = listener.local_addr().unwrap().ip();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let script = script.clone();
            let seen = seen.clone();
            thread::spawn(move || serve_tcp(stream, server, script, seen));
        }
    });
}

fn serve_tcp(
    mut stream: TcpStream,
    server: IpAddr,
    script: Script,
    seen: Arc<Mutex<Vec<SeenQuery>>>,
) {
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let Some(query) = seen_query(&query, server, true) else {
            return;
        };
        seen.lock().unwrap().push(query.clone());
        for reply in script(&query) {
            if let Reply::Packet(bytes) = reply {
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                if stream.write_all(&framed).is_err() {
                    return;
                }
            }
        }
    }
}

/// Record data for the answer writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
}

impl Data {
    fn rtype(&self) -> u16 {
        match self {
            Data::A(_) => TYPE_A,
            Data::Aaaa(_) => TYPE_AAAA,
            Data::Cname(_) => TYPE_CNAME,
        }
    }
}

/// One answer record: owner, TTL, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    pub owner: String,
    pub ttl: u32,
    pub data: Data,
}

pub fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Rr {
    Rr {
        owner: owner.into(),
        ttl,
        data: Data::A(Ipv4Addr::from(ip)),
    }
}

pub fn aaaa(owner: &str, ttl: u32, ip: &str) -> Rr {
    Rr {
        owner: owner.into(),
        ttl,
        data: Data::Aaaa(ip.parse().unwrap()),
    }
}

pub fn cname(owner: &str, ttl: u32, target: &str) -> Rr {
    Rr {
        owner: owner.into(),
        ttl,
        data: Data::Cname(target.into()),
    }
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A response: QR RD RA, `rcode`, TC when `truncated`, the question echoed, `records` as
/// the answer section.
pub fn response(
    id: u16,
    name: &str,
    qtype: u16,
    rcode: u8,
    truncated: bool,
    records: &[Rr],
) -> Vec<u8> {
    response_with_soa(id, name, qtype, rcode, truncated, records, None)
}

/// `response`, plus an SOA for `soa_zone` in the authority section (how servers mark
/// NXDOMAIN and NODATA answers).
pub fn response_with_soa(
    id: u16,
    name: &str,
    qtype: u16,
    rcode: u8,
    truncated: bool,
    records: &[Rr],
    soa_zone: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.push(0x81 | if truncated { 0x02 } else { 0 });
    out.push(0x80 | rcode);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&u16::from(soa_zone.is_some()).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    write_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    for record in records {
        write_name(&mut out, &record.owner);
        out.extend_from_slice(&record.data.rtype().to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&record.ttl.to_be_bytes());
        let mut rdata = Vec::new();
        match &record.data {
            Data::A(ip) => rdata.extend_from_slice(&ip.octets()),
            Data::Aaaa(ip) => rdata.extend_from_slice(&ip.octets()),
            Data::Cname(target) => write_name(&mut rdata, target),
        }
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    if let Some(zone) = soa_zone {
        write_name(&mut out, zone);
        out.extend_from_slice(&6u16.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&300u32.to_be_bytes());
        let mut rdata = Vec::new();
        write_name(&mut rdata, &format!("ns1.{zone}"));
        write_name(&mut rdata, &format!("hostmaster.{zone}"));
        for value in [1u32, 7200, 3600, 1_209_600, 300] {
            rdata.extend_from_slice(&value.to_be_bytes());
        }
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

/// The last two labels of `name`: the zone the mock pretends is authoritative.
fn zone_of(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

/// A response to `query` with `rcode` and `records`.
pub fn reply_to(query: &SeenQuery, rcode: u8, records: &[Rr]) -> Vec<u8> {
    response(query.id, &query.name, query.qtype, rcode, false, records)
}

/// Records by owner name. A query gets the chain starting at its name (CNAMEs followed
/// while the zone has their targets and `complete_chains`), NODATA when the name has
/// only other types, NXDOMAIN when the zone does not know it; negative answers carry an
/// SOA in the authority section, as real servers send them.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    records: Vec<Rr>,
    pub complete_chains: bool,
}

impl Zone {
    pub fn new(records: Vec<Rr>) -> Zone {
        Zone {
            records,
            complete_chains: true,
        }
    }

    pub fn answer(&self, query: &SeenQuery) -> Vec<u8> {
        let mut name = query.name.clone();
        let mut answer = Vec::new();
        if !self.records.iter().any(|r| r.owner == name) {
            let zone = zone_of(&name);
            return response_with_soa(
                query.id,
                &query.name,
                query.qtype,
                NXDOMAIN,
                false,
                &[],
                Some(&zone),
            );
        }
        for _ in 0..8 {
            let owned: Vec<&Rr> = self.records.iter().filter(|r| r.owner == name).collect();
            let matching: Vec<Rr> = owned
                .iter()
                .filter(|r| r.data.rtype() == query.qtype)
                .map(|r| (*r).clone())
                .collect();
            if !matching.is_empty() {
                answer.extend(matching);
                break;
            }
            let alias = owned.iter().find_map(|r| match &r.data {
                Data::Cname(target) => Some(((*r).clone(), target.clone())),
                _ => None,
            });
            match alias {
                Some((record, target)) => {
                    answer.push(record);
                    if !self.complete_chains {
                        return reply_to(query, NOERROR, &answer);
                    }
                    if !self.records.iter().any(|r| r.owner == target) {
                        // A target this zone does not know: the chain leaves the answer.
                        return reply_to(query, NOERROR, &answer);
                    }
                    name = target;
                }
                None => {
                    // NODATA: the name exists, without this type.
                    let zone = zone_of(&name);
                    return response_with_soa(
                        query.id,
                        &query.name,
                        query.qtype,
                        NOERROR,
                        false,
                        &answer,
                        Some(&zone),
                    );
                }
            }
        }
        reply_to(query, NOERROR, &answer)
    }

    pub fn script(self) -> Script {
        Arc::new(move |query| vec![Reply::Packet(self.answer(query))])
    }
}
