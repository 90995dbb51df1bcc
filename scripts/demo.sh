#!/bin/bash
# The seed tutorial's section 2 in network namespaces: a DR director built
# with the seed's ipvsadm commands (answered by rlvs), two web servers, and
# curls from the client alternating rs2, rs1, ... Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --quiet
exec target/debug/rlvs lab dr
