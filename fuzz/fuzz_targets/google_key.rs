//! Arbitrary bytes as a PEM private key, a Google credential file, a token answer and a
//! Vertex error body: nothing may panic, and error mapping must always yield JSON.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cc_relay::auth::google::fuzz_entry(data);
});
