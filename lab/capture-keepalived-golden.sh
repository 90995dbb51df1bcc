#!/bin/bash
# Captures real keepalived 2.2.7's view of the seed's keepalived.conf files
# (its -d configuration dump and its -t messages) from the lab guest into
# tests/golden/keepalived/. Needs ../shared/lab built (build-image.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lab=${LAB:-$here/../shared/lab}
out=$("$lab/run-vm.sh" -s "$here" -c "bash /host/lab/keepalived-dump.sh /labio" 2>&1 | tee /dev/stderr | grep -o 'run dir [^ ]*' | head -1 | cut -d' ' -f3)
for n in c2 c5; do
  # Drop the timestamp keepalived puts before every line.
  cut -c26- "$out/keepalived-$n.dump" > "$here/tests/golden/keepalived/seed-$n.keepalived-dump.txt"
  cp "$out/keepalived-$n.test" "$here/tests/golden/keepalived/seed-$n.keepalived-t.txt"
done
echo "golden files updated from $out"
