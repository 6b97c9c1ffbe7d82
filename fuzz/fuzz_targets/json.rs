//! Fuzz target: the top-level field scanner agrees with serde_json on every object it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::json::fuzz_entry(data);
});
