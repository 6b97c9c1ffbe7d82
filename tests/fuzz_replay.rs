//! Replays every fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry point the
//! fuzz target calls, so `cargo test` catches regressions without a fuzzer.

use std::path::Path;

type FuzzEntry = fn(&[u8]);

/// (corpus directory name, the entry point its fuzz target calls)
const TARGETS: &[(&str, FuzzEntry)] = &[
    ("base64", cc_relay::codec::base64::fuzz_entry),
    (
        "bedrock_stream",
        cc_relay::provider::bedrock_stream::fuzz_entry,
    ),
    ("chunked", cc_relay::codec::chunked::fuzz_entry),
    ("config", cc_relay::config::load::fuzz_entry),
    ("dns", cc_relay::codec::dns::fuzz_entry),
    ("eventstream", cc_relay::codec::eventstream::fuzz_entry),
    ("google_key", cc_relay::auth::google::fuzz_entry),
    ("http1", cc_relay::codec::http1::fuzz_entry),
    ("json", cc_relay::codec::json::fuzz_entry),
    ("redact", cc_relay::obs::redact::fuzz_entry),
    ("resp2", cc_relay::codec::resp2::fuzz_entry),
    (
        "route_ratelimit_headers",
        cc_relay::route::ratelimit::fuzz_entry,
    ),
    ("sigv4", cc_relay::auth::sigv4::fuzz_entry),
    ("sse", cc_relay::codec::sse::fuzz_entry),
    ("thinking", cc_relay::relay::thinking::fuzz_entry),
    ("yaml", cc_relay::config::yaml::fuzz_entry),
];

#[test]
fn every_corpus_file_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0usize;
    for (name, entry) in TARGETS {
        let dir = root.join(name);
        let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut count = 0;
        for file in files {
            let path = file.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            entry(&data);
            count += 1;
        }
        assert!(count > 0, "corpus {name} is empty");
        replayed += count;
    }
    println!(
        "replayed {replayed} corpus files of {} targets",
        TARGETS.len()
    );
}
