#![no_main]
//! Fuzz target `eventstream`: see `cc_relay::codec::eventstream::fuzz_entry` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::eventstream::fuzz_entry(data);
});
