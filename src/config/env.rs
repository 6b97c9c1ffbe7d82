//! Environment expansion in configuration strings (SPEC §1.1): `${VAR}`,
//! `${VAR:-default}` (default when VAR is unset or empty), `$$` for a literal `$`; any
//! other `$` is literal. It owns only the substitution and its error reports; the
//! environment comes in as a lookup function so tests never touch the process
//! environment. It never puts a value it read into a message (values may be secrets).

use std::collections::HashSet;

use super::diagnostic::{child_path, index_path, Diagnostic};
use super::value::{Node, Value};

/// Looks up one environment variable; `None` = unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The real process environment (a variable that is not valid UTF-8 counts as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `${NAME}` without default, NAME unset.
    Unset(String),
    /// Malformed reference; the message says what is wrong.
    Invalid(String),
}

impl Problem {
    pub fn message(&self) -> String {
        match self {
            Problem::Unset(name) => format!("environment variable {name} is not set"),
            Problem::Invalid(message) => message.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub text: String,
    /// At least one `${..}` was replaced.
    pub substituted: bool,
    pub problems: Vec<Problem>,
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Expands one string. Unset variables expand to nothing and are listed in `problems`.
pub fn expand(s: &str, env: EnvLookup) -> Expansion {
    let mut out = String::with_capacity(s.len());
    let mut substituted = false;
    let mut problems = Vec::new();
    let mut rest = s;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_and_tail) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = body_and_tail.find('}') else {
            problems.push(Problem::Invalid(
                "unterminated '${' (expected '}')".to_string(),
            ));
            out.push('$');
            rest = after;
            continue;
        };
        let body = &body_and_tail[..close];
        rest = &body_and_tail[close + 1..];
        let (name, default) = match body.find(":-") {
            Some(p) => (&body[..p], Some(&body[p + 2..])),
            None => (body, None),
        };
        if !valid_name(name) {
            let shown: String = name.chars().take(40).collect();
            problems.push(Problem::Invalid(format!(
                "invalid variable reference '${{{shown}...}}' (expected ${{NAME}} or ${{NAME:-default}})"
            )));
            continue;
        }
        substituted = true;
        match (env(name), default) {
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => problems.push(Problem::Unset(name.to_string())),
        }
    }
    out.push_str(rest);
    Expansion {
        text: out,
        substituted,
        problems,
    }
}

/// What expanding a whole tree found.
#[derive(Debug, Default)]
pub struct TreeExpansion {
    pub errors: Vec<Diagnostic>,
    /// Paths whose value could not be expanded; later checks stay quiet about them so
    /// one unset variable gives one error.
    pub failed_paths: HashSet<String>,
}

/// Expands every string value (not keys) of a configuration tree in place. Inside a
/// provider with `enabled: false`, unset variables are not errors.
pub fn expand_tree(root: &mut Node, file: Option<&str>, env: EnvLookup) -> TreeExpansion {
    let mut report = TreeExpansion::default();
    let Value::Map(entries) = &mut root.value else {
        return report;
    };
    for entry in entries.iter_mut() {
        let path = child_path("", &entry.key);
        if entry.key == "providers" {
            if let Value::Seq(providers) = &mut entry.value.value {
                for (i, provider) in providers.iter_mut().enumerate() {
                    let provider_path = index_path(&path, i);
                    let disabled = provider_is_disabled(provider, env);
                    walk(provider, &provider_path, file, env, disabled, &mut report);
                }
                continue;
            }
        }
        walk(&mut entry.value, &path, file, env, false, &mut report);
    }
    report
}

fn provider_is_disabled(provider: &Node, env: EnvLookup) -> bool {
    match provider.get("enabled").map(|n| &n.value) {
        Some(Value::Bool(enabled)) => !enabled,
        Some(Value::String(s)) => expand(s, env).text == "false",
        _ => false,
    }
}

fn walk(
    node: &mut Node,
    path: &str,
    file: Option<&str>,
    env: EnvLookup,
    lenient: bool,
    report: &mut TreeExpansion,
) {
    match &mut node.value {
        Value::String(s) if s.contains('$') => {
            let expansion = expand(s, env);
            let mut failed = false;
            for problem in &expansion.problems {
                if lenient && matches!(problem, Problem::Unset(_)) {
                    continue;
                }
                failed = true;
                report
                    .errors
                    .push(Diagnostic::error(path, problem.message()).at(file, Some(node.line)));
            }
            if failed {
                report.failed_paths.insert(path.to_string());
            }
            *s = expansion.text;
            node.expanded = expansion.substituted;
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &index_path(path, i), file, env, lenient, report);
            }
        }
        Value::Map(entries) => {
            for entry in entries.iter_mut() {
                let child = child_path(path, &entry.key);
                walk(&mut entry.value, &child, file, env, lenient, report);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn text(s: &str) -> (String, Vec<Problem>) {
        let e = expand(s, &env);
        (e.text, e.problems)
    }

    #[test]
    fn expansion_cases() {
        let cases: &[(&str, &str, &[Problem])] = &[
            ("${KEY}", "sk-1", &[]),
            ("a-${KEY}-b", "a-sk-1-b", &[]),
            ("${MISSING:-dflt}", "dflt", &[]),
            ("${EMPTY:-dflt}", "dflt", &[]),
            ("${EMPTY}", "", &[]),
            ("${KEY:-dflt}", "sk-1", &[]),
            ("$$", "$", &[]),
            ("$${KEY}", "${KEY}", &[]),
            ("cost $5", "cost $5", &[]),
            ("end$", "end$", &[]),
            ("$KEY", "$KEY", &[]),
            ("${MISSING}", "", &[Problem::Unset(String::new())]),
        ];
        for (input, want, problems) in cases {
            let (got, found) = text(input);
            assert_eq!(&got, want, "{input}");
            assert_eq!(found.len(), problems.len(), "{input}");
        }
        assert_eq!(text("${MISSING}").1, vec![Problem::Unset("MISSING".into())]);
        assert_eq!(
            text("${1BAD}").1,
            vec![Problem::Invalid(
                "invalid variable reference '${1BAD...}' (expected ${NAME} or ${NAME:-default})"
                    .into()
            )]
        );
        assert_eq!(
            text("x${KEY").1,
            vec![Problem::Invalid("unterminated '${' (expected '}')".into())]
        );
    }
}
