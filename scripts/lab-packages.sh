#!/bin/bash
# The packages in the lab guest under full systemd (not CI: the guest runs
# under TCG). Builds the .deb (scripts/package.sh, release), stages it with
# the seed and lab/systemd.sh, boots the guest with systemd and runs the
# script there: install, the seed's section 3 driven by systemctl, reload,
# the watchdog, stop, purge. See lab/systemd.sh.
#
#   bash scripts/lab-packages.sh
#
# Needs the lab image: (cd ../shared/lab && ./build-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${LAB:-$(cd .. && pwd)/shared/lab}
[ -x "$lab/run-vm.sh" ] || { echo "no lab at $lab (set LAB=)" >&2; exit 2; }
bash scripts/package.sh
share=target/lab-share-packages
rm -rf "$share"
mkdir -p "$share"
cp target/packages/rlvs_*_amd64.deb lab/systemd.sh "$share/"
cp target/release/rlvs "$share/rlvs"
cp ../shared/seed/000_0fa1d4b0ae463a5d.txt "$share/seed.txt"
"$lab/run-vm.sh" --systemd -s "$share" -t 1500 "$share/systemd.sh"
