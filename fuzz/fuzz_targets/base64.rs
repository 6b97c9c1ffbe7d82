#![no_main]
//! Fuzz target `base64`: see `cc_relay::codec::base64::fuzz_entry` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::base64::fuzz_entry(data);
});
