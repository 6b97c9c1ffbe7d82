//! One problem found while loading a configuration: where (key path, file, line), what,
//! and whether it stops the load. Every layer of the loader reports through this type so
//! the CLI and the reload watcher print them the same way, one line each. No I/O here.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Key path such as `providers[1].keys[0].rpm_limit`; empty for file-level problems.
    pub path: String,
    pub message: String,
    /// The file as the user named it (`config.yaml`), when there is one.
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            file: None,
            line: None,
        }
    }

    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, message)
        }
    }

    /// Points the diagnostic at `file:line`.
    pub fn at(mut self, file: Option<&str>, line: Option<u32>) -> Diagnostic {
        self.file = file.map(str::to_string);
        self.line = line;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `path: message (file:line)`; parts that are unknown are left out.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            (None, Some(line)) => write!(f, " (line {line})"),
            (None, None) => Ok(()),
        }
    }
}

/// Orders a report: errors before warnings, each in file order.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.severity == Severity::Warning, d.line.unwrap_or(u32::MAX)));
}

/// `parent.key`, quoting keys that are not plain identifiers (model names with dots).
pub fn child_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if plain {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

pub fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_spec_example() {
        let d = Diagnostic::error("providers[1].keys[0].rpm_limit", "must be >= 0")
            .at(Some("config.yaml"), Some(23));
        assert_eq!(
            d.to_string(),
            "providers[1].keys[0].rpm_limit: must be >= 0 (config.yaml:23)"
        );
    }

    #[test]
    fn odd_keys_are_quoted() {
        assert_eq!(
            child_path("routing.model_mapping", "claude-3.5"),
            "routing.model_mapping.\"claude-3.5\""
        );
        assert_eq!(child_path("", "server"), "server");
    }
}
