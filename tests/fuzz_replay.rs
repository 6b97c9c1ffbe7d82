//! Replays every fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry point the
//! fuzz target calls, so `cargo test` catches regressions without a fuzzer.

use std::path::Path;

type FuzzEntry = fn(&[u8]);

/// (corpus directory name, the entry point its fuzz target calls)
const TARGETS: &[(&str, FuzzEntry)] = &[
    ("chunked", cc_relay::codec::chunked::fuzz_entry),
    ("sse", cc_relay::codec::sse::fuzz_entry),
    ("http1", cc_relay::codec::http1::fuzz_entry),
    ("json", cc_relay::codec::json::fuzz_entry),
    ("thinking", cc_relay::relay::thinking::fuzz_entry),
];

#[test]
fn every_corpus_file_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0usize;
    for (name, entry) in TARGETS {
        let dir = root.join(name);
        let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for file in files {
            let path = file.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            entry(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len());
}
