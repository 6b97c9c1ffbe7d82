//! Reload under load (issue 9): a steady request stream (200 req/s by default for 10 s)
//! while the config file is rewritten and reloaded every second. Reports how many
//! requests failed (the goal is none) and the latency percentiles around the reloads.
//! `--quick` / CC_RELAY_BENCH_QUICK=1 runs a one-second smoke.

mod json_mock;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_relay::cli::serve::{reload_config, spawn};
use cc_relay::cli::serve_cmd::ServeOverrides;

fn request(addr: SocketAddr) -> Result<u16, String> {
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let req = format!("POST /v1/messages HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "no status".into())
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("CC_RELAY_BENCH_QUICK").is_some();
    let seconds = if quick { 1 } else { 10 };
    let rate = 200u64;
    let upstream = json_mock::start(r#"{"type":"message","content":[]}"#);
    let dir = std::env::temp_dir().join(format!("cc-relay-reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    let write_config = |n: u64| {
        let text = format!(
            "providers:\n  - name: main\n    type: anthropic\n    base_url: \"http://{upstream}\"\n    models: [\"m{n}\"]\n    keys:\n      - key: k\n        rpm_limit: 100000\n"
        );
        std::fs::write(&path, text).unwrap();
    };
    write_config(0);
    let config = cc_relay::config::load_file(&path).unwrap().config;
    let running = spawn(config, Some("127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = running.handle.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let reloads = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut latencies: Vec<u64> = Vec::new();
    std::thread::scope(|scope| {
        let (stop2, reloads2) = (stop.clone(), reloads.clone());
        let path2 = path.clone();
        let running = &running;
        scope.spawn(move || {
            let mut n = 1;
            while !stop2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1000));
                write_config(n);
                reload_config(running, &path2, &ServeOverrides::default());
                reloads2.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        });
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        let mut next = Instant::now();
        while started.elapsed() < Duration::from_secs(seconds) {
            let t = Instant::now();
            match request(addr) {
                Ok(200) => latencies.push(t.elapsed().as_micros() as u64),
                _ => {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }
            next += interval;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        stop.store(true, Ordering::SeqCst);
    });
    latencies.sort_unstable();
    let total = latencies.len() as u64 + failed.load(Ordering::SeqCst);
    println!(
        "reload under load: {total} requests at {rate}/s, {} reloads",
        reloads.load(Ordering::SeqCst)
    );
    println!("BENCH name=reload_requests value={total}");
    println!(
        "BENCH name=reload_count value={}",
        reloads.load(Ordering::SeqCst)
    );
    println!(
        "BENCH name=reload_failed_requests value={} goal_lt=1",
        failed.load(Ordering::SeqCst)
    );
    println!(
        "BENCH name=reload_latency_p50_us value={}",
        percentile(&latencies, 0.5)
    );
    println!(
        "BENCH name=reload_latency_p99_us value={}",
        percentile(&latencies, 0.99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
