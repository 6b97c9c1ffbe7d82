//! Fuzz target: the log redactor must never panic, never let a configured secret
//! through, and change nothing more when run over its own output.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::obs::redact::fuzz_entry(data);
});
