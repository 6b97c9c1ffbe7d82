#![no_main]
//! Fuzz target `sigv4`: see `cc_relay::auth::sigv4::fuzz_entry` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::auth::sigv4::fuzz_entry(data);
});
