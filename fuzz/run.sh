#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) and reports executions and crashes.
# New inputs go to a scratch corpus under fuzz/target/, never into the committed seeds
# (fuzz/corpus/<target>/), which `cargo test` replays.
#
#   fuzz/run.sh [seconds] [target...]
set -uo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
export RUSTC_BOOTSTRAP=1
printf '%-24s %12s %8s\n' target executions crashes
for t in "${targets[@]}"; do
    scratch="target/scratch-corpus/$t"
    mkdir -p "$scratch" "artifacts/$t"
    before=$(ls "artifacts/$t" | wc -l)
    log="target/fuzz-$t.log"
    cargo fuzz run "$t" "$scratch" "corpus/$t" -- -max_total_time="$seconds" -timeout=10 >"$log" 2>&1
    # libFuzzer's closing "Done N runs" line; status lines ("#N\tNEW ...") when it died
    # early. (Not any "#N" anywhere: the recommended dictionary it prints may contain one.)
    execs=$(sed -nE 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    after=$(ls "artifacts/$t" | wc -l)
    printf '%-24s %12s %8s\n' "$t" "${execs:-?}" "$((after - before))"
done
