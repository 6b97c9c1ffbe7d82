//! Our command-line flag parser: `--name value`, `--name=value`, `-x value`, boolean
//! switches, `--` to end flags, positionals counted. It only splits arguments by a
//! declared spec and reports misuse as a one-line usage message; it knows no commands
//! and prints nothing.

#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// false = a switch (`--force`).
    pub takes_value: bool,
}

pub const fn value(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        takes_value: true,
    }
}

pub const fn switch(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        takes_value: false,
    }
}

pub const fn with_short(flag: Flag, short: char) -> Flag {
    Flag {
        short: Some(short),
        ..flag
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: Vec<(&'static str, String)>,
    switches: Vec<&'static str>,
    pub positionals: Vec<String>,
}

impl Parsed {
    /// The last value given for `--long`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(name, _)| *name == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn switch(&self, long: &str) -> bool {
        self.switches.contains(&long)
    }
}

/// True when the arguments ask for help (`--help`/`-h` before any `--`).
pub fn wants_help(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| a == "--help" || a == "-h")
}

/// Splits `args` by `flags`; at most `max_positionals` positional arguments.
pub fn parse(args: &[String], flags: &[Flag], max_positionals: usize) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut iter = args.iter();
    let mut flags_done = false;
    while let Some(arg) = iter.next() {
        if flags_done || arg == "-" || !arg.starts_with('-') {
            if parsed.positionals.len() >= max_positionals {
                return Err(format!("unexpected argument '{arg}'"));
            }
            parsed.positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            flags_done = true;
            continue;
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let flag = if let Some(long) = name.strip_prefix("--") {
            flags.iter().find(|f| f.long == long)
        } else {
            let mut chars = name.chars().skip(1);
            match (chars.next(), chars.next()) {
                (Some(c), None) => flags.iter().find(|f| f.short == Some(c)),
                _ => None,
            }
        };
        let Some(flag) = flag else {
            return Err(format!("unknown option '{name}'"));
        };
        if flag.takes_value {
            let value = match inline_value {
                Some(v) => v,
                None => match iter.next() {
                    Some(v) => v.clone(),
                    None => return Err(format!("option '--{}' needs a value", flag.long)),
                },
            };
            parsed.values.push((flag.long, value));
        } else {
            if inline_value.is_some() {
                return Err(format!("option '--{}' takes no value", flag.long));
            }
            parsed.switches.push(flag.long);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    const FLAGS: &[Flag] = &[
        value("config"),
        with_short(value("output"), 'o'),
        switch("force"),
    ];

    #[test]
    fn forms() {
        let p = parse(
            &strings(&["--config", "a.yaml", "-o=x", "--force"]),
            FLAGS,
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.value("config"), Some("a.yaml"));
        assert_eq!(p.value("output"), Some("x"));
        assert!(p.switch("force"));
        let p = parse(&strings(&["--config=b.toml", "--", "--force"]), FLAGS, 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.value("config"), Some("b.toml"));
        assert!(!p.switch("force"));
        assert_eq!(p.positionals, ["--force"]);
    }

    #[test]
    fn misuse() {
        assert_eq!(
            parse(&strings(&["--nope"]), FLAGS, 0).err(),
            Some("unknown option '--nope'".into())
        );
        assert_eq!(
            parse(&strings(&["--config"]), FLAGS, 0).err(),
            Some("option '--config' needs a value".into())
        );
        assert_eq!(
            parse(&strings(&["--force=yes"]), FLAGS, 0).err(),
            Some("option '--force' takes no value".into())
        );
        assert_eq!(
            parse(&strings(&["extra"]), FLAGS, 0).err(),
            Some("unexpected argument 'extra'".into())
        );
        assert!(wants_help(&strings(&["--config", "x", "-h"])));
        assert!(!wants_help(&strings(&["--", "-h"])));
    }
}
