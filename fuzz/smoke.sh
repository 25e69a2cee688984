#!/usr/bin/env bash
# A short run of every fuzz target (what CI does); installs cargo-fuzz and the nightly it needs.
# Each run starts from the checked-in seed corpus (fuzz/corpus/<target>, read only) plus the kept
# crash inputs (fuzz/regressions/<target>); what it discovers goes to a scratch directory.
#   FUZZ_SECONDS=600 bash fuzz/smoke.sh      # longer
#   cargo +nightly-2026-05-20 fuzz run -O arena_ops -- -max_total_time=3600   # a real hunt
# `-O` builds without debug assertions, so resets to stale or foreign checkpoints are exercised
# (refused) instead of being debug panics; overflow checks and poisoning stay on (fuzz/Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
NIGHTLY=${FUZZ_NIGHTLY:-nightly-2026-05-20}
SECONDS_EACH=${FUZZ_SECONDS:-60}
rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
scratch=$(mktemp -d)
for target in arena_ops global_alloc abi; do
    mkdir -p "$scratch/$target" "fuzz/regressions/$target"
    log="$scratch/$target.log"
    echo "fuzzing $target for ${SECONDS_EACH}s"
    if ! cargo +"$NIGHTLY" fuzz run -O "$target" "$scratch/$target" "fuzz/corpus/$target" \
        "fuzz/regressions/$target" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 \
        -artifact_prefix="$scratch/" >"$log" 2>&1; then
        # The panic message, the failing step and the input (base64, so a CI log is enough to
        # keep it as a regression); not the backtrace frames.
        grep -vE '^\s+(at |[0-9]+: )' "$log" | tail -n 40
        for crash in "$scratch"/crash-* "$scratch"/oom-* "$scratch"/timeout-*; do
            [ -f "$crash" ] && { echo "input $(basename "$crash"), base64:"; base64 -w0 "$crash"; echo; }
        done
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/$target: /"
done
rm -rf "$scratch"
