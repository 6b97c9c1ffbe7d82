//! The thinking-history rewrite (SPEC §4.4, issue 8 item 3) as a rules table: every case
//! in `tests/fixtures/thinking/*.json` is a request body in, the exact body out (or "send
//! the original bytes"), checked against the expected JSON, held to `validate` (Anthropic's
//! message rules), and checked byte for byte outside `messages` and `thinking`. Then the
//! validator itself, byte preservation inside `messages`, analysis and the taps.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cc_relay::codec::json::top_level_value_span;
use cc_relay::codec::sse::SseParser;
use cc_relay::relay::thinking::{
    analyze, rewrite_for_target, signature_key, signatures_in_response, strip_all_thinking,
    validate, Rewrite, SignatureHash, SignatureTap,
};
use serde_json::{json, Value};

fn fixture_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/thinking");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

/// `body` with the values of `messages` and `thinking` cut out: what must not change.
fn outside_history(body: &[u8]) -> Vec<u8> {
    let mut cuts: Vec<std::ops::Range<usize>> = ["messages", "thinking"]
        .iter()
        .filter_map(|k| top_level_value_span(body, k))
        .collect();
    cuts.sort_by_key(|r| r.start);
    let mut out = Vec::new();
    let mut at = 0;
    for cut in cuts {
        out.extend_from_slice(&body[at..cut.start]);
        out.extend_from_slice(b"<cut>");
        at = cut.end;
    }
    out.extend_from_slice(&body[at..]);
    out
}

fn run_fixture(path: &Path) -> Result<(), String> {
    let file = std::fs::read(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_slice(&file).map_err(|e| e.to_string())?;
    // The input exactly as written in the fixture file (its key order and whitespace).
    let span = top_level_value_span(&file, "input").ok_or("no input")?;
    let input = &file[span];
    let input_value: Value = serde_json::from_slice(input).map_err(|e| e.to_string())?;

    let input_valid = case["input_valid"].as_bool().unwrap_or(true);
    match validate(&input_value) {
        Ok(()) if !input_valid => return Err("input passes the validator unexpectedly".into()),
        Err(why) if input_valid => return Err(format!("input is not valid: {why}")),
        _ => {}
    }

    let rewrite: Rewrite = match &case["foreign"] {
        Value::String(all) if all == "all" => strip_all_thinking(input),
        Value::Array(list) => {
            let foreign: HashSet<SignatureHash> = list
                .iter()
                .map(|s| signature_key(s.as_str().unwrap_or_default()))
                .collect();
            rewrite_for_target(input, |h| !foreign.contains(h))
        }
        other => return Err(format!("bad foreign field {other}")),
    };

    if rewrite.removed as u64 != case["removed"].as_u64().ok_or("removed")? {
        return Err(format!("removed {} blocks", rewrite.removed));
    }
    if rewrite.thinking_disabled != case["thinking_disabled"].as_bool().ok_or("disabled")? {
        return Err(format!("thinking_disabled = {}", rewrite.thinking_disabled));
    }
    let out: &[u8] = match (&rewrite.body, &case["expected"]) {
        (None, Value::Null) => input,
        (Some(body), expected @ Value::Object(_)) => {
            let got: Value = serde_json::from_slice(body).map_err(|e| {
                format!("output is not JSON: {e}: {}", String::from_utf8_lossy(body))
            })?;
            if &got != expected {
                return Err(format!("output differs:\n got {got}\nwant {expected}"));
            }
            body
        }
        (got, want) => {
            return Err(format!(
                "got body {:?}, expected {want}",
                got.as_deref().map(String::from_utf8_lossy)
            ))
        }
    };
    let out_value: Value = serde_json::from_slice(out).map_err(|e| e.to_string())?;
    validate(&out_value).map_err(|why| format!("output breaks the message rules: {why}"))?;
    if outside_history(out) != outside_history(input) {
        return Err("bytes outside messages/thinking changed".into());
    }
    // Applying the same rewrite again changes nothing.
    let again = match &case["foreign"] {
        Value::String(_) => strip_all_thinking(out),
        _ => rewrite_for_target(out, |h| {
            let foreign = case["foreign"].as_array().into_iter().flatten();
            !foreign
                .map(|s| signature_key(s.as_str().unwrap_or_default()))
                .any(|f| &f == h)
        }),
    };
    if again != Rewrite::default() {
        return Err(format!("second rewrite still changes something: {again:?}"));
    }
    Ok(())
}

#[test]
fn rules_table() {
    let paths = fixture_paths();
    assert!(paths.len() >= 25, "only {} fixtures", paths.len());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            run_fixture(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Kept blocks, untouched messages and everything else keep their exact bytes: key
/// order, whitespace, escapes, and numbers serde_json would round.
#[test]
fn rewrite_splices_the_clients_bytes() {
    let input = concat!(
        "{ \"model\" : \"claude-opus-4-1\",\n",
        "  \"messages\": [\n",
        "    {\"content\": \"first \\u00e9\", \"role\": \"user\"},\n",
        "    {\"role\":\"assistant\",\"content\":[ {\"signature\":\"FOREIGN\",\"type\":\"thinking\",\"thinking\":\"x\"} ,\n",
        "       {\"type\":\"tool_use\", \"input\": {\"n\": 123456789012345678901234567890, \"z\": 1e400}, \"name\":\"Calc\",\"id\":\"t1\"} ]},\n",
        "    {\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"ok\"}]}\n",
        "  ],\n",
        "  \"thinking\" : {\"budget_tokens\": 2048, \"type\": \"enabled\"}, \"max_tokens\": 4096 }"
    );
    let foreign = signature_key("FOREIGN");
    let rewrite = rewrite_for_target(input.as_bytes(), |h| *h != foreign);
    assert_eq!(rewrite.removed, 1);
    assert!(rewrite.thinking_disabled);
    let expected = concat!(
        "{ \"model\" : \"claude-opus-4-1\",\n",
        "  \"messages\": [",
        "{\"content\": \"first \\u00e9\", \"role\": \"user\"},",
        "{\"role\":\"assistant\",\"content\":[",
        "{\"type\":\"tool_use\", \"input\": {\"n\": 123456789012345678901234567890, \"z\": 1e400}, \"name\":\"Calc\",\"id\":\"t1\"}]},",
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"ok\"}]}",
        "],\n",
        "  \"thinking\" : {\"type\":\"disabled\"}, \"max_tokens\": 4096 }"
    );
    assert_eq!(
        String::from_utf8_lossy(rewrite.body.as_deref().unwrap_or_default()),
        expected
    );
}

#[test]
fn merge_keeps_string_escapes_verbatim() {
    let input = br#"{"messages":[{"role":"user","content":"a \"quoted\"\nline"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"R"}]},{"role":"user","content":"b"}]}"#;
    let rewrite = strip_all_thinking(input);
    assert_eq!(
        String::from_utf8_lossy(rewrite.body.as_deref().unwrap_or_default()),
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a \"quoted\"\nline"},{"type":"text","text":"b"}]}]}"#
    );
}

#[test]
fn nothing_to_do_means_original_bytes() {
    let input = br#"{"model":"m","thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"S"},{"type":"tool_use","id":"a","name":"n","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"r"}]}]}"#;
    assert_eq!(rewrite_for_target(input, |_| true), Rewrite::default());
    assert_eq!(
        strip_all_thinking(b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
        Rewrite::default()
    );
}

#[test]
fn keep_is_asked_about_each_thinking_block_once() {
    let input = br#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"S1"},{"type":"text","text":"a"},{"type":"redacted_thinking","data":"D1"}]},{"role":"user","content":"q"}]}"#;
    let asked = std::cell::RefCell::new(Vec::new());
    let _ = rewrite_for_target(input, |h| {
        asked.borrow_mut().push(*h);
        true
    });
    assert_eq!(
        asked.into_inner(),
        vec![signature_key("S1"), signature_key("D1")]
    );
}

#[test]
fn analyze_reports_signed_blocks_and_loop_state() {
    let input = br#"{"thinking":{"type":"enabled","budget_tokens":1024},"messages":[
        {"role":"user","content":"q"},
        {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"S1"},{"type":"text","text":"a"}]},
        {"role":"user","content":"q2"},
        {"role":"assistant","content":[{"type":"redacted_thinking","data":"D2"},{"type":"thinking","thinking":"u","signature":""},{"type":"tool_use","id":"x","name":"n","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"r"}]}]}"#;
    let info = analyze(input);
    assert!(info.readable);
    assert!(info.thinking_enabled);
    assert!(info.open_tool_loop);
    assert_eq!(info.unsigned_thinking_blocks, 1);
    let blocks: Vec<(usize, usize, SignatureHash, bool)> = info
        .signed_blocks
        .iter()
        .map(|b| (b.message_index, b.block_index, b.hash, b.redacted))
        .collect();
    assert_eq!(
        blocks,
        vec![
            (1, 0, signature_key("S1"), false),
            (3, 0, signature_key("D2"), true)
        ]
    );
    assert_eq!(info.newest_signed_hash, Some(signature_key("D2")));

    let closed = analyze(br#"{"messages":[{"role":"user","content":"q"}]}"#);
    assert!(closed.readable && !closed.open_tool_loop && !closed.thinking_enabled);
    assert_eq!(closed.newest_signed_hash, None);
}

/// The validator must reject what the API rejects, or the table above proves nothing.
#[test]
fn validator_rejects_each_rule_break() {
    let t = |sig: &str| json!({"type":"thinking","thinking":"t","signature":sig});
    let tu = |id: &str| json!({"type":"tool_use","id":id,"name":"n","input":{}});
    let tr = |id: &str| json!({"type":"tool_result","tool_use_id":id,"content":"r"});
    let text = |s: &str| json!({"type":"text","text":s});
    let on = json!({"type":"enabled","budget_tokens":1024});
    let body = |messages: Value, thinking: Option<&Value>| {
        let mut b = json!({"model":"m","max_tokens":2048,"messages":messages});
        if let Some(t) = thinking {
            b["thinking"] = t.clone();
        }
        b
    };
    let bad: Vec<(&str, Value)> = vec![
        ("not an object", json!([1])),
        ("no messages", json!({"model":"m"})),
        ("empty messages", body(json!([]), None)),
        (
            "assistant first",
            body(json!([{"role":"assistant","content":"a"}]), None),
        ),
        (
            "unknown role",
            body(json!([{"role":"system","content":"a"}]), None),
        ),
        (
            "two users",
            body(
                json!([{"role":"user","content":"a"},{"role":"user","content":"b"}]),
                None,
            ),
        ),
        (
            "empty array",
            body(json!([{"role":"user","content":[]}]), None),
        ),
        (
            "empty string",
            body(json!([{"role":"user","content":""}]), None),
        ),
        (
            "blank text block",
            body(json!([{"role":"user","content":[text(" \n")]}]), None),
        ),
        ("missing content", body(json!([{"role":"user"}]), None)),
        (
            "thinking in user turn",
            body(json!([{"role":"user","content":[t("S")]}]), None),
        ),
        (
            "tool_use in user turn",
            body(json!([{"role":"user","content":[tu("a")]}]), None),
        ),
        (
            "orphan tool_result",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[text("a")]},{"role":"user","content":[tr("x")]}]),
                None,
            ),
        ),
        (
            "tool_result answering an older turn",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[tu("a")]},{"role":"user","content":[tr("a")]},{"role":"assistant","content":[text("b")]},{"role":"user","content":[tr("a")]}]),
                None,
            ),
        ),
        (
            "unanswered tool_use",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[tu("a"),tu("b")]},{"role":"user","content":[tr("a")]}]),
                None,
            ),
        ),
        (
            "tool_result after text",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[tu("a")]},{"role":"user","content":[text("x"),tr("a")]}]),
                None,
            ),
        ),
        (
            "duplicate tool_use id",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[tu("a"),tu("a")]},{"role":"user","content":[tr("a")]}]),
                None,
            ),
        ),
        (
            "open loop without thinking",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[text("x"),tu("a")]},{"role":"user","content":[tr("a")]}]),
                Some(&on),
            ),
        ),
        (
            "multi-step loop opened without thinking",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[tu("a")]},{"role":"user","content":[tr("a"),text("note")]},{"role":"assistant","content":[t("S"),tu("b")]},{"role":"user","content":[tr("b")]}]),
                Some(&on),
            ),
        ),
        (
            "final assistant thinking while off",
            body(
                json!([{"role":"user","content":"q"},{"role":"assistant","content":[t("S"),text("x")]}]),
                None,
            ),
        ),
    ];
    for (name, value) in &bad {
        assert!(validate(value).is_err(), "{name} passed the validator");
    }
    let good = body(
        json!([{"role":"user","content":"q"},{"role":"assistant","content":[t("S"),tu("a")]},{"role":"user","content":[tr("a"),text("note")]},{"role":"assistant","content":[tu("b")]},{"role":"user","content":[tr("b")]}]),
        Some(&on),
    );
    assert_eq!(validate(&good), Ok(()));
}

/// A Claude thinking stream, as an Anthropic upstream sends it, split at every byte.
const THINKING_STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me check the file.\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCkYIBxgCKkBsig1\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy3va3pzix\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Read\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"file_path\\\":\\\"/a\\\"}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":30}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

fn tap_stream(stream: &[u8], split: usize) -> Vec<SignatureHash> {
    let mut parser = SseParser::new();
    let mut tap = SignatureTap::new();
    let mut seen = Vec::new();
    for piece in stream.chunks(split.max(1)) {
        let _ = parser.feed(piece, |event| tap.observe(event.event, event.data));
        seen.extend(tap.take());
    }
    seen.extend(tap.finish());
    seen
}

#[test]
fn tap_collects_signatures_from_a_stream_however_it_is_split() {
    let expected = vec![
        signature_key("EqQBCkYIBxgCKkBsig1"),
        signature_key("EmwKAhgBEgy3va3pzix"),
    ];
    for split in [1, 2, 7, 64, THINKING_STREAM.len()] {
        assert_eq!(
            tap_stream(THINKING_STREAM.as_bytes(), split),
            expected,
            "split {split}"
        );
    }
}

#[test]
fn tap_finds_nothing_in_a_real_text_stream() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/eventstream/bedrock-anthropic-real-capture/expected.sse"
    );
    let stream = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(stream.len() > 1000);
    assert!(tap_stream(&stream, 13).is_empty());
}

#[test]
fn response_and_stream_agree() {
    let response = br#"{"id":"msg_1","type":"message","role":"assistant","content":[
        {"type":"thinking","thinking":"Let me check the file.","signature":"EqQBCkYIBxgCKkBsig1"},
        {"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"},
        {"type":"tool_use","id":"toolu_1","name":"Read","input":{"file_path":"/a"}}],
        "stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":30}}"#;
    assert_eq!(
        signatures_in_response(response),
        tap_stream(THINKING_STREAM.as_bytes(), 5)
    );
}
