//! The built `cc-relay` binary as a user runs it: exit codes (0 ok, 1 failure, 2
//! usage), one-line errors on stderr, data on stdout, `config init` writing a file that
//! validates, `config cc init/remove` leaving every other byte of settings.json alone,
//! and `status` against a stand-in relay and against nothing. Each test gets its own
//! HOME / XDG_CONFIG_HOME / working directory and an otherwise empty environment.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "cc-relay-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["home", "xdg", "work"] {
            std::fs::create_dir_all(root.join(dir)).unwrap_or_else(|e| panic!("{e}"));
        }
        Sandbox { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-relay"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .current_dir(self.path("work"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output: Output = cmd.output().unwrap_or_else(|e| panic!("{e}"));
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

const VALID: &str = "providers:\n  - name: local\n    type: ollama\n";

#[test]
fn version_and_help() {
    let s = Sandbox::new();
    for args in [&["--version"][..], &["-V"], &["version"]] {
        let r = s.run(args);
        assert_eq!(r.code, 0);
        assert!(
            r.stdout.starts_with("cc-relay 0.1.0 (commit "),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.trim_end().ends_with(", resolver system)")
                || r.stdout.trim_end().ends_with(", resolver builtin)")
        );
    }
    let helps: &[&[&str]] = &[
        &["--help"],
        &["help"],
        &["serve", "--help"],
        &["config", "--help"],
        &["config", "init", "--help"],
        &["config", "validate", "-h"],
        &["config", "show", "--help"],
        &["config", "cc", "--help"],
        &["config", "cc", "init", "--help"],
        &["status", "--help"],
        &["version", "--help"],
        &["help", "status"],
    ];
    for args in helps {
        let r = s.run(args);
        assert_eq!(r.code, 0, "{args:?}");
        assert!(
            r.stdout.starts_with("Usage: ") || r.stdout.starts_with("cc-relay: "),
            "{args:?}"
        );
        assert!(r.stdout.contains("Example"), "{args:?} has no examples");
        assert_eq!(r.stderr, "", "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let s = Sandbox::new();
    let cases: &[(&[&str], &str)] = &[
        (&["servr"], "error: unknown command 'servr'; did you mean 'serve'? (see 'cc-relay --help')"),
        (&["serve", "--port", "1"], "error: unknown option '--port' (see 'cc-relay serve --help')"),
        (&["serve", "--listen"], "error: option '--listen' needs a value (see 'cc-relay serve --help')"),
        (
            &["serve", "--listen", "nope"],
            "error: --listen: 'nope' is not an address and port (expected e.g. 127.0.0.1:8787 or [::1]:8787) (see 'cc-relay serve --help')",
        ),
        (
            &["serve", "--log-level", "loud"],
            "error: --log-level: unknown level 'loud' (error, warn, info, debug or trace) (see 'cc-relay serve --help')",
        ),
        (&["config", "shwo"], "error: unknown config command 'shwo'; did you mean 'show'? (see 'cc-relay config --help')"),
        (
            &["config", "init", "-o", "x.txt"],
            "error: cannot tell the format from the file name (use .yaml, .yml or .toml, or --format) (see 'cc-relay config init --help')",
        ),
        (
            &["config", "init", "-o", "x.toml", "--format", "yaml"],
            "error: --format yaml does not match the file name 'x.toml' (see 'cc-relay config init --help')",
        ),
        (&["status", "--url", "ftp://x"], "error: 'ftp://x' must start with http:// or https:// (see 'cc-relay status --help')"),
        (&["config", "validate", "extra"], "error: unexpected argument 'extra' (see 'cc-relay config validate --help')"),
    ];
    for (args, line) in cases {
        let r = s.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.stderr_lines(), [*line], "{args:?}");
        assert_eq!(r.stdout, "", "{args:?}");
    }
    let r = s.run(&[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("cc-relay: "));
}

#[test]
fn validate_reports_every_problem_and_exits_1() {
    let s = Sandbox::new();
    s.write(
        "work/config.yaml",
        "routing:\n  stratgy: failover\nproviders:\n  - name: a\n    type: zai\n    keys:\n      - key: k\n        rpm_limit: -1\n",
    );
    let r = s.run(&["config", "validate"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr_lines(),
        [
            "error: routing.stratgy: unknown key; did you mean 'strategy'? (config.yaml:2)",
            "error: providers[0].keys[0].rpm_limit: must be >= 0 (config.yaml:8)",
            "config.yaml: invalid (2 errors)",
        ]
    );

    s.write(
        "work/good.toml",
        "[[providers]]\nname = \"local\"\ntype = \"ollama\"\n\n[server]\nenable_http2 = true\n",
    );
    let r = s.run(&["config", "validate", "--config", "good.toml"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "good.toml: valid (1 provider, 1 enabled)\n");
    assert_eq!(
        r.stderr_lines(),
        ["warning: server.enable_http2: ignored: a Go cc-relay setting with no meaning in this cc-relay (good.toml:6)"]
    );

    let r = s.run(&["config", "validate", "--config", "missing.yaml"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr_lines(),
        [
            "error: cannot read the file: No such file or directory (os error 2) (missing.yaml)",
            "missing.yaml: invalid (1 error)",
        ]
    );
}

#[test]
fn validate_without_any_file_says_where_it_looked() {
    let s = Sandbox::new();
    let r = s.run(&["config", "validate"]);
    assert_eq!(r.code, 1);
    let xdg = s.path("xdg").join("cc-relay");
    assert_eq!(
        r.stderr_lines(),
        [format!(
            "error: no configuration file found (looked for config.yaml, config.yml, config.toml, {0}/config.yaml, {0}/config.yml, {0}/config.toml); `cc-relay serve` would use the built-in default",
            xdg.display()
        )]
    );
}

#[test]
fn discovery_prefers_the_working_directory_then_xdg() {
    let s = Sandbox::new();
    s.write(
        "xdg/cc-relay/config.toml",
        "[[providers]]\nname = \"from-xdg\"\ntype = \"ollama\"\n",
    );
    let r = s.run(&["config", "show"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"name\": \"from-xdg\""));
    s.write(
        "work/config.yml",
        "providers:\n  - name: from-cwd\n    type: ollama\n",
    );
    let r = s.run(&["config", "show"]);
    assert!(r.stdout.contains("\"name\": \"from-cwd\""), "{r:?}");
}

#[test]
fn show_prints_pure_json_with_secrets_hidden() {
    let s = Sandbox::new();
    s.write(
        "work/config.yaml",
        "server:\n  auth:\n    api_key: ${RELAY_KEY}\ncache:\n  mode: ha\n  redis:\n    url: redis://:hunter2@localhost:6379\nproviders:\n  - name: b\n    type: bedrock\n    aws_region: us-east-1\n    aws_access_key_id: AKID\n    aws_secret_access_key: wJalrXUtnFEMI\n    keys:\n      - key: sk-secret-key\n    headers:\n      x-api-key: header-secret\n      x-team: blue\n",
    );
    let r = s.run_with(&["config", "show"], &[("RELAY_KEY", "relay-secret")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "");
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    for secret in [
        "relay-secret",
        "hunter2",
        "AKID",
        "wJalrXUtnFEMI",
        "sk-secret-key",
        "header-secret",
    ] {
        assert!(!r.stdout.contains(secret), "{secret} leaked");
    }
    assert_eq!(v["server"]["auth"]["api_key"], "***");
    assert_eq!(v["cache"]["redis"]["url"], "redis://:***@localhost:6379");
    assert_eq!(v["providers"][0]["keys"][0]["key"], "***");
    assert_eq!(v["providers"][0]["aws_secret_access_key"], "***");
    assert_eq!(v["providers"][0]["headers"]["x-api-key"], "***");
    assert_eq!(v["providers"][0]["headers"]["x-team"], "blue");
    assert_eq!(v["providers"][0]["aws_region"], "us-east-1");

    // No file at all: the embedded default.
    let empty = Sandbox::new();
    let r = empty.run_with(&["config", "show"], &[("ANTHROPIC_API_KEY", "sk-ant-x")]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["providers"][0]["name"], "anthropic");
    assert_eq!(v["providers"][0]["keys"][0]["key"], "***");
    assert_eq!(v["server"]["auth"]["allow_subscription"], false);
}

#[test]
fn init_writes_a_template_that_validates_and_refuses_to_overwrite() {
    let s = Sandbox::new();
    let r = s.run(&["config", "init"]);
    assert_eq!(r.code, 0, "{r:?}");
    let written = s.path("xdg/cc-relay/config.yaml");
    assert!(r
        .stdout
        .starts_with(&format!("wrote {}\n", written.display())));
    assert_eq!(
        s.read("xdg/cc-relay/config.yaml"),
        cc_relay::config::template::YAML
    );
    let r = s.run(&["config", "validate"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "");

    let r = s.run(&["config", "init"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr_lines(),
        [format!(
            "error: {} already exists (use --force to overwrite it)",
            written.display()
        )]
    );
    assert_eq!(s.run(&["config", "init", "--force"]).code, 0);

    let r = s.run(&["config", "init", "--format", "toml"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        s.read("xdg/cc-relay/config.toml"),
        cc_relay::config::template::TOML
    );
    let r = s.run(&[
        "config",
        "validate",
        "--config",
        &s.path("xdg/cc-relay/config.toml").display().to_string(),
    ]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));

    let r = s.run(&["config", "init", "-o", "sub/dir/relay.toml"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        s.read("work/sub/dir/relay.toml"),
        cc_relay::config::template::TOML
    );
    let r = s.run(&["config", "init", "-o", "-", "--format", "toml"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, cc_relay::config::template::TOML)
    );
}

const SETTINGS: &str = "{\n    \"model\": \"opus\",\n    \"env\": {\n        \"DISABLE_TELEMETRY\": \"1\",\n        \"ANTHROPIC_BASE_URL\": \"https://old.example\"\n    },\n    \"permissions\": {\"allow\": [\"Bash(ls:*)\"], \"deny\": []},\n    \"hooks\": {}\n}\n";

#[test]
fn cc_init_touches_only_its_two_entries_and_remove_restores_the_file() {
    let s = Sandbox::new();
    s.write("home/.claude/settings.json", SETTINGS);
    s.write(
        "work/config.yaml",
        &format!("server:\n  auth:\n    api_key: relay-key\n{VALID}"),
    );
    let r = s.run(&["config", "cc", "init"]);
    assert_eq!(r.code, 0, "{r:?}");
    let expected = "{\n    \"model\": \"opus\",\n    \"env\": {\n        \"DISABLE_TELEMETRY\": \"1\",\n        \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\",\n        \"ANTHROPIC_AUTH_TOKEN\": \"relay-key\"\n    },\n    \"permissions\": {\"allow\": [\"Bash(ls:*)\"], \"deny\": []},\n    \"hooks\": {}\n}\n";
    assert_eq!(s.read("home/.claude/settings.json"), expected);
    assert_eq!(s.read("home/.claude/settings.json.cc-relay.bak"), SETTINGS);
    assert!(
        r.stdout
            .contains("ANTHROPIC_AUTH_TOKEN is the config's server.auth.api_key"),
        "{}",
        r.stdout
    );

    // A second init keeps the original backup.
    let r = s.run(&["config", "cc", "init", "--url", "http://10.1.2.3:9000/"]);
    assert_eq!(r.code, 0);
    assert!(s
        .read("home/.claude/settings.json")
        .contains("\"ANTHROPIC_BASE_URL\": \"http://10.1.2.3:9000\","));
    assert_eq!(s.read("home/.claude/settings.json.cc-relay.bak"), SETTINGS);

    let r = s.run(&["config", "cc", "remove"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.read("home/.claude/settings.json"), SETTINGS);
    assert!(!s.path("home/.claude/settings.json.cc-relay.bak").exists());
}

#[test]
fn cc_init_creates_the_file_and_a_token_when_there_is_none() {
    let s = Sandbox::new();
    s.write("work/config.yaml", VALID);
    let r = s.run(&["config", "cc", "init"]);
    assert_eq!(r.code, 0, "{r:?}");
    let settings: serde_json::Value = serde_json::from_str(&s.read("home/.claude/settings.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let token = settings["env"]["ANTHROPIC_AUTH_TOKEN"]
        .as_str()
        .unwrap_or("");
    assert!(token.starts_with("ccr-") && token.len() == 36, "{token}");
    assert!(
        r.stdout.contains(&format!("bearer_secret: \"{token}\"")),
        "{}",
        r.stdout
    );
    assert_eq!(
        settings["env"]["ANTHROPIC_BASE_URL"],
        "http://127.0.0.1:8787"
    );

    let r = s.run(&["config", "cc", "remove"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!s.path("home/.claude/settings.json").exists());
    assert!(!s.path("home/.claude/settings.json.cc-relay.bak").exists());
}

#[test]
fn cc_init_refuses_a_settings_file_it_cannot_edit_safely() {
    let s = Sandbox::new();
    s.write("work/config.yaml", VALID);
    s.write("home/.claude/settings.json", "{ \"model\": \"opus\", }\n");
    let r = s.run(&["config", "cc", "init"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr_lines().len(), 1, "{r:?}");
    assert!(r.stderr.starts_with("error: "), "{r:?}");
    assert!(
        r.stderr
            .contains("settings.json: not valid JSON: trailing comma"),
        "{r:?}"
    );
    assert_eq!(
        s.read("home/.claude/settings.json"),
        "{ \"model\": \"opus\", }\n"
    );
}

#[test]
fn status_when_nothing_listens_is_one_line_and_exit_1() {
    let s = Sandbox::new();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        listener.local_addr().map(|a| a.port()).unwrap_or(1)
    };
    let url = format!("http://127.0.0.1:{port}");
    let r = s.run_with(&["status", "--url", &url], &[("CC_RELAY_API_KEY", "k")]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr_lines(),
        [format!(
            "error: cc-relay is not reachable at {url} (connect failed: 127.0.0.1:{port}: Connection refused (os error 111))"
        )]
    );
}

#[test]
fn status_prints_the_providers_of_a_running_relay() {
    let s = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    s.write(
        "work/config.yaml",
        &format!("server:\n  listen: 127.0.0.1:{port}\n  auth:\n    api_key: from-config\n{VALID}"),
    );
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"data":[{"name":"local","type":"ollama","enabled":true,"priority":1,"weight":1,"circuit":"closed","models":[],"keys":[]}]}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(response.as_bytes());
        String::from_utf8_lossy(&request).into_owned()
    });
    let r = s.run(&["status"]);
    let request = server.join().unwrap_or_default();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        request.starts_with("GET /v1/providers HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nx-api-key: from-config\r\n"),
        "{request}"
    );
    assert_eq!(
        r.stdout,
        "PROVIDER  TYPE    ENABLED  CIRCUIT  PRIORITY  WEIGHT  REQUESTS  REQ/S  ERRORS  TTFB P50/P99 MS  KEY  RPM LEFT  TPM LEFT  COOLDOWN UNTIL\nlocal     ollama  yes      closed   1         1       -         -      -       -/-              -    -         -         -\n"
    );
}

#[test]
fn serve_refuses_bad_configs_before_serving() {
    let s = Sandbox::new();
    s.write("work/bad.yaml", "providers:\n  - name: a\n    type: nope\n");
    let r = s.run(&["serve", "--config", "bad.yaml"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr_lines(),
        ["error: providers[0].type: unknown value 'nope' (expected one of: anthropic, zai, ollama, minimax, bedrock, azure, vertex) (bad.yaml:3)"]
    );
    s.write("work/ok.yaml", VALID);
    let r = s.run(&["serve", "--config", "ok.yaml", "--listen", "0.0.0.0:8787"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr_lines(),
        ["error: server.listen: 0.0.0.0:8787 is not a loopback address and no client secret is set; set server.auth.api_key or server.auth.bearer_secret, or server.auth.allow_unauthenticated: true to serve anyone who can connect"]
    );
}
