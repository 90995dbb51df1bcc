#!/bin/bash
# Runs in the lab guest: when do a connection's counters show in
# `ipvsadm -Ln --stats`? Kernel IPVS (real ipvsadm 1.31) and rlvs's own
# engine (AF_PACKET, rlvs's ipvsadm face) run the same DR service; five
# curls go through, then the listing is taken at several delays after the
# last one. The kernel folds its counters every 2 s (its estimator timer),
# so before 2 s a listing may or may not show them; from 2.1 s on, both
# must show all of them, and agree. A UDP service alongside takes five
# flows of four 100-byte datagrams each: its packets and bytes do not
# depend on TCP's timing (delayed and merged ACKs), so there the two must
# agree on every figure, not only on connections.
# Usage: ../shared/lab/run-vm.sh -s . -t 300 lab/counter-delays.sh
set -u
rlvs=${RLVS:-/host/target/debug/rlvs}
out=${1:-/labio}
VIP=10.0.0.100
DELAYS="0 0.5 1.0 1.5 2.1 2.5 3.0 4.5"
modprobe ip_vs
ip link add cdbr type bridge; ip link set cdbr up
declare -A IP=([c]=10.1.1.10 [d]=10.1.1.243 [r]=10.1.1.244)
for n in c d r; do
    ip netns add cd-$n
    ip link add cd-$n type veth peer name tmp-$n
    ip link set tmp-$n netns cd-$n
    ip -n cd-$n link set tmp-$n name eth0
    ip link set cd-$n master cdbr up
    ip -n cd-$n link set lo up; ip -n cd-$n link set eth0 up
    ip -n cd-$n addr add ${IP[$n]}/24 dev eth0
done
ip -n cd-d addr add $VIP/32 dev eth0
ip -n cd-c route add $VIP via 10.1.1.243
ip -n cd-r addr add $VIP/32 dev lo
ip netns exec cd-r sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
mkdir -p /tmp/cdwww; echo rs1 > /tmp/cdwww/index.html
ip netns exec cd-r python3 -m http.server 80 --directory /tmp/cdwww > /dev/null 2>&1 &
sleep 1

run() {  # run NAME IPVSADM
    local name=$1 adm=$2 t0 d
    ip netns exec cd-d $adm -A -t $VIP:80 -s rr
    ip netns exec cd-d $adm -a -t $VIP:80 -r 10.1.1.244:80 -g
    ip netns exec cd-d $adm -A -u $VIP:5353 -s rr
    ip netns exec cd-d $adm -a -u $VIP:5353 -r 10.1.1.244:5353 -g
    # What the client sends to the TCP service, counted where it leaves:
    # TCP's own timing (a delayed ACK merged with another) may make it
    # differ between runs, so each engine is held to its own run's count.
    ip netns exec cd-c nft -f - <<EOF
table ip cdcount
delete table ip cdcount
table ip cdcount { chain out { type filter hook output priority 0; ip daddr $VIP tcp dport 80 counter; }; }
EOF
    for i in 1 2 3 4 5; do ip netns exec cd-c curl -s -m 2 -o /dev/null http://$VIP/; done
    ip netns exec cd-c python3 -c '
import socket
for flow in range(5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(4):
        s.sendto(b"x" * 100, ("'$VIP'", 5353))
    s.close()'
    t0=$EPOCHREALTIME
    for d in $DELAYS; do
        while awk -v a="$EPOCHREALTIME" -v b="$t0" -v d="$d" 'BEGIN {exit !(a - b < d)}'; do sleep 0.02; done
        local listing
        listing=$(ip netns exec cd-d $adm -Ln --stats)
        echo "$name +$d $(echo "$listing" | awk '/^TCP/ {print $3, $4, $5}')"
        echo "$name-udp +$d $(echo "$listing" | awk '/^UDP/ {print $3, $4, $6}')"
    done
    echo "$name-sent +$d $(ip netns exec cd-c nft list chain ip cdcount out | awk '/counter/ {for (i = 1; i < NF; i++) if ($i == "packets") print 5, $(i + 1), 0}')"
    ip netns exec cd-d $adm -C
}
run kernel /usr/sbin/ipvsadm > $out/counter-delays.txt
# rlvs's own engine in the same namespace: the kernel's table there is
# empty now, so only rlvs forwards.
ip netns exec cd-d env RLVS_ENGINE=afpacket $rlvs daemon > $out/rlvs-daemon.log 2>&1 &
sleep 2
# rlvs's ipvsadm face answers by its argv[0].
cp -f $rlvs /tmp/cd-bin; ln -sf /tmp/cd-bin /tmp/ipvsadm
run rlvs /tmp/ipvsadm >> $out/counter-delays.txt
kill %2 2>/dev/null
cat $out/counter-delays.txt
# The verdict: from 2.1 s on, each listing shows everything (what it shows
# at the last delay), and rlvs's connection count equals the kernel's;
# before, each shows a folded snapshot (never more than the final).
awk '{ split($2, d, "+"); key = $1; t = d[2] + 0; c[key, t] = $3; p[key, t] = $4; b[key, t] = $5; last[key] = t; ts[t] = 1 }
     END {
       ok = 1
       for (t in ts) for (k in last) {
         if (k ~ /-sent$/) continue
         if (c[k, t] > c[k, last[k]] || p[k, t] > p[k, last[k]]) { ok = 0; print "more than final:", k, t }
         if (t >= 2.1 && (c[k, t] != c[k, last[k]] || p[k, t] != p[k, last[k]])) { ok = 0; print "not folded at", k, t }
         if (t >= 2.1 && c["rlvs", t] != c["kernel", t]) { ok = 0; print "connections differ at", t }
         if (t >= 2.1 && (p["rlvs", t] != p["rlvs-sent", last["rlvs-sent"]] || p["kernel", t] != p["kernel-sent", last["kernel-sent"]])) { ok = 0; print "TCP packets differ from what the client sent at", t }
         if (t >= 2.1 && (c["rlvs-udp", t] != c["kernel-udp", t] || p["rlvs-udp", t] != p["kernel-udp", t] || b["rlvs-udp", t] != b["kernel-udp", t])) { ok = 0; print "UDP figures differ at", t }
       }
       print (ok ? "counter semantics: PASS" : "counter semantics: FAIL")
     }' $out/counter-delays.txt | tee -a $out/counter-delays.txt
for n in c d r; do ip netns del cd-$n; done
ip link del cdbr
