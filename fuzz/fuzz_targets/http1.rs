//! Fuzz target: HTTP/1.1 request and response heads: parsing and framing decisions never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::http1::fuzz_entry(data);
});
