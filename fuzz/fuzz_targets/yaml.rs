//! Our YAML subset parser on arbitrary bytes: never panics, never hangs, never
//! overflows the stack (nesting is capped).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::config::yaml::fuzz_entry(data);
});
