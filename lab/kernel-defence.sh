#!/bin/bash
# Runs in the lab guest (scripts/lab-test.sh): with the kernel backend,
# rlvs's defence options are the kernel's sysctls (net.ipv4.vs.*, per
# network namespace), at start and through `rlvs ctl defence`; a bound,
# which the kernel does not have, is refused. RLVS=path of the rlvs binary.
set -u
rlvs=${RLVS:?}
ns=kdef$$
ip netns add "$ns"
pid=
trap '[ -n "$pid" ] && kill $pid; sleep 0.5; ip netns del "$ns"' EXIT
ip -n "$ns" link set lo up
failures=0
want() {
    local name=$1 value=$2 got
    got=$(ip netns exec "$ns" cat "/proc/sys/net/ipv4/vs/$name")
    if [ "$got" = "$value" ]; then
        echo "ok: $name = $value"
    else
        echo "FAILED: $name is $got, not $value"
        failures=$((failures + 1))
    fi
}
ip netns exec "$ns" "$rlvs" daemon --engine kernel --log warn \
    --drop-entry 1 --secure-tcp 3 --amemthresh 2048 > /tmp/kdef.log 2>&1 &
pid=$!
for _ in $(seq 50); do
    ip netns exec "$ns" "$rlvs" adm -Ln > /dev/null 2>&1 && break
    sleep 0.2
done
want drop_entry 1
want secure_tcp 3
want amemthresh 2048
want drop_packet 0
ip netns exec "$ns" "$rlvs" ctl defence --drop-packet 3 --am-droprate 20 || failures=$((failures + 1))
want drop_packet 3
want am_droprate 20
if ip netns exec "$ns" "$rlvs" ctl defence --conn-limit 5 2> /tmp/kdef.err; then
    echo "FAILED: a bound was accepted by the kernel backend"
    failures=$((failures + 1))
else
    echo "ok: a bound is refused: $(cat /tmp/kdef.err)"
fi
ip netns exec "$ns" "$rlvs" ctl defence
echo "kernel-defence: $([ $failures = 0 ] && echo passed || echo "$failures FAILED")"
[ $failures = 0 ]
