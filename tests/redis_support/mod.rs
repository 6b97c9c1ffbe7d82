//! Test support: a real `redis-server` on a free loopback port, started per test and
//! killed when dropped. When the binary is missing, `RedisServer::start` prints a loud
//! skip notice and returns None (run `.ci/install-redis`; CI installs it).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    dir: PathBuf,
    /// The server listens with TLS only (no plain port to poll with PING).
    tls: bool,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

pub fn redis_server_available() -> bool {
    match Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(_) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: redis-server is not installed; run .ci/install-redis !!!!!!!!\n"
            );
            false
        }
    }
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Extra `redis-server` options, e.g. `["--requirepass", "pw"]`.
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        if !redis_server_available() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "cc-relay-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // A port picked free can be taken by another test before redis binds it: retry.
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                args: extra.iter().map(|s| s.to_string()).collect(),
                dir: dir.clone(),
                tls: false,
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start");
    }

    /// A TLS-only server with the test CA's localhost/127.0.0.1 certificate.
    pub fn start_tls() -> Option<RedisServer> {
        if !redis_server_available() {
            return None;
        }
        let fixture =
            |name: &str| format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::temp_dir().join(format!(
            "cc-relay-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                args: vec![
                    "--tls-cert-file".into(),
                    fixture("server.pem"),
                    "--tls-key-file".into(),
                    fixture("server.key"),
                    "--tls-ca-cert-file".into(),
                    fixture("ca.pem"),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ],
                dir: dir.clone(),
                tls: true,
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server (TLS) did not start");
    }

    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        if self.tls {
            cmd.args(["--port", "0", "--tls-port", &port]);
        } else {
            cmd.args(["--port", &port]);
        }
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(child) = cmd.spawn() else {
            return false;
        };
        self.child = Some(child);
        if self.wait_ready(Duration::from_secs(10)) {
            return true;
        }
        self.kill();
        false
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Ready = answers PING (any reply: `-NOAUTH` counts) or, over TLS, accepts TCP.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(child) = &mut self.child {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if let Ok(mut stream) =
                TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200))
            {
                if self.tls {
                    return true;
                }
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() {
                    let mut buf = [0u8; 64];
                    if let Ok(n) = stream.read(&mut buf) {
                        if n > 0 && (buf[0] == b'+' || buf[0] == b'-') {
                            return true;
                        }
                    }
                }
            }
            std::thread::yield_now();
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL and reap: the port is closed when this returns.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port with the same options (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.spawn() {
                return;
            }
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing. Returns once the
    /// kernel reports the process stopped.
    pub fn pause(&self) {
        self.signal("-STOP", 'T');
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        self.signal("-CONT", 'S');
    }

    fn signal(&self, sig: &str, want_state: char) {
        let pid = self.pid().expect("running server");
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 3, after the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            match (want_state, state) {
                ('T', Some('T' | 't')) => return,
                ('S', Some(s)) if s != 'T' && s != 't' => return,
                _ => std::thread::yield_now(),
            }
        }
        panic!("redis-server did not reach state {want_state}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (paused) server too.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `cond` until it holds or `limit` passes (no fixed sleeps).
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
