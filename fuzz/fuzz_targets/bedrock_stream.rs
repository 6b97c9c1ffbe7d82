#![no_main]
//! Fuzz target `bedrock_stream`: see `cc_relay::provider::bedrock_stream::fuzz_entry` for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::provider::bedrock_stream::fuzz_entry(data);
});
