#!/usr/bin/env bash
# A short run of every fuzz target (what CI does); installs cargo-fuzz and the nightly it needs.
# For a real hunt: cargo +nightly-2026-05-20 fuzz run arena_model -- -max_total_time=3600
set -euo pipefail
cd "$(dirname "$0")/.."
NIGHTLY=${FUZZ_NIGHTLY:-nightly-2026-05-20}
SECONDS_EACH=${FUZZ_SECONDS:-30}
rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
log=$(mktemp)
for target in arena_model guest_alloc; do
    echo "fuzzing $target for ${SECONDS_EACH}s"
    if ! cargo +"$NIGHTLY" fuzz run "$target" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 >"$log" 2>&1; then
        # The panic message, the failing step and the reproducer's path; not the backtrace frames.
        grep -vE '^\s+(at |[0-9]+: )' "$log" | tail -n 40
        exit 1
    fi
    tail -n 2 "$log"
done
