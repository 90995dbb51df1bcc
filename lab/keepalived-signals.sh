#!/bin/bash
# Runs in the lab guest: real keepalived 2.2.7 runs the seed's pair (c2 with
# seed-c2.conf on bond0, c5 with seed-c5.conf on eth0) in front of two web
# servers (c3 .244, c4 .245), and is asked for its dumps by signal:
# DATA (keepalived.data, keepalived_check.data), STATS (keepalived.stats)
# and JSON (keepalived.json), once with both servers up and once after web1
# stopped. Each keepalived has its own TMPDIR, where 2.2.7 writes them.
# Output in $1 (default /labio): signals-<ns>-<phase>/ with the files, and
# signals.log with --signum's answers and the guest's versions.
# Usage: ../shared/lab/run-vm.sh -s . -t 120 lab/keepalived-signals.sh
set -u
out=${1:-/labio}
golden=/host/tests/golden/keepalived
L=/tmp/ksig
mkdir -p $L
modprobe ip_vs
log=$out/signals.log
{
    keepalived -v 2>&1 | head -3
    for f in STOP RELOAD DATA STATS STATS_CLEAR JSON TDATA; do
        echo "--signum=$f: $(keepalived --signum=$f 2>&1) exit $?"
    done
} > "$log"

ip link add ksbr type bridge
ip link set ksbr up
declare -A IP=([c1]=10.1.1.10 [c2]=10.1.1.243 [c3]=10.1.1.244 [c4]=10.1.1.245 [c5]=10.1.1.246)
declare -A IF=([c1]=eth0 [c2]=bond0 [c3]=eth0 [c4]=eth0 [c5]=eth0)
for n in c1 c2 c3 c4 c5; do
    ip netns add $n
    ip link add ks-$n type veth peer name tmp-$n
    ip link set tmp-$n netns $n
    ip -n $n link set tmp-$n name ${IF[$n]}
    ip link set ks-$n master ksbr up
    ip -n $n link set lo up
    ip -n $n link set ${IF[$n]} up
    ip -n $n addr add ${IP[$n]}/24 dev ${IF[$n]}
done
for n in c3 c4; do
    ip -n $n addr add 10.0.0.100/32 dev lo
    mkdir -p $L/www-$n
    echo "rs${n#c}" > $L/www-$n/index.html
    ip netns exec $n python3 -m http.server 80 --bind 0.0.0.0 --directory $L/www-$n \
        > /dev/null 2>&1 &
    echo $! > $L/web-$n.pid
done
for n in c2 c5; do
    mkdir -p $L/tmp-$n
    ip netns exec $n env TMPDIR=$L/tmp-$n keepalived -G -n -l -D -f $golden/seed-$n.conf \
        -p $L/$n.pid -r $L/$n-vrrp.pid -c $L/$n-check.pid > $L/$n.log 2>&1 &
done
sleep 8

dump() {  # dump PHASE
    local n sig
    for n in c2 c5; do
        rm -f $L/tmp-$n/keepalived*
        for sig in DATA STATS JSON; do
            kill -"$(keepalived --signum=$sig)" "$(cat $L/$n.pid)"
            sleep 1
        done
        mkdir -p $out/signals-$n-$1
        cp $L/tmp-$n/keepalived* $out/signals-$n-$1/ 2>/dev/null
        ls -l $L/tmp-$n >> "$log"
        ip netns exec $n ipvsadm -Ln --stats >> $out/signals-$n-$1/ipvsadm.txt
    done
}
for i in 1 2 3 4 5; do
    ip netns exec c1 curl -s -m 2 -o /dev/null http://10.0.0.100/ 2>/dev/null
done
dump up
kill "$(cat $L/web-c3.pid)"
sleep 7
dump web1down
# STATS_CLEAR: the stats file, then zeroed counters.
kill -"$(keepalived --signum=STATS_CLEAR)" "$(cat $L/c2.pid)"
sleep 1
cp $L/tmp-c2/keepalived.stats $out/signals-c2-stats-clear.stats
kill -USR2 "$(cat $L/c2.pid)"
sleep 1
cp $L/tmp-c2/keepalived.stats $out/signals-c2-after-clear.stats
for n in c2 c5; do
    kill "$(cat $L/$n.pid)"
done
sleep 2
for n in c2 c5; do cp $L/$n.log $out/keepalived-$n.log; done
kill "$(cat $L/web-c4.pid)" 2>/dev/null
for n in c1 c2 c3 c4 c5; do ip netns del $n; done
ip link del ksbr

# A unicast instance with a tracked script and interface, alone (its peer
# never answers, so it becomes master).
ip netns add ks
ip -n ks link add eth0 type veth peer name p0
ip -n ks link add eth1 type veth peer name p1
for i in lo eth0 p0 eth1 p1; do ip -n ks link set $i up; done
ip -n ks addr add 10.2.2.1/24 dev eth0
mkdir -p $L/tmp-ks
ip netns exec ks env TMPDIR=$L/tmp-ks keepalived -G -n -l -D -f $golden/signals/script-pair.conf \
    -p $L/ks.pid -r $L/ks-vrrp.pid -c $L/ks-check.pid > $L/ks.log 2>&1 &
sleep 8
for sig in DATA STATS JSON; do
    kill -"$(keepalived --signum=$sig)" "$(cat $L/ks.pid)"
    sleep 1
done
mkdir -p $out/signals-script
cp $L/tmp-ks/keepalived* $out/signals-script/
kill "$(cat $L/ks.pid)"
sleep 2
cp $L/ks.log $out/keepalived-ks.log
ip netns del ks
echo done >> "$log"
