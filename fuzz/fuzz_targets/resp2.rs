//! Fuzz target: the RESP2 reply decoder must never panic, must give the same replies
//! however the input is split into reads, must respect tight limits, and every decoded
//! reply must survive encode + decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::resp2::fuzz_entry(data);
});
