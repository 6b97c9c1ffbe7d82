//! Operating the real binary: hot reload that keeps state (SPEC §1.3), SIGHUP, symlink
//! swaps, invalid rewrites, and SIGTERM draining in-flight streams.

mod common;

use std::io::{BufRead, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::scratch::ScratchDir;
use common::*;

struct Served {
    child: Child,
    addr: SocketAddr,
    stderr: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(config: &Path, dir: &Path) -> Served {
    let port = free_port();
    let stderr = dir.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_cc-relay"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let served = Served {
        child,
        addr,
        stderr,
    };
    assert!(
        wait_for(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
        "relay did not start: {}",
        served.log()
    );
    served
}

fn config_for(url: &str, extra: &str) -> String {
    format!(
        "providers:\n  - name: main\n    type: anthropic\n    base_url: \"{url}\"\n{extra}routing:\n  debug: true\n"
    )
}

fn tagged_mock(tag: &'static str) -> MockUpstream {
    MockUpstream::start(move |_req, s| write_json(s, 200, "", &format!(r#"{{"from":"{tag}"}}"#)))
}

fn served_by(addr: SocketAddr) -> String {
    let r = post_messages(addr, PLAIN_BODY, "");
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["from"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn paced_stream_mock() -> MockUpstream {
    MockUpstream::start(|_req, s| {
        start_sse(s);
        for ev in text_stream_events("slow") {
            if write_chunk(s, ev.as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(80));
        }
        end_chunks(s);
    })
}

#[test]
fn reload_swaps_config_keeps_streams_and_rejects_bad_files() {
    let dir = ScratchDir::new("reload");
    let (slow, a, b) = (paced_stream_mock(), tagged_mock("a"), tagged_mock("b"));
    let path = dir.join("config.yaml");
    std::fs::write(&path, config_for(&slow.url(), "")).unwrap();
    let relay = serve(&path, &dir);
    let streams: Vec<_> = (0..4).map(|_| open_stream(relay.addr)).collect();

    std::fs::write(&path, config_for(&a.url(), "")).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || served_by(relay.addr) == "a"),
        "{}",
        relay.log()
    );
    for mut s in streams {
        let mut line = String::new();
        while !line.contains("message_stop") {
            line.clear();
            assert!(
                s.read_line(&mut line).unwrap() > 0,
                "stream in flight finished on the old config"
            );
        }
    }

    // An invalid rewrite is rejected with its errors; the old config keeps serving.
    std::fs::write(
        &path,
        "providers:\n  - name: main\n    type: anthropc\n    base_url: 1\nroutin: {}\n",
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || relay.log().contains("rejected")),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert!(log.contains("providers[0].type"), "{log}");
    assert!(log.contains("routin"), "{log}");
    assert_eq!(served_by(relay.addr), "a");

    // SIGHUP forces a reload.
    std::fs::write(&path, config_for(&b.url(), "")).unwrap();
    relay.signal("HUP");
    assert!(wait_for(Duration::from_secs(10), || served_by(relay.addr) == "b"));
    let metrics = raw_request(relay.addr, b"GET /metrics HTTP/1.1\r\n\r\n").text();
    assert!(
        metrics.contains(r#"cc_relay_reloads_total{result="failed"} 1"#),
        "{metrics}"
    );
}

#[test]
fn symlink_swap_is_seen_and_cooling_keys_stay_cooling() {
    let dir = ScratchDir::new("symlink");
    let mock = MockUpstream::start(|req, s| {
        if req.header("x-api-key") == Some("key-one") {
            write_json(
                s,
                429,
                "retry-after: 600\r\n",
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
            );
        } else {
            write_json(s, 200, "", r#"{"from":"two"}"#);
        }
    });
    let keys =
        "    key_strategy: round_robin\n    keys:\n      - key: key-one\n      - key: key-two\n";
    let v1 = dir.join("v1.yaml");
    let v2 = dir.join("v2.yaml");
    std::fs::write(&v1, config_for(&mock.url(), keys)).unwrap();
    std::fs::write(
        &v2,
        config_for(&mock.url(), &format!("{keys}    models: [\"claude-x\"]\n")),
    )
    .unwrap();
    let link = dir.join("config.yaml");
    std::os::unix::fs::symlink(&v1, &link).unwrap();
    let relay = serve(&link, &dir);
    assert_eq!(served_by(relay.addr), "two");
    assert_eq!(served_by(relay.addr), "two");
    let key_one_uses = || {
        mock.requests()
            .iter()
            .filter(|r| r.header("x-api-key") == Some("key-one"))
            .count()
    };
    assert_eq!(key_one_uses(), 1, "key one cooled down after its 429");

    // Swap the symlink (as a ConfigMap update does): the new config is loaded...
    let tmp_link = dir.join("config.yaml.tmp");
    std::os::unix::fs::symlink(&v2, &tmp_link).unwrap();
    std::fs::rename(&tmp_link, &link).unwrap();
    let models_listed = || {
        raw_request(relay.addr, b"GET /v1/models HTTP/1.1\r\n\r\n")
            .text()
            .contains("claude-x")
    };
    assert!(
        wait_for(Duration::from_secs(10), models_listed),
        "{}",
        relay.log()
    );
    // ...and key one is still cooling down.
    for _ in 0..4 {
        assert_eq!(served_by(relay.addr), "two");
    }
    assert_eq!(key_one_uses(), 1, "cooldown survived the reload");
}

#[test]
fn sigterm_drains_streams_then_exits_zero() {
    let dir = ScratchDir::new("sigterm");
    let slow = paced_stream_mock();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config_for(&slow.url(), "")).unwrap();
    let mut relay = serve(&path, &dir);
    let streams: Vec<_> = (0..4).map(|_| open_stream(relay.addr)).collect();
    relay.signal("TERM");
    assert!(
        wait_for(Duration::from_secs(5), || TcpStream::connect(relay.addr)
            .is_err()),
        "new connections are refused while draining"
    );
    for mut s in streams {
        let mut rest = String::new();
        s.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("message_stop"), "{rest}");
    }
    let status = relay.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", relay.log());
}

#[test]
fn sighup_serves_a_rotated_certificate() {
    use common::tls::{fixture, https_get_health};
    let dir = ScratchDir::new("rotate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(fixture("server.pem"), &cert).unwrap();
    std::fs::copy(fixture("server.key"), &key).unwrap();
    let path = dir.join("config.yaml");
    let tls = format!(
        "server:\n  tls:\n    cert_file: \"{}\"\n    key_file: \"{}\"\n",
        cert.display(),
        key.display()
    );
    std::fs::write(
        &path,
        format!("{tls}{}", config_for("http://127.0.0.1:9", "")),
    )
    .unwrap();
    let relay = serve(&path, &dir);
    assert_eq!(
        https_get_health(relay.addr, "ca.pem"),
        Ok(200),
        "{}",
        relay.log()
    );
    // Rotate the files in place (as cert-manager or certbot do), then SIGHUP.
    std::fs::copy(fixture("server2.pem"), &cert).unwrap();
    std::fs::copy(fixture("server2.key"), &key).unwrap();
    relay.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(10), || https_get_health(
            relay.addr, "ca2.pem"
        ) == Ok(200)),
        "{}",
        relay.log()
    );
    assert!(
        https_get_health(relay.addr, "ca.pem").is_err(),
        "the old certificate is gone"
    );
}
