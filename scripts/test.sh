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
# Everything once on the AF_XDP engine (forced: a silent fall-back to
# AF_PACKET would fail the run), then every namespace test that moves
# packets again on AF_PACKET.
RLVS_ENGINE=afxdp cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
RLVS_ENGINE=afpacket cargo test -p rlvs --test '*' --no-fail-fast 2>&1 | tee -a "$log" || status=$?
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i-1)} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i-1)} END {print s + 0}' "$log")
echo "tests: $passed passed, $failed failed"
exit "$status"
