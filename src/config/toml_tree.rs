//! TOML files into the common value tree (`value.rs`), with the line of every value, via
//! the `toml` crate. It owns only the translation: TOML syntax errors come back with
//! their line; it knows nothing of the schema and does no I/O.
//!
//! Line numbers come from the spans the `toml` deserializer hands to `toml::Spanned`.
//! `Spanned` itself cannot be used for the tree: tables that exist only implicitly
//! (`server` in `[server.auth]`, `a` in `a.b = 1`) have no span, and `Spanned` then
//! fails. So `SpannedNode` asks for a span the same way `Spanned` does (the
//! `serde_spanned` struct name and field names below, stable across toml 0.8) and
//! accepts a plain value when none is offered; such a node inherits its parent's line.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::value::{Entry, Node, Value};

const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
/// How the toml deserializer presents a datetime (as a one-entry map).
const DATETIME_FIELD: &str = "$__toml_private_datetime";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    pub line: u32,
    pub message: String,
}

/// Parses a TOML document into a mapping node.
pub fn parse(text: &str) -> Result<Node, TomlError> {
    let lines = LineStarts::new(text);
    match toml::from_str::<SpannedNode>(text) {
        Ok(root) => Ok(root.into_node(&lines, 1)),
        Err(e) => {
            let line = e.span().map_or(1, |span| lines.line_of(span.start));
            Err(TomlError {
                line,
                // One line per message: the crate's own text may span several.
                message: e
                    .message()
                    .trim()
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("; "),
            })
        }
    }
}

/// Byte offset -> 1-based line.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> LineStarts {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineStarts(starts)
    }

    fn line_of(&self, offset: usize) -> u32 {
        let line = self.0.partition_point(|&start| start <= offset);
        u32::try_from(line.max(1)).unwrap_or(u32::MAX)
    }
}

/// A TOML value and, when the deserializer knew it, the byte range it came from.
struct SpannedNode {
    span_start: Option<usize>,
    value: RawValue,
}

enum RawValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<SpannedNode>),
    Map(Vec<(String, SpannedNode)>),
}

impl SpannedNode {
    fn into_node(self, lines: &LineStarts, parent_line: u32) -> Node {
        let line = self.span_start.map_or(parent_line, |s| lines.line_of(s));
        let value = match self.value {
            RawValue::Bool(b) => Value::Bool(b),
            RawValue::Int(i) => Value::Int(i),
            RawValue::Float(f) => Value::Float(f),
            RawValue::String(s) => Value::String(s),
            RawValue::Seq(items) => Value::Seq(
                items
                    .into_iter()
                    .map(|n| n.into_node(lines, line))
                    .collect(),
            ),
            RawValue::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, n)| {
                        let value = n.into_node(lines, line);
                        Entry {
                            key,
                            key_line: value.line,
                            value,
                        }
                    })
                    .collect(),
            ),
        };
        Node::new(value, line)
    }

    fn plain(value: RawValue) -> SpannedNode {
        SpannedNode {
            span_start: None,
            value,
        }
    }
}

impl<'de> Deserialize<'de> for SpannedNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor)
    }
}

/// The value inside a span wrapper, deserialized without asking for a span again.
struct Unspanned(SpannedNode);

impl<'de> Deserialize<'de> for Unspanned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor).map(Unspanned)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = SpannedNode;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<SpannedNode, E> {
        Ok(SpannedNode::plain(RawValue::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<SpannedNode, E> {
        Ok(SpannedNode::plain(RawValue::Int(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SpannedNode, E> {
        i64::try_from(v)
            .map(|i| SpannedNode::plain(RawValue::Int(i)))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<SpannedNode, E> {
        Ok(SpannedNode::plain(RawValue::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<SpannedNode, E> {
        Ok(SpannedNode::plain(RawValue::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<SpannedNode, E> {
        Ok(SpannedNode::plain(RawValue::String(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpannedNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<SpannedNode>()? {
            items.push(item);
        }
        Ok(SpannedNode::plain(RawValue::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpannedNode, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(SpannedNode::plain(RawValue::Map(Vec::new())));
        };
        if first == SPANNED_START {
            let start: usize = map.next_value()?;
            let mut inner = None;
            while let Some(field) = map.next_key::<String>()? {
                if field == SPANNED_VALUE {
                    inner = Some(map.next_value::<Unspanned>()?.0);
                } else {
                    let _end: usize = map.next_value()?;
                }
            }
            let Some(mut inner) = inner else {
                return Err(serde::de::Error::custom("span without a value"));
            };
            inner.span_start = Some(start);
            return Ok(inner);
        }
        if first == DATETIME_FIELD {
            let text: String = map.next_value()?;
            return Ok(SpannedNode::plain(RawValue::String(text)));
        }
        let mut entries = vec![(first, map.next_value::<SpannedNode>()?)];
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<SpannedNode>()?;
            entries.push((key, value));
        }
        Ok(SpannedNode::plain(RawValue::Map(entries)))
    }
}

/// Fuzz entry for the TOML side (used by the `config` target).
pub fn fuzz_entry(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_tables_and_arrays_of_tables_get_lines() {
        let text = "a.b = 1\n\n[[providers]]\nname = \"x\"\n\n[[providers.keys]]\nkey = \"k\"\n[server.auth]\nx = true\n";
        let root = parse(text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            root.to_json(),
            r#"{"a":{"b":1},"providers":[{"name":"x","keys":[{"key":"k"}]}],"server":{"auth":{"x":true}}}"#
        );
        let providers = root.get("providers").unwrap_or_else(|| panic!("providers"));
        let Value::Seq(items) = &providers.value else {
            panic!("not a list")
        };
        let first = &items[0];
        assert_eq!(first.line, 3);
        assert_eq!(first.get("name").map(|n| n.line), Some(4));
        assert_eq!(first.get("keys").map(|n| n.line), Some(6));
        assert_eq!(
            root.get("server")
                .and_then(|s| s.get("auth"))
                .map(|n| n.line),
            Some(8)
        );
        assert_eq!(
            root.get("a").and_then(|s| s.get("b")).map(|n| n.line),
            Some(1)
        );
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let err = parse("a = 1\nb = \n").err();
        assert_eq!(err.map(|e| e.line), Some(2));
        let err = parse("a = 1\na = 2\n").err();
        assert_eq!(
            err.map(|e| (e.line, e.message)),
            Some((2, "duplicate key `a` in document root".to_string()))
        );
    }

    #[test]
    fn datetimes_become_strings() {
        let root = parse("d = 1979-05-27T07:32:00Z\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(root.to_json(), r#"{"d":"1979-05-27T07:32:00Z"}"#);
    }
}
