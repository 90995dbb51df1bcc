#!/bin/bash
# Every test: unit tests of the sans-IO cores, golden ipvsadm transcripts,
# kernel scheduling sequences, and the namespace end-to-end tests (root).
# Checks formatting and lints, builds once, then runs the whole workspace's tests and closes with one
# line counting them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --all-targets --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i-1)} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i-1)} END {print s + 0}' "$log")
echo "tests: $passed passed, $failed failed"
exit "$status"
