#!/bin/bash
# Runs in the lab guest: the seed's section 3.3.3 with its keepalived.conf
# files verbatim (c2's interface named bond0), once with real keepalived
# 2.2.7 (kernel IPVS) and once with rlvs (its keepalived face and own data
# plane), on the same kernel in the same run. For each, CYCLES times: stop
# web1 and time until the master's table drops 10.1.1.244; start it and
# time until it is back. Usage: seed-times.sh OUTDIR RLVS_BINARY [CYCLES]
# With RETRY=N in the environment, "retry N" is added beside each
# nb_get_retry (real_server level, which its HTTP_GET inherits)
# (keepalived 2.2.7 ignores the seed's nb_get_retry: retry stays 1).
set -u
out=${1:-/labio}; rlvs=${2:-/host/target/release/rlvs}; cycles=${3:-5}
L=/tmp/seedt; VIP=10.0.0.100
now() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%03d' $(($1 / 1000000)) $((($1 % 1000000) / 1000)); }
modprobe ip_vs 2>/dev/null; modprobe ip_vs_rr 2>/dev/null
rm -rf $L; mkdir -p $L
retry_edit='1,$p'
[ -n "${RETRY:-}" ] && retry_edit="s/^\\( *\\)nb_get_retry 3$/&\\n\\1retry $RETRY/"
sed "$retry_edit" /host/tests/golden/keepalived/seed-c2.conf > $L/c2.conf
sed "$retry_edit" /host/tests/golden/keepalived/seed-c5.conf > $L/c5.conf
ln -sf "$rlvs" $L/keepalived-rlvs; ln -sf "$rlvs" $L/ipvsadm-rlvs
# The rlvs face is found as "keepalived", its ipvsadm as "ipvsadm".
mkdir -p $L/rbin; ln -sf "$rlvs" $L/rbin/keepalived; ln -sf "$rlvs" $L/rbin/ipvsadm

setup() {
  ip link add br0 type bridge; ip link set br0 up
  for n in c1:eth0:10.1.1.10 c2:bond0:10.1.1.243 c3:eth0:10.1.1.244 c4:eth0:10.1.1.245 c5:eth0:10.1.1.246; do
    IFS=: read -r ns ifn ip <<<"$n"
    ip netns add $ns; ip -n $ns link set lo up
    ip link add v-$ns type veth peer name $ifn netns $ns
    ip link set v-$ns master br0 up; ip -n $ns addr add $ip/24 dev $ifn; ip -n $ns link set $ifn up
  done
  ip -n c1 route add $VIP dev eth0
  for ns in c3 c4; do
    ip netns exec $ns sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    ip -n $ns addr add $VIP/32 dev lo
  done
  web_start c3 rs1; web_start c4 rs2
}
teardown() { for ns in c1 c2 c3 c4 c5; do ip netns pids $ns 2>/dev/null | xargs -r kill -9; ip netns del $ns 2>/dev/null; done; ip link del br0 2>/dev/null; }
web_start() { mkdir -p $L/www-$1; echo $2 > $L/www-$1/index.html
  ip netns exec $1 python3 -m http.server 80 --bind 0.0.0.0 --directory $L/www-$1 </dev/null >/dev/null 2>&1 & echo $! > $L/$1-web.pid; }
web_stop() { kill "$(cat $L/$1-web.pid)" 2>/dev/null; wait "$(cat $L/$1-web.pid)" 2>/dev/null; }

run_impl() {  # run_impl NAME BIN_DIR ADM
  local name=$1 bin=$2 adm=$3 i t0 t
  teardown; setup
  for ns in c2 c5; do
    ip netns exec $ns env PATH="$bin:$PATH" keepalived -G -n -l -f $L/$ns.conf -p $L/$ns.pid -r $L/$ns-v.pid -c $L/$ns-c.pid \
      </dev/null > $L/$name-$ns.log 2>&1 &
  done
  for i in $(seq 300); do ip -n c2 -4 -o addr show dev bond0 | grep -q " $VIP/" && break; sleep 0.1; done
  for i in $(seq 300); do ip netns exec c2 $adm -Ln 2>/dev/null | grep -q -- '-> 10.1.1.245:80' && ip netns exec c2 $adm -Ln | grep -q -- '-> 10.1.1.244:80' && break; sleep 0.1; done
  sleep 3
  for i in $(seq $cycles); do
    t0=$(now); web_stop c3
    while ip netns exec c2 $adm -Ln | grep -q -- '-> 10.1.1.244:80'; do sleep 0.05; [ $(($(now) - t0)) -gt 60000000 ] && break; done
    t=$(now); echo "$name removal $(secs $((t - t0)))"
    sleep 2
    t0=$(now); web_start c3 rs1
    until ip netns exec c2 $adm -Ln | grep -q -- '-> 10.1.1.244:80'; do sleep 0.05; [ $(($(now) - t0)) -gt 60000000 ] && break; done
    t=$(now); echo "$name readd $(secs $((t - t0)))"
    sleep 2
  done
  for ns in c2 c5; do kill $(cat $L/$ns.pid 2>/dev/null) 2>/dev/null; done
  sleep 2
  teardown
}

{
  echo "kernel $(uname -r) retry ${RETRY:-default}"
  run_impl keepalived /usr/sbin ipvsadm
  run_impl rlvs $L/rbin $L/rbin/ipvsadm
} 2>&1 | tee $out/seed-times.txt
cp $L/*.log $out/ 2>/dev/null
echo done
