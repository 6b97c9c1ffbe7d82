//! DNS messages (RFC 1035, EDNS0 from RFC 6891) for cc-relay's stub resolver: builds
//! the one kind of query a stub sends (one question, type A or AAAA, recursion desired,
//! optionally an EDNS0 OPT record advertising a 1232-byte UDP payload) and parses the
//! answers a recursive server sends back. This module owns bytes only: it never opens a
//! socket, reads a clock or picks a query id; choosing servers, retrying, TCP fallback and
//! caching belong to `net::resolver`.
//!
//! Call order: `normalize_name("Api.Example.com.")` once (validates and lowercases);
//! `encode_query(id, &name, QueryType::A, edns, &mut buf)`; send `buf`; for every reply,
//! `parse_message(&reply)` then `message.answers_query(id, &name, QueryType::A)` — a reply
//! that fails that check is someone else's and is ignored. A reply with
//! `header.truncated` must be asked again over TCP (its answer section is not parsed).
//! Otherwise `header.rcode` says NOERROR / NXDOMAIN / SERVFAIL, and
//! `message.follow_chain(&name, QueryType::A)` walks the CNAME chain inside the answer;
//! when the chain ends outside it and `message.is_negative()` is false (no SOA in the
//! authority section), the canonical name must be asked for separately.
//!
//! Names come out of the parser lowercased, without the trailing dot, with any byte that
//! is not printable ASCII (and `.` or `\` inside a label) written as `\DDD` / `\.` /
//! `\\`, so two names are equal exactly when their strings are. Compression pointers
//! must each point strictly before the place the previous jump landed: that is what every
//! real encoder emits, and it makes pointer loops impossible to follow (they are reported
//! as `PointerLoop`). The number of jumps is bounded as well, and a name longer than 255
//! bytes on the wire is rejected however it was assembled.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest name on the wire, length bytes and the root label included (RFC 1035 2.3.4).
pub const MAX_NAME_WIRE_LEN: usize = 255;
/// Longest label (RFC 1035 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The UDP payload size advertised in EDNS0 (the DNS flag day 2020 value: fits in one
/// unfragmented IPv6 packet on any sane path).
pub const EDNS_UDP_PAYLOAD: u16 = 1232;
/// How many CNAME hops `follow_chain` walks inside one answer before calling it a loop.
pub const MAX_CNAME_HOPS: usize = 16;
/// Bound on compression jumps in one name. The strictly-backwards rule already forbids
/// loops; this caps the work on a hostile but loop-free message (a 255-byte name has at
/// most 127 labels, so an honest name never needs more jumps than that).
pub const MAX_POINTER_JUMPS: usize = 127;

/// Resource record types this codec understands.
pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
/// The Internet class; records of any other class are never used as addresses.
pub const CLASS_IN: u16 = 1;

const HEADER_LEN: usize = 12;

/// The address families a stub asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// IPv4 address (type 1).
    A,
    /// IPv6 address (type 28).
    Aaaa,
}

impl QueryType {
    /// The type code on the wire.
    pub fn code(self) -> u16 {
        match self {
            QueryType::A => TYPE_A,
            QueryType::Aaaa => TYPE_AAAA,
        }
    }
}

/// The 4-bit RCODE of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCode {
    /// NOERROR (0): the answer section is the answer (it may be empty: no such type).
    NoError,
    /// FORMERR (1): the server did not understand the query (old servers say this to EDNS).
    FormatError,
    /// SERVFAIL (2): the server could not get an answer; another server might.
    ServerFailure,
    /// NXDOMAIN (3): the name does not exist, for any type.
    NameError,
    /// NOTIMP (4).
    NotImplemented,
    /// REFUSED (5): the server will not recurse for us.
    Refused,
    /// Anything else (6..=15).
    Other(u8),
}

impl ResponseCode {
    fn from_bits(bits: u8) -> ResponseCode {
        match bits & 0x0F {
            0 => ResponseCode::NoError,
            1 => ResponseCode::FormatError,
            2 => ResponseCode::ServerFailure,
            3 => ResponseCode::NameError,
            4 => ResponseCode::NotImplemented,
            5 => ResponseCode::Refused,
            other => ResponseCode::Other(other),
        }
    }
}

/// The fixed 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// QR: set in responses.
    pub is_response: bool,
    pub opcode: u8,
    /// AA.
    pub authoritative: bool,
    /// TC: the server cut the message to fit in UDP; ask again over TCP.
    pub truncated: bool,
    /// RD.
    pub recursion_desired: bool,
    /// RA.
    pub recursion_available: bool,
    pub rcode: ResponseCode,
    pub question_count: u16,
    pub answer_count: u16,
    pub authority_count: u16,
    pub additional_count: u16,
}

/// The question section's one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lowercased, no trailing dot, escaped as the module docs say ("" is the root).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// What an answer record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The canonical name this owner is an alias of (same form as `Question::name`).
    Cname(String),
    /// Any other type (or A/AAAA/CNAME outside class IN): kept only as its type code.
    Other(u16),
}

/// One answer-section resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name (same form as `Question::name`).
    pub name: String,
    pub class: u16,
    /// Seconds; a wire value with the top bit set counts as 0 (RFC 2181 8).
    pub ttl: u32,
    pub data: RecordData,
}

/// A parsed message: header, question, answer and authority sections. The additional
/// section (OPT, glue) is not needed by a stub and is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    /// `None` when the message carries no question.
    pub question: Option<Question>,
    /// Empty when `header.truncated`: a cut answer section is never trusted.
    pub answers: Vec<Record>,
    /// The authority section, read only for its SOA (what makes an answer negative);
    /// empty when `header.truncated`.
    pub authority: Vec<Record>,
}

/// The end of a CNAME chain, as far as one answer reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerChain {
    /// Addresses of the requested type owned by `canonical_name`, in answer order.
    pub addresses: Vec<IpAddr>,
    /// Where the chain ended: the queried name itself when there was no CNAME.
    pub canonical_name: String,
    /// Smallest TTL among the records used (CNAMEs and addresses); `None` when no record
    /// was used at all.
    pub ttl: Option<u32>,
}

impl AnswerChain {
    /// True when the answer only gave aliases and the last alias's addresses must be asked
    /// for separately.
    pub fn ends_outside(&self, queried_name: &str) -> bool {
        self.addresses.is_empty() && self.canonical_name != queried_name
    }
}

/// Why a name could not be encoded or a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// A name to encode is empty, has an empty or over-long label, or a byte a host name
    /// cannot have.
    InvalidName,
    /// A name is longer than 255 bytes on the wire.
    NameTooLong,
    /// The message ends in the middle of something.
    Truncated,
    /// A label length byte uses the reserved 0x40 / 0x80 forms.
    BadLabelType,
    /// A compression pointer points outside the message.
    BadPointer,
    /// A compression pointer does not point strictly backwards, or there are too many.
    PointerLoop,
    /// A record's data does not match its type (A not 4 bytes, CNAME overrunning its data).
    BadRecordData,
    /// More than one question: no server answers a stub like that.
    UnsupportedQuestionCount,
    /// The CNAME chain in the answer is longer than `MAX_CNAME_HOPS` (or loops).
    CnameLoop,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsError::InvalidName => "invalid DNS name",
            DnsError::NameTooLong => "DNS name longer than 255 bytes",
            DnsError::Truncated => "DNS message ends early",
            DnsError::BadLabelType => "DNS name uses a reserved label type",
            DnsError::BadPointer => "DNS compression pointer outside the message",
            DnsError::PointerLoop => "DNS compression pointer loop",
            DnsError::BadRecordData => "DNS record data does not match its type",
            DnsError::UnsupportedQuestionCount => "DNS message with more than one question",
            DnsError::CnameLoop => "DNS CNAME chain too long or looping",
        })
    }
}

impl std::error::Error for DnsError {}

/// Checks a host name typed by a user or read from a file and returns the form the parser
/// produces (lowercase, no trailing dot), so it can be compared with parsed names.
/// Accepts printable ASCII except `\` in labels of 1..=63 bytes, 255 bytes on the wire.
pub fn normalize_name(name: &str) -> Result<String, DnsError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(DnsError::InvalidName);
    }
    // One length byte per label plus its bytes, plus the root byte.
    let mut wire_len = 1usize;
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(DnsError::InvalidName);
        }
        if !label.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
            return Err(DnsError::InvalidName);
        }
        wire_len += 1 + label.len();
    }
    if wire_len > MAX_NAME_WIRE_LEN {
        return Err(DnsError::NameTooLong);
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Appends a standard query for `name` to `out`: header with `id` and RD, one question of
/// class IN, and when `edns` an OPT record advertising `EDNS_UDP_PAYLOAD` (version 0, no
/// flags). `out` is untouched when the name is rejected.
pub fn encode_query(
    id: u16,
    name: &str,
    qtype: QueryType,
    edns: bool,
    out: &mut Vec<u8>,
) -> Result<(), DnsError> {
    let name = normalize_name(name)?;
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD only
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // ANCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // NSCOUNT
    out.extend_from_slice(&u16::from(edns).to_be_bytes()); // ARCOUNT
    for label in name.split('.') {
        // normalize_name bounded every label to 63 bytes.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if edns {
        out.push(0); // owner: root
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&EDNS_UDP_PAYLOAD.to_be_bytes()); // CLASS = payload size
        out.extend_from_slice(&[0, 0, 0, 0]); // extended RCODE, version 0, no DO bit
        out.extend_from_slice(&0u16.to_be_bytes()); // RDLENGTH
    }
    Ok(())
}

/// Parses a message: header, question (at most one) and, unless the message is
/// truncated, the answer and authority sections. Never panics, whatever the bytes.
pub fn parse_message(msg: &[u8]) -> Result<Message, DnsError> {
    let header = parse_header(msg)?;
    let mut pos = HEADER_LEN;
    let question = match header.question_count {
        0 => None,
        1 => {
            let (name, after) = read_name(msg, pos)?;
            let qtype = read_u16(msg, after)?;
            let qclass = read_u16(msg, after + 2)?;
            pos = after + 4;
            Some(Question {
                name,
                qtype,
                qclass,
            })
        }
        _ => return Err(DnsError::UnsupportedQuestionCount),
    };
    let mut answers = Vec::new();
    let mut authority = Vec::new();
    if !header.truncated {
        pos = read_section(msg, pos, header.answer_count, &mut answers)?;
        read_section(msg, pos, header.authority_count, &mut authority)?;
    }
    Ok(Message {
        header,
        question,
        answers,
        authority,
    })
}

impl Message {
    /// True when this is a standard-query response to the query `id` asked about
    /// `name` (as `normalize_name` returns it) and `qtype`, class IN. Anything else is not
    /// ours to use, whatever it says.
    pub fn answers_query(&self, id: u16, name: &str, qtype: QueryType) -> bool {
        self.header.is_response
            && self.header.opcode == 0
            && self.header.id == id
            && self
                .question
                .as_ref()
                .is_some_and(|q| q.name == name && q.qtype == qtype.code() && q.qclass == CLASS_IN)
    }

    /// True when the authority section carries an SOA: the server vouches that what the
    /// answer lacks does not exist (RFC 2308 NODATA / NXDOMAIN), so a CNAME chain ending
    /// without addresses is the whole story and must not be asked for again.
    pub fn is_negative(&self) -> bool {
        self.authority
            .iter()
            .any(|r| r.data == RecordData::Other(TYPE_SOA))
    }

    /// Walks the answer from `name` through CNAME records to the addresses of `qtype`.
    /// The chain may end outside this answer (`AnswerChain::ends_outside`), then the
    /// resolver asks for the canonical name itself.
    pub fn follow_chain(&self, name: &str, qtype: QueryType) -> Result<AnswerChain, DnsError> {
        let mut current = name;
        let mut ttl: Option<u32> = None;
        let mut hops = 0usize;
        loop {
            let mut addresses = Vec::new();
            for record in self.answers.iter().filter(|r| r.name == current) {
                let address = match (&record.data, qtype) {
                    (RecordData::A(v4), QueryType::A) => IpAddr::V4(*v4),
                    (RecordData::Aaaa(v6), QueryType::Aaaa) => IpAddr::V6(*v6),
                    _ => continue,
                };
                ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
            if !addresses.is_empty() {
                return Ok(AnswerChain {
                    addresses,
                    canonical_name: current.to_string(),
                    ttl,
                });
            }
            let alias = self.answers.iter().find_map(|r| match &r.data {
                RecordData::Cname(target) if r.name == current => Some((target, r.ttl)),
                _ => None,
            });
            match alias {
                Some((target, record_ttl)) => {
                    hops += 1;
                    if hops > MAX_CNAME_HOPS {
                        return Err(DnsError::CnameLoop);
                    }
                    ttl = Some(ttl.map_or(record_ttl, |t| t.min(record_ttl)));
                    current = target;
                }
                None => {
                    return Ok(AnswerChain {
                        addresses,
                        canonical_name: current.to_string(),
                        ttl,
                    })
                }
            }
        }
    }
}

fn read_u8(msg: &[u8], pos: usize) -> Result<u8, DnsError> {
    msg.get(pos).copied().ok_or(DnsError::Truncated)
}

fn read_u16(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    match msg.get(pos..pos.saturating_add(2)) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(DnsError::Truncated),
    }
}

fn read_u32(msg: &[u8], pos: usize) -> Result<u32, DnsError> {
    match msg.get(pos..pos.saturating_add(4)) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(DnsError::Truncated),
    }
}

fn parse_header(msg: &[u8]) -> Result<Header, DnsError> {
    let flags_hi = read_u8(msg, 2)?;
    let flags_lo = read_u8(msg, 3)?;
    Ok(Header {
        id: read_u16(msg, 0)?,
        is_response: flags_hi & 0x80 != 0,
        opcode: (flags_hi >> 3) & 0x0F,
        authoritative: flags_hi & 0x04 != 0,
        truncated: flags_hi & 0x02 != 0,
        recursion_desired: flags_hi & 0x01 != 0,
        recursion_available: flags_lo & 0x80 != 0,
        rcode: ResponseCode::from_bits(flags_lo),
        question_count: read_u16(msg, 4)?,
        answer_count: read_u16(msg, 6)?,
        authority_count: read_u16(msg, 8)?,
        additional_count: read_u16(msg, 10)?,
    })
}

/// Reads the (possibly compressed) name starting at `start`; returns it and the offset
/// just past its encoding at `start` (after the first pointer, or after the root label).
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = start;
    // Where the current run of labels began: the next pointer must land before it.
    let mut run_start = start;
    let mut end_at_start: Option<usize> = None;
    let mut jumps = 0usize;
    let mut wire_len = 0usize;
    loop {
        let len = read_u8(msg, pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                // The root label: one more wire byte, already accounted for below.
                let end = end_at_start.unwrap_or(pos + 1);
                return Ok((name, end));
            }
            0x00 => {
                let label_len = usize::from(len);
                let label = msg
                    .get(pos + 1..pos + 1 + label_len)
                    .ok_or(DnsError::Truncated)?;
                wire_len += 1 + label_len;
                // The root byte still has to fit.
                if wire_len + 1 > MAX_NAME_WIRE_LEN {
                    return Err(DnsError::NameTooLong);
                }
                if wire_len > 1 + label_len {
                    name.push('.');
                }
                push_label(&mut name, label);
                pos += 1 + label_len;
            }
            0xC0 => {
                let low = read_u8(msg, pos + 1)?;
                let target = usize::from(len & 0x3F) << 8 | usize::from(low);
                if end_at_start.is_none() {
                    end_at_start = Some(pos + 2);
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS || target >= run_start {
                    return Err(if target >= msg.len() {
                        DnsError::BadPointer
                    } else {
                        DnsError::PointerLoop
                    });
                }
                pos = target;
                run_start = target;
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// Appends one label in the canonical text form described in the module docs.
fn push_label(name: &mut String, label: &[u8]) {
    for &byte in label {
        match byte {
            b'.' => name.push_str("\\."),
            b'\\' => name.push_str("\\\\"),
            b if b.is_ascii_graphic() => name.push(char::from(b.to_ascii_lowercase())),
            b => {
                name.push('\\');
                name.push(char::from(b'0' + b / 100));
                name.push(char::from(b'0' + (b / 10) % 10));
                name.push(char::from(b'0' + b % 10));
            }
        }
    }
}

/// Reads `count` records from `pos` into `records`; returns the offset after them.
fn read_section(
    msg: &[u8],
    mut pos: usize,
    count: u16,
    records: &mut Vec<Record>,
) -> Result<usize, DnsError> {
    // Each record needs at least 11 bytes, so the message length bounds the count.
    let fits = msg.len().saturating_sub(pos) / 11;
    records.reserve(usize::from(count).min(fits));
    for _ in 0..count {
        let (record, after) = read_record(msg, pos)?;
        records.push(record);
        pos = after;
    }
    Ok(pos)
}

fn read_record(msg: &[u8], start: usize) -> Result<(Record, usize), DnsError> {
    let (name, pos) = read_name(msg, start)?;
    let rtype = read_u16(msg, pos)?;
    let class = read_u16(msg, pos + 2)?;
    let raw_ttl = read_u32(msg, pos + 4)?;
    let rdata_len = usize::from(read_u16(msg, pos + 8)?);
    let rdata_start = pos + 10;
    let rdata_end = rdata_start + rdata_len;
    let rdata = msg.get(rdata_start..rdata_end).ok_or(DnsError::Truncated)?;
    let data = match (rtype, class) {
        (TYPE_A, CLASS_IN) => match rdata {
            &[a, b, c, d] => RecordData::A(Ipv4Addr::new(a, b, c, d)),
            _ => return Err(DnsError::BadRecordData),
        },
        (TYPE_AAAA, CLASS_IN) => {
            let octets: [u8; 16] = rdata.try_into().map_err(|_| DnsError::BadRecordData)?;
            RecordData::Aaaa(Ipv6Addr::from(octets))
        }
        (TYPE_CNAME, CLASS_IN) => {
            // The target may point anywhere earlier in the message, but its own bytes
            // must end exactly where RDLENGTH says.
            let (target, after) = read_name(msg, rdata_start)?;
            if after != rdata_end {
                return Err(DnsError::BadRecordData);
            }
            RecordData::Cname(target)
        }
        (other, _) => RecordData::Other(other),
    };
    let ttl = if raw_ttl > i32::MAX as u32 {
        0
    } else {
        raw_ttl
    };
    Ok((
        Record {
            name,
            class,
            ttl,
            data,
        },
        rdata_end,
    ))
}

/// Fuzz entry: parses `data` as a message; on success walks the CNAME chain for both
/// types and checks that every encodable parsed name survives encode + parse unchanged.
/// Panics on any disagreement.
pub fn fuzz_entry(data: &[u8]) {
    let Ok(message) = parse_message(data) else {
        return;
    };
    let queried = message.question.as_ref().map_or("", |q| q.name.as_str());
    for qtype in [QueryType::A, QueryType::Aaaa] {
        if let Ok(chain) = message.follow_chain(queried, qtype) {
            assert!(chain.addresses.iter().all(|a| match qtype {
                QueryType::A => a.is_ipv4(),
                QueryType::Aaaa => a.is_ipv6(),
            }));
        }
    }
    let names = message
        .question
        .iter()
        .map(|q| &q.name)
        .chain(message.answers.iter().map(|r| &r.name));
    for name in names {
        let Ok(normal) = normalize_name(name) else {
            continue;
        };
        assert_eq!(&normal, name, "parsed names are already normal");
        let mut query = Vec::new();
        if encode_query(message.header.id, name, QueryType::Aaaa, true, &mut query).is_err() {
            panic!("a normal name failed to encode");
        }
        let again = parse_message(&query);
        let round_tripped = again.ok().and_then(|m| m.question).map(|q| q.name);
        assert_eq!(
            round_tripped.as_ref(),
            Some(name),
            "name changed in a round trip"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bytes_without_and_with_edns() {
        let mut out = Vec::new();
        encode_query(0xBEEF, "Example.COM.", QueryType::A, false, &mut out).unwrap();
        let expect: &[u8] = b"\xBE\xEF\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
            \x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(out, expect);

        let mut out = Vec::new();
        encode_query(0x0102, "a.b", QueryType::Aaaa, true, &mut out).unwrap();
        let expect: &[u8] = b"\x01\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\
            \x01a\x01b\x00\x00\x1c\x00\x01\
            \x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00";
        assert_eq!(out, expect);
    }

    #[test]
    fn names_are_validated_before_encoding() {
        let mut out = Vec::new();
        for bad in ["", ".", "a..b", "a b", "a\\b", "é.com", ".a"] {
            assert_eq!(
                encode_query(1, bad, QueryType::A, false, &mut out),
                Err(DnsError::InvalidName),
                "{bad:?}"
            );
        }
        assert!(out.is_empty());
        let label63 = "a".repeat(63);
        assert!(normalize_name(&label63).is_ok());
        assert_eq!(normalize_name(&"a".repeat(64)), Err(DnsError::InvalidName));
        // 4 labels of 63 = 4 * 64 + 1 = 257 bytes on the wire.
        let long = [label63.as_str(); 4].join(".");
        assert_eq!(normalize_name(&long), Err(DnsError::NameTooLong));
        // 3 * 64 + 62 + 1 = 255: the longest legal name.
        let longest = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(normalize_name(&longest).map(|n| n.len()), Ok(253));
    }

    #[test]
    fn a_query_parses_back_to_its_question() {
        let mut out = Vec::new();
        encode_query(7, "api.anthropic.com", QueryType::Aaaa, true, &mut out).unwrap();
        let message = parse_message(&out).unwrap();
        assert!(!message.header.is_response);
        assert!(message.header.recursion_desired);
        assert_eq!(message.header.additional_count, 1);
        assert_eq!(
            message.question,
            Some(Question {
                name: "api.anthropic.com".into(),
                qtype: TYPE_AAAA,
                qclass: CLASS_IN
            })
        );
    }

    #[test]
    fn odd_label_bytes_are_escaped() {
        let mut name = String::new();
        push_label(&mut name, b"A.b\\c \x00\xff");
        assert_eq!(name, "a\\.b\\\\c\\032\\000\\255");
    }

    #[test]
    fn short_inputs_are_truncated_not_panics() {
        for len in 0..12 {
            assert_eq!(parse_message(&[0u8; 12][..len]), Err(DnsError::Truncated));
        }
    }
}
