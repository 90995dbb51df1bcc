#!/bin/bash
# Tests that need a kernel with ip_vs, run in ../shared/lab's qemu guest
# (Debian 6.1, ip_vs, real ipvsadm 1.31 and keepalived 2.2.7). Not part of
# CI: the guest runs under TCG. Builds the test binaries here, shares the
# target directory into the guest at /host, runs them there as root.
#
#   bash scripts/lab-test.sh            # every lab test
#
# Needs the lab image: (cd ../shared/lab && ./build-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${LAB:-$(cd .. && pwd)/shared/lab}
[ -x "$lab/run-vm.sh" ] || { echo "no lab at $lab (set LAB=)" >&2; exit 2; }
cargo build -q --bin rlvs
# The guest sees only the target directory (at /host).
cp lab/kernel-adm.sh target/lab-kernel-adm.sh
cp lab/seed-kernel.sh target/lab-seed-kernel.sh
mkdir -p target/lab-golden
cp tests/golden/ipvsadm/*.cases target/lab-golden/
bins=$(cargo test -p rlvs-ipvs --test kernel --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])')
[ -n "$bins" ] || { echo "no test binaries built" >&2; exit 1; }
guest=$(mktemp)
trap 'rm -f "$guest"' EXIT
{
    echo 'set -e'
    echo 'modprobe ip_vs'
    for b in $bins; do
        rel=${b#"$PWD/target/"}
        echo "echo '== $rel'"
        echo "/host/$rel --test-threads=1"
    done
    echo "echo '== lab/kernel-adm.sh'"
    echo "RLVS=/host/debug/rlvs bash /host/lab-kernel-adm.sh"
    echo "echo '== lab/seed-kernel.sh'"
    echo "RLVS=/host/debug/rlvs bash /host/lab-seed-kernel.sh"
} > "$guest"
"$lab/run-vm.sh" -s target -t 1800 "$guest"
