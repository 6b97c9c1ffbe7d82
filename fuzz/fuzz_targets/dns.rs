//! Fuzz target: the DNS response parser must never panic, CNAME walks must terminate and
//! return only addresses of the asked family, and every parsed name that a query can
//! carry must survive encode + parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cc_relay::codec::dns::fuzz_entry(data);
});
