//! Our YAML subset parser (SPEC §1.1): turns one YAML document into the value tree of
//! `value.rs`, each node with its line. It owns the YAML syntax only — block mappings and
//! sequences, flow `[..]`/`{..}`, plain / single- / double-quoted scalars, `|` and `>`
//! block scalars with chomping and indentation indicators, comments and a leading `---`.
//! Everything outside that subset (anchors, aliases, tags, merge keys, complex keys,
//! directives, several documents) is refused with a line-numbered error instead of being
//! half-understood. It must not know the configuration schema, touch the environment or
//! do I/O, and it must never panic or recurse without bound on any input (`MAX_DEPTH`).
//!
//! Plain scalars are typed as in the YAML 1.2 core schema: `null`/`~`/empty, `true`/
//! `false`, decimal / `0o` octal / `0x` hex integers, floats (`.inf`, `.nan` included);
//! everything else, and every quoted scalar, is a string. Duplicate keys are an error.
//!
//! The parser works on lines: `row` is the current line, `col` a byte offset in it.
//! Block structure is decided by indentation (leading spaces) of the line a node starts
//! on; a node that starts after `- ` takes the column it starts at as its indentation,
//! which is what makes `- name: x` followed by `  type: y` one mapping.

use std::collections::HashSet;

use super::value::{Entry, Node, Value};

/// Deepest nesting of collections accepted; deeper input is refused rather than risking
/// the stack (the parser may run on small-stack threads during hot reload).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line the problem was found on.
    pub line: u32,
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

type Result<T> = std::result::Result<T, YamlError>;

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let last_has_break = text.ends_with('\n');
    if last_has_break {
        lines.pop();
    }
    check_characters(&lines)?;
    let mut parser = Parser {
        lines,
        last_has_break,
        row: 0,
        col: 0,
        fresh: false,
        depth: 0,
    };
    parser.parse_document()
}

/// Parses bytes that must be UTF-8 (files are read as bytes).
pub fn parse_bytes(data: &[u8]) -> Result<Node> {
    match std::str::from_utf8(data) {
        Ok(text) => parse(text),
        Err(e) => {
            let before = data.get(..e.valid_up_to()).unwrap_or(&[]);
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(YamlError {
                line: line_number(line - 1),
                message: "the file is not valid UTF-8".to_string(),
            })
        }
    }
}

/// Fuzz entry: any bytes, no panic, no hang.
pub fn fuzz_entry(data: &[u8]) {
    if let Ok(node) = parse_bytes(data) {
        let _ = node.to_json();
    }
}

fn line_number(row: usize) -> u32 {
    u32::try_from(row.saturating_add(1)).unwrap_or(u32::MAX)
}

/// YAML's printable set: control characters other than tab (and the line breaks already
/// split off) are refused so they cannot hide inside keys or secrets.
fn check_characters(lines: &[&str]) -> Result<()> {
    for (row, line) in lines.iter().enumerate() {
        for c in line.chars() {
            let printable = c == '\t'
                || ('\u{20}'..='\u{7e}').contains(&c)
                || c == '\u{85}'
                || ('\u{a0}'..='\u{d7ff}').contains(&c)
                || ('\u{e000}'..='\u{fffd}').contains(&c)
                || c >= '\u{10000}';
            if !printable {
                return Err(YamlError {
                    line: line_number(row),
                    message: format!("control character U+{:04X} is not allowed", c as u32),
                });
            }
        }
    }
    Ok(())
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn indent_of(line: &str) -> usize {
    line.bytes().take_while(|&b| b == b' ').count()
}

fn is_blank(line: &str) -> bool {
    line.trim_matches(is_ws).is_empty()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start_matches(is_ws);
    t.is_empty() || t.starts_with('#')
}

fn is_doc_marker(line: &str) -> bool {
    (line.starts_with("---") || line.starts_with("..."))
        && line
            .get(3..)
            .is_some_and(|r| r.is_empty() || r.starts_with(is_ws))
}

fn is_flow_indicator(c: char) -> bool {
    matches!(c, ',' | '[' | ']' | '{' | '}')
}

/// What follows the current node.
enum Next {
    /// A content line; the cursor is at its indentation, which is returned.
    Line(usize),
    /// A `---` or `...` line.
    Marker,
    Eof,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// After `key:` — a nested block collection must start on the next line.
    MapValue,
    /// After `- ` — `- a: 1` and `- - x` start a collection on the same line.
    SeqItem,
    /// After a leading `---`.
    DocStart,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Chomp {
    Clip,
    Strip,
    Keep,
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    last_has_break: bool,
    row: usize,
    col: usize,
    /// The cursor sits at the indentation of a content line nobody has consumed yet.
    fresh: bool,
    depth: usize,
}

impl<'a> Parser<'a> {
    // ----- cursor helpers -------------------------------------------------------------

    fn line(&self) -> &'a str {
        self.lines.get(self.row).copied().unwrap_or("")
    }

    fn rest(&self) -> &'a str {
        self.line().get(self.col..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn lineno(&self) -> u32 {
        line_number(self.row)
    }

    fn error_at<T>(&self, row: usize, message: impl Into<String>) -> Result<T> {
        Err(YamlError {
            line: line_number(row),
            message: message.into(),
        })
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T> {
        self.error_at(self.row, message)
    }

    fn skip_inline_ws(&mut self) {
        let skipped = self.rest().len() - self.rest().trim_start_matches(is_ws).len();
        self.col += skipped;
    }

    fn prev_is_ws_or_start(&self) -> bool {
        self.col == 0
            || self
                .line()
                .as_bytes()
                .get(self.col - 1)
                .is_some_and(|&b| b == b' ' || b == b'\t')
    }

    /// `-` followed by whitespace or the end of the line.
    fn at_seq_entry(&self) -> bool {
        self.peek() == Some('-') && self.peek_second().is_none_or(is_ws)
    }

    fn has_break(&self, row: usize) -> bool {
        row + 1 < self.lines.len() || self.last_has_break
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// From the current row on (inclusive), finds the next line with content.
    fn seek_content(&mut self) -> Result<Next> {
        while let Some(line) = self.lines.get(self.row).copied() {
            if is_blank_or_comment(line) {
                self.row += 1;
                continue;
            }
            self.col = 0;
            self.fresh = true;
            if is_doc_marker(line) {
                return Ok(Next::Marker);
            }
            let indent = indent_of(line);
            if line.as_bytes().get(indent) == Some(&b'\t') {
                return self.error("tab character used for indentation (use spaces)");
            }
            self.col = indent;
            return Ok(Next::Line(indent));
        }
        self.col = 0;
        self.fresh = true;
        Ok(Next::Eof)
    }

    /// Finishes the current line (only whitespace or a comment may remain on it) and
    /// moves to the next content line.
    fn skip_to_next_content(&mut self) -> Result<Next> {
        if self.fresh {
            return match self.lines.get(self.row) {
                None => Ok(Next::Eof),
                Some(line) if is_doc_marker(line) => Ok(Next::Marker),
                Some(_) => Ok(Next::Line(self.col)),
            };
        }
        let before = self.col;
        self.skip_inline_ws();
        let rest = self.rest();
        let comment = rest.starts_with('#') && (self.col > before || self.prev_is_ws_or_start());
        if !rest.is_empty() && !comment {
            let shown: String = rest.chars().take(20).collect();
            return self.error(format!("unexpected text '{shown}' after the value"));
        }
        self.row += 1;
        self.seek_content()
    }

    // ----- document -------------------------------------------------------------------

    fn parse_document(&mut self) -> Result<Node> {
        let root = match self.seek_content()? {
            Next::Eof => return Ok(Node::new(Value::Null, 1)),
            Next::Marker if self.line().starts_with("---") => {
                self.col = 3;
                self.fresh = false;
                self.parse_value(-1, Ctx::DocStart)?
            }
            Next::Marker => {
                // A lone `...`: an empty document; nothing may follow it.
                self.col = 3;
                self.fresh = false;
                let root = Node::new(Value::Null, self.lineno());
                return self.finish_document(root, true);
            }
            Next::Line(_) => {
                if self.line().starts_with('%') {
                    return self.error("directives ('%YAML', '%TAG') are not supported");
                }
                self.parse_node_here(-1, true)?
            }
        };
        self.finish_document(root, false)
    }

    fn finish_document(&mut self, root: Node, mut ended: bool) -> Result<Node> {
        loop {
            match self.skip_to_next_content()? {
                Next::Eof => return Ok(root),
                Next::Marker if !ended && self.line().starts_with("...") => {
                    ended = true;
                    self.col = 3;
                    self.fresh = false;
                }
                Next::Marker | Next::Line(_) if ended => {
                    return self.error("multiple documents are not supported");
                }
                Next::Marker => return self.error("multiple documents are not supported"),
                Next::Line(_) => {
                    return self.error("unexpected content (check the indentation of this line)")
                }
            }
        }
    }

    // ----- block structure --------------------------------------------------------------

    /// The value after an indicator (`key:`, `- `, `---`): on this line, or when the line
    /// ends here, on the following lines indented more than `parent_indent`.
    fn parse_value(&mut self, parent_indent: isize, ctx: Ctx) -> Result<Node> {
        self.fresh = false;
        self.skip_inline_ws();
        let rest = self.rest();
        if rest.is_empty() || rest.starts_with('#') {
            let here = self.lineno();
            return match self.skip_to_next_content()? {
                Next::Line(n) if n as isize > parent_indent => {
                    self.parse_node_here(parent_indent, true)
                }
                Next::Line(n)
                    if ctx == Ctx::MapValue
                        && n as isize == parent_indent
                        && self.at_seq_entry() =>
                {
                    self.parse_block_seq(n)
                }
                _ => Ok(Node::new(Value::Null, here)),
            };
        }
        self.parse_node_here(parent_indent, ctx == Ctx::SeqItem)
    }

    /// The node starting at the cursor. Its indentation is the cursor's column; `compact`
    /// says a block mapping or sequence may start here.
    fn parse_node_here(&mut self, parent_indent: isize, compact: bool) -> Result<Node> {
        self.fresh = false;
        let column = self.col;
        let Some(first) = self.peek() else {
            return Ok(Node::new(Value::Null, self.lineno()));
        };
        let second_is_space = self.peek_second().is_none_or(is_ws);
        match first {
            '&' => return self.error("anchors ('&name') are not supported"),
            '*' => return self.error("aliases ('*name') are not supported"),
            '!' => return self.error("tags ('!tag') are not supported"),
            '%' | '@' | '`' | ',' | ']' | '}' => {
                return self.error(format!("'{first}' cannot start a value (quote the value)"))
            }
            '?' if second_is_space => {
                return self.error("complex mapping keys ('? ') are not supported")
            }
            '|' | '>' => return self.parse_block_scalar(parent_indent),
            '[' | '{' => {
                let node = self.parse_flow_collection()?;
                self.skip_inline_ws();
                if self.peek() == Some(':') {
                    return self.error("a flow collection cannot be a mapping key");
                }
                return Ok(node);
            }
            '-' if second_is_space => {
                if compact {
                    return self.parse_block_seq(column);
                }
                return self.error(
                    "a list cannot start on the same line as its key; start it on the next line",
                );
            }
            _ => {}
        }
        if self.is_key_here() {
            if compact {
                return self.parse_block_map(column);
            }
            return self.error("mapping values are not allowed here (a nested mapping must start on the next line)");
        }
        let line = self.lineno();
        match first {
            '"' => {
                let s = self.parse_double_quoted()?;
                Ok(Node::new(Value::String(s), line))
            }
            '\'' => {
                let s = self.parse_single_quoted()?;
                Ok(Node::new(Value::String(s), line))
            }
            _ => self.parse_plain_block(parent_indent),
        }
    }

    fn parse_block_seq(&mut self, indent: usize) -> Result<Node> {
        self.enter()?;
        let start = self.lineno();
        let mut items = Vec::new();
        loop {
            self.fresh = false;
            self.col += 1; // the '-'
            items.push(self.parse_value(indent as isize, Ctx::SeqItem)?);
            match self.skip_to_next_content()? {
                Next::Line(m) if m == indent && self.at_seq_entry() => continue,
                Next::Line(m) if m > indent => {
                    return self.error("unexpected indentation after a list item")
                }
                _ => break,
            }
        }
        self.leave();
        Ok(Node::new(Value::Seq(items), start))
    }

    fn parse_block_map(&mut self, indent: usize) -> Result<Node> {
        self.enter()?;
        let start = self.lineno();
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            self.fresh = false;
            let key_line = self.lineno();
            let key = self.parse_block_key()?;
            if !seen.insert(key.clone()) {
                let first = entries
                    .iter()
                    .find(|e| e.key == key)
                    .map(|e| e.key_line)
                    .unwrap_or(key_line);
                return self.error(format!("duplicate key '{key}' (first at line {first})"));
            }
            let value = self.parse_value(indent as isize, Ctx::MapValue)?;
            entries.push(Entry {
                key,
                key_line,
                value,
            });
            match self.skip_to_next_content()? {
                Next::Line(m) if m == indent => {
                    if self.at_seq_entry() {
                        return self.error("expected 'key: value', found a list item '- '");
                    }
                }
                Next::Line(m) if m > indent => return self.error(
                    "unexpected indentation (a mapping entry must line up with the keys above it)",
                ),
                _ => break,
            }
        }
        self.leave();
        Ok(Node::new(Value::Map(entries), start))
    }

    /// Is the text at the cursor `key:` followed by a space or the end of the line?
    fn is_key_here(&self) -> bool {
        let rest = self.rest();
        let after_key = match rest.chars().next() {
            Some('"') => quoted_end_on_line(rest, '"'),
            Some('\'') => quoted_end_on_line(rest, '\''),
            _ => {
                let mut prev_ws = true;
                let mut chars = rest.char_indices().peekable();
                while let Some((_, c)) = chars.next() {
                    if c == ':' && chars.peek().is_none_or(|&(_, n)| is_ws(n)) {
                        return true;
                    }
                    if c == '#' && prev_ws {
                        return false;
                    }
                    prev_ws = is_ws(c);
                }
                return false;
            }
        };
        match after_key {
            Some(end) => {
                let tail = rest.get(end..).unwrap_or("").trim_start_matches(is_ws);
                tail.starts_with(':') && tail.chars().nth(1).is_none_or(is_ws)
            }
            None => false,
        }
    }

    /// Reads `key:` at the cursor and leaves the cursor after the colon.
    fn parse_block_key(&mut self) -> Result<String> {
        let Some(first) = self.peek() else {
            return self.error("expected 'key: value'");
        };
        let second_is_space = self.peek_second().is_none_or(is_ws);
        let key = match first {
            '&' => return self.error("anchors ('&name') are not supported"),
            '*' => return self.error("aliases ('*name') are not supported"),
            '!' => return self.error("tags ('!tag') are not supported"),
            '?' if second_is_space => {
                return self.error("complex mapping keys ('? ') are not supported")
            }
            '[' | '{' => return self.error("a flow collection cannot be a mapping key"),
            '-' if second_is_space => {
                return self.error("expected 'key: value', found a list item '- '")
            }
            '"' | '\'' => {
                let row = self.row;
                let key = if first == '"' {
                    self.parse_double_quoted()?
                } else {
                    self.parse_single_quoted()?
                };
                if self.row != row {
                    return self.error_at(row, "a mapping key must fit on one line");
                }
                key
            }
            _ => {
                let rest = self.rest();
                let mut colon = None;
                let mut prev_ws = true;
                let mut chars = rest.char_indices().peekable();
                while let Some((i, c)) = chars.next() {
                    if c == ':' && chars.peek().is_none_or(|&(_, n)| is_ws(n)) {
                        colon = Some(i);
                        break;
                    }
                    if c == '#' && prev_ws {
                        break;
                    }
                    prev_ws = is_ws(c);
                }
                let Some(colon) = colon else {
                    return self.error("expected 'key: value' (a space is needed after ':')");
                };
                let raw = rest.get(..colon).unwrap_or("").trim_end_matches(is_ws);
                if raw.is_empty() {
                    return self.error("empty mapping key");
                }
                if raw == "<<" {
                    return self.error("merge keys ('<<') are not supported");
                }
                let key = match resolve_plain(raw) {
                    Ok(v) => key_text(&v, raw),
                    Err(message) => return self.error(message),
                };
                self.col += raw.len();
                key
            }
        };
        self.skip_inline_ws();
        if self.peek() != Some(':') || !self.peek_second().is_none_or(is_ws) {
            return self.error("expected ':' followed by a space after the key");
        }
        self.col += 1;
        Ok(key)
    }

    // ----- scalars ------------------------------------------------------------------------

    /// A plain scalar in block context, folded over continuation lines indented more
    /// than `parent_indent`.
    fn parse_plain_block(&mut self, parent_indent: isize) -> Result<Node> {
        let start = self.lineno();
        let (first, mut ended_by_comment) = self.scan_plain_line();
        let mut text = first.to_string();
        while !ended_by_comment {
            let mut row = self.row + 1;
            let mut blank = 0usize;
            while self.lines.get(row).is_some_and(|l| is_blank(l)) {
                blank += 1;
                row += 1;
            }
            let Some(line) = self.lines.get(row).copied() else {
                break;
            };
            let content = line.trim_start_matches(is_ws);
            if is_doc_marker(line)
                || indent_of(line) as isize <= parent_indent
                || content.starts_with('#')
            {
                break;
            }
            self.row = row;
            self.col = line.len() - content.len();
            if self.is_key_here() {
                let hint = if first.contains(':') {
                    format!(" or a missing space after ':' on line {start}")
                } else {
                    String::new()
                };
                return self.error(format!(
                    "unexpected 'key:' inside a multi-line value (check the indentation{hint})"
                ));
            }
            let (piece, comment) = self.scan_plain_line();
            ended_by_comment = comment;
            if blank == 0 {
                text.push(' ');
            } else {
                text.push_str(&"\n".repeat(blank));
            }
            text.push_str(piece);
        }
        match resolve_plain(&text) {
            Ok(value) => Ok(Node::new(value, start)),
            Err(message) => self.error_at(start as usize - 1, message),
        }
    }

    /// The plain text from the cursor to a comment or the end of the line, trailing
    /// whitespace removed; the cursor ends after it.
    fn scan_plain_line(&mut self) -> (&'a str, bool) {
        let rest = self.rest();
        let mut end = rest.len();
        let mut comment = false;
        let mut prev_ws = false;
        for (i, c) in rest.char_indices() {
            if c == '#' && prev_ws {
                end = i;
                comment = true;
                break;
            }
            prev_ws = is_ws(c);
        }
        let text = rest.get(..end).unwrap_or("").trim_end_matches(is_ws);
        self.col += text.len();
        (text, comment)
    }

    fn parse_double_quoted(&mut self) -> Result<String> {
        let start_row = self.row;
        self.col += 1;
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let mut chars = rest.char_indices();
            // Start of the run of unescaped whitespace at the end of `out`, dropped when
            // the line ends (folding removes trailing white space).
            let mut ws_run: Option<usize> = None;
            let mut escaped_break = false;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.col += i + 1;
                        return Ok(out);
                    }
                    '\\' => {
                        ws_run = None;
                        let Some((_, e)) = chars.next() else {
                            escaped_break = true;
                            break;
                        };
                        let simple = match e {
                            '0' => Some('\0'),
                            'a' => Some('\u{7}'),
                            'b' => Some('\u{8}'),
                            't' | '\t' => Some('\t'),
                            'n' => Some('\n'),
                            'v' => Some('\u{b}'),
                            'f' => Some('\u{c}'),
                            'r' => Some('\r'),
                            'e' => Some('\u{1b}'),
                            ' ' => Some(' '),
                            '"' => Some('"'),
                            '/' => Some('/'),
                            '\\' => Some('\\'),
                            'N' => Some('\u{85}'),
                            '_' => Some('\u{a0}'),
                            'L' => Some('\u{2028}'),
                            'P' => Some('\u{2029}'),
                            _ => None,
                        };
                        if let Some(c) = simple {
                            out.push(c);
                            continue;
                        }
                        let digits = match e {
                            'x' => 2,
                            'u' => 4,
                            'U' => 8,
                            _ => {
                                return self.error(format!(
                                    "invalid escape '\\{e}' in a double-quoted string"
                                ))
                            }
                        };
                        let mut code: u32 = 0;
                        for _ in 0..digits {
                            let digit = chars.next().and_then(|(_, d)| d.to_digit(16));
                            let Some(digit) = digit else {
                                return self
                                    .error(format!("escape '\\{e}' needs {digits} hex digits"));
                            };
                            code = code * 16 + digit;
                        }
                        match char::from_u32(code) {
                            Some(c) => out.push(c),
                            None => {
                                return self.error(format!(
                                    "escape '\\{e}{code:X}' is not a valid character"
                                ))
                            }
                        }
                    }
                    ' ' | '\t' => {
                        ws_run.get_or_insert(out.len());
                        out.push(c);
                    }
                    _ => {
                        ws_run = None;
                        out.push(c);
                    }
                }
            }
            if let Some(start) = ws_run {
                out.truncate(start);
            }
            self.next_quoted_line(start_row, "double", &mut out, escaped_break)?;
        }
    }

    fn parse_single_quoted(&mut self) -> Result<String> {
        let start_row = self.row;
        self.col += 1;
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let mut chars = rest.char_indices().peekable();
            let mut ws_run: Option<usize> = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\'' => {
                        if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                            chars.next();
                            ws_run = None;
                            out.push('\'');
                        } else {
                            self.col += i + 1;
                            return Ok(out);
                        }
                    }
                    ' ' | '\t' => {
                        ws_run.get_or_insert(out.len());
                        out.push(c);
                    }
                    _ => {
                        ws_run = None;
                        out.push(c);
                    }
                }
            }
            if let Some(start) = ws_run {
                out.truncate(start);
            }
            self.next_quoted_line(start_row, "single", &mut out, false)?;
        }
    }

    /// Moves a quoted scalar onto its next line: one line break folds into a space,
    /// each empty line into a newline; an escaped break joins the lines directly.
    fn next_quoted_line(
        &mut self,
        start_row: usize,
        kind: &str,
        out: &mut String,
        escaped_break: bool,
    ) -> Result<()> {
        let unterminated = format!("unterminated {kind}-quoted string");
        self.row += 1;
        let mut blank = 0usize;
        while self.lines.get(self.row).is_some_and(|l| is_blank(l)) {
            blank += 1;
            self.row += 1;
        }
        let Some(line) = self.lines.get(self.row).copied() else {
            return self.error_at(start_row, unterminated);
        };
        if is_doc_marker(line) {
            return self.error_at(start_row, unterminated);
        }
        if blank == 0 && !escaped_break {
            out.push(' ');
        } else {
            out.push_str(&"\n".repeat(blank));
        }
        self.col = line.len() - line.trim_start_matches(is_ws).len();
        Ok(())
    }

    /// `|` literal or `>` folded block scalar; the cursor is on the indicator.
    fn parse_block_scalar(&mut self, parent_indent: isize) -> Result<Node> {
        let start_row = self.row;
        let folded = self.peek() == Some('>');
        self.col += 1;
        let mut chomp: Option<Chomp> = None;
        let mut explicit: Option<usize> = None;
        for _ in 0..2 {
            match self.peek() {
                Some('+') if chomp.is_none() => chomp = Some(Chomp::Keep),
                Some('-') if chomp.is_none() => chomp = Some(Chomp::Strip),
                Some(d @ '1'..='9') if explicit.is_none() => {
                    explicit = d.to_digit(10).map(|d| d as usize)
                }
                Some('0') => return self.error("a block scalar indentation indicator must be 1-9"),
                _ => break,
            }
            self.col += 1;
        }
        let chomp = chomp.unwrap_or(Chomp::Clip);
        let before = self.col;
        self.skip_inline_ws();
        let rest = self.rest();
        let comment = rest.starts_with('#') && self.col > before;
        if !rest.is_empty() && !comment {
            return self.error(
                "invalid block scalar header (expected '|' or '>' with optional '+', '-' or 1-9)",
            );
        }

        let min_indent = (parent_indent + 1).max(1) as usize;
        let first_row = self.row + 1;
        let indent = match explicit {
            Some(m) => min_indent + m - 1,
            None => {
                let mut widest_blank = 0;
                let mut row = first_row;
                while let Some(line) = self.lines.get(row) {
                    if !line.bytes().all(|b| b == b' ') {
                        break;
                    }
                    widest_blank = widest_blank.max(line.len());
                    row += 1;
                }
                let content_indent = self.lines.get(row).map_or(0, |l| indent_of(l));
                min_indent.max(widest_blank).max(content_indent)
            }
        };

        // Each line below is either an empty line (a line break only), a content line
        // (at least `indent` spaces), or the end of the scalar.
        let is_break = |p: &Self, row: usize| {
            p.lines.get(row).is_some_and(|l| {
                l.len() <= indent && l.bytes().all(|b| b == b' ') && p.has_break(row)
            })
        };
        let content = |p: &Self, row: usize| -> Option<&'a str> {
            let line = p.lines.get(row).copied()?;
            if is_break(p, row) || indent_of(line) < indent {
                return None;
            }
            if row + 1 == p.lines.len() && !p.last_has_break && line.len() <= indent {
                return None;
            }
            line.get(indent..)
        };

        let mut row = first_row;
        let mut breaks = 0usize;
        while is_break(self, row) {
            breaks += 1;
            row += 1;
        }
        let mut text = String::new();
        let mut line_break = "";
        while let Some(line_text) = content(self, row) {
            text.push_str(&"\n".repeat(breaks));
            let leading_non_space = !line_text.starts_with(is_ws);
            text.push_str(line_text);
            line_break = if self.has_break(row) { "\n" } else { "" };
            row += 1;
            breaks = 0;
            while is_break(self, row) {
                breaks += 1;
                row += 1;
            }
            match content(self, row) {
                Some(next) => {
                    if folded && line_break == "\n" && leading_non_space && !next.starts_with(is_ws)
                    {
                        if breaks == 0 {
                            text.push(' ');
                        }
                    } else {
                        text.push_str(line_break);
                    }
                }
                None => break,
            }
        }
        if chomp != Chomp::Strip {
            text.push_str(line_break);
        }
        if chomp == Chomp::Keep {
            text.push_str(&"\n".repeat(breaks));
        }
        if row > first_row {
            self.row = row - 1;
            self.col = self.line().len();
        }
        Ok(Node::new(Value::String(text), line_number(start_row)))
    }

    // ----- flow collections -----------------------------------------------------------

    /// Skips spaces, comments and line breaks inside `[..]`/`{..}`.
    fn skip_flow_ws(&mut self, start_row: usize) -> Result<()> {
        loop {
            let before = self.col;
            self.skip_inline_ws();
            let rest = self.rest();
            let comment =
                rest.starts_with('#') && (self.col > before || self.prev_is_ws_or_start());
            if !rest.is_empty() && !comment {
                return Ok(());
            }
            self.row += 1;
            self.col = 0;
            match self.lines.get(self.row) {
                None => {
                    return self.error_at(
                        start_row,
                        "unterminated flow collection ('[' or '{' without its closing bracket)",
                    )
                }
                Some(line) if is_doc_marker(line) => {
                    return self.error_at(
                        start_row,
                        "unterminated flow collection ('[' or '{' without its closing bracket)",
                    )
                }
                Some(_) => {}
            }
        }
    }

    fn parse_flow_collection(&mut self) -> Result<Node> {
        self.enter()?;
        self.fresh = false;
        let start_row = self.row;
        let is_seq = self.peek() == Some('[');
        self.col += 1;
        let node = if is_seq {
            let mut items = Vec::new();
            loop {
                self.skip_flow_ws(start_row)?;
                if self.peek() == Some(']') {
                    self.col += 1;
                    break;
                }
                let item = self.parse_flow_node(start_row)?;
                self.skip_flow_ws(start_row)?;
                let item = if self.at_flow_value_indicator(&item) {
                    // `[a: b]` is a list holding the one-pair mapping {a: b}.
                    self.col += 1;
                    self.skip_flow_ws(start_row)?;
                    let value = if matches!(self.peek(), Some(',') | Some(']')) {
                        Node::new(Value::Null, item.line)
                    } else {
                        self.parse_flow_node(start_row)?
                    };
                    let key = self.flow_key(&item)?;
                    let line = item.line;
                    Node::new(
                        Value::Map(vec![Entry {
                            key,
                            key_line: line,
                            value,
                        }]),
                        line,
                    )
                } else {
                    item
                };
                items.push(item);
                self.skip_flow_ws(start_row)?;
                match self.peek() {
                    Some(',') => self.col += 1,
                    Some(']') => {
                        self.col += 1;
                        break;
                    }
                    _ => return self.error("expected ',' or ']' in a flow list"),
                }
            }
            Node::new(Value::Seq(items), line_number(start_row))
        } else {
            let mut entries: Vec<Entry> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            loop {
                self.skip_flow_ws(start_row)?;
                if self.peek() == Some('}') {
                    self.col += 1;
                    break;
                }
                let key_node = self.parse_flow_node(start_row)?;
                let key = self.flow_key(&key_node)?;
                self.skip_flow_ws(start_row)?;
                let value = if self.at_flow_value_indicator(&key_node) {
                    self.col += 1;
                    self.skip_flow_ws(start_row)?;
                    if matches!(self.peek(), Some(',') | Some('}')) {
                        Node::new(Value::Null, key_node.line)
                    } else {
                        self.parse_flow_node(start_row)?
                    }
                } else {
                    Node::new(Value::Null, key_node.line)
                };
                if !seen.insert(key.clone()) {
                    return self
                        .error_at(key_node.line as usize - 1, format!("duplicate key '{key}'"));
                }
                entries.push(Entry {
                    key,
                    key_line: key_node.line,
                    value,
                });
                self.skip_flow_ws(start_row)?;
                match self.peek() {
                    Some(',') => self.col += 1,
                    Some('}') => {
                        self.col += 1;
                        break;
                    }
                    _ => return self.error("expected ',' or '}' in a flow mapping"),
                }
            }
            Node::new(Value::Map(entries), line_number(start_row))
        };
        self.leave();
        Ok(node)
    }

    /// A ':' that separates a key from its value inside a flow collection: followed by
    /// a space, a flow indicator or the line end — or right after a quoted key.
    fn at_flow_value_indicator(&self, key: &Node) -> bool {
        if self.peek() != Some(':') {
            return false;
        }
        let adjacent_ok = matches!(key.value, Value::String(_)) && !self.prev_is_ws_or_start();
        adjacent_ok
            || self
                .peek_second()
                .is_none_or(|c| is_ws(c) || is_flow_indicator(c))
    }

    fn flow_key(&self, node: &Node) -> Result<String> {
        match &node.value {
            Value::Seq(_) | Value::Map(_) => self.error_at(
                node.line as usize - 1,
                "a flow collection cannot be a mapping key",
            ),
            v => Ok(key_text(v, "")),
        }
    }

    fn parse_flow_node(&mut self, start_row: usize) -> Result<Node> {
        let Some(first) = self.peek() else {
            return self.error_at(start_row, "unterminated flow collection");
        };
        let second_is_space = self.peek_second().is_none_or(is_ws);
        let line = self.lineno();
        match first {
            '[' | '{' => self.parse_flow_collection(),
            '"' => Ok(Node::new(Value::String(self.parse_double_quoted()?), line)),
            '\'' => Ok(Node::new(Value::String(self.parse_single_quoted()?), line)),
            '&' => self.error("anchors ('&name') are not supported"),
            '*' => self.error("aliases ('*name') are not supported"),
            '!' => self.error("tags ('!tag') are not supported"),
            '|' | '>' => self.error("block scalars ('|', '>') are not allowed inside [..] or {..}"),
            '%' | '@' | '`' | ',' | ']' | '}' => {
                self.error(format!("unexpected '{first}' inside a flow collection"))
            }
            '-' if second_is_space => {
                self.error("list items ('- ') are not allowed inside [..] or {..}")
            }
            '?' if second_is_space => self.error("complex mapping keys ('? ') are not supported"),
            _ => self.parse_plain_flow(),
        }
    }

    fn parse_plain_flow(&mut self) -> Result<Node> {
        let start = self.lineno();
        let mut text = String::new();
        loop {
            let rest = self.rest();
            let mut end = rest.len();
            let mut stopped = false;
            let mut prev_ws = false;
            let mut chars = rest.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                let ends_here = is_flow_indicator(c)
                    || (c == '#' && prev_ws)
                    || (c == ':'
                        && chars
                            .peek()
                            .is_none_or(|&(_, n)| is_ws(n) || is_flow_indicator(n)));
                if ends_here {
                    end = i;
                    stopped = true;
                    break;
                }
                prev_ws = is_ws(c);
            }
            let piece = rest.get(..end).unwrap_or("").trim_end_matches(is_ws);
            text.push_str(piece);
            self.col += piece.len();
            if stopped {
                break;
            }
            // The line ended inside the scalar: it may continue on the next line.
            let mut row = self.row + 1;
            let mut blank = 0usize;
            while self.lines.get(row).is_some_and(|l| is_blank(l)) {
                blank += 1;
                row += 1;
            }
            let Some(line) = self.lines.get(row).copied() else {
                break;
            };
            let content = line.trim_start_matches(is_ws);
            if is_doc_marker(line)
                || content.starts_with(|c: char| is_flow_indicator(c) || c == '#' || c == ':')
            {
                break;
            }
            if blank == 0 {
                text.push(' ');
            } else {
                text.push_str(&"\n".repeat(blank));
            }
            self.row = row;
            self.col = line.len() - content.len();
        }
        if text.is_empty() {
            return self.error("expected a value");
        }
        match resolve_plain(&text) {
            Ok(value) => Ok(Node::new(value, start)),
            Err(message) => self.error_at(start as usize - 1, message),
        }
    }
}

/// Byte offset just past the closing quote of a quoted scalar that starts at `s[0]`, if
/// it closes on this line.
fn quoted_end_on_line(s: &str, quote: char) -> Option<usize> {
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
            } else {
                return Some(i + 1);
            }
        }
    }
    None
}

/// A mapping key as text, the way a full YAML parser's JSON dump spells it.
fn key_text(value: &Value, raw: &str) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if raw.is_empty() => format!("{f:?}"),
        _ => raw.to_string(),
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(text: &str) -> std::result::Result<Value, String> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Value::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Value::Float(f64::NAN)),
        _ => {}
    }
    let out_of_range = || format!("integer {text} is out of range");
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| out_of_range());
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return i64::from_str_radix(oct, 8)
                .map(Value::Int)
                .map_err(|_| out_of_range());
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return i64::from_str_radix(hex, 16)
                .map(Value::Int)
                .map_err(|_| out_of_range());
        }
    }
    if looks_like_float(unsigned) {
        if let Ok(f) = text.parse::<f64>() {
            return Ok(Value::Float(f));
        }
    }
    Ok(Value::String(text.to_string()))
}

/// `( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn looks_like_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(|c| c.is_ascii_digit()) {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = digits(&mut i);
    } else if int_digits == 0 {
        return false;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        match parse(text) {
            Ok(node) => node.to_json(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn block_mapping_in_sequence_shares_the_item_column() {
        assert_eq!(
            json("- name: a\n  type: b\n- name: c\n"),
            r#"[{"name":"a","type":"b"},{"name":"c"}]"#
        );
    }

    #[test]
    fn lines_are_recorded() {
        let node = parse("a:\n  b: 1\n\n  c:\n    - x\n").unwrap_or_else(|e| panic!("{e}"));
        let a = node.get("a").unwrap_or_else(|| panic!("a"));
        assert_eq!(a.line, 2);
        assert_eq!(a.get("c").map(|c| c.line), Some(5));
    }

    #[test]
    fn depth_limit_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000);
        assert_eq!(json(&deep), "error: line 1: nesting deeper than 64 levels");
        let mut block = String::new();
        for i in 0..100 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert_eq!(
            json(&block),
            "error: line 65: nesting deeper than 64 levels"
        );
    }
}
