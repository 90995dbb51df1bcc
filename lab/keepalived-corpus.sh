#!/bin/bash
# Runs in the lab guest: real keepalived 2.2.7's verdict (`-t`, its
# messages and exit code) on every file of tests/golden/keepalived/corpus,
# in a namespace with the interfaces the files name (the layout
# crates/rlvs/tests/keepalived_corpus.rs builds for rlvs):
#   eth0 10.1.1.243/24 2001:db8::2/64, eth1 192.168.10.2/24, bond0 172.16.0.2/24,
#   nomc0 10.9.9.2/24 (multicast off)
# and configuration id node1 (-i). Output: $1/corpus/NAME.keepalived-t.txt
# (messages, then "exit N"). Usage:
#   ../shared/lab/run-vm.sh -s . -t 600 lab/keepalived-corpus.sh
set -u
out=${1:-/labio}/corpus
src=/host/tests/golden/keepalived/corpus
mkdir -p "$out"
modprobe ip_vs 2>/dev/null
ns=kcorpus
ip netns add $ns
for pair in eth0:p0 eth1:p1 bond0:p2 nomc0:p3; do
    ip -n $ns link add ${pair%%:*} type veth peer name ${pair##*:}
done
ip -n $ns link set nomc0 multicast off
for i in lo eth0 p0 eth1 p1 bond0 p2 nomc0 p3; do ip -n $ns link set $i up; done
ip -n $ns addr add 10.1.1.243/24 dev eth0
ip -n $ns addr add 2001:db8::2/64 dev eth0 nodad
ip -n $ns addr add 192.168.10.2/24 dev eth1
ip -n $ns addr add 172.16.0.2/24 dev bond0
ip -n $ns addr add 10.9.9.2/24 dev nomc0
cd $src
for f in *.conf; do
    name=${f%.conf}
    ip netns exec $ns timeout 20 keepalived -t -i node1 -f "$src/$f" > "$out/$name.keepalived-t.txt" 2>&1
    echo "exit $?" >> "$out/$name.keepalived-t.txt"
done
ip netns del $ns
echo corpus done
