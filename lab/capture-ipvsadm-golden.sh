#!/bin/bash
# Captures golden ipvsadm 1.31 outputs from the lab guest (real kernel IPVS)
# into tests/golden/ipvsadm/*.jsonl. Needs ../shared/lab built (build-image.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lab=${LAB:-$here/../shared/lab}
out=$("$lab/run-vm.sh" -s "$here" -c "python3 /host/lab/golden-ipvsadm.py /host/tests/golden/ipvsadm /labio" 2>&1 | tee /dev/stderr | grep -o 'run dir [^ ]*' | head -1 | cut -d' ' -f3)
cp "$out"/listing.jsonl "$out"/errors.jsonl "$out"/face.jsonl "$here/tests/golden/ipvsadm/"
echo "golden files updated from $out"
