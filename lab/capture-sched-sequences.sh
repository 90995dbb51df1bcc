#!/bin/bash
# Records which real server the real kernel's schedulers pick, scenario by
# scenario, into tests/golden/sched/kernel-picks.txt (see scenarios.txt).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lab=${LAB:-$here/../shared/lab}
out=$("$lab/run-vm.sh" -s "$here" -c "python3 /host/lab/sched-sequences.py /host/tests/golden/sched/scenarios.txt /labio" 2>&1 | tee /dev/stderr | grep -o 'run dir [^ ]*' | head -1 | cut -d' ' -f3)
cp "$out/kernel-picks.txt" "$here/tests/golden/sched/"
echo "kernel picks updated from $out"
