#!/bin/bash
# Runs in the lab guest (scripts/lab-test.sh): IPVS connection sync between
# rlvs's own engine and the kernel's sync threads, both ways. A client
# downloads through director A (sync master) while director B (sync backup)
# learns the connections; A dies (SIGKILL of rlvs, or the kernel's table
# left behind its downed link) and B takes the VIP: the downloads finish.
#   case 1: A = rlvs daemon --engine afpacket, B = kernel IPVS (real ipvsadm)
#   case 2: A = kernel IPVS, B = rlvs
# Usage: RLVS=/host/rlvs bash sync-interop.sh
set -u
rlvs=${RLVS:-/host/rlvs}
VIP=10.0.0.100
SIZE=2000000
fail=0
modprobe ip_vs
work=$(mktemp -d)
head -c $SIZE /dev/urandom > "$work/big"
# The server paces itself (100 kB/s) so that a download stays on the wire
# to its last byte; a client-side limit would only drain a full buffer.
cat > "$work/paced.py" <<'PY'
import http.server, sys, time
data = open(sys.argv[1], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        t0, sent = time.monotonic(), 0
        while sent < len(data):
            self.wfile.write(data[sent:sent + 8192])
            sent = min(sent + 8192, len(data))
            ahead = sent / 100000 - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
S(("0.0.0.0", 80), H).serve_forever()
PY
names="sisw sic sia sib sir1 sir2"

cleanup() {
    for n in $names; do
        ip netns pids $n 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del $n 2>/dev/null
    done
}

topology() {
    cleanup
    for n in $names; do ip netns add $n; ip -n $n link set lo up; done
    ip -n sisw link add br0 type bridge; ip -n sisw link set br0 up
    local i=1
    for spec in sic:10.1.1.10 sia:10.1.1.251 sib:10.1.1.252 sir1:10.1.1.1 sir2:10.1.1.2; do
        local n=${spec%%:*} a=${spec##*:}
        ip link add eth0 netns $n address 02:00:00:00:60:0$i type veth peer name p$i netns sisw
        ip -n sisw link set p$i master br0 up
        ip -n $n addr add $a/24 dev eth0; ip -n $n link set eth0 up
        i=$((i + 1))
    done
    for r in sir1 sir2; do
        ip netns exec $r "$rlvs" realserver start --vip $VIP >/dev/null
        ip netns exec $r python3 "$work/paced.py" "$work/big" >/dev/null 2>&1 &
    done
    ip -n sic route add $VIP dev eth0
    sleep 1
}

# The table on director NS through TOOL (a command prefix).
table() {
    local tool=$1
    $tool -A -t $VIP:80 -s rr
    $tool -a -t $VIP:80 -r 10.1.1.1:80 -g
    $tool -a -t $VIP:80 -r 10.1.1.2:80 -g
}

established() {  # NS: ESTABLISHED connections to the VIP in NS's kernel or rlvs table
    ip netns exec $1 ${2:-ipvsadm} -Lnc | grep -c "ESTABLISHED.*$VIP:80"
}

run_case() {  # NAME MASTER_NS BACKUP_NS MASTER_KIND BACKUP_KIND
    local name=$1 m=$2 b=$3 mk=$4 bk=$5
    echo "== $name: master $mk on $m, backup $bk on $b"
    topology
    local madm=ipvsadm badm=ipvsadm
    for side in "$m:$mk" "$b:$bk"; do
        local ns=${side%%:*} kind=${side##*:}
        if [ "$kind" = rlvs ]; then
            ip netns exec $ns "$rlvs" daemon --engine afpacket --log info > "$work/$ns.log" 2>&1 &
            local t
            for t in $(seq 1 100); do
                ip netns exec $ns env RLVS_BACKEND=daemon "$rlvs" adm -Ln >/dev/null 2>&1 && break
                sleep 0.2
            done
            table "ip netns exec $ns env RLVS_BACKEND=daemon $rlvs adm"
        else
            table "ip netns exec $ns ipvsadm"
        fi
    done
    [ "$mk" = rlvs ] && madm="env RLVS_BACKEND=daemon $rlvs adm"
    [ "$bk" = rlvs ] && badm="env RLVS_BACKEND=daemon $rlvs adm"
    ip netns exec $m $madm --start-daemon master --mcast-interface eth0 --syncid 3
    ip netns exec $b $badm --start-daemon backup --mcast-interface eth0 --syncid 3
    ip -n $m addr add $VIP/32 dev eth0
    local curls=""
    for i in 1 2 3 4; do
        ip netns exec sic curl -s --max-time 90 -o "$work/dl$i" http://$VIP/big &
        curls="$curls $!"
    done
    sleep 6
    local on_m on_b
    on_m=$(established $m "$madm"); on_b=$(established $b "$badm")
    echo "established: $on_m on the master, $on_b on the backup"
    ip netns exec $b $badm -Lnc | head -8
    [ "$on_b" -ge 4 ] || { echo "FAIL: the backup did not learn the connections"; fail=1; }
    local c running=0
    for c in $curls; do kill -0 "$c" 2>/dev/null && running=$((running + 1)); done
    [ $running = 4 ] || { echo "FAIL: $((4 - running)) downloads ended before the failover: it proves nothing"; fail=1; }
    # The master dies: rlvs is killed, the kernel's table is cut off.
    ip netns pids $m | xargs -r kill -9 2>/dev/null
    ip -n $m link set eth0 down
    ip -n $b addr add $VIP/32 dev eth0
    ip -n sic neigh replace $VIP lladdr "$(ip -n $b -br link show eth0 | awk '{print $3}')" dev eth0 nud reachable
    # shellcheck disable=SC2086
    wait $curls
    local bad=0
    for i in 1 2 3 4; do
        cmp -s "$work/big" "$work/dl$i" || { echo "download $i: $(stat -c %s "$work/dl$i" 2>/dev/null) of $SIZE bytes"; bad=1; }
    done
    if [ $bad = 0 ]; then echo "$name: 4 of 4 downloads complete and byte-exact after the failover"; else fail=1; fi
    rm -f "$work"/dl*
}

run_case "rlvs master, kernel backup" sia sib rlvs kernel
run_case "kernel master, rlvs backup" sia sib kernel rlvs
cleanup
rm -rf "$work"
echo "sync interop: $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail
