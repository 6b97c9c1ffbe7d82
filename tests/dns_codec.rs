//! The DNS message codec against the binary answers in `tests/fixtures/dns/` (see its
//! README for how they were made): exact header fields, questions, records and TTLs;
//! the id and question checks; CNAME chains; NXDOMAIN, SERVFAIL and truncation; and the
//! malformed names that must be rejected (pointer loops, names over 255 bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cc_relay::codec::dns::{
    encode_query, fuzz_entry, parse_message, AnswerChain, DnsError, Message, QueryType, Question,
    Record, RecordData, ResponseCode, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_SOA,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/dns/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parsed(name: &str) -> Message {
    parse_message(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn a_record(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record {
        name: owner.into(),
        class: CLASS_IN,
        ttl,
        data: RecordData::A(Ipv4Addr::from(ip)),
    }
}

#[test]
fn a_answer_parses_exactly() {
    let message = parsed("a_answer.bin");
    let h = message.header;
    assert_eq!(h.id, 0x1A2B);
    assert!(h.is_response && h.recursion_desired && h.recursion_available);
    assert!(!h.truncated && !h.authoritative);
    assert_eq!(h.opcode, 0);
    assert_eq!(h.rcode, ResponseCode::NoError);
    assert_eq!(
        (
            h.question_count,
            h.answer_count,
            h.authority_count,
            h.additional_count
        ),
        (1, 2, 0, 1)
    );
    assert_eq!(
        message.question,
        Some(Question {
            name: "api.anthropic.com".into(),
            qtype: TYPE_A,
            qclass: CLASS_IN
        })
    );
    assert_eq!(
        message.answers,
        vec![
            a_record("api.anthropic.com", 60, [192, 0, 2, 10]),
            a_record("api.anthropic.com", 45, [192, 0, 2, 11]),
        ]
    );
    assert!(message.answers_query(0x1A2B, "api.anthropic.com", QueryType::A));
    assert_eq!(
        message.follow_chain("api.anthropic.com", QueryType::A),
        Ok(AnswerChain {
            addresses: vec![v4(192, 0, 2, 10), v4(192, 0, 2, 11)],
            canonical_name: "api.anthropic.com".into(),
            ttl: Some(45),
        })
    );
    // Asking the same answer for the other family finds nothing, and says so.
    let none = message
        .follow_chain("api.anthropic.com", QueryType::Aaaa)
        .unwrap();
    assert!(none.addresses.is_empty() && none.ttl.is_none());
    assert!(!none.ends_outside("api.anthropic.com"));
}

#[test]
fn aaaa_answer_parses_exactly() {
    let message = parsed("aaaa_answer.bin");
    assert_eq!(message.header.id, 0x1A2C);
    assert_eq!(message.question.as_ref().map(|q| q.qtype), Some(TYPE_AAAA));
    assert_eq!(
        message.answers,
        vec![Record {
            name: "api.anthropic.com".into(),
            class: CLASS_IN,
            ttl: 300,
            data: RecordData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
        }]
    );
    assert!(message.answers_query(0x1A2C, "api.anthropic.com", QueryType::Aaaa));
    // Same id and name, but an AAAA answer does not answer an A query.
    assert!(!message.answers_query(0x1A2C, "api.anthropic.com", QueryType::A));
}

#[test]
fn wrong_id_and_wrong_question_do_not_answer_the_query() {
    let wrong_id = parsed("wrong_id.bin");
    assert_eq!(wrong_id.header.id, 0xDEAD);
    assert_eq!(wrong_id.answers, parsed("a_answer.bin").answers);
    assert!(!wrong_id.answers_query(0x1A2B, "api.anthropic.com", QueryType::A));

    let wrong_question = parsed("wrong_question.bin");
    assert_eq!(wrong_question.header.id, 0x1A2B);
    assert_eq!(
        wrong_question.question.as_ref().map(|q| q.name.as_str()),
        Some("api.anthropic.org")
    );
    assert!(!wrong_question.answers_query(0x1A2B, "api.anthropic.com", QueryType::A));
    assert!(wrong_question.answers_query(0x1A2B, "api.anthropic.org", QueryType::A));
}

#[test]
fn our_own_query_is_not_an_answer() {
    let mut query = Vec::new();
    encode_query(0x1A2B, "api.anthropic.com", QueryType::A, true, &mut query).unwrap();
    let message = parse_message(&query).unwrap();
    assert!(!message.answers_query(0x1A2B, "api.anthropic.com", QueryType::A));
}

#[test]
fn cname_chain_with_compressed_targets() {
    let message = parsed("cname_chain.bin");
    assert_eq!(message.header.id, 0x3C4D);
    assert_eq!(
        message.answers,
        vec![
            Record {
                name: "www.example.com".into(),
                class: CLASS_IN,
                ttl: 300,
                data: RecordData::Cname("www.example.com.edgekey.net".into()),
            },
            Record {
                name: "www.example.com.edgekey.net".into(),
                class: CLASS_IN,
                ttl: 20,
                data: RecordData::Cname("e1234.a.akamaiedge.net".into()),
            },
            a_record("e1234.a.akamaiedge.net", 20, [198, 51, 100, 7]),
            a_record("e1234.a.akamaiedge.net", 35, [198, 51, 100, 8]),
        ]
    );
    let chain = message
        .follow_chain("www.example.com", QueryType::A)
        .unwrap();
    assert_eq!(
        chain,
        AnswerChain {
            addresses: vec![v4(198, 51, 100, 7), v4(198, 51, 100, 8)],
            canonical_name: "e1234.a.akamaiedge.net".into(),
            ttl: Some(20),
        }
    );
    assert!(!chain.ends_outside("www.example.com"));
    // Starting in the middle of the chain works too.
    let middle = message
        .follow_chain("www.example.com.edgekey.net", QueryType::A)
        .unwrap();
    assert_eq!(middle.addresses.len(), 2);
}

#[test]
fn cname_chain_that_ends_outside_the_answer() {
    let message = parsed("cname_outside.bin");
    let chain = message
        .follow_chain("www.example.org", QueryType::A)
        .unwrap();
    assert_eq!(
        chain,
        AnswerChain {
            addresses: vec![],
            canonical_name: "edge.cdn.example.org".into(),
            ttl: Some(120),
        }
    );
    assert!(chain.ends_outside("www.example.org"));
    assert!(message.authority.is_empty());
    assert!(
        !message.is_negative(),
        "nothing says the target lacks records: ask it"
    );
}

#[test]
fn cname_chain_ending_in_nodata_is_negative() {
    let message = parsed("cname_nodata.bin");
    let chain = message
        .follow_chain("www.example.org", QueryType::Aaaa)
        .unwrap();
    assert_eq!(chain.canonical_name, "edge.cdn.example.org");
    assert!(chain.addresses.is_empty());
    assert_eq!(
        message.authority,
        vec![Record {
            name: "cdn.example.org".into(),
            class: CLASS_IN,
            ttl: 60,
            data: RecordData::Other(TYPE_SOA),
        }]
    );
    assert!(message.is_negative());
}

#[test]
fn nxdomain_and_servfail() {
    let nx = parsed("nxdomain.bin");
    assert_eq!(nx.header.id, 0x5E6F);
    assert_eq!(nx.header.rcode, ResponseCode::NameError);
    assert_eq!(nx.header.authority_count, 1);
    assert!(nx.answers.is_empty());
    assert_eq!(
        nx.authority,
        vec![Record {
            name: "example.com".into(),
            class: CLASS_IN,
            ttl: 300,
            data: RecordData::Other(TYPE_SOA),
        }]
    );
    assert!(nx.is_negative());
    assert!(!parsed("a_answer.bin").is_negative());
    assert!(nx.answers_query(0x5E6F, "nope.example.com", QueryType::A));

    let servfail = parsed("servfail.bin");
    assert_eq!(servfail.header.id, 0x7081);
    assert_eq!(servfail.header.rcode, ResponseCode::ServerFailure);
    assert!(servfail.answers.is_empty());
    assert!(servfail.answers_query(0x7081, "broken.example.com", QueryType::Aaaa));
}

#[test]
fn truncated_answers_are_flagged_and_not_parsed() {
    let empty = parsed("truncated.bin");
    assert!(empty.header.truncated);
    assert_eq!(empty.header.answer_count, 0);
    assert!(empty.answers_query(0x9203, "big.example.com", QueryType::A));

    let partial_bytes = fixture("truncated_partial.bin");
    assert_eq!(partial_bytes.len(), 512);
    let partial = parse_message(&partial_bytes).unwrap();
    assert!(partial.header.truncated);
    assert_eq!(partial.header.answer_count, 40);
    assert!(partial.answers.is_empty());
    assert!(partial.answers_query(0x9204, "big.example.com", QueryType::A));

    // Without the TC bit the same bytes are a message that ends early.
    let mut untruncated = partial_bytes;
    untruncated[2] &= !0x02;
    assert_eq!(parse_message(&untruncated), Err(DnsError::Truncated));
}

#[test]
fn pointer_loops_are_rejected() {
    for name in [
        "pointer_self.bin",
        "pointer_loop_label.bin",
        "pointer_loop_mutual.bin",
    ] {
        assert_eq!(
            parse_message(&fixture(name)),
            Err(DnsError::PointerLoop),
            "{name}"
        );
    }
    assert_eq!(
        parse_message(&fixture("pointer_out_of_range.bin")),
        Err(DnsError::BadPointer)
    );
}

#[test]
fn names_over_255_bytes_are_rejected() {
    assert_eq!(
        parse_message(&fixture("name_too_long.bin")),
        Err(DnsError::NameTooLong)
    );
    assert_eq!(
        parse_message(&fixture("name_too_long_compressed.bin")),
        Err(DnsError::NameTooLong)
    );
    // The 245-byte question of the second one alone is fine.
    let mut legal_only = fixture("name_too_long_compressed.bin");
    legal_only[7] = 0; // ANCOUNT = 0
    let message = parse_message(&legal_only).unwrap();
    assert_eq!(message.question.map(|q| q.name.len()), Some(243));
}

#[test]
fn every_prefix_of_every_fixture_is_an_error_or_a_message() {
    let dir = format!("{}/tests/fixtures/dns", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("bin") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for len in 0..=bytes.len() {
            let _ = parse_message(&bytes[..len]);
            fuzz_entry(&bytes[..len]);
        }
        seen += 1;
    }
    assert_eq!(seen, 17);
}

#[test]
fn rdata_that_does_not_match_its_type_is_rejected() {
    // a_answer.bin with the first A record's RDLENGTH changed from 4 to 3.
    let mut bytes = fixture("a_answer.bin");
    let first_rdlength = 12 + 19 + 4 + 2 + 8;
    assert_eq!(&bytes[first_rdlength..first_rdlength + 2], &[0, 4]);
    bytes[first_rdlength + 1] = 3;
    assert_eq!(parse_message(&bytes), Err(DnsError::BadRecordData));
}

#[test]
fn ttl_with_the_top_bit_set_counts_as_zero() {
    let mut bytes = fixture("a_answer.bin");
    let first_ttl = 12 + 19 + 4 + 2 + 4;
    bytes[first_ttl..first_ttl + 4].copy_from_slice(&[0x80, 0, 0, 1]);
    let message = parse_message(&bytes).unwrap();
    assert_eq!(message.answers[0].ttl, 0);
    assert_eq!(
        message
            .follow_chain("api.anthropic.com", QueryType::A)
            .unwrap()
            .ttl,
        Some(0)
    );
}

#[test]
fn cname_loop_inside_an_answer_is_an_error() {
    // www.example.com -> www.example.com.edgekey.net -> back, via the fixture's own
    // records: rewrite the second CNAME's target pointer to the question name.
    let mut bytes = fixture("cname_chain.bin");
    let message = parse_message(&bytes).unwrap();
    assert_eq!(message.answers.len(), 4);
    // Second record: owner pointer C0 2D at 0x4A; RDATA starts at 0x56.
    assert_eq!(&bytes[0x4A..0x4C], &[0xC0, 0x2D]);
    // Make its target a bare pointer to the question name (RDLENGTH 2) and cut the
    // message after it.
    bytes[0x54..0x56].copy_from_slice(&[0, 2]);
    bytes[0x56..0x58].copy_from_slice(&[0xC0, 0x0C]);
    let looped: Vec<u8> = bytes[..0x58].to_vec();
    let mut header_fixed = looped;
    header_fixed[7] = 2; // only the two CNAME records
    header_fixed[11] = 0; // no OPT
    let message = parse_message(&header_fixed).unwrap();
    assert_eq!(
        message.answers[1].data,
        RecordData::Cname("www.example.com".into())
    );
    assert_eq!(
        message.follow_chain("www.example.com", QueryType::A),
        Err(DnsError::CnameLoop)
    );
}
