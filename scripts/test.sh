#!/bin/bash
# Every test: unit tests of the sans-IO cores, golden ipvsadm transcripts,
# kernel scheduling sequences, and the namespace end-to-end tests (root).
# Builds once, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --workspace --all-targets --quiet
cargo test --workspace --quiet 2>&1
