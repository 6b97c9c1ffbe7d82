#![no_main]
//! Arbitrary response-header bytes through the rate-limit header reader and RFC 3339 parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::route::ratelimit::fuzz_entry(data);
});
