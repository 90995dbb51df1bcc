#!/bin/bash
# Tests that need a kernel with ip_vs, run in ../shared/lab's qemu guest
# (Debian 6.1, ip_vs, real ipvsadm 1.31 and keepalived 2.2.7). Not part of
# CI: the guest runs under TCG. Builds the test binaries here, stages them
# with the scripts in target/lab-share, shared into the guest at /host,
# and runs them there as root.
#
#   bash scripts/lab-test.sh            # every lab test
#
# Needs the lab image: (cd ../shared/lab && ./build-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${LAB:-$(cd .. && pwd)/shared/lab}
[ -x "$lab/run-vm.sh" ] || { echo "no lab at $lab (set LAB=)" >&2; exit 2; }
cargo build -q --bin rlvs
bins=$(cargo test -p rlvs-ipvs --test kernel --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])')
[ -n "$bins" ] || { echo "no test binaries built" >&2; exit 1; }
# The guest sees one staged directory (at /host), so builds here can go on
# while it runs.
share=target/lab-share
rm -rf "$share"
mkdir -p "$share/golden"
cp target/debug/rlvs lab/kernel-adm.sh lab/kernel-defence.sh lab/seed-kernel.sh lab/sync-interop.sh "$share/"
cp tests/golden/ipvsadm/*.cases lab/daemon.cases "$share/golden/"
guest=$(mktemp)
trap 'rm -f "$guest"' EXIT
{
    # Every part runs whatever an earlier one did; the exit status says
    # whether all passed.
    echo 'rc=0'
    echo 'modprobe ip_vs'
    for b in $bins; do
        cp "$b" "$share/"
        echo "echo '== $(basename "$b")'"
        echo "/host/$(basename "$b") --test-threads=1 || rc=1"
    done
    for s in kernel-adm kernel-defence sync-interop seed-kernel; do
        echo "echo '== lab/$s.sh'"
        echo "RLVS=/host/rlvs bash /host/$s.sh || rc=1"
    done
    echo 'echo "lab tests: $([ $rc = 0 ] && echo passed || echo FAILED)"'
    echo 'exit $rc'
} > "$guest"
"$lab/run-vm.sh" -s "$share" -t 1800 "$guest"
