#!/bin/bash
# Runs in the lab guest: real keepalived 2.2.7 reads each seed keepalived.conf
# in a namespace whose interface has the file's name (bond0 for c2, eth0 for
# c5), dumps its configuration (-d) and the -t verdict, and stops. Output in
# $1 (default /labio): keepalived-<name>.dump, keepalived-<name>.test.
set -u
out=${1:-/labio}
modprobe ip_vs 2>/dev/null
for pair in c2:bond0 c5:eth0; do
  name=${pair%%:*}; ifname=${pair##*:}
  conf=/host/tests/golden/keepalived/seed-$name.conf
  ns=kd-$name
  ip netns add $ns
  ip -n $ns link add $ifname type veth peer name peer0
  ip -n $ns link set lo up; ip -n $ns link set $ifname up; ip -n $ns link set peer0 up
  ip -n $ns addr add 10.1.1.243/24 dev $ifname
  ip netns exec $ns keepalived -t -f $conf > $out/keepalived-$name.test 2>&1
  echo "exit $?" >> $out/keepalived-$name.test
  # One subsystem at a time, so the two processes' dumps do not interleave.
  for sub in P C; do
    ip netns exec $ns timeout 4 keepalived -$sub -n -l -D -d -f $conf \
      -p /run/k-$name.pid -r /run/kv-$name.pid -c /run/kc-$name.pid >> $out/keepalived-$name.dump 2>&1
  done
  ip netns del $ns
done
echo done
