#!/bin/bash
# The seed tutorial's section 3 in network namespaces: client c1, directors
# c2 (master) and c5 (backup) running rlvs with the seed's two keepalived.conf
# files verbatim, web servers c3 and c4. Replays 3.3.1-3.3.3 (alternating
# curls, master stopped, web1 stopped and started) and prints the measured
# failover, removal and re-add times. `rlvs lab dr` is section 2 alone.
# Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --quiet
exec target/debug/rlvs lab seed
