#!/bin/bash
# Installs what rlvs's demo and tests need on Debian 12 (as root), only when
# something is missing: iproute2 and nftables for namespaces and the ingress
# guard, curl and python3 for the real HTTP clients and servers, ethtool to
# check offloads, util-linux/procps/coreutils for setpriv, sysctl, sha256sum,
# keepalived (Debian's 2.2.7) for the VRRP interoperation tests, ping,
# clang and the kernel/libbpf headers to build the XDP program.
set -euo pipefail
pkgs=(iproute2 nftables curl python3 ethtool util-linux procps coreutils keepalived iputils-ping
  clang libbpf-dev linux-libc-dev)
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
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust stable (rustup)" >&2; exit 1; }
