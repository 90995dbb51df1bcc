#!/bin/bash
# Installs what rlvs's demo and tests need on Debian 12 (as root), only when
# something is missing: iproute2 and nftables for namespaces and the ingress
# guard, curl and python3 for the real HTTP clients and servers, ethtool to
# check offloads, util-linux/procps/coreutils for setpriv, sysctl, sha256sum,
# keepalived (Debian's 2.2.7) for the VRRP interoperation tests, ping,
# clang and the kernel/libbpf headers to build the XDP program; for the
# packages (scripts/package.sh and its test): binutils to split debug
# symbols, rpm and cpio to read the .rpm, man-db to render the pages,
# and cargo-generate-rpm from crates.io; prometheus for promtool, which
# checks the metrics; bird2 for the scale-out lab's BGP router and directors
# (only inside lab namespaces: its own service is stopped and disabled).
set -euo pipefail
pkgs=(iproute2 nftables curl python3 ethtool util-linux procps coreutils keepalived iputils-ping
  clang libbpf-dev linux-libc-dev binutils rpm cpio man-db prometheus bird2)
# `deps.sh bench` adds what the benchmark harness compares against.
if [ "${1:-}" = bench ]; then pkgs+=(wrk nginx haproxy); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # The package starts BIRD on the host; rlvs's labs run their own in
  # namespaces and nothing here may touch the host's routes.
  if [[ " ${missing[*]} " == *" bird2 "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now bird.service >/dev/null 2>&1 || true
  fi
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust stable (rustup)" >&2; exit 1; }
if ! command -v cargo-generate-rpm >/dev/null; then
  echo "installing cargo-generate-rpm"
  # A debug build: it only writes a few archives, and builds in a third of the time.
  cargo install --locked --quiet --debug cargo-generate-rpm
fi
