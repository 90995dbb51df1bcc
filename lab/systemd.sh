#!/bin/bash
# Runs in the lab guest booted with systemd (scripts/lab-packages.sh):
# rlvs installed from its .deb as an operator would, then the seed's
# section 3 driven with systemctl on the guest's own namespace as c2.
#
#   - keepalived's exit codes: rlvs's face against the real keepalived
#     2.2.7 on the same command lines, before the package replaces it;
#   - apt-get install ./rlvs_*.deb replaces keepalived and ipvsadm;
#   - c2 = the guest (keepalived.service, the seed's c2 file, bond0);
#     c5 = a namespace running the real keepalived 2.2.7 (kept aside
#     before the install) with the seed's c5 file; rs1, rs2, client c1;
#   - systemctl start: the seed's `ip a` and `ipvsadm -Ln`, curl rs1/rs2;
#   - systemctl status: active (running) with the notify status line;
#   - journalctl -u keepalived: keepalived's identities and wording;
#   - systemctl reload returns after an edited weight is in ipvsadm -Ln;
#   - SIGSTOP: the watchdog replaces the daemon within its window;
#   - systemctl stop hands the VIP to c5;
#   - apt-get purge leaves no file of the package and no kernel state.
# Usage (in the guest): bash systemd.sh  (the .deb and seed in /host)
set -u
H=${HOSTDIR:-/host}
fail=0
pass() { echo "PASS $*"; }
bad() { echo "FAIL $*"; fail=1; }
check() { if eval "$2"; then pass "$1"; else bad "$1"; fi; }
# wait_for SECS COMMAND...: true once COMMAND succeeds within SECS.
wait_for() { local end=$((SECONDS + $1)); shift; until eval "$*"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done; }
show() { echo "[root@$1 ~]# $2"; eval "$3" 2>&1 | sed 's/^/    /'; }

# (no `systemctl is-system-running --wait`: this script runs as a oneshot unit
# of the boot, which would wait for itself.)
modprobe ip_vs; modprobe bonding

echo "== keepalived's exit codes: rlvs's face vs keepalived 2.2.7"
cp /usr/sbin/keepalived /root/keepalived.real
mkdir -p /root/face && ln -sf "$H/rlvs" /root/face/keepalived
printf 'vrrp_instance X {\n bogus_kw 1\n}\n' > /root/bad-vrid.conf
printf 'vrrp_instance X {\n interface nosuchif0\n virtual_router_id 9\n virtual_ipaddress {\n  10.9.9.9\n }\n}\n' > /root/bad-if.conf
while IFS='|' read -r args; do
    [ -n "$args" ] || continue
    # shellcheck disable=SC2086
    real=$(cd /root && timeout 5 /root/keepalived.real $args 2>/tmp/real.err >/tmp/real.out; echo $?)
    # shellcheck disable=SC2086
    ours=$(cd /root && timeout 5 /root/face/keepalived $args 2>/tmp/ours.err >/tmp/ours.out; echo $?)
    same=yes
    [ "$real" = "$ours" ] || same=no
    # Messages on stdout and stderr for the parse errors and --signum;
    # logs (times, pids, versions) differ by nature.
    case $args in
        --signum*|--bogus*|-q*|-f) cmp -s /tmp/real.err /tmp/ours.err && cmp -s /tmp/real.out /tmp/ours.out || same=no ;;
        -S*) [ "$(head -1 /tmp/real.err)" = "$(head -1 /tmp/ours.err)" ] || same=no ;;
    esac
    if [ $same = yes ]; then pass "keepalived $args: exit $real"; else
        bad "keepalived $args: real exit $real, rlvs exit $ours"; diff /tmp/real.err /tmp/ours.err | head -5; fi
done <<'EOF'
--bogus
-q
-f
--signum=DATA
--signum=STATS
--signum=JSON
--signum=STATS_CLEAR
--signum=RELOAD
--signum=STOP
--signum=bogus
-v
-h
-n -l -f /nonexistent.conf
-n -f /nonexistent.conf
-n -l -f /root/bad-vrid.conf
-n -l -f /root/bad-if.conf
-S 9 -n -l -f /nonexistent.conf
EOF

echo "== topology: c2 is this machine (bond0), c1 c3 c4 c5 namespaces on one bridge"
ip netns add sw
ip -n sw link add br0 type bridge
ip -n sw link set br0 up
port=0
plug() {  # NS IFNAME MAC CIDR (NS "-" = this machine)
    port=$((port + 1))
    if [ "$1" = - ]; then ip link add "$2" type veth peer name p$port netns sw
    else ip netns add "$1"; ip -n "$1" link set lo up
         # Made here under a temporary name: this machine has an eth0 already.
         ip link add v$port type veth peer name p$port netns sw
         ip link set v$port netns "$1"; ip -n "$1" link set v$port name "$2"; fi
    ip -n sw link set p$port master br0 up
    local x=(); [ "$1" = - ] || x=(-n "$1")
    ip "${x[@]}" link set "$2" address "$3"
    [ -n "$4" ] && ip "${x[@]}" addr add "$4" dev "$2"
    ip "${x[@]}" link set "$2" up
}
ip link add bond0 type bond mode active-backup miimon 100
plug - eth0 02:00:00:00:00:02 ""
ip link set eth0 down; ip link set eth0 master bond0
ip link set bond0 address 02:00:00:00:00:02
ip addr add 10.1.1.243/24 dev bond0
ip link set bond0 up; ip link set eth0 up
plug c1 eth0 02:00:00:00:00:01 10.1.1.10/24
plug c3 eth0 02:00:00:00:00:03 10.1.1.244/24
plug c4 eth0 02:00:00:00:00:04 10.1.1.245/24
plug c5 eth0 02:00:00:00:00:05 10.1.1.246/24
for rs in c3:rs1 c4:rs2; do
    ns=${rs%%:*}; body=${rs##*:}
    mkdir -p /root/www-$ns && echo "$body" > /root/www-$ns/index.html
    ip netns exec "$ns" python3 -m http.server 80 --directory /root/www-$ns >/dev/null 2>&1 &
    ip netns exec "$ns" "$H/rlvs" realserver start --vip 10.0.0.100 >/dev/null
done
ip -n c1 route add 10.0.0.100 dev eth0
curl1() { ip netns exec c1 curl -s --max-time 1 http://10.0.0.100/; }
check "rs1 and rs2 answer c1" 'wait_for 10 "ip netns exec c1 curl -s --max-time 1 http://10.1.1.244/ | grep -q rs1" && wait_for 10 "ip netns exec c1 curl -s --max-time 1 http://10.1.1.245/ | grep -q rs2"'

# The seed's two files, verbatim.
seed=$H/seed.txt
conf_of() { awk -v h="$1" '$0 == "[root@" h " keepalived]# cat keepalived.conf" {on = 1; next}
    on && /^\[root@/ {exit} on' "$seed"; }
conf_of c2 > /root/c2.conf
conf_of c5 > /root/c5.conf
check "the seed's c2 file found" 'grep -q "interface bond0" /root/c2.conf'
check "the seed's c5 file found" 'grep -q "state BACKUP" /root/c5.conf'
ip netns exec c5 /root/keepalived.real -n -l -f /root/c5.conf -p /run/c5.pid -r /run/c5-vrrp.pid \
    -c /run/c5-check.pid > /root/c5.log 2>&1 &

echo "== install"
# The image masks the distribution's services; an operator's machine does not.
systemctl unmask keepalived.service ipvsadm.service >/dev/null 2>&1
cp "$H"/rlvs_*.deb /root/
deb=$(ls /root/rlvs_*.deb)
if apt-get install -y "$deb" > /root/apt.log 2>&1; then pass "apt-get install $(basename "$deb")"
else bad "apt-get install"; tail -20 /root/apt.log; fi
check "keepalived and ipvsadm packages replaced" '! dpkg -s keepalived 2>/dev/null | grep -q "^Status: install ok" && ! dpkg -s ipvsadm 2>/dev/null | grep -q "^Status: install ok"'
check "keepalived is rlvs" '[ "$(readlink -f /usr/sbin/keepalived)" = /usr/sbin/rlvs ]'
check "keepalived.service and ipvsadm.service enabled, as Debian's packages do" 'systemctl is-enabled -q keepalived && systemctl is-enabled -q ipvsadm'
check "no live sample configuration" '[ ! -e /etc/keepalived/keepalived.conf ] && [ -s /etc/keepalived/keepalived.conf.sample ]'
check "keepalived.service not started without a configuration" '! systemctl is-active -q keepalived.service'
dpkg -L rlvs | sort > /root/rlvs.files

echo "== 3.2 systemctl start keepalived with the seed's c2 file"
cp /root/c2.conf /etc/keepalived/keepalived.conf
t0=$SECONDS
check "systemctl start keepalived" 'systemctl start keepalived'
check "VIP on bond0 (MASTER)" 'wait_for 15 "ip -4 addr show dev bond0 | grep -q 10.0.0.100/24"'
check "both real servers in the table" 'wait_for 15 "[ \$(ipvsadm -Ln | grep -c Route) = 2 ]"'
show c2 "ip a" "ip addr show dev bond0"
show c2 "ipvsadm -Ln" "ipvsadm -Ln"
check "ip a as the seed's: the VIP labelled bond0:0" 'ip -4 addr show dev bond0 | grep -q "inet 10.0.0.100/24 scope global bond0:0"'
check "ipvsadm -Ln as the seed's" 'ipvsadm -Ln | grep -q "^TCP  10.0.0.100:80 rr" && ipvsadm -Ln | grep -qE "^  -> 10.1.1.244:80 +Route +1 "'
answers=$(for i in 1 2 3 4; do curl1; done | tr '\n' ' ')
echo "    curl x4: $answers"
check "curl alternates rs1 and rs2" '[ "$answers" = "rs1 rs2 rs1 rs2 " ] || [ "$answers" = "rs2 rs1 rs2 rs1 " ]'
status=$(systemctl status keepalived --no-pager 2>&1)
echo "$status" | sed -n '1,6p' | sed 's/^/    /'
check "systemctl status: active (running)" 'echo "$status" | grep -q "Active: active (running)"'
check "systemctl status: the notify status line" 'echo "$status" | grep -q "Status: \"VI_1 MASTER; 1 virtual service; engine kernel\""'
check "systemctl show: Type=notify, watchdog armed" '[ "$(systemctl show -p Type --value keepalived)" = notify ] && [ "$(systemctl show -p WatchdogUSec --value keepalived)" = 5s ]'
journal=$(journalctl -u keepalived --no-pager -o short 2>&1)
echo "$journal" | grep -E 'Keepalived(_vrrp|_healthcheckers)?\[' | head -8 | sed 's/^/    /'
check "journal: Keepalived_vrrp[PID]: (VI_1) Entering MASTER STATE" 'echo "$journal" | grep -qE "Keepalived_vrrp\[[0-9]+\]: \(VI_1\) Entering MASTER STATE"'
check "journal: Keepalived[PID]: Starting Keepalived v2.2.7" 'echo "$journal" | grep -qE "Keepalived\[[0-9]+\]: Starting Keepalived v2.2.7"'
check "journal: Keepalived_healthcheckers lines" 'echo "$journal" | grep -qE "Keepalived_healthcheckers\[[0-9]+\]: "'

echo "== systemctl reload keepalived with rs1's weight edited to 3"
sed -i '0,/weight 1/s//weight 3/' /etc/keepalived/keepalived.conf
t=$SECONDS
check "systemctl reload keepalived" 'systemctl reload keepalived'
listing=$(ipvsadm -Ln)
echo "$listing" | sed 's/^/    /'
check "the edited weight is in ipvsadm -Ln when reload returns" 'echo "$listing" | grep -qE "^  -> 10.1.1.244:80 +Route +3 "'
check "still active after the reload" 'systemctl is-active -q keepalived'
bad_reload=$(mktemp); cp /etc/keepalived/keepalived.conf "$bad_reload"
printf 'vrrp_instance BROKEN {\n}\n' >> /etc/keepalived/keepalived.conf
check "a file with errors: reload fails and says why" '! systemctl reload keepalived 2>/dev/null'
journalctl -u keepalived --no-pager | grep -m1 "Reload failed" | sed 's/^/    /'
cp "$bad_reload" /etc/keepalived/keepalived.conf
check "the running configuration kept" 'ipvsadm -Ln | grep -qE "^  -> 10.1.1.244:80 +Route +3 " && systemctl is-active -q keepalived'

echo "== SIGSTOP: the watchdog replaces a hung daemon"
old=$(systemctl show -p MainPID --value keepalived)
kill -STOP "$old"
t=$SECONDS
if wait_for 30 '[ "$(systemctl show -p MainPID --value keepalived)" != "$old" ] && [ "$(systemctl show -p MainPID --value keepalived)" != 0 ] && systemctl is-active -q keepalived'; then
    pass "replaced after $((SECONDS - t)) s (WatchdogSec 5 s + TimeoutAbortSec 3 s + RestartSec 1 s)"
else
    bad "not replaced within 30 s"; systemctl status keepalived --no-pager | head -12
fi
journalctl -u keepalived --no-pager | grep -m2 -iE "watchdog timeout|Killing process" | sed 's/^/    /'
check "journal names the watchdog" 'journalctl -u keepalived --no-pager | grep -q "Watchdog timeout"'
check "VIP back on c2 after the restart" 'wait_for 20 "ip -4 addr show dev bond0 | grep -q 10.0.0.100/24"'
check "the new daemon serves" 'wait_for 20 "[ \$(ipvsadm -Ln | grep -c Route) = 2 ] && curl1 | grep -q rs"'

echo "== systemctl stop keepalived hands the VIP to c5"
check "systemctl stop keepalived" 'systemctl stop keepalived'
check "VIP gone from c2" '! ip -4 addr show dev bond0 | grep -q 10.0.0.100'
check "c5 (keepalived 2.2.7) holds the VIP" 'wait_for 5 "ip -n c5 -4 addr show dev eth0 | grep -q 10.0.0.100"'
check "the VIP answers through c5" 'wait_for 10 "curl1 | grep -q rs"'
check "c2's kernel table emptied on stop" '[ "$(grep -c "^TCP\|^UDP" /proc/net/ip_vs)" = 0 ]'

echo "== ipvsadm.service (Debian's /etc/default/ipvsadm) and rlvs.service"
printf -- '-A -t 10.0.0.200:80 -s wlc\n-a -t 10.0.0.200:80 -r 10.1.1.244:80 -g -w 2\n' > /etc/ipvsadm.rules
sed -i 's/^AUTO=.*/AUTO="true"/' /etc/default/ipvsadm
check "systemctl restart ipvsadm with AUTO=true" 'systemctl restart ipvsadm'
check "/etc/ipvsadm.rules restored" 'ipvsadm -Ln | grep -q "^TCP  10.0.0.200:80 wlc" && ipvsadm -Ln | grep -qE "^  -> 10.1.1.244:80 +Route +2 "'
check "saving is a manual action" '/usr/lib/rlvs/ipvsadm-rules save && grep -q "^-A -t 10.0.0.200:80 -s wlc" /etc/ipvsadm.rules'
check "systemctl stop ipvsadm clears the table (AUTO=true)" 'systemctl stop ipvsadm && [ "$(grep -c "^TCP" /proc/net/ip_vs)" = 0 ]'
check "rlvs.service starts (notify) and answers" 'systemctl start rlvs && systemctl is-active -q rlvs && RLVS_BACKEND=daemon ipvsadm -Ln | grep -q "IP Virtual Server"'
systemctl status rlvs --no-pager 2>&1 | sed -n '1,4p;/Status:/p' | sed 's/^/    /'
check "rlvs.service and keepalived.service exclude each other" 'systemctl start keepalived && ! systemctl is-active -q rlvs && systemctl stop keepalived'

echo "== apt-get purge rlvs"
if apt-get purge -y rlvs > /root/purge.log 2>&1; then pass "apt-get purge rlvs"; else bad "apt-get purge"; tail /root/purge.log; fi
left=$(while read -r f; do { [ -f "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ] && echo "$f"; done < /root/rlvs.files)
check "no file of the package left${left:+: $left}" '[ -z "$left" ]'
check "no unit left enabled" '! ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep -qE "keepalived|rlvs|ipvsadm"'
check "no pinned maps or links" '[ ! -e /sys/fs/bpf/rlvs ]'
check "no nftables table" '! nft list table netdev rlvs >/dev/null 2>&1'
check "no XDP program on bond0 or eth0" '! ip link show bond0 | grep -q xdp && ! ip link show eth0 | grep -q xdp'
check "no VIP" '! ip -4 addr show | grep -q 10.0.0.100/24'
check "no virtual service in the kernel" '[ "$(grep -c "^TCP\|^UDP" /proc/net/ip_vs)" = 0 ]'

kill %1 %2 %3 2>/dev/null
echo "systemd lab: $([ $fail = 0 ] && echo passed || echo FAILED)"
exit $fail
