//! `cc-relay version`: `cc-relay 1.2.3 (commit abc1234, dist, static, resolver builtin)`
//! (SPEC §5), and with `--verbose` what an auditor needs to know what runs: full commit,
//! target, linking, TLS stack and built-in roots, provider types, config formats.
//!
//! Everything here is fixed at compile time; it must never look at the host (a version
//! line that changes with the machine it runs on cannot be audited). The commit comes
//! from `CC_RELAY_GIT_COMMIT` (a hex SHA, optionally followed by `-dirty`), the profile
//! from `CC_RELAY_BUILD_PROFILE` and the compiler from `CC_RELAY_RUSTC_VERSION`, all set
//! by `scripts/build-static.sh`; without them: "unknown" and debug/release. Static
//! linking is read from the target's `crt-static` feature, not from the script, so a
//! binary cannot claim to be static when it is not.

use crate::config::ProviderType;

pub const HELP: &str = "\
Usage: cc-relay version [--verbose]   (or cc-relay --version)

Prints the version, the commit it was built from, the build profile, whether the
binary is statically linked, and which DNS resolver `resolver: auto` uses.
--verbose adds the full commit, the target and compiler, the TLS stack and its
built-in CA roots, and the provider types and config formats compiled in.

Example:
  $ cc-relay version
  cc-relay 0.1.0 (commit abc1234, release, dynamic, resolver system)
  $ cc-relay version --verbose
";

const FLAGS: &[super::args::Flag] = &[super::args::with_short(super::args::switch("verbose"), 'v')];

pub fn is_static() -> bool {
    cfg!(target_feature = "crt-static")
}

/// What `server.resolver: auto` means in this build (SPEC §1.2): a static binary must
/// not reach for the host's NSS modules, so it resolves names itself.
pub fn auto_resolver() -> &'static str {
    if is_static() {
        "builtin"
    } else {
        "system"
    }
}

/// The build profile: what the build script said, else what the compiler settings imply.
pub fn build_profile() -> &'static str {
    match option_env!("CC_RELAY_BUILD_PROFILE") {
        Some(p) if !p.is_empty() => p,
        _ if cfg!(debug_assertions) => "debug",
        _ => "release",
    }
}

/// `abc1234`, `abc1234-dirty` or `unknown`: seven hex digits identify a commit in this
/// repository and keep the line short; `-dirty` must survive the shortening, since a
/// build from uncommitted changes is exactly what an auditor needs to see.
pub fn short_commit() -> String {
    short_commit_of(option_env!("CC_RELAY_GIT_COMMIT").unwrap_or(""))
}

fn short_commit_of(commit: &str) -> String {
    let (sha, dirty) = match commit.strip_suffix("-dirty") {
        Some(sha) => (sha, "-dirty"),
        None => (commit, ""),
    };
    let sha = sha.trim();
    if sha.is_empty() {
        return "unknown".to_string();
    }
    let short: String = sha.chars().take(7).collect();
    format!("{short}{dirty}")
}

pub fn line() -> String {
    format!(
        "cc-relay {} (commit {}, {}, {}, resolver {})",
        env!("CARGO_PKG_VERSION"),
        short_commit(),
        build_profile(),
        if is_static() { "static" } else { "dynamic" },
        auto_resolver()
    )
}

/// `line()` followed by one `name: value` line per build fact.
pub fn verbose() -> String {
    let commit = match option_env!("CC_RELAY_GIT_COMMIT") {
        Some(c) if !c.trim().is_empty() => c.trim(),
        _ => "unknown",
    };
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "gnu") {
        "glibc"
    } else {
        "other libc"
    };
    let linking = if is_static() {
        format!("static ({libc} linked in, no shared libraries needed)")
    } else {
        format!("dynamic (needs the host's {libc})")
    };
    let providers: Vec<&str> = ProviderType::ALL.iter().map(|t| t.as_str()).collect();
    let facts = [
        ("commit", commit.to_string()),
        ("profile", build_profile().to_string()),
        (
            "target",
            format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        ),
        ("linking", linking),
        (
            "rustc",
            option_env!("CC_RELAY_RUSTC_VERSION")
                .unwrap_or("unknown")
                .to_string(),
        ),
        (
            // Unwinding is a guarantee, not a detail: a panicking connection thread is
            // caught and answered with 500 instead of taking the process down.
            "panic",
            if cfg!(panic = "unwind") {
                "unwind (a failing connection answers 500, the relay keeps running)"
            } else {
                "abort"
            }
            .to_string(),
        ),
        (
            "tls",
            format!(
                "rustls with ring, TLS 1.2 and 1.3; {} built-in CA roots (webpki-roots), \
                 more from server.upstream_ca_file or CC_RELAY_CA_FILE",
                webpki_roots::TLS_SERVER_ROOTS.len()
            ),
        ),
        (
            "resolver",
            format!("auto = {} (system | builtin selectable)", auto_resolver()),
        ),
        ("providers", providers.join(" ")),
        ("config", "yaml toml".to_string()),
    ];
    let mut out = line();
    for (name, value) in facts {
        out.push_str(&format!("\n{:<10} {value}", format!("{name}:")));
    }
    out
}

pub fn run(args: &[String]) -> i32 {
    match super::parse_flags("version", HELP, args, FLAGS) {
        Ok(parsed) => {
            if parsed.switch("verbose") {
                println!("{}", verbose());
            } else {
                println!("{}", line());
            }
            super::EXIT_OK
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_is_shortened_and_keeps_dirty() {
        assert_eq!(
            short_commit_of("de1badf0123456789abcdef0123456789abcdef0"),
            "de1badf"
        );
        assert_eq!(
            short_commit_of("de1badf0123456789abcdef0123456789abcdef0-dirty"),
            "de1badf-dirty"
        );
        assert_eq!(short_commit_of(""), "unknown");
        assert_eq!(short_commit_of("-dirty"), "unknown");
    }

    #[test]
    fn line_has_the_spec_shape() {
        let line = line();
        let expected_tail = if is_static() {
            ", static, resolver builtin)"
        } else {
            ", dynamic, resolver system)"
        };
        assert!(line.starts_with("cc-relay 0.1.0 (commit "), "{line}");
        assert!(line.ends_with(expected_tail), "{line}");
    }

    #[test]
    fn verbose_starts_with_the_line_and_names_every_provider() {
        let text = verbose();
        assert!(text.starts_with(&(line() + "\n")), "{text}");
        for t in ProviderType::ALL {
            assert!(text.contains(t.as_str()), "{text}");
        }
        assert!(text.contains("\npanic:     unwind"), "{text}");
    }
}
