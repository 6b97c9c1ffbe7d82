//! The log lines an operator sees (SPEC §6): exact text and JSON request lines, level
//! filtering, `once`, whole lines under concurrency, file reopen, and — the point of
//! the redactor — no configured or secret-shaped value ever reaching the output.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cc_relay::config::{Config, KeyConfig, LogFormat, LogLevel, ProviderConfig, ProviderType};
use cc_relay::obs::log::{
    self, format_message_line, format_request_line, LineStyle, LogDestination, LogSettings, Logger,
    RequestLogRecord,
};
use cc_relay::obs::redact::{config_secrets, secrets_from_google_credentials, Redactor};

/// A writer tests can read back.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::ErrorKind::Other)?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("log output is UTF-8")
    }
}

fn capture_logger(level: LogLevel, format: LogFormat, secrets: Vec<String>) -> (Logger, Capture) {
    let capture = Capture::default();
    let settings = LogSettings {
        level,
        format,
        pretty: Some(false),
        destination: LogDestination::Writer(Box::new(capture.clone())),
        secrets,
    };
    (Logger::new(settings).expect("writer sink"), capture)
}

fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
}

fn full_record() -> RequestLogRecord<'static> {
    RequestLogRecord {
        time: fixed_time(),
        request_id: "req_01HZX",
        method: "POST",
        path: "/v1/messages",
        model: Some("claude-sonnet-4-5"),
        upstream_model: Some("glm-4.6"),
        provider: Some("zai"),
        key: Some("…ab12"),
        status: 200,
        attempts: 2,
        ttfb_ms: Some(123),
        duration_ms: 4567,
        input_tokens: Some(1200),
        output_tokens: Some(345),
    }
}

const TEXT: LineStyle = LineStyle {
    format: LogFormat::Text,
    colour: false,
};
const JSON: LineStyle = LineStyle {
    format: LogFormat::Json,
    colour: false,
};

#[test]
fn text_request_line_is_aligned_key_value_pairs() {
    let line = format_request_line(&full_record(), TEXT, &Redactor::default());
    assert_eq!(
        line,
        concat!(
            "2023-11-14T22:13:20.123Z INFO  request_id=req_01HZX method=POST   ",
            "path=/v1/messages model=claude-sonnet-4-5  upstream_model=glm-4.6            ",
            "provider=zai        key=…ab12    status=200 attempts=2 ttfb_ms=123   ",
            "duration_ms=4567   input_tokens=1200  output_tokens=345\n"
        )
    );
}

#[test]
fn text_request_line_marks_missing_values_and_quotes_odd_ones() {
    let mut record = RequestLogRecord::new("r1", "GET", "/v1/bad path");
    record.time = UNIX_EPOCH;
    record.status = 502;
    record.duration_ms = 7;
    let line = format_request_line(&record, TEXT, &Redactor::default());
    assert_eq!(
        line,
        concat!(
            "1970-01-01T00:00:00.000Z WARN  request_id=r1 method=GET    ",
            "path=\"/v1/bad path\" model=-                  upstream_model=-                  ",
            "provider=-          key=-        status=502 attempts=0 ttfb_ms=-     ",
            "duration_ms=7      input_tokens=-     output_tokens=-\n"
        )
    );
}

#[test]
fn coloured_text_wraps_level_and_status_only() {
    let mut record = full_record();
    record.status = 429;
    let style = LineStyle {
        format: LogFormat::Text,
        colour: true,
    };
    let line = format_request_line(&record, style, &Redactor::default());
    assert!(line.starts_with("2023-11-14T22:13:20.123Z \x1b[32mINFO \x1b[0m request_id="));
    assert!(line.contains(" status=\x1b[33m429\x1b[0m attempts=2 "));
    assert_eq!(line.matches('\x1b').count(), 4);
}

#[test]
fn json_request_line_has_exactly_the_spec_fields() {
    let line = format_request_line(&full_record(), JSON, &Redactor::default());
    assert_eq!(
        line,
        concat!(
            r#"{"ts":"2023-11-14T22:13:20.123Z","level":"info","request_id":"req_01HZX","#,
            r#""method":"POST","path":"/v1/messages","model":"claude-sonnet-4-5","#,
            r#""upstream_model":"glm-4.6","provider":"zai","key":"…ab12","status":200,"#,
            r#""attempts":2,"ttfb_ms":123,"duration_ms":4567,"input_tokens":1200,"#,
            r#""output_tokens":345}"#,
            "\n"
        )
    );
    let value: serde_json::Value = serde_json::from_str(&line).expect("JSON line parses");
    let object = value.as_object().expect("an object");
    let names: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = vec![
        "ts",
        "level",
        "request_id",
        "method",
        "path",
        "model",
        "upstream_model",
        "provider",
        "key",
        "status",
        "attempts",
        "ttfb_ms",
        "duration_ms",
        "input_tokens",
        "output_tokens",
    ];
    let mut sorted = names.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
}

#[test]
fn json_request_line_uses_null_for_missing_values() {
    let mut record = RequestLogRecord::new("r\"2", "POST", "/v1/messages");
    record.status = 401;
    let line = format_request_line(&record, JSON, &Redactor::default());
    let value: serde_json::Value = serde_json::from_str(&line).expect("JSON line parses");
    assert_eq!(value["request_id"], "r\"2");
    for field in [
        "model",
        "upstream_model",
        "provider",
        "key",
        "ttfb_ms",
        "input_tokens",
        "output_tokens",
    ] {
        assert!(value[field].is_null(), "{field} should be null in {line}");
    }
    assert_eq!(value["status"], 401);
    assert_eq!(value["attempts"], 0);
    assert_eq!(value["level"], "info");
}

#[test]
fn message_lines_in_both_formats() {
    let redactor = Redactor::default();
    let attempts = 3;
    let fields: &[(&str, &dyn std::fmt::Display)] = &[
        ("provider", &"zai"),
        ("attempts", &attempts),
        ("note", &"two words"),
    ];
    let text = format_message_line(
        fixed_time(),
        LogLevel::Warn,
        "upstream slow\nreally",
        fields,
        TEXT,
        &redactor,
    );
    assert_eq!(
        text,
        "2023-11-14T22:13:20.123Z WARN  upstream slow\\nreally provider=zai attempts=3 note=\"two words\"\n"
    );
    let json = format_message_line(
        fixed_time(),
        LogLevel::Error,
        "boom",
        fields,
        JSON,
        &redactor,
    );
    assert_eq!(
        json,
        "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"error\",\"msg\":\"boom\",\"provider\":\"zai\",\"attempts\":\"3\",\"note\":\"two words\"}\n"
    );
    serde_json::from_str::<serde_json::Value>(&json).expect("JSON line parses");
}

#[test]
fn level_filter_drops_lines_below_it() {
    let (logger, capture) = capture_logger(LogLevel::Warn, LogFormat::Text, Vec::new());
    logger.info("not shown");
    logger.log(LogLevel::Debug, "not shown either");
    logger.request(&full_record());
    let mut failed = full_record();
    failed.status = 503;
    logger.request(&failed);
    logger.log(LogLevel::Error, format_args!("shown {}", 1));
    let output = capture.text();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert!(lines[0].contains(" WARN  request_id=req_01HZX ") && lines[0].contains("status=503"));
    assert!(lines[1].ends_with(" ERROR shown 1"));
}

#[test]
fn once_logs_a_key_once_until_reset() {
    let (logger, capture) = capture_logger(LogLevel::Info, LogFormat::Text, Vec::new());
    assert!(logger.once_at(LogLevel::Warn, "redis-down", "redis down"));
    assert!(!logger.once_at(LogLevel::Warn, "redis-down", "redis down"));
    assert!(logger.once_at(LogLevel::Warn, "other", "other thing"));
    assert!(logger.reset_once("redis-down"));
    assert!(!logger.reset_once("redis-down"));
    assert!(logger.once_at(LogLevel::Warn, "redis-down", "redis down again"));
    let output = capture.text();
    assert_eq!(output.matches("redis down").count(), 2, "{output}");
    assert_eq!(output.lines().count(), 3);
}

#[test]
fn concurrent_lines_are_never_interleaved() {
    let (logger, capture) = capture_logger(LogLevel::Info, LogFormat::Json, Vec::new());
    let logger = Arc::new(logger);
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let logger = Arc::clone(&logger);
            std::thread::spawn(move || {
                let id = format!("thread-{thread}");
                for n in 0..250u64 {
                    let mut record = full_record();
                    record.request_id = &id;
                    record.duration_ms = n;
                    logger.request(&record);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("logging thread");
    }
    let output = capture.text();
    let mut per_thread = [0usize; 8];
    for line in output.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("whole JSON line");
        let id = value["request_id"].as_str().unwrap_or_default();
        let thread: usize = id.trim_start_matches("thread-").parse().expect("thread id");
        per_thread[thread] += 1;
    }
    assert_eq!(per_thread, [250; 8]);
}

#[test]
fn file_destination_appends_and_reopens_after_rotation() {
    let dir = std::env::temp_dir().join(format!("cc-relay-obs-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("relay.log");
    let rotated = dir.join("relay.log.1");
    std::fs::write(&path, "existing\n").expect("seed file");
    let logger = Logger::new(LogSettings {
        level: LogLevel::Info,
        format: LogFormat::Text,
        pretty: Some(false),
        destination: LogDestination::File(path.clone()),
        secrets: Vec::new(),
    })
    .expect("file opens");
    logger.info("before rotation");
    std::fs::rename(&path, &rotated).expect("rotate");
    logger.info("still the old file");
    logger.reopen().expect("reopen");
    logger.info("after rotation");

    let old = std::fs::read_to_string(&rotated).expect("rotated file");
    let new = std::fs::read_to_string(&path).expect("new file");
    let old_lines: Vec<&str> = old.lines().collect();
    assert_eq!(old_lines.len(), 3);
    assert_eq!(old_lines[0], "existing");
    assert!(old_lines[1].ends_with(" INFO  before rotation"));
    assert!(old_lines[2].ends_with(" INFO  still the old file"));
    assert_eq!(new.lines().count(), 1);
    assert!(new.ends_with(" INFO  after rotation\n"));

    let missing_dir = dir.join("no-such-dir").join("x.log");
    let error = logger.reconfigure(LogSettings {
        level: LogLevel::Info,
        format: LogFormat::Json,
        pretty: None,
        destination: LogDestination::File(missing_dir),
        secrets: Vec::new(),
    });
    assert!(error.is_err());
    logger.info("unchanged sink and format");
    let new = std::fs::read_to_string(&path).expect("new file");
    assert!(new.ends_with(" INFO  unchanged sink and format\n"), "{new}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn body_preview_redacts_before_cutting() {
    let (logger, _) = capture_logger(
        LogLevel::Debug,
        LogFormat::Text,
        vec!["zai-secret-0123456789".to_string()],
    );
    // The cut falls inside the secret: redacting after cutting would leak its head.
    let body = br#"{"model":"glm","note":"zai-secret-0123456789","more":"xxxxxxxxxxxxxxxx"}"#;
    let preview = logger.body_preview(body, 30);
    assert_eq!(
        preview,
        format!(
            "{{\"model\":\"glm\",\"note\":\"***\",\"m…({} bytes total)",
            body.len()
        )
    );
    assert_eq!(logger.body_preview(b"short", 30), "short");
    // Cuts land on character boundaries.
    assert_eq!(
        logger.body_preview("ééé".as_bytes(), 3),
        "é…(6 bytes total)"
    );
}

/// One configured value of every secret kind SPEC §6 names.
struct SecretWorld {
    config: Config,
    google_json: String,
    google_access_token: String,
    every_secret: Vec<String>,
}

fn secret_world() -> SecretWorld {
    let anthropic_key = "sk-ant-api03-R2D2C3POr2d2c3poR2D2C3PO-abcdEFGH";
    let zai_key = "4f1c2b9e8d7a6b5c.Zq9Xw8Vu7Ts6";
    let minimax_key = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJHcm91cE5hbWUiOiJ4In0.mMx9sig";
    let named_key = "plainpoolkey-7777";
    let api_key = "relay-client-secret-31337";
    let bearer_secret = "second-bearer-42424242";
    let aws_id = "AKIAZZZZEXAMPLE12345";
    let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let aws_session = "FwoGZXIvYXdzEJr//////////wEaDOEXAMPLE+SESSION=";
    let redis_password = "r3dis-p@ss/word";
    let header_token = "custom-upstream-token-999";
    let google_private_key_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let google_access_token = "ya29.c.b0AXv0zTOPSECRETTOKEN";

    let mut anthropic = ProviderConfig::new("anthropic", ProviderType::Anthropic);
    anthropic.keys.push(KeyConfig::new(anthropic_key));
    let mut named = KeyConfig::new(named_key);
    named.name = Some("team-a".to_string());
    anthropic.keys.push(named);
    let mut zai = ProviderConfig::new("zai", ProviderType::Zai);
    zai.keys.push(KeyConfig::new(zai_key));
    zai.headers.push((
        "Authorization".to_string(),
        format!("Bearer {header_token}"),
    ));
    let mut minimax = ProviderConfig::new("minimax", ProviderType::Minimax);
    minimax.keys.push(KeyConfig::new(minimax_key));
    minimax.enabled = false;
    let mut bedrock = ProviderConfig::new("bedrock", ProviderType::Bedrock);
    bedrock.aws_region = Some("us-east-1".to_string());
    bedrock.aws_access_key_id = Some(aws_id.to_string());
    bedrock.aws_secret_access_key = Some(aws_secret.to_string());
    bedrock.aws_session_token = Some(aws_session.to_string());
    let mut config = Config::with_providers(vec![anthropic, zai, minimax, bedrock]);
    config.server.auth.api_key = Some(api_key.to_string());
    config.server.auth.bearer_secret = Some(bearer_secret.to_string());
    config.cache.redis.url =
        Some("rediss://default:r3dis-p%40ss%2Fword@cache.internal:6380/0".to_string());

    let google_json = format!(
        r#"{{"type":"service_account","private_key_id":"0123456789abcdef0123",
            "private_key":"-----BEGIN PRIVATE KEY-----\n{google_private_key_body}\n-----END PRIVATE KEY-----\n",
            "client_email":"relay@proj.iam.gserviceaccount.com"}}"#
    );
    let every_secret = [
        anthropic_key,
        zai_key,
        minimax_key,
        named_key,
        api_key,
        bearer_secret,
        aws_id,
        aws_secret,
        aws_session,
        redis_password,
        "r3dis-p%40ss%2Fword",
        header_token,
        google_private_key_body,
        "0123456789abcdef0123",
        google_access_token,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    SecretWorld {
        config,
        google_json,
        google_access_token: google_access_token.to_string(),
        every_secret,
    }
}

/// Lines quoting secrets bare, as an upstream error echoing a key would.
fn log_bare(logger: &Logger, world: &SecretWorld) {
    let s = &world.every_secret;
    for level in ALL_LEVELS {
        for secret in s {
            logger.log(
                level,
                format_args!("upstream rejected key {secret} (status 401)"),
            );
            logger.log_fields(
                level,
                "attempt failed",
                &[("key", secret), ("detail", &format!("x-api-key: {secret}"))],
            );
        }
    }
    let mut record = full_record();
    record.model = Some(&s[0]);
    record.key = Some(&s[5]);
    record.request_id = &s[9];
    logger.request(&record);
}

/// Lines quoting secrets inside some structure: headers, URLs, JSON, PEM, queries.
fn log_in_context(logger: &Logger, world: &SecretWorld) {
    let s = &world.every_secret;
    for level in ALL_LEVELS {
        logger.log(
            level,
            format_args!(
                "request headers: Authorization: Bearer {}\r\nx-api-key: {}\r\nx-amz-security-token: {}\r\n",
                s[4], s[0], s[8]
            ),
        );
        logger.log(
            level,
            format_args!(
                "sigv4: Authorization: AWS4-HMAC-SHA256 Credential={}/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=0f3a9c",
                s[6]
            ),
        );
        logger.log(
            level,
            format_args!(
                "redis down: {}",
                world.config.cache.redis.url.as_deref().unwrap_or_default()
            ),
        );
        logger.log(
            level,
            format_args!("google credentials: {}", world.google_json),
        );
        logger.log(
            level,
            format_args!(
                r#"token response {{"access_token":"{}","expires_in":3599,"token_type":"Bearer"}}"#,
                world.google_access_token
            ),
        );
        logger.log(
            level,
            r#"event: content_block_delta data: {"type":"signature_delta","signature":"EqQBCkgIARABGAIiQNotConfiguredAnywhere"}"#,
        );
    }
    let body = format!(
        r#"{{"model":"m","api_key":"{}","messages":[{{"role":"user","content":"my key is {}"}}]}}"#,
        s[1], s[2]
    );
    logger.log_fields(
        LogLevel::Debug,
        "request body",
        &[("body", &logger.body_preview(body.as_bytes(), 40))],
    );
    logger.log_fields(LogLevel::Debug, "request body", &[("body", &body)]);
    let path = format!("/v1/messages?key={}", s[3]);
    let mut record = full_record();
    record.path = &path;
    logger.request(&record);
}

const ALL_LEVELS: [LogLevel; 5] = [
    LogLevel::Error,
    LogLevel::Warn,
    LogLevel::Info,
    LogLevel::Debug,
    LogLevel::Trace,
];

#[test]
fn no_secret_of_any_kind_reaches_the_log() {
    let world = secret_world();
    for format in [LogFormat::Text, LogFormat::Json] {
        let (logger, capture) =
            capture_logger(LogLevel::Trace, format, config_secrets(&world.config));
        logger.set_runtime_secrets(
            "vertex:gcp/credentials",
            secrets_from_google_credentials(&world.google_json),
        );
        logger.set_runtime_secrets("vertex:gcp/token", [world.google_access_token.clone()]);
        log_bare(&logger, &world);
        log_in_context(&logger, &world);
        let output = capture.text();
        assert!(
            output.lines().count() > 150,
            "lines were dropped:\n{output}"
        );
        for secret in &world.every_secret {
            assert!(
                !output.contains(secret.as_str()),
                "{format:?} output leaks {secret:?}:\n{output}"
            );
        }
        // Partial leaks count too: no 12-character slice of any secret appears.
        for secret in &world.every_secret {
            let chars: Vec<char> = secret.chars().collect();
            for window in chars.windows(12) {
                let piece: String = window.iter().collect();
                assert!(
                    !output.contains(&piece),
                    "{format:?} output leaks {piece:?} of {secret:?}"
                );
            }
        }
        assert!(!output.contains("NotConfiguredAnywhere"));
        assert!(output.contains("***"));
        if format == LogFormat::Json {
            for line in output.lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("every JSON line parses");
            }
        }
    }
}

#[test]
fn secret_shapes_are_masked_even_when_not_configured() {
    let world = secret_world();
    let s = &world.every_secret;
    let (logger, capture) = capture_logger(LogLevel::Trace, LogFormat::Text, Vec::new());
    log_in_context(&logger, &world);
    let output = capture.text();
    // Every secret quoted in a header, URL, JSON field, PEM block or query is caught by
    // its context alone.
    for index in [0, 1, 2, 3, 4, 6, 8, 10, 12, 13, 14] {
        assert!(
            !output.contains(s[index].as_str()),
            "leaks {:?}:\n{output}",
            s[index]
        );
    }
    assert!(!output.contains("NotConfiguredAnywhere"));

    // Bare, only the ones with a recognisable shape can be caught.
    let (logger, capture) = capture_logger(LogLevel::Trace, LogFormat::Json, Vec::new());
    log_bare(&logger, &world);
    let output = capture.text();
    for index in [0, 2, 6, 14] {
        assert!(!output.contains(s[index].as_str()), "leaks {:?}", s[index]);
    }
}

#[test]
fn runtime_secret_slots_replace_instead_of_growing() {
    let (logger, capture) = capture_logger(LogLevel::Info, LogFormat::Text, Vec::new());
    logger.set_runtime_secrets("aws:bedrock", ["first-session-token-1"]);
    logger.set_runtime_secrets("aws:bedrock", ["second-session-token-2"]);
    assert_eq!(logger.redactor().secret_count(), 1);
    logger.info("first-session-token-1 second-session-token-2");
    logger.set_runtime_secrets::<_, String>("aws:bedrock", []);
    assert_eq!(logger.redactor().secret_count(), 0);
    let output = capture.text();
    assert!(
        output.ends_with(" INFO  first-session-token-1 ***\n"),
        "{output}"
    );
}

#[test]
fn global_logger_functions_reach_the_configured_sink() {
    // The only test in this binary that touches the process-wide logger.
    let capture = Capture::default();
    let mut settings = LogSettings::to_writer(Box::new(capture.clone()));
    settings.secrets = vec!["global-secret-value".to_string()];
    log::init(settings).expect("init");
    log::info("hello global-secret-value");
    log::debug("filtered");
    assert!(log::once("k", "once only"));
    assert!(!log::once("k", "once only"));
    log::request(&full_record());
    assert_eq!(log::redact("x global-secret-value y"), "x *** y");

    let mut json = LogSettings::to_writer(Box::new(capture.clone()));
    json.format = LogFormat::Json;
    json.level = LogLevel::Debug;
    // Configured secrets are replaced, not merged, by a reconfigure.
    json.secrets = vec!["global-secret-value".to_string()];
    log::reconfigure(json).expect("reconfigure");
    log::debug("now visible global-secret-value");
    assert!(log::enabled(LogLevel::Debug));
    assert!(!log::enabled(LogLevel::Trace));

    let output = capture.text();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 4, "{output}");
    assert!(lines[0].ends_with(" INFO  hello ***"));
    assert!(lines[1].ends_with(" WARN  once only"));
    assert!(lines[2].contains(" INFO  request_id=req_01HZX "));
    assert!(
        lines[3].starts_with("{\"ts\":\"")
            && lines[3].ends_with(r#""level":"debug","msg":"now visible ***"}"#)
    );
}

#[test]
fn settings_from_config_pick_destination_and_secrets() {
    let world = secret_world();
    let mut config = world.config.clone();
    config.logging.level = LogLevel::Debug;
    config.logging.format = LogFormat::Json;
    let settings = LogSettings::from_config(&config);
    assert!(matches!(settings.destination, LogDestination::Stderr));
    assert_eq!(settings.level, LogLevel::Debug);
    assert_eq!(settings.format, LogFormat::Json);
    for configured in &world.every_secret[..12] {
        assert!(
            settings.secrets.iter().any(|s| s == configured),
            "config_secrets misses {configured:?}"
        );
    }
    assert!(!settings
        .secrets
        .iter()
        .any(|s| s.contains("cache.internal")));
    config.logging.file = Some("/var/log/cc-relay.log".to_string());
    assert!(matches!(
        LogSettings::from_config(&config).destination,
        LogDestination::File(ref p) if p.to_str() == Some("/var/log/cc-relay.log")
    ));
    config.logging.file = Some("stdout".to_string());
    assert!(matches!(
        LogSettings::from_config(&config).destination,
        LogDestination::Stdout
    ));
}
