//! `cc-relay version`: `cc-relay 1.2.3 (commit abc1234, dist, static, resolver builtin)`.
//! The commit comes from `CC_RELAY_GIT_COMMIT` and the build profile from
//! `CC_RELAY_BUILD_PROFILE` at compile time (set by the release build); without them:
//! "unknown" and debug/release. Static linking is read from the target's `crt-static`.

pub const HELP: &str = "\
Usage: cc-relay version   (or cc-relay --version)

Prints the version, the commit it was built from, the build profile, whether the
binary is statically linked, and which DNS resolver `resolver: auto` uses.

Example:
  $ cc-relay version
  cc-relay 0.1.0 (commit abc1234, release, dynamic, resolver system)
";

pub fn is_static() -> bool {
    cfg!(target_feature = "crt-static")
}

/// What `server.resolver: auto` means in this build (SPEC §1.2).
pub fn auto_resolver() -> &'static str {
    if is_static() {
        "builtin"
    } else {
        "system"
    }
}

pub fn line() -> String {
    let commit = option_env!("CC_RELAY_GIT_COMMIT").unwrap_or("unknown");
    let commit: String = commit.chars().take(7).collect();
    let profile = option_env!("CC_RELAY_BUILD_PROFILE").unwrap_or(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    });
    let linking = if is_static() { "static" } else { "dynamic" };
    format!(
        "cc-relay {} (commit {commit}, {profile}, {linking}, resolver {})",
        env!("CARGO_PKG_VERSION"),
        auto_resolver()
    )
}

pub fn run(args: &[String]) -> i32 {
    match super::parse_flags("version", HELP, args, &[]) {
        Ok(_) => {
            println!("{}", line());
            super::EXIT_OK
        }
        Err(code) => code,
    }
}
