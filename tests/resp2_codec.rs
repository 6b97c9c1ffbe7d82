//! RESP2 codec: exact bytes of encoded commands, every reply type, nested and null
//! arrays, null bulk, error replies, malformed input, limits, and the same replies however
//! the input is split into reads (every byte boundary).

use cc_relay::codec::resp2::{
    encode_command, Decoded, Resp2Decoder, Resp2Error, Resp2Limits, Value,
};

/// Decodes all of `input` in one call sequence; returns every reply.
fn decode_all(input: &[u8]) -> Result<Vec<Value>, Resp2Error> {
    decode_all_with(Resp2Decoder::new(), input)
}

fn decode_all_with(mut decoder: Resp2Decoder, input: &[u8]) -> Result<Vec<Value>, Resp2Error> {
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        let Decoded { consumed, value } = decoder.decode(rest)?;
        rest = &rest[consumed..];
        match value {
            Some(v) => out.push(v),
            None => {
                assert!(rest.is_empty(), "None must mean all input was consumed");
                return Ok(out);
            }
        }
    }
}

/// Feeds `input` split at `cut` (two reads) and one byte at a time; both must equal
/// the single-read result.
fn assert_split_invariant(input: &[u8]) {
    let whole = decode_all(input);
    for cut in 0..=input.len() {
        let mut decoder = Resp2Decoder::new();
        let mut got = Vec::new();
        let mut failed = None;
        for piece in [&input[..cut], &input[cut..]] {
            let mut rest = piece;
            while failed.is_none() {
                match decoder.decode(rest) {
                    Ok(step) => {
                        rest = &rest[step.consumed..];
                        match step.value {
                            Some(v) => got.push(v),
                            None => break,
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
        }
        match (&whole, failed) {
            (Ok(values), None) => assert_eq!(&got, values, "split at {cut}"),
            (Err(_), Some(_)) => {}
            (w, f) => panic!("split at {cut}: whole {w:?}, split error {f:?}"),
        }
    }
    let mut decoder = Resp2Decoder::new();
    let mut got = Vec::new();
    for byte in input.chunks(1) {
        match decoder.decode(byte) {
            Ok(step) => {
                assert_eq!(step.consumed, 1);
                got.extend(step.value);
            }
            Err(_) => {
                assert!(whole.is_err(), "bytewise failed, whole did not");
                return;
            }
        }
    }
    assert_eq!(Ok(got), whole);
}

fn one(input: &[u8]) -> Value {
    let values = decode_all(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert_eq!(values.len(), 1, "{values:?}");
    assert_split_invariant(input);
    values.into_iter().next().unwrap()
}

#[test]
fn encodes_commands_as_arrays_of_bulk_strings() {
    let mut out = Vec::new();
    encode_command(&mut out, ["SET", "key", "value"]);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");

    out.clear();
    encode_command(&mut out, [&b"GET"[..], b"a\r\nb", b""]);
    assert_eq!(out, b"*3\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n");

    out.clear();
    encode_command(&mut out, Vec::<&str>::new());
    assert_eq!(out, b"*0\r\n");

    // Pipelining is several commands in one buffer.
    out.clear();
    encode_command(&mut out, ["PING"]);
    encode_command(&mut out, ["ECHO", "hi"]);
    assert_eq!(out, b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
}

#[test]
fn simple_string() {
    assert_eq!(one(b"+OK\r\n"), Value::Simple("OK".into()));
    assert_eq!(one(b"+\r\n"), Value::Simple(String::new()));
    assert_eq!(
        one(b"+hello world\r\n"),
        Value::Simple("hello world".into())
    );
}

#[test]
fn error_reply_and_its_code() {
    let v = one(b"-NOSCRIPT No matching script. Please use EVAL.\r\n");
    assert_eq!(
        v,
        Value::Error("NOSCRIPT No matching script. Please use EVAL.".into())
    );
    assert_eq!(v.error_code(), Some("NOSCRIPT"));
    assert_eq!(one(b"-ERR\r\n").error_code(), Some("ERR"));
    assert_eq!(Value::Integer(1).error_code(), None);
}

#[test]
fn integers() {
    assert_eq!(one(b":0\r\n"), Value::Integer(0));
    assert_eq!(one(b":1000\r\n"), Value::Integer(1000));
    assert_eq!(one(b":-42\r\n"), Value::Integer(-42));
    assert_eq!(one(b":9223372036854775807\r\n"), Value::Integer(i64::MAX));
    assert_eq!(one(b":-9223372036854775808\r\n"), Value::Integer(i64::MIN));
}

#[test]
fn bulk_strings_including_empty_binary_and_null() {
    assert_eq!(one(b"$5\r\nhello\r\n"), Value::Bulk(b"hello".to_vec()));
    assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(Vec::new()));
    assert_eq!(
        one(b"$6\r\n\r\n\x00\xff\r\n\r\n"),
        Value::Bulk(b"\r\n\x00\xff\r\n".to_vec())
    );
    assert_eq!(one(b"$-1\r\n"), Value::Nil);
}

#[test]
fn arrays_flat_empty_null_and_mixed() {
    assert_eq!(one(b"*0\r\n"), Value::Array(vec![]));
    assert_eq!(one(b"*-1\r\n"), Value::NilArray);
    assert_eq!(
        one(b"*5\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n+OK\r\n-ERR no\r\n"),
        Value::Array(vec![
            Value::Integer(1),
            Value::Bulk(b"foo".to_vec()),
            Value::Nil,
            Value::Simple("OK".into()),
            Value::Error("ERR no".into()),
        ])
    );
}

#[test]
fn nested_arrays() {
    let input = b"*3\r\n*2\r\n:1\r\n:2\r\n*0\r\n*2\r\n*1\r\n$1\r\nx\r\n*-1\r\n";
    assert_eq!(
        one(input),
        Value::Array(vec![
            Value::Array(vec![Value::Integer(1), Value::Integer(2)]),
            Value::Array(vec![]),
            Value::Array(vec![
                Value::Array(vec![Value::Bulk(b"x".to_vec())]),
                Value::NilArray,
            ]),
        ])
    );
    // An array whose last element closes several levels at once.
    assert_eq!(
        one(b"*1\r\n*1\r\n*1\r\n:7\r\n"),
        Value::Array(vec![Value::Array(vec![Value::Array(vec![
            Value::Integer(7)
        ])])])
    );
}

#[test]
fn several_replies_in_one_read_come_out_in_order() {
    let input = b"+OK\r\n:1\r\n$2\r\nhi\r\n*1\r\n$-1\r\n-ERR x\r\n";
    assert_eq!(
        decode_all(input).unwrap(),
        vec![
            Value::Simple("OK".into()),
            Value::Integer(1),
            Value::Bulk(b"hi".to_vec()),
            Value::Array(vec![Value::Nil]),
            Value::Error("ERR x".into()),
        ]
    );
    assert_split_invariant(input);
    // `consumed` stops right after the first reply.
    let mut decoder = Resp2Decoder::new();
    let step = decoder.decode(input).unwrap();
    assert_eq!(step.consumed, 5);
    assert_eq!(step.value, Some(Value::Simple("OK".into())));
}

#[test]
fn partial_reads_at_every_byte_of_a_long_mixed_stream() {
    let mut input = Vec::new();
    for v in [
        Value::Simple("PONG".into()),
        Value::Error("WRONGPASS invalid username-password pair".into()),
        Value::Integer(-17),
        Value::Bulk(vec![b'\r'; 40]),
        Value::Nil,
        Value::NilArray,
        Value::Array(vec![
            Value::Integer(1),
            Value::Array(vec![Value::Bulk(b"a\nb".to_vec()), Value::Nil]),
            Value::Array(vec![]),
        ]),
    ] {
        v.encode(&mut input);
    }
    assert_eq!(decode_all(&input).unwrap().len(), 7);
    assert_split_invariant(&input);
}

#[test]
fn idle_only_between_replies() {
    let mut decoder = Resp2Decoder::new();
    assert!(decoder.is_idle());
    assert_eq!(decoder.decode(b"*2\r\n:1").unwrap().value, None);
    assert!(!decoder.is_idle());
    assert_eq!(decoder.decode(b"\r\n$3\r\nab").unwrap().value, None);
    assert!(!decoder.is_idle());
    let step = decoder.decode(b"c\r\n").unwrap();
    assert_eq!(
        step.value,
        Some(Value::Array(vec![
            Value::Integer(1),
            Value::Bulk(b"abc".to_vec())
        ]))
    );
    assert!(decoder.is_idle());
}

#[test]
fn malformed_input_is_an_error_with_the_right_kind() {
    let cases: &[(&[u8], Resp2Error)] = &[
        (b"!oops\r\n", Resp2Error::UnknownType(b'!')),
        // RESP3 types are refused: we never send HELLO 3.
        (b"_\r\n", Resp2Error::UnknownType(b'_')),
        (b"%1\r\n", Resp2Error::UnknownType(b'%')),
        (b"+OK\n", Resp2Error::BadLineEnd),
        (b"+O\rK\r\n", Resp2Error::BadLineEnd),
        (b"\r\n", Resp2Error::BadLineEnd),
        (b"\n", Resp2Error::BadLineEnd),
        (b":12a\r\n", Resp2Error::BadNumber),
        (b":+1\r\n", Resp2Error::BadNumber),
        (b":\r\n", Resp2Error::BadNumber),
        (b": 1\r\n", Resp2Error::BadNumber),
        (b":9223372036854775808\r\n", Resp2Error::BadNumber),
        (b"$-2\r\n", Resp2Error::BadNumber),
        (b"*-5\r\n", Resp2Error::BadNumber),
        (b"$x\r\n", Resp2Error::BadNumber),
        (b"$3\r\nfooXY", Resp2Error::BadBulkEnd),
        (b"$3\r\nfoo\n\r", Resp2Error::BadBulkEnd),
    ];
    for (input, want) in cases {
        assert_eq!(
            decode_all(input),
            Err(want.clone()),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn an_error_poisons_the_decoder() {
    let mut decoder = Resp2Decoder::new();
    assert!(decoder.decode(b"?\r\n").is_err());
    assert_eq!(
        decoder.decode(b"+OK\r\n"),
        Err(Resp2Error::UnknownType(b'?'))
    );
    assert!(!decoder.is_idle());
}

#[test]
fn limits_are_enforced_before_allocating() {
    let limits = Resp2Limits {
        max_line: 8,
        max_bulk: 4,
        max_array: 3,
        max_depth: 2,
        max_reply: 40,
    };
    let with = |input: &[u8]| decode_all_with(Resp2Decoder::with_limits(limits), input);
    // max_line counts the type byte and the CR: "+123456\r" is 8 bytes.
    assert_eq!(with(b"+123456\r\n").unwrap().len(), 1);
    assert_eq!(with(b"+1234567\r\n"), Err(Resp2Error::LineTooLong));
    // Noticed without ever seeing the line end.
    assert_eq!(with(b"+12345678"), Err(Resp2Error::LineTooLong));
    assert_eq!(with(b"$4\r\nabcd\r\n").unwrap().len(), 1);
    assert_eq!(with(b"$5\r\n"), Err(Resp2Error::BulkTooLong));
    assert_eq!(
        decode_all(b"$9223372036854775807\r\n"),
        Err(Resp2Error::BulkTooLong)
    );
    assert_eq!(with(b"*4\r\n"), Err(Resp2Error::ArrayTooLong));
    assert_eq!(with(b"*1\r\n*1\r\n:1\r\n").unwrap().len(), 1);
    assert_eq!(with(b"*1\r\n*1\r\n*1\r\n"), Err(Resp2Error::TooDeep));
    // 3 x 3 x ":1" = more than 40 wire bytes in one reply.
    assert_eq!(
        with(b"*3\r\n*3\r\n:1\r\n:1\r\n:1\r\n*3\r\n:1\r\n:1\r\n:1\r\n*3\r\n:1\r\n:1\r\n:1\r\n"),
        Err(Resp2Error::ReplyTooLarge)
    );
    // The reply budget is per reply: many small replies are fine.
    let many: Vec<u8> = b":1\r\n".repeat(100);
    assert_eq!(with(&many).unwrap().len(), 100);
    // Default depth limit: 16 levels pass, 17 fail.
    let deep = |n: usize| {
        let mut v = b"*1\r\n".repeat(n);
        v.extend_from_slice(b":1\r\n");
        v
    };
    assert!(decode_all(&deep(16)).is_ok());
    assert_eq!(decode_all(&deep(17)), Err(Resp2Error::TooDeep));
}

#[test]
fn value_accessors() {
    assert_eq!(Value::Integer(5).as_i64(), Some(5));
    assert_eq!(Value::Bulk(b"-12".to_vec()).as_i64(), Some(-12));
    assert_eq!(Value::Simple("7".into()).as_i64(), Some(7));
    assert_eq!(Value::Bulk(b"1.5".to_vec()).as_i64(), None);
    assert_eq!(Value::Nil.as_i64(), None);
    assert_eq!(Value::Bulk(b"ab".to_vec()).as_bytes(), Some(&b"ab"[..]));
    assert_eq!(Value::Nil.as_bytes(), None);
    assert_eq!(
        Value::Array(vec![Value::Nil]).as_array(),
        Some(&[Value::Nil][..])
    );
    assert_eq!(Value::NilArray.as_array(), None);
}

#[test]
fn encode_then_decode_round_trips_and_sanitises_line_breaks() {
    let mut out = Vec::new();
    Value::Simple("a\r\nb".into()).encode(&mut out);
    assert_eq!(out, b"+a  b\r\n");
    out.clear();
    Value::Array(vec![Value::Integer(i64::MIN), Value::Nil, Value::NilArray]).encode(&mut out);
    assert_eq!(out, b"*3\r\n:-9223372036854775808\r\n$-1\r\n*-1\r\n");
    assert_eq!(
        decode_all(&out).unwrap(),
        vec![Value::Array(vec![
            Value::Integer(i64::MIN),
            Value::Nil,
            Value::NilArray
        ])]
    );
}

#[test]
fn fuzz_entry_accepts_the_seed_shapes() {
    cc_relay::codec::resp2::fuzz_entry(b"*2\r\n$3\r\nfoo\r\n*1\r\n:1\r\n+OK\r\n");
    cc_relay::codec::resp2::fuzz_entry(b"$3\r\nfo");
    cc_relay::codec::resp2::fuzz_entry(b"");
    cc_relay::codec::resp2::fuzz_entry(b"*99999999999999999999\r\n");
}
