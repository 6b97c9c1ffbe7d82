//! The value tree both configuration parsers produce: scalars, sequences and ordered
//! mappings, each node carrying the 1-based line it starts on so that every later error
//! can point into the file. It knows nothing about the schema (that is `build.rs`) and
//! performs no I/O.

use std::fmt::Write as _;
use std::path::Path;

/// Which parser a file goes through; chosen by file extension (SPEC §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    /// `.yaml`/`.yml` -> YAML, `.toml` -> TOML, anything else -> None.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// 1-based line where the node starts (for a mapping value written on the lines
    /// after its key: the first of those lines; for an empty value: the key's line).
    pub line: u32,
    /// Set by environment expansion when it rewrote this string. The schema builder then
    /// also accepts the string where a number or boolean is expected, so `rpm_limit:
    /// ${RPM}` works in YAML and TOML alike.
    pub expanded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_line: u32,
    pub value: Node,
}

impl Node {
    pub fn new(value: Value, line: u32) -> Node {
        Node {
            value,
            line,
            expanded: false,
        }
    }

    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// How validation messages name the kind of value found ("expected an integer, got
    /// a string").
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Compact JSON in document order, the form the parser tests compare against
    /// (`json.dumps(v, separators=(",", ":"), ensure_ascii=False)` of a full YAML parser).
    /// Non-finite floats have no JSON form and are written as strings.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_json(self, &mut out);
        out
    }
}

fn write_json(node: &Node, out: &mut String) {
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if f.is_finite() {
                let _ = write!(out, "{f:?}");
            } else {
                write_json_string(&format!("{f}"), out);
            }
        }
        Value::String(s) => write_json_string(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&entry.key, out);
                out.push(':');
                write_json(&entry.value, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}
