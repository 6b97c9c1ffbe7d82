//! Fuzz target: the SSE parser must dispatch the same events whatever the read splits
//! (also under a tiny size limit), and every parsed event must survive write + re-parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::sse::fuzz_entry(data);
});
