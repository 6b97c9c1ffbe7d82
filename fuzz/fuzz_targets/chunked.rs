//! Fuzz target: the chunked decoder must give one verdict whatever the read splits, and
//! re-encoding what it decoded must decode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::chunked::fuzz_entry(data);
});
