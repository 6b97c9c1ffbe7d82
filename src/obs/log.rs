//! Logging (SPEC §6): the per-request line and every other log line, as aligned
//! `key=value` text or one JSON object per line, filtered by level, written whole to
//! stderr, stdout or an append-only file that `reopen` swaps after logrotate.
//!
//! Every string that goes into a line — message, field values, request fields — passes
//! through the [`Redactor`] first; a line is then formatted outside any lock and
//! written with one `write_all` under the sink mutex, so concurrent lines never
//! interleave. The process-wide logger is reached through the free functions
//! ([`init`], [`info`], [`request`], …); [`Logger`] itself can be built privately, which
//! is what tests do.
//!
//! This module decides how a line looks and where it goes; it does not decide what is
//! worth logging, and it must never write a secret it was told about.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Display, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::SystemTime;

use super::redact::{config_secrets, Redactor};
use super::time::UtcDateTime;
use crate::config::{Config, LogFormat, LogLevel};

/// Where lines go.
pub enum LogDestination {
    Stderr,
    Stdout,
    /// Opened for append (created if missing); [`reopen`] opens the path again.
    File(PathBuf),
    /// Any writer, e.g. a buffer a test reads back. Each line is one `write_all` + `flush`.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for LogDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogDestination::Stderr => f.write_str("Stderr"),
            LogDestination::Stdout => f.write_str("Stdout"),
            LogDestination::File(path) => f.debug_tuple("File").field(path).finish(),
            LogDestination::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

/// Everything [`init`] / [`reconfigure`] need.
#[derive(Debug)]
pub struct LogSettings {
    pub level: LogLevel,
    pub format: LogFormat,
    /// Colour: `Some(true)` always (text format only), `Some(false)` never, `None` when
    /// writing text to a terminal on stderr.
    pub pretty: Option<bool>,
    pub destination: LogDestination,
    /// Strings to mask wherever they appear (see [`config_secrets`]).
    pub secrets: Vec<String>,
}

impl LogSettings {
    /// `logging.*` of the configuration, and every secret it holds. `file` may also be
    /// `stderr`, `stdout` or `-` (stderr).
    pub fn from_config(config: &Config) -> LogSettings {
        let logging = &config.logging;
        let destination = match logging.file.as_deref() {
            None | Some("") | Some("stderr") | Some("-") => LogDestination::Stderr,
            Some("stdout") => LogDestination::Stdout,
            Some(path) => LogDestination::File(PathBuf::from(path)),
        };
        LogSettings {
            level: logging.level,
            format: logging.format,
            pretty: logging.pretty,
            destination,
            secrets: config_secrets(config),
        }
    }

    /// Info level, plain text without colour, into `writer`, no secrets configured.
    pub fn to_writer(writer: Box<dyn Write + Send>) -> LogSettings {
        LogSettings {
            level: LogLevel::Info,
            format: LogFormat::Text,
            pretty: Some(false),
            destination: LogDestination::Writer(writer),
            secrets: Vec::new(),
        }
    }
}

/// The per-request line (SPEC §6). `None` fields are written as `null` (JSON) or `-`
/// (text) so every line has every field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestLogRecord<'a> {
    /// `ts`: when the response ended (or the line was made).
    pub time: SystemTime,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The model the client asked for.
    pub model: Option<&'a str>,
    /// The model name sent upstream after `model_mapping`.
    pub upstream_model: Option<&'a str>,
    pub provider: Option<&'a str>,
    /// The key's label (`name`, else `…` + last four characters), never the key.
    pub key: Option<&'a str>,
    pub status: u16,
    /// Upstream attempts made (0 when the request never reached routing).
    pub attempts: u32,
    pub ttfb_ms: Option<u64>,
    pub duration_ms: u64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl<'a> RequestLogRecord<'a> {
    /// A record stamped now with every optional field empty; fill in the rest.
    pub fn new(request_id: &'a str, method: &'a str, path: &'a str) -> RequestLogRecord<'a> {
        RequestLogRecord {
            time: SystemTime::now(),
            request_id,
            method,
            path,
            model: None,
            upstream_model: None,
            provider: None,
            key: None,
            status: 0,
            attempts: 0,
            ttfb_ms: None,
            duration_ms: 0,
            input_tokens: None,
            output_tokens: None,
        }
    }

    /// Server-side failures (5xx) are warnings, so `level: warn` shows only those.
    pub fn level(&self) -> LogLevel {
        if self.status >= 500 {
            LogLevel::Warn
        } else {
            LogLevel::Info
        }
    }
}

/// How lines are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineStyle {
    pub format: LogFormat,
    /// ANSI colour on the level and status (text only).
    pub colour: bool,
}

/// A logger with its own sink and secrets. The process-wide one is [`logger`].
pub struct Logger {
    max_level: AtomicU8,
    json: AtomicBool,
    colour: AtomicBool,
    sink: Mutex<Sink>,
    secrets: Mutex<SecretSources>,
    redactor: RwLock<Arc<Redactor>>,
    once_keys: Mutex<HashSet<String>>,
}

enum Sink {
    Stderr,
    Stdout,
    File { path: PathBuf, file: File },
    Writer(Box<dyn Write + Send>),
}

impl Sink {
    fn open(destination: LogDestination) -> io::Result<Sink> {
        Ok(match destination {
            LogDestination::Stderr => Sink::Stderr,
            LogDestination::Stdout => Sink::Stdout,
            LogDestination::File(path) => {
                let file = open_append(&path)?;
                Sink::File { path, file }
            }
            LogDestination::Writer(writer) => Sink::Writer(writer),
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stderr => io::stderr().lock().write_all(line),
            Sink::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(line)?;
                stdout.flush()
            }
            // Unbuffered, opened with O_APPEND: one write per line, appended whole even
            // when another process (or logrotate's copytruncate) touches the file.
            Sink::File { file, .. } => file.write_all(line),
            Sink::Writer(writer) => {
                writer.write_all(line)?;
                writer.flush()
            }
        }
    }
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[derive(Default)]
struct SecretSources {
    configured: Vec<String>,
    runtime: BTreeMap<String, Vec<String>>,
}

impl SecretSources {
    fn redactor(&self) -> Redactor {
        Redactor::new(
            self.configured
                .iter()
                .chain(self.runtime.values().flatten()),
        )
    }
}

fn level_code(level: LogLevel) -> u8 {
    match level {
        LogLevel::Error => 0,
        LogLevel::Warn => 1,
        LogLevel::Info => 2,
        LogLevel::Debug => 3,
        LogLevel::Trace => 4,
    }
}

/// Colour only helps a human at a terminal, and would corrupt JSON.
fn colour_wanted(format: LogFormat, pretty: Option<bool>, stderr_terminal: bool) -> bool {
    match (format, pretty) {
        (LogFormat::Json, _) => false,
        (LogFormat::Text, Some(wanted)) => wanted,
        (LogFormat::Text, None) => stderr_terminal,
    }
}

impl Logger {
    pub fn new(settings: LogSettings) -> io::Result<Logger> {
        let logger = Logger::stderr_default();
        logger.reconfigure(settings)?;
        Ok(logger)
    }

    /// Info, text, stderr, no secrets: what logging looks like before [`init`].
    fn stderr_default() -> Logger {
        Logger {
            max_level: AtomicU8::new(level_code(LogLevel::Info)),
            json: AtomicBool::new(false),
            colour: AtomicBool::new(colour_wanted(
                LogFormat::Text,
                None,
                io::stderr().is_terminal(),
            )),
            sink: Mutex::new(Sink::Stderr),
            secrets: Mutex::new(SecretSources::default()),
            redactor: RwLock::new(Arc::new(Redactor::default())),
            once_keys: Mutex::new(HashSet::new()),
        }
    }

    /// Applies new settings. On error (the log file cannot be opened) nothing changes.
    /// Runtime secrets and `once` keys survive; configured secrets are replaced.
    pub fn reconfigure(&self, settings: LogSettings) -> io::Result<()> {
        let to_stderr = matches!(settings.destination, LogDestination::Stderr);
        let sink = Sink::open(settings.destination)?;
        let colour = colour_wanted(
            settings.format,
            settings.pretty,
            to_stderr && io::stderr().is_terminal(),
        );
        {
            let mut secrets = lock(&self.secrets);
            secrets.configured = settings.secrets;
            *write(&self.redactor) = Arc::new(secrets.redactor());
        }
        *lock(&self.sink) = sink;
        self.json
            .store(settings.format == LogFormat::Json, Ordering::Relaxed);
        self.colour.store(colour, Ordering::Relaxed);
        self.max_level
            .store(level_code(settings.level), Ordering::Relaxed);
        Ok(())
    }

    /// Opens the log file again by path (after logrotate moved it); a no-op for other
    /// destinations. On error the old file stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        let mut sink = lock(&self.sink);
        if let Sink::File { path, file } = &mut *sink {
            *file = open_append(path)?;
        }
        Ok(())
    }

    /// Whether a line at `level` would be written; check it before building costly
    /// messages.
    pub fn enabled(&self, level: LogLevel) -> bool {
        level_code(level) <= self.max_level.load(Ordering::Relaxed)
    }

    fn style(&self) -> LineStyle {
        LineStyle {
            format: if self.json.load(Ordering::Relaxed) {
                LogFormat::Json
            } else {
                LogFormat::Text
            },
            colour: self.colour.load(Ordering::Relaxed),
        }
    }

    /// The redactor in use (configured + runtime secrets), for error messages and
    /// `config show`, which must mask exactly what logs mask.
    pub fn redactor(&self) -> Arc<Redactor> {
        Arc::clone(&read(&self.redactor))
    }

    /// Secrets learned at run time under a named slot (e.g. `vertex:gcp/token`): a new
    /// call replaces the slot's previous secrets, an empty list removes the slot, so
    /// hourly token refreshes do not grow the set.
    pub fn set_runtime_secrets<I, S>(&self, slot: &str, secrets: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| !s.is_empty())
            .collect();
        let mut sources = lock(&self.secrets);
        if values.is_empty() {
            sources.runtime.remove(slot);
        } else {
            sources.runtime.insert(slot.to_string(), values);
        }
        *write(&self.redactor) = Arc::new(sources.redactor());
    }

    pub fn log(&self, level: LogLevel, message: impl Display) {
        self.log_fields(level, message, &[]);
    }

    pub fn error(&self, message: impl Display) {
        self.log(LogLevel::Error, message);
    }

    pub fn warn(&self, message: impl Display) {
        self.log(LogLevel::Warn, message);
    }

    pub fn info(&self, message: impl Display) {
        self.log(LogLevel::Info, message);
    }

    pub fn debug(&self, message: impl Display) {
        self.log(LogLevel::Debug, message);
    }

    pub fn trace(&self, message: impl Display) {
        self.log(LogLevel::Trace, message);
    }

    /// A line with a message and extra `name=value` fields (names are code, values are
    /// redacted like the message).
    pub fn log_fields(
        &self,
        level: LogLevel,
        message: impl Display,
        fields: &[(&str, &dyn Display)],
    ) {
        if !self.enabled(level) {
            return;
        }
        let redactor = self.redactor();
        let line = format_message_line(
            SystemTime::now(),
            level,
            &message.to_string(),
            fields,
            self.style(),
            &redactor,
        );
        self.emit(&line);
    }

    /// The per-request line, at info (warn for 5xx).
    pub fn request(&self, record: &RequestLogRecord<'_>) {
        if !self.enabled(record.level()) {
            return;
        }
        let redactor = self.redactor();
        let line = format_request_line(record, self.style(), &redactor);
        self.emit(&line);
    }

    /// Logs `message` only the first time `key` is seen (until [`Logger::reset_once`]).
    /// Returns whether this call was the first.
    pub fn once_at(&self, level: LogLevel, key: &str, message: impl Display) -> bool {
        let first = lock(&self.once_keys).insert(key.to_string());
        if first {
            self.log(level, message);
        }
        first
    }

    /// Forgets `key` so the next [`Logger::once_at`] logs again (e.g. Redis came back, so
    /// the next outage deserves a line). Returns whether the key was set.
    pub fn reset_once(&self, key: &str) -> bool {
        lock(&self.once_keys).remove(key)
    }

    /// The start of `body` for a debug line: redacted as a whole first (so a secret
    /// cut in half by the limit is still caught), then cut to `max_bytes` on a character
    /// boundary, noting how many bytes were left out. Only `max_bytes` + 4 KiB of the
    /// body are looked at, so a secret longer than 4 KiB straddling the cut could leave
    /// its head visible (key shapes and JSON fields are still masked).
    pub fn body_preview(&self, body: &[u8], max_bytes: usize) -> String {
        const LOOKAHEAD: usize = 4096;
        let window = body
            .get(..max_bytes.saturating_add(LOOKAHEAD))
            .unwrap_or(body);
        let text = String::from_utf8_lossy(window);
        let redacted = self.redactor().redact(&text).into_owned();
        let mut cut = redacted.len().min(max_bytes);
        while !redacted.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut preview = redacted.get(..cut).unwrap_or_default().to_string();
        if cut < redacted.len() || window.len() < body.len() {
            let _ = write!(preview, "…({} bytes total)", body.len());
        }
        preview
    }

    fn emit(&self, line: &str) {
        // A failing log destination must not fail requests; there is nowhere better to
        // report it than the destination that just failed.
        let _ = lock(&self.sink).write_line(line.as_bytes());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Lines and secret lists stay consistent even if a writer panicked mid-call.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------
// Line formatting: pure functions of their inputs, so tests can compare exact bytes.

const RESET: &str = "\x1b[0m";

fn level_text(level: LogLevel) -> (&'static str, &'static str, &'static str) {
    // (text label padded to 5, JSON name, colour)
    match level {
        LogLevel::Error => ("ERROR", "error", "\x1b[31m"),
        LogLevel::Warn => ("WARN ", "warn", "\x1b[33m"),
        LogLevel::Info => ("INFO ", "info", "\x1b[32m"),
        LogLevel::Debug => ("DEBUG", "debug", "\x1b[36m"),
        LogLevel::Trace => ("TRACE", "trace", "\x1b[90m"),
    }
}

fn status_colour(status: u16) -> &'static str {
    match status {
        500.. => "\x1b[31m",
        400..=499 => "\x1b[33m",
        _ => "\x1b[32m",
    }
}

/// A value of the request line before spelling.
enum Value<'a> {
    Text(Option<&'a str>),
    Number(Option<u64>),
}

/// Builds one request line (ending in `\n`). Text values are redacted here.
pub fn format_request_line(
    record: &RequestLogRecord<'_>,
    style: LineStyle,
    redactor: &Redactor,
) -> String {
    let level = record.level();
    // (JSON/text name, value, minimum text width so columns line up on typical values)
    let fields: [(&str, Value<'_>, usize); 13] = [
        ("request_id", Value::Text(Some(record.request_id)), 0),
        ("method", Value::Text(Some(record.method)), 6),
        ("path", Value::Text(Some(record.path)), 12),
        ("model", Value::Text(record.model), 18),
        ("upstream_model", Value::Text(record.upstream_model), 18),
        ("provider", Value::Text(record.provider), 10),
        ("key", Value::Text(record.key), 8),
        ("status", Value::Number(Some(u64::from(record.status))), 3),
        (
            "attempts",
            Value::Number(Some(u64::from(record.attempts))),
            1,
        ),
        ("ttfb_ms", Value::Number(record.ttfb_ms), 5),
        ("duration_ms", Value::Number(Some(record.duration_ms)), 6),
        ("input_tokens", Value::Number(record.input_tokens), 5),
        ("output_tokens", Value::Number(record.output_tokens), 0),
    ];
    let mut line = String::with_capacity(320);
    let time = UtcDateTime::from_system_time(record.time);
    let (level_label, level_name, level_colour) = level_text(level);
    match style.format {
        LogFormat::Json => {
            line.push_str("{\"ts\":\"");
            time.write_rfc3339_millis(&mut line);
            line.push_str("\",\"level\":\"");
            line.push_str(level_name);
            line.push('"');
            for (name, value, _) in &fields {
                line.push_str(",\"");
                line.push_str(name);
                line.push_str("\":");
                match value {
                    Value::Text(Some(text)) => push_json_string(&mut line, &redactor.redact(text)),
                    Value::Number(Some(number)) => {
                        let _ = write!(line, "{number}");
                    }
                    Value::Text(None) | Value::Number(None) => line.push_str("null"),
                }
            }
            line.push_str("}\n");
        }
        LogFormat::Text => {
            time.write_rfc3339_millis(&mut line);
            line.push(' ');
            push_coloured(&mut line, level_label, style.colour.then_some(level_colour));
            let last = fields.len() - 1;
            for (index, (name, value, width)) in fields.iter().enumerate() {
                line.push(' ');
                line.push_str(name);
                line.push('=');
                let spelled = match value {
                    Value::Text(Some(text)) => text_value(&redactor.redact(text)),
                    Value::Number(Some(number)) => number.to_string(),
                    Value::Text(None) | Value::Number(None) => "-".to_string(),
                };
                let colour =
                    (style.colour && *name == "status").then(|| status_colour(record.status));
                push_coloured(&mut line, &spelled, colour);
                if index != last {
                    pad(&mut line, spelled.chars().count(), *width);
                }
            }
            line.push('\n');
        }
    }
    line
}

/// Builds one general line (ending in `\n`): `ts LEVEL message name=value…` or a JSON
/// object with `ts`, `level`, `msg` and the fields as strings. Message and values are
/// redacted here.
pub fn format_message_line(
    time: SystemTime,
    level: LogLevel,
    message: &str,
    fields: &[(&str, &dyn Display)],
    style: LineStyle,
    redactor: &Redactor,
) -> String {
    let time = UtcDateTime::from_system_time(time);
    let (level_label, level_name, level_colour) = level_text(level);
    let mut line = String::with_capacity(64 + message.len());
    let message = redactor.redact(message);
    match style.format {
        LogFormat::Json => {
            line.push_str("{\"ts\":\"");
            time.write_rfc3339_millis(&mut line);
            line.push_str("\",\"level\":\"");
            line.push_str(level_name);
            line.push_str("\",\"msg\":");
            push_json_string(&mut line, &message);
            for (name, value) in fields {
                line.push(',');
                push_json_string(&mut line, name);
                line.push(':');
                push_json_string(&mut line, &redactor.redact(&value.to_string()));
            }
            line.push_str("}\n");
        }
        LogFormat::Text => {
            time.write_rfc3339_millis(&mut line);
            line.push(' ');
            push_coloured(&mut line, level_label, style.colour.then_some(level_colour));
            line.push(' ');
            push_escaped_controls(&mut line, &message);
            for (name, value) in fields {
                line.push(' ');
                push_escaped_controls(&mut line, name);
                line.push('=');
                line.push_str(&text_value(&redactor.redact(&value.to_string())));
            }
            line.push('\n');
        }
    }
    line
}

fn push_coloured(line: &mut String, text: &str, colour: Option<&str>) {
    match colour {
        Some(code) => {
            line.push_str(code);
            line.push_str(text);
            line.push_str(RESET);
        }
        None => line.push_str(text),
    }
}

fn pad(line: &mut String, used: usize, width: usize) {
    for _ in used..width {
        line.push(' ');
    }
}

/// A `key=value` value: bare when it is a plain token, else quoted with `\"`, `\\` and
/// control characters escaped (logfmt style), so a value can never end the line or
/// fake another field.
fn text_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control());
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => push_escaped_control(&mut out, ch),
        }
    }
    out.push('"');
    out
}

/// Messages are written bare, but a newline or an escape sequence in one must not
/// start a fake line or repaint the operator's terminal.
fn push_escaped_controls(line: &mut String, text: &str) {
    for ch in text.chars() {
        push_escaped_control(line, ch);
    }
}

fn push_escaped_control(out: &mut String, ch: char) {
    match ch {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// A JSON string literal (RFC 8259 escapes; non-ASCII kept as UTF-8).
fn push_json_string(line: &mut String, text: &str) {
    line.push('"');
    for ch in text.chars() {
        match ch {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

// ---------------------------------------------------------------------------------------
// The process-wide logger.

static GLOBAL: OnceLock<Logger> = OnceLock::new();

/// The process-wide logger (stderr, info, text until [`init`] runs).
pub fn logger() -> &'static Logger {
    GLOBAL.get_or_init(Logger::stderr_default)
}

/// Configures the process-wide logger; call once at startup. Fails only when the log
/// file cannot be opened.
pub fn init(settings: LogSettings) -> io::Result<()> {
    logger().reconfigure(settings)
}

/// Applies new settings after a config reload (same as [`init`]).
pub fn reconfigure(settings: LogSettings) -> io::Result<()> {
    logger().reconfigure(settings)
}

/// Reopens the log file (SIGHUP after logrotate).
pub fn reopen() -> io::Result<()> {
    logger().reopen()
}

pub fn enabled(level: LogLevel) -> bool {
    logger().enabled(level)
}

/// `log::log(LogLevel::Warn, format_args!("…{x}"))` formats only when enabled.
pub fn log(level: LogLevel, message: impl Display) {
    logger().log(level, message)
}

pub fn log_fields(level: LogLevel, message: impl Display, fields: &[(&str, &dyn Display)]) {
    logger().log_fields(level, message, fields)
}

pub fn error(message: impl Display) {
    logger().log(LogLevel::Error, message)
}

pub fn warn(message: impl Display) {
    logger().log(LogLevel::Warn, message)
}

pub fn info(message: impl Display) {
    logger().log(LogLevel::Info, message)
}

pub fn debug(message: impl Display) {
    logger().log(LogLevel::Debug, message)
}

pub fn trace(message: impl Display) {
    logger().log(LogLevel::Trace, message)
}

pub fn request(record: &RequestLogRecord<'_>) {
    logger().request(record)
}

/// A warning logged once per process per `key` (until [`reset_once`]).
pub fn once(key: &str, message: impl Display) -> bool {
    logger().once_at(LogLevel::Warn, key, message)
}

pub fn once_at(level: LogLevel, key: &str, message: impl Display) -> bool {
    logger().once_at(level, key, message)
}

pub fn reset_once(key: &str) -> bool {
    logger().reset_once(key)
}

/// See [`Logger::set_runtime_secrets`].
pub fn set_runtime_secrets<I, S>(slot: &str, secrets: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    logger().set_runtime_secrets(slot, secrets)
}

/// `text` with every secret the process-wide logger knows masked: for error messages
/// and `config show`, which must hide what logs hide.
pub fn redact(text: &str) -> String {
    logger().redactor().redact(text).into_owned()
}

pub fn redactor() -> Arc<Redactor> {
    logger().redactor()
}

/// See [`Logger::body_preview`].
pub fn body_preview(body: &[u8], max_bytes: usize) -> String {
    logger().body_preview(body, max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_pretty_then_terminal() {
        assert!(colour_wanted(LogFormat::Text, Some(true), false));
        assert!(!colour_wanted(LogFormat::Text, Some(false), true));
        assert!(colour_wanted(LogFormat::Text, None, true));
        assert!(!colour_wanted(LogFormat::Text, None, false));
        assert!(!colour_wanted(LogFormat::Json, Some(true), true));
    }

    #[test]
    fn text_values_are_quoted_only_when_needed() {
        assert_eq!(text_value("claude-sonnet-4"), "claude-sonnet-4");
        assert_eq!(text_value("…ab12"), "…ab12");
        assert_eq!(text_value(""), "\"\"");
        assert_eq!(text_value("a b"), "\"a b\"");
        assert_eq!(text_value("x=1"), "\"x=1\"");
        assert_eq!(text_value("q\"\\\n\u{1b}"), "\"q\\\"\\\\\\n\\u{1b}\"");
    }

    #[test]
    fn json_strings_escape_controls() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001\\u007fé\"");
        let parsed: String = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(parsed, "a\"b\\c\n\u{1}\u{7f}é");
    }

    #[test]
    fn levels_filter_in_order() {
        let logger = Logger::stderr_default();
        assert!(logger.enabled(LogLevel::Error));
        assert!(logger.enabled(LogLevel::Info));
        assert!(!logger.enabled(LogLevel::Debug));
    }
}
