//! Fuzz target: the thinking-history rewrite never panics, keeps every other field, leaves
//! no rejected block behind, is idempotent, and turns a valid request into a valid one;
//! the signature taps survive any event payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::relay::thinking::fuzz_entry(data);
});
