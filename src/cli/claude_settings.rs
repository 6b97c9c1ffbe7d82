//! `cc-relay config cc init | remove`: point Claude Code at this relay by setting
//! `ANTHROPIC_BASE_URL` and `ANTHROPIC_AUTH_TOKEN` in the `env` block of
//! `~/.claude/settings.json`, and undo it. The file is edited as text, surgically: only
//! those two entries (and, if it had none, the `env` block) change; every other byte,
//! key order and formatting included, stays as it was. Before the first change the file
//! is copied to `settings.json.cc-relay.bak` (an empty backup means "there was no
//! file"); `remove` puts the two entries back as they were in that backup and deletes it.
//!
//! The token written is `server.auth.api_key` (else `bearer_secret`) of the relay's
//! config, which the relay accepts as its own and never forwards. With neither set, a
//! random `ccr-...` token is generated and the user is told to add it to the config as
//! `server.auth.bearer_secret`; until then a relay that forwards client credentials
//! (`allow_subscription`) would pass it upstream, where it fails harmlessly.

use std::path::{Path, PathBuf};

use super::args::{self, Flag};
use super::{failure, load_config, parse_flags, usage_error, EXIT_OK, EXIT_USAGE};
use crate::config::Config;

pub const HELP: &str = "\
Usage: cc-relay config cc init [--url URL] [--config FILE]
       cc-relay config cc remove

init    sets ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN in the \"env\" block of
        ~/.claude/settings.json so Claude Code talks to this relay. Other settings are
        left exactly as they are; the file is backed up first
        (settings.json.cc-relay.bak) and created if it does not exist.
        The token is the config's server.auth.api_key (or bearer_secret); without one
        a new random token is generated, to be added to the config as
        server.auth.bearer_secret.
remove  restores the two entries from the backup (or deletes them) and removes the backup.

Options:
  --url URL       relay address (default: from the config's server.listen,
                  e.g. http://127.0.0.1:8787)
  --config FILE   configuration to read the address and token from

Examples:
  cc-relay config cc init
  cc-relay config cc init --url http://relay.internal:8787
  cc-relay config cc remove
";

pub const BASE_URL_VAR: &str = "ANTHROPIC_BASE_URL";
pub const TOKEN_VAR: &str = "ANTHROPIC_AUTH_TOKEN";
const OWNED: [&str; 2] = [BASE_URL_VAR, TOKEN_VAR];
pub const BACKUP_SUFFIX: &str = ".cc-relay.bak";

const INIT_FLAGS: &[Flag] = &[args::value("url"), args::value("config")];

pub fn run(rest: &[String]) -> i32 {
    let Some(sub) = rest.first() else {
        eprint!("{HELP}");
        return EXIT_USAGE;
    };
    match sub.as_str() {
        "-h" | "--help" => {
            print!("{HELP}");
            EXIT_OK
        }
        "init" => init(&rest[1..]),
        "remove" => remove(&rest[1..]),
        other => usage_error(
            "config cc",
            &format!("unknown command '{other}' (init or remove)"),
        ),
    }
}

fn settings_path() -> Result<PathBuf, String> {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() => Ok(Path::new(&home).join(".claude").join("settings.json")),
        _ => Err("HOME is not set; cannot find ~/.claude/settings.json".to_string()),
    }
}

fn backup_path(settings: &Path) -> PathBuf {
    let mut name = settings.as_os_str().to_owned();
    name.push(BACKUP_SUFFIX);
    PathBuf::from(name)
}

/// The address clients should use for `config`'s listener.
pub fn relay_url(config: &Config) -> String {
    let listen = config.server.listen;
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme}://{}",
        std::net::SocketAddr::new(ip, listen.port())
    )
}

/// A new random token, `ccr-` and 32 hex digits from the kernel's CSPRNG.
pub fn generate_token() -> Result<String, String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(format!(
        "ccr-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn init(rest: &[String]) -> i32 {
    let parsed = match parse_flags("config cc init", HELP, rest, INIT_FLAGS) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (loaded, _) = match load_config(parsed.value("config")) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let config = loaded.config;
    let url = match parsed.value("url") {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            return usage_error(
                "config cc init",
                &format!("--url: '{u}' must start with http:// or https://"),
            )
        }
        None => relay_url(&config),
    };
    let (token, token_source) = match (
        &config.server.auth.api_key,
        &config.server.auth.bearer_secret,
    ) {
        (Some(key), _) => (key.clone(), "server.auth.api_key"),
        (None, Some(secret)) => (secret.clone(), "server.auth.bearer_secret"),
        (None, None) => match generate_token() {
            Ok(t) => (t, ""),
            Err(e) => return failure(&e),
        },
    };
    let settings = match settings_path() {
        Ok(p) => p,
        Err(e) => return failure(&e),
    };
    match apply_init(&settings, &url, &token) {
        Ok(report) => {
            println!("updated {}: {BASE_URL_VAR}={url}", settings.display());
            if token_source.is_empty() {
                println!("{TOKEN_VAR} is a new token; add it to the cc-relay config so the relay treats it as its own:");
                println!("  server:\n    auth:\n      bearer_secret: \"{token}\"");
            } else {
                println!("{TOKEN_VAR} is the config's {token_source}");
            }
            println!("{report}");
            EXIT_OK
        }
        Err(e) => failure(&e),
    }
}

/// Writes the two entries into `settings`, backing it up first. Returns a note about
/// the backup.
pub fn apply_init(settings: &Path, url: &str, token: &str) -> Result<String, String> {
    let shown = settings.display();
    let original = match std::fs::read(settings) {
        Ok(bytes) => {
            Some(String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let updated = set_entries(
        original.as_deref(),
        &[
            (BASE_URL_VAR, json_string(url)),
            (TOKEN_VAR, json_string(token)),
        ],
    )
    .map_err(|e| format!("{shown}: {e}"))?;
    let backup = backup_path(settings);
    let note = if backup.exists() {
        format!("kept the backup from an earlier init: {}", backup.display())
    } else {
        if let Some(dir) = settings.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        write_file(&backup, original.as_deref().unwrap_or(""), None)?;
        format!("backup: {}", backup.display())
    };
    write_file(settings, &updated, Some(settings))?;
    Ok(note)
}

fn remove(rest: &[String]) -> i32 {
    if let Err(code) = parse_flags("config cc remove", HELP, rest, &[]) {
        return code;
    }
    let settings = match settings_path() {
        Ok(p) => p,
        Err(e) => return failure(&e),
    };
    match apply_remove(&settings) {
        Ok(message) => {
            println!("{message}");
            EXIT_OK
        }
        Err(e) => failure(&e),
    }
}

/// Undoes `apply_init`. Returns what was done.
pub fn apply_remove(settings: &Path) -> Result<String, String> {
    let shown = settings.display();
    let current = match std::fs::read(settings) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(format!("{shown} does not exist; nothing to remove"));
        }
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let backup = backup_path(settings);
    let backup_text = match std::fs::read(&backup) {
        Ok(bytes) => Some(
            String::from_utf8(bytes)
                .map_err(|_| format!("{} is not UTF-8 text", backup.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", backup.display())),
    };
    // What the entries were before init: from the backup, or "absent" without one.
    let (had_env, originals) = match backup_text.as_deref() {
        Some(text) if !text.trim().is_empty() => {
            original_entries(text).map_err(|e| format!("{}: {e}", backup.display()))?
        }
        _ => (false, OWNED.iter().map(|n| (*n, None)).collect()),
    };
    let restored =
        restore_entries(&current, &originals, !had_env).map_err(|e| format!("{shown}: {e}"))?;
    let file_was_absent = backup_text.as_deref() == Some("");
    if file_was_absent && is_empty_object(&restored) {
        std::fs::remove_file(settings).map_err(|e| format!("cannot remove {shown}: {e}"))?;
    } else {
        write_file(settings, &restored, Some(settings))?;
    }
    if backup_text.is_some() {
        std::fs::remove_file(&backup)
            .map_err(|e| format!("cannot remove {}: {e}", backup.display()))?;
        Ok(format!("restored {shown} from {}", backup.display()))
    } else {
        Ok(format!(
            "removed {BASE_URL_VAR} and {TOKEN_VAR} from {shown} (no backup found)"
        ))
    }
}

/// Writes through a temporary file and a rename, keeping the permissions of
/// `permissions_from` when it exists (settings.json holds a token: new files are 0600).
fn write_file(path: &Path, text: &str, permissions_from: Option<&Path>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".cc-relay.tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mode = permissions_from
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0o600, |m| m.permissions().mode());
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode));
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

// ----- surgical JSON editing -------------------------------------------------------------

/// One `"key": value` of an object, as byte ranges of the text.
#[derive(Debug, Clone)]
struct Member {
    key: String,
    key_start: usize,
    key_end: usize,
    value_start: usize,
    value_end: usize,
}

#[derive(Debug)]
struct Object {
    open: usize,
    close: usize,
    members: Vec<Member>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// `i` at a `"`; returns the index after the closing quote.
fn scan_string(b: &[u8], mut i: usize) -> Result<usize, String> {
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err("unterminated string".to_string())
}

/// Returns the index after the JSON value starting at `i`.
fn scan_value(b: &[u8], i: usize) -> Result<usize, String> {
    match b.get(i) {
        Some(b'"') => scan_string(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = scan_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err("unterminated object or array".to_string())
        }
        Some(_) => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            Ok(j)
        }
        None => Err("unexpected end of text".to_string()),
    }
}

fn parse_object(text: &str, open: usize) -> Result<Object, String> {
    let b = text.as_bytes();
    if b.get(open) != Some(&b'{') {
        return Err("expected an object".to_string());
    }
    let mut members = Vec::new();
    let mut i = skip_ws(b, open + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(Object {
            open,
            close: i,
            members,
        });
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err("expected a key".to_string());
        }
        let key_end = scan_string(b, i)?;
        let key: String = serde_json::from_str(&text[i..key_end]).map_err(|e| e.to_string())?;
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            return Err("expected ':'".to_string());
        }
        let value_start = skip_ws(b, colon + 1);
        let value_end = scan_value(b, value_start)?;
        members.push(Member {
            key,
            key_start: i,
            key_end,
            value_start,
            value_end,
        });
        let next = skip_ws(b, value_end);
        match b.get(next) {
            Some(b',') => i = skip_ws(b, next + 1),
            Some(b'}') => {
                return Ok(Object {
                    open,
                    close: next,
                    members,
                })
            }
            _ => return Err("expected ',' or '}'".to_string()),
        }
    }
}

/// The whole text must be one JSON object (checked by serde_json); returns it.
fn root_object(text: &str) -> Result<Object, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => return Err("the file is not a JSON object".to_string()),
        Err(e) => return Err(format!("not valid JSON: {e}")),
    }
    parse_object(text, skip_ws(text.as_bytes(), 0))
}

/// The indentation of the line `pos` is on.
fn line_indent(text: &str, pos: usize) -> &str {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// How `object` lays out its members: the whitespace before a member key, and what
/// sits between a key and its value.
fn layout(text: &str, object: &Object) -> Option<(String, String)> {
    let last = object.members.last()?;
    let before_key = &text[..last.key_start];
    let ws_start = before_key.trim_end_matches([' ', '\t', '\n', '\r']).len();
    let separator = text[ws_start..last.key_start].to_string();
    let colon = text[last.key_end..last.value_start].to_string();
    Some((separator, colon))
}

/// The indentation unit of the file (that of the top-level members), default two spaces.
fn indent_unit(text: &str, root: &Object) -> String {
    root.members
        .first()
        .map(|m| line_indent(text, m.key_start).to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "  ".to_string())
}

fn insert_member(text: &str, object: &Object, key: &str, value: &str, unit: &str) -> String {
    let key = json_string(key);
    match layout(text, object) {
        Some((separator, colon)) => {
            let at = object
                .members
                .last()
                .map_or(object.open + 1, |m| m.value_end);
            format!(
                "{},{separator}{key}{colon}{value}{}",
                &text[..at],
                &text[at..]
            )
        }
        None => {
            let outer = line_indent(text, object.open);
            format!(
                "{}\n{outer}{unit}{key}: {value}\n{outer}{}",
                &text[..object.open + 1],
                &text[object.close..]
            )
        }
    }
}

fn delete_member(text: &str, object: &Object, index: usize) -> String {
    let members = &object.members;
    let (from, to) = if members.len() == 1 {
        (object.open + 1, object.close)
    } else if index + 1 == members.len() {
        (members[index - 1].value_end, members[index].value_end)
    } else {
        (members[index].key_start, members[index + 1].key_start)
    };
    format!("{}{}", &text[..from], &text[to..])
}

/// Sets `env.NAME` to the raw JSON `value`, creating `env` when needed.
fn set_one(text: &str, name: &str, value: &str) -> Result<String, String> {
    let root = root_object(text)?;
    let unit = indent_unit(text, &root);
    let Some(env) = root.members.iter().find(|m| m.key == "env") else {
        let with_env = insert_member(text, &root, "env", "{}", &unit);
        return set_one(&with_env, name, value);
    };
    if text.as_bytes().get(env.value_start) != Some(&b'{') {
        return Err("\"env\" is not an object".to_string());
    }
    let env_object = parse_object(text, env.value_start)?;
    match env_object.members.iter().find(|m| m.key == name) {
        Some(m) => Ok(format!(
            "{}{value}{}",
            &text[..m.value_start],
            &text[m.value_end..]
        )),
        None => Ok(insert_member(text, &env_object, name, value, &unit)),
    }
}

/// Removes `env.NAME` if present; then, with `drop_empty_env`, an `env` left empty.
fn remove_one(text: &str, name: &str) -> Result<String, String> {
    let root = root_object(text)?;
    let Some(env) = root.members.iter().find(|m| m.key == "env") else {
        return Ok(text.to_string());
    };
    if text.as_bytes().get(env.value_start) != Some(&b'{') {
        return Ok(text.to_string());
    }
    let env_object = parse_object(text, env.value_start)?;
    match env_object.members.iter().position(|m| m.key == name) {
        Some(i) => Ok(delete_member(text, &env_object, i)),
        None => Ok(text.to_string()),
    }
}

fn drop_env_if_empty(text: &str) -> Result<String, String> {
    let root = root_object(text)?;
    let Some(index) = root.members.iter().position(|m| m.key == "env") else {
        return Ok(text.to_string());
    };
    let env = &root.members[index];
    if text.as_bytes().get(env.value_start) != Some(&b'{') {
        return Ok(text.to_string());
    }
    if parse_object(text, env.value_start)?.members.is_empty() {
        return Ok(delete_member(text, &root, index));
    }
    Ok(text.to_string())
}

/// `text` (None: no file yet) with each `env` entry set to its raw JSON value.
pub fn set_entries(text: Option<&str>, entries: &[(&str, String)]) -> Result<String, String> {
    let mut out = match text {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => "{}\n".to_string(),
    };
    for (name, value) in entries {
        out = set_one(&out, name, value)?;
    }
    Ok(out)
}

/// Whether the backup text had an `env` object, and the raw JSON of each owned entry.
/// Each owned entry's raw JSON value before init (None: it was absent).
pub type RawEntries = Vec<(&'static str, Option<String>)>;

pub fn original_entries(text: &str) -> Result<(bool, RawEntries), String> {
    let root = root_object(text)?;
    let env = root
        .members
        .iter()
        .find(|m| m.key == "env")
        .filter(|m| text.as_bytes().get(m.value_start) == Some(&b'{'));
    let Some(env) = env else {
        return Ok((false, OWNED.iter().map(|n| (*n, None)).collect()));
    };
    let env_object = parse_object(text, env.value_start)?;
    let values = OWNED
        .iter()
        .map(|name| {
            let raw = env_object
                .members
                .iter()
                .find(|m| m.key == *name)
                .map(|m| text[m.value_start..m.value_end].to_string());
            (*name, raw)
        })
        .collect();
    Ok((true, values))
}

/// Puts each entry back to its original raw value, or removes it when it had none.
pub fn restore_entries(
    text: &str,
    originals: &[(&str, Option<String>)],
    drop_empty_env: bool,
) -> Result<String, String> {
    let mut out = text.to_string();
    // Reverse order undoes `set_entries`' appends last-first, giving back the exact text.
    for (name, original) in originals.iter().rev() {
        out = match original {
            Some(raw) => set_one(&out, name, raw)?,
            None => remove_one(&out, name)?,
        };
    }
    if drop_empty_env {
        out = drop_env_if_empty(&out)?;
    }
    Ok(out)
}

fn is_empty_object(text: &str) -> bool {
    matches!(serde_json::from_str::<serde_json::Value>(text), Ok(serde_json::Value::Object(m)) if m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_then_remove(original: Option<&str>) -> (String, String) {
        let set = set_entries(
            original,
            &[
                (BASE_URL_VAR, json_string("http://127.0.0.1:8787")),
                (TOKEN_VAR, json_string("tok")),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (had_env, originals) = match original {
            Some(o) => original_entries(o).unwrap_or_else(|e| panic!("{e}")),
            None => (false, OWNED.iter().map(|n| (*n, None)).collect()),
        };
        let back = restore_entries(&set, &originals, !had_env).unwrap_or_else(|e| panic!("{e}"));
        (set, back)
    }

    #[test]
    fn adds_an_env_block_and_takes_it_away_again() {
        let original =
            "{\n  \"model\": \"opus\",\n  \"permissions\": {\n    \"allow\": [\"Bash\"]\n  }\n}\n";
        let (set, back) = init_then_remove(Some(original));
        assert_eq!(
            set,
            "{\n  \"model\": \"opus\",\n  \"permissions\": {\n    \"allow\": [\"Bash\"]\n  },\n  \"env\": {\n    \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\",\n    \"ANTHROPIC_AUTH_TOKEN\": \"tok\"\n  }\n}\n"
        );
        assert_eq!(back, original);
    }

    #[test]
    fn replaces_existing_entries_in_place_and_restores_them() {
        let original =
            "{\"env\":{\"A\":\"1\",\"ANTHROPIC_AUTH_TOKEN\":\"old\",\"B\":2},\"x\":true}";
        let (set, back) = init_then_remove(Some(original));
        assert_eq!(
            set,
            "{\"env\":{\"A\":\"1\",\"ANTHROPIC_AUTH_TOKEN\":\"tok\",\"B\":2,\"ANTHROPIC_BASE_URL\":\"http://127.0.0.1:8787\"},\"x\":true}"
        );
        assert_eq!(back, original);
    }

    #[test]
    fn empty_and_missing_files() {
        let (set, back) = init_then_remove(None);
        assert_eq!(
            set,
            "{\n  \"env\": {\n    \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\",\n    \"ANTHROPIC_AUTH_TOKEN\": \"tok\"\n  }\n}\n"
        );
        assert_eq!(back, "{}\n");
        let (_, back) = init_then_remove(Some("{}"));
        assert_eq!(back, "{}");
        let (set, back) = init_then_remove(Some("{\"env\": {}}"));
        assert_eq!(
            set,
            "{\"env\": {\n  \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\",\n  \"ANTHROPIC_AUTH_TOKEN\": \"tok\"\n}}"
        );
        assert_eq!(back, "{\"env\": {}}");
    }

    #[test]
    fn refuses_what_it_cannot_edit_safely() {
        assert!(set_entries(Some("[1]"), &[(TOKEN_VAR, json_string("t"))]).is_err());
        assert!(set_entries(Some("{\"env\": 3}"), &[(TOKEN_VAR, json_string("t"))]).is_err());
        assert!(set_entries(Some("{ // comment\n}"), &[(TOKEN_VAR, json_string("t"))]).is_err());
    }

    #[test]
    fn urls_for_wildcard_listeners_use_loopback() {
        let mut config = Config::with_providers(Vec::new());
        config.server.listen = "0.0.0.0:9000".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(relay_url(&config), "http://127.0.0.1:9000");
        config.server.listen = "[::]:9000".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(relay_url(&config), "http://[::1]:9000");
    }
}
