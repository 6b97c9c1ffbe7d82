//! Extended thinking across providers (SPEC §4.4), end to end. Each mock upstream behaves
//! like a real platform: it signs its thinking with its own family secret, answers 400
//! "Invalid signature" for a history holding a signature it did not issue, and rejects a
//! tool loop whose opening assistant turn lacks thinking while thinking is enabled.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use cc_relay::config::{ProviderType, Strategy};
use common::*;
use serde_json::{json, Value};

struct Platform {
    mock: MockUpstream,
    failing: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    rejected: Arc<AtomicUsize>,
}

fn invalid(message: &str) -> String {
    json!({"type":"error","error":{"type":"invalid_request_error","message":message}}).to_string()
}

/// What a real platform checks before answering.
fn check_history(body: &Value, family: &str) -> Result<(), String> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    for (m, msg) in messages.iter().enumerate() {
        let Some(blocks) = msg["content"].as_array() else {
            continue;
        };
        for (b, block) in blocks.iter().enumerate() {
            let sig = match block["type"].as_str() {
                Some("thinking") => block["signature"].as_str().unwrap_or(""),
                Some("redacted_thinking") => block["data"].as_str().unwrap_or(""),
                _ => continue,
            };
            if !sig.starts_with(&format!("sig-{family}-")) {
                return Err(format!(
                    "messages.{m}.content.{b}: Invalid `signature` in `thinking` block"
                ));
            }
        }
    }
    let thinking_on = body["thinking"]["type"] == "enabled";
    let last_is_tool_result = messages
        .last()
        .and_then(|m| m["content"].as_array())
        .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
    if thinking_on && last_is_tool_result {
        // The assistant turn that opened the tool loop: walk back over
        // (assistant tool_use, user tool_result) pairs to the turn after the last plain
        // user message. Later steps of the loop may start with tool_use.
        let is_tool_result = |m: &Value| {
            m["content"]
                .as_array()
                .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
        };
        let mut user = messages.len() - 1;
        while user >= 2 && is_tool_result(&messages[user - 2]) {
            user -= 2;
        }
        let opener = &messages[user - 1];
        let first = &opener["content"][0]["type"];
        if first != "thinking" && first != "redacted_thinking" {
            return Err("Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block".into());
        }
    }
    Ok(())
}

fn platform(family: &'static str) -> Platform {
    let failing = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let (f, sv, rj) = (failing.clone(), served.clone(), rejected.clone());
    let mock = MockUpstream::start(move |req, s| {
        if f.load(Ordering::SeqCst) {
            write_json(
                s,
                500,
                "",
                &json!({"type":"error","error":{"type":"api_error","message":"down"}}).to_string(),
            );
            return;
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        if let Err(message) = check_history(&body, family) {
            rj.fetch_add(1, Ordering::SeqCst);
            write_json(s, 400, "", &invalid(&message));
            return;
        }
        let n = sv.fetch_add(1, Ordering::SeqCst);
        start_sse(s);
        let mut events = vec![sse_event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        )];
        let mut index = 0;
        if body["thinking"]["type"] == "enabled" {
            events.push(sse_event("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#));
            events.push(sse_event("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"let me think"}}"#));
            events.push(sse_event("content_block_delta", &json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":format!("sig-{family}-{n}")}}).to_string()));
            events.push(sse_event(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ));
            index = 1;
        }
        events.push(sse_event("content_block_start", &json!({"type":"content_block_start","index":index,"content_block":{"type":"tool_use","id":format!("toolu_{family}_{n}"),"name":"bash","input":{}}}).to_string()));
        events.push(sse_event("content_block_delta", &json!({"type":"content_block_delta","index":index,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"ls\"}"}}).to_string()));
        events.push(sse_event(
            "content_block_stop",
            &json!({"type":"content_block_stop","index":index}).to_string(),
        ));
        events.push(sse_event("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#));
        events.push(sse_event("message_stop", r#"{"type":"message_stop"}"#));
        for ev in events {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    Platform {
        mock,
        failing,
        served,
        rejected,
    }
}

/// Rebuilds the assistant message from a streamed answer, as Claude Code does.
fn assistant_message(sse: &str) -> Value {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_parts: Vec<String> = Vec::new();
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let ev: Value = serde_json::from_str(line).unwrap();
        match ev["type"].as_str().unwrap() {
            "content_block_start" => {
                blocks.push(ev["content_block"].clone());
                json_parts.push(String::new());
            }
            "content_block_delta" => {
                let i = ev["index"].as_u64().unwrap() as usize;
                let d = &ev["delta"];
                match d["type"].as_str().unwrap() {
                    "thinking_delta" => {
                        let t = blocks[i]["thinking"].as_str().unwrap().to_string()
                            + d["thinking"].as_str().unwrap();
                        blocks[i]["thinking"] = t.into();
                    }
                    "signature_delta" => blocks[i]["signature"] = d["signature"].clone(),
                    "input_json_delta" => {
                        json_parts[i].push_str(d["partial_json"].as_str().unwrap())
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let i = ev["index"].as_u64().unwrap() as usize;
                if blocks[i]["type"] == "tool_use" {
                    blocks[i]["input"] = serde_json::from_str(&json_parts[i]).unwrap();
                }
            }
            _ => {}
        }
    }
    json!({"role":"assistant","content":blocks})
}

/// A Claude Code-style tool loop: every turn answers the previous tool_use.
struct Conversation {
    messages: Vec<Value>,
}

impl Conversation {
    fn new() -> Conversation {
        Conversation {
            messages: vec![json!({"role":"user","content":"list the files"})],
        }
    }

    fn body(&self) -> String {
        json!({"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,
               "thinking":{"type":"enabled","budget_tokens":1024},
               "messages":self.messages})
        .to_string()
    }

    /// One turn; returns the status and the provider header.
    fn turn(&mut self, relay: &Relay) -> (u16, String) {
        let resp = post_messages(relay.addr, &self.body(), "");
        let provider = resp.header("x-cc-relay-provider").unwrap_or("").to_string();
        if resp.status != 200 {
            return (resp.status, resp.text());
        }
        let assistant = assistant_message(&resp.text());
        let tool_id = assistant["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .map(|b| b["id"].clone())
            .unwrap();
        self.messages.push(assistant);
        self.messages.push(json!({"role":"user","content":[{"type":"tool_result","tool_use_id":tool_id,"content":"a.txt"}]}));
        (200, provider)
    }
}

#[test]
fn conversation_survives_a_provider_switch_mid_tool_loop() {
    let a = platform("claude");
    let b = platform("glm");
    let mut pa = provider("anthropic", ProviderType::Anthropic, &a.mock.url());
    pa.priority = Some(5);
    let mut config = config_with(vec![pa, provider("zai", ProviderType::Zai, &b.mock.url())]);
    config.routing.debug = true;
    config.health.failure_threshold = 1;
    config.health.open_duration_ms = 300;
    config.health.health_check_enabled = false;
    let relay = start_relay(config);
    let mut convo = Conversation::new();
    for turn in 1..=6 {
        if turn == 4 {
            a.failing.store(true, Ordering::SeqCst);
        }
        let (status, who) = convo.turn(&relay);
        assert_eq!(status, 200, "turn {turn}: {who}");
        assert_eq!(
            who,
            if turn <= 3 { "anthropic" } else { "zai" },
            "turn {turn}"
        );
    }
    assert_eq!(b.served.load(Ordering::SeqCst), 3);
    // A recovers: the conversation goes back to the family that signed its thinking and
    // stays valid there.
    a.failing.store(false, Ordering::SeqCst);
    let mut back_on_a = false;
    for _ in 0..40 {
        let (status, who) = convo.turn(&relay);
        assert_eq!(status, 200, "{who}");
        if who == "anthropic" {
            back_on_a = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(back_on_a, "the conversation returned to its signing family");
    assert_eq!(convo.turn(&relay).0, 200);
    assert_eq!(
        a.rejected.load(Ordering::SeqCst) + b.rejected.load(Ordering::SeqCst),
        0
    );
}

#[test]
fn round_robin_with_thinking_never_sends_a_foreign_signature() {
    let a = platform("claude");
    let b = platform("glm");
    let mut config = config_with(vec![
        provider("anthropic", ProviderType::Anthropic, &a.mock.url()),
        provider("zai", ProviderType::Zai, &b.mock.url()),
    ]);
    config.routing.strategy = Strategy::RoundRobin;
    config.routing.debug = true;
    let relay = start_relay(config);
    let mut convo = Conversation::new();
    for turn in 1..=50 {
        let (status, who) = convo.turn(&relay);
        assert_eq!(status, 200, "turn {turn}: {who}");
    }
    assert_eq!(
        a.rejected.load(Ordering::SeqCst) + b.rejected.load(Ordering::SeqCst),
        0
    );
}

#[test]
fn unknown_origin_is_recovered_by_stripping_thinking_once() {
    let a = platform("claude");
    let b = platform("glm");
    // Build a history on A through one relay, then continue on a fresh relay (empty
    // signature store, as after a restart) whose only provider is B.
    let relay_a = start_relay(config_with(vec![provider(
        "anthropic",
        ProviderType::Anthropic,
        &a.mock.url(),
    )]));
    let mut convo = Conversation::new();
    assert_eq!(convo.turn(&relay_a).0, 200);
    assert_eq!(convo.turn(&relay_a).0, 200);
    let relay_b = start_relay(config_with(vec![provider(
        "zai",
        ProviderType::Zai,
        &b.mock.url(),
    )]));
    let (status, detail) = convo.turn(&relay_b);
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        b.rejected.load(Ordering::SeqCst),
        1,
        "first try rejected, the retry succeeded"
    );
    let metrics = raw_request(relay_b.addr, b"GET /metrics HTTP/1.1\r\n\r\n").text();
    assert!(
        metrics.contains("cc_relay_signature_recoveries_total 1"),
        "{metrics}"
    );
}

#[test]
fn one_family_shares_signatures_without_stripping() {
    let a1 = platform("claude");
    let a2 = platform("claude");
    let mut p1 = provider("direct", ProviderType::Anthropic, &a1.mock.url());
    p1.priority = Some(5);
    let mut config = config_with(vec![
        p1,
        provider("bedrock-like", ProviderType::Anthropic, &a2.mock.url()),
    ]);
    config.health.failure_threshold = 1;
    config.health.health_check_enabled = false;
    let relay = start_relay(config);
    let mut convo = Conversation::new();
    assert_eq!(convo.turn(&relay).0, 200);
    assert_eq!(convo.turn(&relay).0, 200);
    a1.failing.store(true, Ordering::SeqCst);
    assert_eq!(convo.turn(&relay).0, 200);
    let last = a2.mock.requests().pop().unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    let kept = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["content"][0]["type"] == "thinking")
        .count();
    assert_eq!(
        kept, 2,
        "both signed thinking blocks went to the same-family provider"
    );
    assert_eq!(body["thinking"]["type"], "enabled");
}
