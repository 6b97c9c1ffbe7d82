//! What `cache.mode: ha` adds per request (issue 11): the same keyed non-stream request,
//! sequentially, through a relay in `single` mode and through one in `ha` mode against a
//! real loopback redis-server (one reservation + one correction per request). Prints
//! p50/p99 for both and the difference. Skips with a notice when redis-server is missing.
//! `--quick` / CC_RELAY_BENCH_QUICK=1 runs a few requests.

mod json_mock;
#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use cc_relay::cli::serve::spawn;
use cc_relay::config::{CacheMode, Config, KeyConfig, ProviderConfig, ProviderType};

fn config(upstream: SocketAddr) -> Config {
    let mut p = ProviderConfig::new("main", ProviderType::Anthropic);
    p.base_url = Some(format!("http://{upstream}"));
    p.keys = vec![KeyConfig {
        rpm_limit: 10_000_000,
        tpm_limit: 1_000_000_000,
        ..KeyConfig::new("bench-key")
    }];
    Config::with_providers(vec![p])
}

/// Sequential requests on one keep-alive connection; microseconds each.
fn run(addr: SocketAddr, count: usize) -> Vec<u64> {
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        writer.write_all(req.as_bytes()).unwrap();
        let mut len = 0usize;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        out.push(t.elapsed().as_micros() as u64);
    }
    out.sort_unstable();
    out
}

fn pct(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("CC_RELAY_BENCH_QUICK").is_some();
    let count = if quick { 20 } else { 3000 };
    let Some(redis) = redis_support::RedisServer::start() else {
        println!("ha bench skipped: redis-server is not installed");
        return;
    };
    let upstream = json_mock::start(
        r#"{"type":"message","content":[],"usage":{"input_tokens":20,"output_tokens":5}}"#,
    );
    let single = spawn(config(upstream), Some("127.0.0.1:0".parse().unwrap())).unwrap();
    let mut ha_config = config(upstream);
    ha_config.cache.mode = CacheMode::Ha;
    ha_config.cache.redis.url = Some(redis.url());
    let ha = spawn(ha_config, Some("127.0.0.1:0".parse().unwrap())).unwrap();
    // Warm both (connections, scripts loaded).
    run(single.handle.addr, 50.min(count));
    run(ha.handle.addr, 50.min(count));
    let s = run(single.handle.addr, count);
    let h = run(ha.handle.addr, count);
    println!("{count} sequential keyed requests (us)   p50     p99");
    println!(
        "single                              {:>6}  {:>6}",
        pct(&s, 0.5),
        pct(&s, 0.99)
    );
    println!(
        "ha (loopback redis)                 {:>6}  {:>6}",
        pct(&h, 0.5),
        pct(&h, 0.99)
    );
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        println!("BENCH name=single_request_{name}_us value={}", pct(&s, q));
        println!("BENCH name=ha_request_{name}_us value={}", pct(&h, q));
        println!(
            "BENCH name=ha_added_{name}_us value={}",
            pct(&h, q) as i64 - pct(&s, q) as i64
        );
    }
}
