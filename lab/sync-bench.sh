#!/bin/bash
# Runs in the lab guest: the sync capacity benchmark (bench/src/sync.rs)
# with kernel IPVS on both directors (the reference), then with rlvs, at
# the same rates, in the same boot. Under TCG only the ratio of what the
# backup holds means anything, not the rates themselves.
# Usage: BENCH=/host/rlvs-bench RLVS=/host/rlvs bash sync-bench.sh [RATES]
set -u
bench=${BENCH:-/host/rlvs-bench}; rlvs=${RLVS:-/host/rlvs}
rates=${1:-500,1000,2000,4000}
modprobe ip_vs
cd "$(mktemp -d)"
echo "== kernel IPVS to kernel IPVS"
"$bench" sync --kernel --runs 3 --seconds 2 --rates "$rates"
echo "== rlvs to rlvs (${ENGINE:-afxdp})"
"$bench" sync --rlvs "$rlvs" --engine "${ENGINE:-afxdp}" --runs 3 --seconds 2 --rates "$rates"
