//! The static binary in an empty root (issue 10): builds cc-relay with
//! `scripts/build-static.sh`, proves it needs no shared library (its own ELF headers,
//! and `file`/`ldd` where installed), then runs it chrooted into a directory holding
//! only the binary, a config file, a hosts file and a CA file. There it must start,
//! answer `/health` (also through `cc-relay health`), relay a streamed request byte for
//! byte to a mock upstream in this process (the chroot shares the network namespace),
//! reach a TLS upstream trusting only the CA file, and exit 0 on SIGTERM.
//!
//! The build uses the `static-test` profile (release without LTO) in its own target
//! directory, so it does not fight the outer `cargo test` for its lock. Environment:
//! - `CC_RELAY_STATIC_PROFILE=dist` builds and tests the shipped profile instead;
//! - `CC_RELAY_SKIP_STATIC=1` skips everything here with a notice (machines that cannot
//!   chroot or have no time for a second build);
//! - `CC_RELAY_STATIC_BIN=/path/to/cc-relay` tests a binary built beforehand (a CI step
//!   that ran `scripts/build-static.sh`) instead of building one.
//!
//! `measure_binaries` (ignored) is the measuring tool behind the numbers in the README:
//! start-up to first accepted connection, idle RSS, stream and request throughput, for
//! the binaries named in `CC_RELAY_MEASURE_BINS=name=path,name=path`.

mod common;
mod dns_support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::tls::{fixture, start_tls_mock};
use common::*;

const SKIP_ENV: &str = "CC_RELAY_SKIP_STATIC";
const DEFAULT_PROFILE: &str = "static-test";
const UPSTREAM_KEY: &str = "sk-ant-static-root-test";
const TLS_UPSTREAM_BODY: &str = r#"{"id":"msg_tls","type":"message","role":"assistant","content":[{"type":"text","text":"over tls"}],"model":"claude-x","stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skipped() -> bool {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("NOTICE: {SKIP_ENV}=1: static binary test skipped, nothing was checked");
        return true;
    }
    false
}

/// The binary under test and the profile it was built with: `CC_RELAY_STATIC_BIN`
/// (profile unknown), else a fresh build with `CC_RELAY_STATIC_PROFILE` (default
/// `static-test`; `dist` tests exactly what ships, in about twice the time).
/// Built once per test process, however many tests ask.
fn static_binary() -> (PathBuf, Option<String>) {
    static BUILT: Mutex<Option<(PathBuf, Option<String>)>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = built.as_ref() {
        return b.clone();
    }
    let b = build_static_binary();
    *built = Some(b.clone());
    b
}

fn build_static_binary() -> (PathBuf, Option<String>) {
    if let Ok(path) = std::env::var("CC_RELAY_STATIC_BIN") {
        return (PathBuf::from(path), None);
    }
    let profile =
        std::env::var("CC_RELAY_STATIC_PROFILE").unwrap_or_else(|_| DEFAULT_PROFILE.to_string());
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("static-test"),
        None => repo().join("target").join("static-test"),
    };
    let out_dir = target_dir.join("out").join(&profile);
    let started = Instant::now();
    let output = Command::new(repo().join("scripts/build-static.sh"))
        .args(["--profile", &profile, "--out"])
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Everything the build needs is already fetched for the outer build.
        .env("CARGO_NET_OFFLINE", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/build-static.sh");
    eprintln!(
        "static {profile} build took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "scripts/build-static.sh failed ({:?}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (out_dir.join("cc-relay"), Some(profile))
}

/// What the kernel would need to load the file: an interpreter (`PT_INTERP`, the
/// dynamic loader) and the shared libraries named in `DT_NEEDED` entries. A static-pie
/// has a `PT_DYNAMIC` segment for its own relocations but neither of these.
#[derive(Debug, PartialEq)]
struct LoadNeeds {
    interpreter: bool,
    needed_libraries: usize,
}

fn elf_load_needs(elf: &[u8]) -> Result<LoadNeeds, String> {
    let u16_at = |at: usize| -> Result<u16, String> {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or(format!("ELF truncated at {at}"))
    };
    let u64_at = |at: usize| -> Result<u64, String> {
        let b = elf
            .get(at..at + 8)
            .ok_or(format!("ELF truncated at {at}"))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    };
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a little-endian 64-bit ELF file".into());
    }
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    let mut needs = LoadNeeds {
        interpreter: false,
        needed_libraries: 0,
    };
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        let p_type = u64_at(header)? as u32;
        if p_type == PT_INTERP {
            needs.interpreter = true;
        }
        if p_type == PT_DYNAMIC {
            let offset = u64_at(header + 8)? as usize;
            let size = u64_at(header + 32)? as usize;
            for entry in (offset..offset + size).step_by(16) {
                match u64_at(entry)? {
                    0 => break,
                    DT_NEEDED => needs.needed_libraries += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(needs)
}

#[test]
fn elf_reader_sees_the_loader_of_a_dynamic_binary() {
    // The test binary itself is dynamically linked (the normal test build): the check
    // used on the static binary must be able to say "not static".
    let me = fs::read(std::env::current_exe().unwrap()).unwrap();
    let needs = elf_load_needs(&me).unwrap();
    if cfg!(target_feature = "crt-static") {
        assert_eq!(
            needs,
            LoadNeeds {
                interpreter: false,
                needed_libraries: 0
            }
        );
    } else {
        assert!(needs.interpreter, "{needs:?}");
        assert!(needs.needed_libraries >= 1, "{needs:?}");
    }
    assert!(elf_load_needs(b"#!/bin/sh\n").is_err());
}

fn tool_output(program: &str, arg: &Path) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The full path of `program` on this process's PATH: the chroot command runs with an
/// empty environment, so it cannot be looked up through the child's own PATH.
fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{program}` not found; set {SKIP_ENV}=1 to skip"))
}

/// A directory that becomes `/` for the relay; removed when dropped.
struct EmptyRoot {
    dir: PathBuf,
}

impl EmptyRoot {
    fn bare() -> EmptyRoot {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cc-relay-empty-root-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        EmptyRoot { dir }
    }

    /// The binary, the test CA and a hosts file; the test adds the config.
    fn new(binary: &Path) -> EmptyRoot {
        let root = EmptyRoot::bare();
        root.copy_in(binary, "/cc-relay");
        root.copy_in(Path::new(&fixture("ca.pem")), "/ca.pem");
        root.write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n");
        root
    }

    fn host_path(&self, inside: &str) -> PathBuf {
        let path = self.dir.join(inside.trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    fn copy_in(&self, from: &Path, inside: &str) {
        fs::copy(from, self.host_path(inside))
            .unwrap_or_else(|e| panic!("copy {} to {inside}: {e}", from.display()));
    }

    fn write(&self, inside: &str, contents: &str) {
        fs::write(self.host_path(inside), contents).unwrap();
    }

    /// The entries of the root, sorted: the test asserts nothing else is there.
    fn listing(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut pending = vec![self.dir.clone()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.strip_prefix(&self.dir).unwrap();
                names.push(format!("/{}", name.display()));
                if path.is_dir() {
                    pending.push(path);
                }
            }
        }
        names.sort();
        names
    }

    /// `/cc-relay args...` with this directory as `/`.
    fn command(&self, args: &[&str]) -> Command {
        let mut argv = vec!["/cc-relay"];
        argv.extend_from_slice(args);
        self.exec(None, &argv, &[])
    }

    /// `argv` with this directory as `/`, as `user` ("uid:gid") when given, with only
    /// `env` as its environment: nothing from this machine may leak in and help. As
    /// root a plain chroot; otherwise a user namespace first makes us root enough to
    /// chroot (and there only our own uid exists, so `user` is not switched to).
    fn exec(&self, user: Option<&str>, argv: &[&str], env: &[(&str, &str)]) -> Command {
        let is_root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let mut command = if is_root {
            let mut c = Command::new(on_path("chroot"));
            if let Some(user) = user {
                c.arg(format!("--userspec={user}"));
            }
            c
        } else {
            if user.is_some() {
                eprintln!("NOTICE: not root: running as ourselves, not as {user:?}");
            }
            let mut c = Command::new(on_path("unshare"));
            c.args(["-r", "chroot"]);
            c
        };
        command.arg(&self.dir).args(argv);
        command
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run chroot")
    }
}

impl Drop for EmptyRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The relay process; killed if a test fails before stopping it.
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl RelayProcess {
    /// Starts `serve` and waits for its "listening on" line, which carries the port the
    /// kernel picked for `127.0.0.1:0`.
    fn start(mut command: Command) -> RelayProcess {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relay");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let lines = stderr.clone();
        // Keeps draining the pipe for the whole run: a full pipe would block the relay's
        // log writes.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if let Some(url) = line.split("cc-relay listening on http://").nth(1) {
                    // Text or JSON log lines: the address ends at a quote or a blank.
                    let addr = url.split(|c: char| c == '"' || c.is_whitespace()).next();
                    let _ = tx.send(addr.unwrap_or_default().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "relay did not start ({status:?}); stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        RelayProcess {
            child,
            addr,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit code within `limit`.
    fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let mut exit = None;
        wait_for(limit, || match self.child.try_wait() {
            Ok(Some(s)) => {
                exit = s.code();
                true
            }
            _ => false,
        });
        exit
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn static_binary_runs_alone_in_an_empty_root() {
    if skipped() {
        return;
    }
    let (binary, profile) = static_binary();

    // 1. Static: nothing for the kernel to load besides the file itself.
    let elf = fs::read(&binary).unwrap();
    assert_eq!(
        elf_load_needs(&elf).unwrap(),
        LoadNeeds {
            interpreter: false,
            needed_libraries: 0
        },
        "{} needs a loader or shared libraries",
        binary.display()
    );
    match tool_output("file", &binary) {
        Some(text) => assert!(
            text.contains("static-pie linked") || text.contains("statically linked"),
            "file: {text}"
        ),
        None => eprintln!("NOTICE: `file` not installed; checked the ELF headers only"),
    }
    match tool_output("ldd", &binary) {
        Some(text) => assert!(
            text.contains("statically linked") || text.contains("not a dynamic executable"),
            "ldd: {text}"
        ),
        None => eprintln!("NOTICE: `ldd` not installed; checked the ELF headers only"),
    }

    // 2. Upstreams on loopback: a plain one that streams, a TLS one whose certificate
    // only the CA file in the root vouches for.
    let events = text_stream_events("from an empty root");
    let streamed = events.concat();
    let mock = MockUpstream::start(move |req, s| {
        if req.target.starts_with("/v1/messages") {
            start_sse(s);
            for ev in &events {
                if write_chunk(s, ev.as_bytes()).is_err() {
                    return;
                }
            }
            end_chunks(s);
        } else {
            write_json(s, 404, "", r#"{"type":"error"}"#);
        }
    });
    let tls_mock = start_tls_mock(TLS_UPSTREAM_BODY);

    let root = EmptyRoot::new(&binary);
    root.write(
        "config.yaml",
        &root_config(&format!("http://{}", mock.addr)),
    );
    assert_eq!(
        root.listing(),
        ["/ca.pem", "/cc-relay", "/config.yaml", "/etc", "/etc/hosts"],
        "the root holds only what the issue allows"
    );

    // 3. It knows what it is, with no /proc, /dev or /etc/ssl around it.
    let version = root.run(&["version"]);
    let version_line = String::from_utf8_lossy(&version.stdout);
    assert!(version.status.success(), "{version:?}");
    assert!(
        version_line.starts_with("cc-relay 0.1.0 (commit ")
            && version_line.ends_with(", static, resolver builtin)\n")
            && profile.is_none_or(|p| version_line.contains(&format!(", {p}, static,"))),
        "{version_line}"
    );

    // 4. It serves.
    let mut relay = RelayProcess::start(root.command(&["serve", "--config", "/config.yaml"]));
    let health = raw_request(
        relay.addr,
        b"GET /health HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(health.status, 200, "{}", relay.log());
    assert_eq!(health.text(), r#"{"status":"ok"}"#);

    let url = format!("http://{}", relay.addr);
    let probe = root.run(&["health", "--url", &url]);
    assert_eq!(
        probe.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout),
        format!("{url}/health: 200 {{\"status\":\"ok\"}}\n")
    );

    // 5. A streamed request crosses it byte for byte, with the pool key upstream.
    let response = post_messages(relay.addr, STREAM_BODY, "");
    assert_eq!(response.status, 200, "{}\n{}", response.text(), relay.log());
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.text(), streamed);
    let seen: Vec<Seen> = mock
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/v1/messages"))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(seen[0].body, STREAM_BODY.as_bytes());

    // 6. SIGTERM: drained and exit 0.
    let code = relay.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", relay.log());

    // 7. TLS to an upstream trusted through /ca.pem alone (upstream_ca_only), with
    // ring's code linked in statically. A second run because routing by model is not
    // wired into the relay yet: the config names only the TLS upstream.
    root.write(
        "config.yaml",
        &root_config(&format!("https://127.0.0.1:{}", tls_mock.addr.port())),
    );
    let mut relay = RelayProcess::start(root.command(&["serve", "--config", "/config.yaml"]));
    let response = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(response.status, 200, "{}\n{}", response.text(), relay.log());
    assert_eq!(response.text(), TLS_UPSTREAM_BODY);
    assert_eq!(
        *tls_mock.sni.lock().unwrap(),
        [None],
        "an IP literal sends no SNI"
    );
    assert_eq!(
        relay.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        relay.log()
    );
}

/// The whole configuration inside the root: one upstream, trusted certificates only
/// from the root's CA file, so a TLS upstream works only if that file was read.
fn root_config(upstream_url: &str) -> String {
    format!(
        r#"server:
  listen: "127.0.0.1:0"
  upstream_ca_file: "/ca.pem"
  upstream_ca_only: true
providers:
  - name: a
    type: anthropic
    base_url: "{upstream_url}"
    keys:
      - key: "{UPSTREAM_KEY}"
"#
    )
}

// ---- the Docker image without Docker ----------------------------------------------

/// What `Dockerfile` says, read the way Docker reads it (continuation lines joined,
/// comments dropped); exec-form arrays are JSON.
#[derive(Debug, Default)]
struct DockerImage {
    from: Vec<String>,
    copies: Vec<(String, String)>,
    user: Option<String>,
    expose: Vec<String>,
    healthcheck: Vec<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
}

fn exec_form(text: &str) -> Vec<String> {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not an exec-form JSON array ({e}): {text}"))
}

fn parse_dockerfile(text: &str) -> DockerImage {
    let mut image = DockerImage::default();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && logical.is_empty()) {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            logical.push_str(start);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let instruction = std::mem::take(&mut logical);
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((&instruction, ""));
        let rest = rest.trim();
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => image.from.push(rest.to_string()),
            "COPY" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(parts.len(), 2, "one source per COPY: {instruction}");
                image
                    .copies
                    .push((parts[0].to_string(), parts[1].to_string()));
            }
            "USER" => image.user = Some(rest.to_string()),
            "EXPOSE" => image
                .expose
                .extend(rest.split_whitespace().map(String::from)),
            "HEALTHCHECK" => {
                let (_, command) = rest.split_once("CMD ").expect("HEALTHCHECK ... CMD [..]");
                image.healthcheck = exec_form(command);
            }
            "ENTRYPOINT" => image.entrypoint = exec_form(rest),
            "CMD" => image.cmd = exec_form(rest),
            "STOPSIGNAL" => assert_eq!(rest, "SIGTERM", "the relay drains on SIGTERM"),
            other => panic!("instruction this test does not model: {other}"),
        }
    }
    image
}

#[test]
fn dockerfile_image_runs_as_its_user_and_passes_its_healthcheck() {
    if skipped() {
        return;
    }
    let image = parse_dockerfile(&fs::read_to_string(repo().join("Dockerfile")).unwrap());
    assert_eq!(image.from, ["scratch"]);
    assert_eq!(image.expose, ["8787"]);
    let user = image.user.clone().expect("a USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "non-root: {user}"
    );
    assert_eq!(
        image.copies.first().map(|(src, _)| src.as_str()),
        Some("target/static/cc-relay"),
        "the image copies what scripts/build-static.sh writes"
    );
    let dockerignore = fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for (src, _) in &image.copies {
        assert!(
            dockerignore.lines().any(|l| l == format!("!{src}")),
            ".dockerignore leaves {src} out of the build context"
        );
    }

    // The image's file tree, exactly: each COPY, the binary from this test's build.
    let (binary, _) = static_binary();
    let root = EmptyRoot::bare();
    for (src, dest) in &image.copies {
        let from = if src == "target/static/cc-relay" {
            binary.clone()
        } else {
            repo().join(src)
        };
        root.copy_in(&from, dest);
    }

    // `docker run -e ...`: the variables the baked-in config asks for; the port moves
    // off 8787 only because this test shares the host's network.
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("CC_RELAY_LISTEN", listen.as_str()),
        ("CC_RELAY_API_KEY", "client-secret"),
        ("ANTHROPIC_API_KEY", UPSTREAM_KEY),
    ];
    let argv: Vec<&str> = image
        .entrypoint
        .iter()
        .chain(&image.cmd)
        .map(String::as_str)
        .collect();
    let mut relay = RelayProcess::start(root.exec(Some(&user), &argv, &env));
    assert_eq!(relay.addr.to_string(), listen);
    if fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        let status = fs::read_to_string(format!("/proc/{}/status", relay.child.id())).unwrap();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .unwrap();
        assert_eq!(
            Some(uid),
            user.split(':').next(),
            "runs as the image's USER"
        );
    }

    let healthcheck: Vec<&str> = image.healthcheck.iter().map(String::as_str).collect();
    let check = root.exec(Some(&user), &healthcheck, &env).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "healthcheck: {}\n{}",
        String::from_utf8_lossy(&check.stderr),
        relay.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        format!("http://{listen}/health: 200 {{\"status\":\"ok\"}}\n")
    );
    // Clients must authenticate: the config baked in requires it.
    let response = post_messages(relay.addr, PLAIN_BODY, "");
    assert_eq!(response.status, 401, "{}", response.text());

    assert_eq!(
        relay.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        relay.log()
    );
    // And the same check reports a stopped relay as unhealthy.
    let check = root.exec(Some(&user), &healthcheck, &env).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&check.stderr).starts_with(&format!(
            "error: cc-relay is not reachable at http://{listen} ("
        )),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

// ---- measuring (ignored; run by hand, numbers go to the README) -------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn measure_config(dir: &Path, upstream: SocketAddr, listen_port: u16) -> PathBuf {
    let path = dir.join(format!("measure-{listen_port}.yaml"));
    fs::write(
        &path,
        format!(
            "server:\n  listen: \"127.0.0.1:{listen_port}\"\nlogging:\n  level: error\nproviders:\n  - name: a\n    type: anthropic\n    base_url: \"http://{upstream}\"\n    keys:\n      - key: \"{UPSTREAM_KEY}\"\n"
        ),
    )
    .unwrap();
    path
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A relay under measurement; killed however the measuring ends, a failed assert included.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_serve(bin: &Path, config: &Path) -> Serving {
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Serving(child)
}

/// Start-up: spawn, then connect in a tight loop until the listener accepts (no
/// sleeping: a sleep would be the resolution of the measurement), then one /health.
/// Returns both times in ms.
fn measure_startup(bin: &Path, config: &Path, addr: SocketAddr) -> (f64, f64) {
    let started = Instant::now();
    let relay = spawn_serve(bin, config);
    let deadline = started + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(addr) {
            break s;
        }
        assert!(Instant::now() < deadline, "relay never accepted");
    };
    let connect = started.elapsed().as_secs_f64() * 1000.0;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let response = read_response(&mut BufReader::new(stream));
    assert_eq!(response.status, 200);
    let health = started.elapsed().as_secs_f64() * 1000.0;
    drop(relay);
    (connect, health)
}

/// An upstream that is never the bottleneck and keeps nothing (the recording mock
/// would hold every megabyte body): every response is encoded once up front and written
/// with one call, so the relay's own parsing, framing and flushing is what the numbers
/// measure (small separate writes would measure Nagle and delayed ACKs instead).
fn fast_mock(stream_response: Arc<Vec<u8>>) -> SocketAddr {
    let json = Arc::new(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{TLS_UPSTREAM_BODY}",
        TLS_UPSTREAM_BODY.len()
    ));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (stream_response, json) = (stream_response.clone(), json.clone());
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                loop {
                    let mut length = 0u64;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = Vec::new();
                    (&mut reader).take(length).read_to_end(&mut body).unwrap();
                    // Only small bodies stream here; scanning a megabyte in this debug
                    // build would be slower than the relay under test.
                    let streamed =
                        body.len() < 4096 && body.windows(13).any(|w| w == b"\"stream\":true");
                    let response = if streamed {
                        &stream_response[..]
                    } else {
                        json.as_bytes()
                    };
                    if writer.write_all(response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A ~1 MiB Messages request, the size of a long Claude Code session's context.
fn big_request_body() -> String {
    let turn = format!(
        r#"{{"role":"user","content":[{{"type":"text","text":"{}"}}]}},{{"role":"assistant","content":[{{"type":"text","text":"ok \"quoted\" \u00e9"}}]}}"#,
        "context line with some code: fn main() { println!(); }\\n".repeat(40)
    );
    let turns = vec![turn; 1 << 20 >> 11];
    format!(
        r#"{{"model":"claude-x","max_tokens":64,"messages":[{}]}}"#,
        turns.join(",")
    )
}

/// A complete streamed message (without message_stop it would end in an error event)
/// with `deltas` text deltas of ~250 bytes, one chunk per event; returns the upstream
/// response bytes and the SSE bytes the client must receive.
fn big_stream(deltas: usize) -> (Vec<u8>, usize) {
    let delta = sse_event(
        "content_block_delta",
        &format!(
            r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{}"}}}}"#,
            "x".repeat(180)
        ),
    );
    let frame = text_stream_events("");
    let mut events: Vec<&str> = frame[..3].iter().map(String::as_str).collect();
    events.extend(std::iter::repeat_n(delta.as_str(), deltas));
    events.extend(frame[4..].iter().map(String::as_str));
    let mut response =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    let mut sse_bytes = 0;
    for event in events {
        response.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
        sse_bytes += event.len();
    }
    response.extend_from_slice(b"0\r\n\r\n");
    (response, sse_bytes)
}

#[derive(Default)]
struct Measured {
    connects_ms: Vec<f64>,
    healths_ms: Vec<f64>,
    rss_idle_kib: u64,
    rss_busy_kib: u64,
    stream_mib_s: Vec<f64>,
    requests_per_s: Vec<f64>,
    big_requests_per_s: Vec<f64>,
}

/// Sends `body` `count` times on one keep-alive connection; returns requests/s.
fn sequential_requests(addr: SocketAddr, body: &str, count: usize) -> f64 {
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let conn = connect(addr);
    conn.set_nodelay(true).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    let started = Instant::now();
    for _ in 0..count {
        writer.write_all(request.as_bytes()).unwrap();
        let response = read_response(&mut reader);
        assert_eq!(response.status, 200, "{}", response.text());
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// One throughput round against a running relay: one big stream, then sequential
/// small and ~1 MiB non-streamed requests on keep-alive connections.
fn throughput_round(addr: SocketAddr, sse_bytes: usize, big_body: &str, m: &mut Measured) {
    // Raw bytes, not decoded: the client (a debug build under `cargo test`) must not be
    // what limits the rate.
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{STREAM_BODY}",
        STREAM_BODY.len()
    );
    let mut raw = Vec::with_capacity(sse_bytes * 2);
    let started = Instant::now();
    let mut conn = connect(addr);
    conn.write_all(request.as_bytes()).unwrap();
    conn.read_to_end(&mut raw).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        raw.ends_with(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n\r\n0\r\n\r\n")
    );
    assert!(raw.len() > sse_bytes);
    m.stream_mib_s.push(sse_bytes as f64 / elapsed / 1048576.0);

    m.requests_per_s
        .push(sequential_requests(addr, PLAIN_BODY, 2000));
    m.big_requests_per_s
        .push(sequential_requests(addr, big_body, 20));
}

#[test]
#[ignore = "measures; run by hand with CC_RELAY_MEASURE_BINS=name=path,..."]
fn measure_binaries() {
    let bins: Vec<(String, PathBuf)> = std::env::var("CC_RELAY_MEASURE_BINS")
        .expect("set CC_RELAY_MEASURE_BINS=name=path,name=path")
        .split(',')
        .map(|entry| {
            let (name, path) = entry.split_once('=').expect("name=path");
            (name.to_string(), PathBuf::from(path))
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("cc-relay-measure-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let (stream_response, sse_bytes) = big_stream(100_000);
    let upstream = fast_mock(Arc::new(stream_response));
    let big_body = big_request_body();
    let mut results: Vec<Measured> = bins.iter().map(|_| Measured::default()).collect();
    let ports: Vec<u16> = bins.iter().map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = ports
        .iter()
        .map(|&p| measure_config(&dir, upstream, p))
        .collect();
    let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));

    // Binaries take turns, so a change in the shared machine's load hits all alike.
    for _ in 0..20 {
        for (i, (_, bin)) in bins.iter().enumerate() {
            let (c, h) = measure_startup(bin, &configs[i], addr(i));
            results[i].connects_ms.push(c);
            results[i].healths_ms.push(h);
        }
    }
    let relays: Vec<Serving> = bins
        .iter()
        .enumerate()
        .map(|(i, (_, bin))| spawn_serve(bin, &configs[i]))
        .collect();
    for (i, relay) in relays.iter().enumerate() {
        assert!(wait_for(Duration::from_secs(10), || TcpStream::connect(
            addr(i)
        )
        .is_ok()));
        let health = raw_request(addr(i), b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(health.status, 200);
        results[i].rss_idle_kib = vm_rss_kib(relay.0.id());
    }
    for _ in 0..5 {
        for (i, measured) in results.iter_mut().enumerate() {
            throughput_round(addr(i), sse_bytes, &big_body, measured);
        }
    }
    for (i, relay) in relays.iter().enumerate() {
        results[i].rss_busy_kib = vm_rss_kib(relay.0.id());
    }
    drop(relays);

    println!(
        "{:<16} {:>9} {:>10} {:>10} {:>9} {:>9} {:>8} {:>7} {:>8}",
        "binary",
        "bytes",
        "accepts",
        "/health",
        "RSS idle",
        "RSS busy",
        "MiB/s",
        "req/s",
        "1MiB r/s"
    );
    for (i, (name, bin)) in bins.iter().enumerate() {
        let m = &results[i];
        println!(
            "{name:<16} {:>9} {:>8.2}ms {:>8.2}ms {:>5} KiB {:>5} KiB {:>8.1} {:>7.0} {:>8.1}",
            fs::metadata(bin).unwrap().len(),
            median(m.connects_ms.clone()),
            median(m.healths_ms.clone()),
            m.rss_idle_kib,
            m.rss_busy_kib,
            median(m.stream_mib_s.clone()),
            median(m.requests_per_s.clone()),
            median(m.big_requests_per_s.clone())
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Issue 10's name check: inside the empty root the relay finds `upstream.cc-relay.test`
/// through our stub resolver — `/etc/resolv.conf` names a DNS mock on 127.0.0.2:53 — and
/// relays a streamed request to it. Port 53 needs root; elsewhere this says so and stops.
#[test]
fn static_binary_resolves_a_named_upstream_through_its_own_resolver() {
    if skipped() {
        return;
    }
    let name = "upstream.cc-relay.test";
    let zone = dns_support::Zone::new(vec![dns_support::a(name, 60, [127, 0, 0, 1])]);
    let script: dns_support::Script = Arc::new(move |q: &dns_support::SeenQuery| {
        vec![dns_support::Reply::Packet(zone.answer(q))]
    });
    let Some(dns) = dns_support::MockDns::start_at("127.0.0.2:53".parse().unwrap(), script) else {
        eprintln!("NOTICE: cannot bind 127.0.0.2:53 (not root?); DNS-in-the-root check skipped");
        return;
    };
    let (binary, _) = static_binary();
    let events = text_stream_events("found by name");
    let streamed = events.concat();
    let mock = MockUpstream::start(move |_req, s| {
        start_sse(s);
        for ev in &events {
            let _ = write_chunk(s, ev.as_bytes());
        }
        end_chunks(s);
    });
    let root = EmptyRoot::new(&binary);
    root.write(
        "/etc/resolv.conf",
        "nameserver 127.0.0.2\noptions timeout:2 attempts:1\n",
    );
    root.write(
        "config.yaml",
        &root_config(&format!("http://{name}:{}", mock.addr.port())),
    );
    let mut relay = RelayProcess::start(root.command(&["serve", "--config", "/config.yaml"]));
    let resp = post_messages(relay.addr, STREAM_BODY, "");
    assert_eq!(resp.status, 200, "{} {}", resp.text(), relay.log());
    assert_eq!(resp.text(), streamed);
    assert!(
        dns.asked().iter().any(|(n, t)| n == name && *t == 1),
        "the A query went to the DNS mock: {:?}",
        dns.asked()
    );
    assert_eq!(
        mock.requests()[0].header("host"),
        Some(format!("{name}:{}", mock.addr.port()).as_str())
    );
    assert_eq!(relay.terminate(Duration::from_secs(10)), Some(0));
}
