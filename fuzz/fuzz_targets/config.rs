//! A whole configuration load (parse, env expansion, build, semantic checks, show) on
//! arbitrary text; the first byte picks YAML (even) or TOML (odd).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::config::load::fuzz_entry(data);
});
