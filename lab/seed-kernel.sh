#!/bin/bash
# Runs in the lab guest (scripts/lab-test.sh copies it there): the seed's
# sections 2 and 3 with rlvs on kernel IPVS, then section 3 again with the
# real keepalived 2.2.7, in the same boot, and the two compared.
#   - 2: `rlvs daemon --engine kernel` built with rlvs's ipvsadm face; the
#     real ipvsadm lists the table byte for byte as rlvs's face does.
#   - 3: rlvs's keepalived face (RLVS_ENGINE=kernel) on c2 and c5; the real
#     ipvsadm watches the tables. Then real keepalived, same replay.
#   - Transcripts must be equal but for the lines of the two timed loops
#     (their length depends on when the checker acts) and the measured
#     times, which must agree within keepalived's windows: failover within
#     advert_int (1 s), web1's removal within one check cycle (delay_loop
#     + delay_before_retry, 4 s), its return within delay_loop + 1 s.
# Usage: RLVS=/host/rlvs bash seed-kernel.sh
set -u
rlvs=${RLVS:-/host/rlvs}
out=$(mktemp -d)
fail=0
modprobe ip_vs

echo "== section 2 on kernel IPVS"
if ! RLVS_ENGINE=kernel "$rlvs" lab dr --compare-with /usr/sbin/ipvsadm > "$out/dr.txt" 2>&1; then
    fail=1
fi
cat "$out/dr.txt"

run_seed() {  # NAME [rlvs lab seed options]
    local name=$1; shift
    echo "== section 3: $name"
    if ! "$rlvs" lab seed --ipvsadm /usr/sbin/ipvsadm "$@" > "$out/$name.txt" 2>&1; then
        fail=1
    fi
    cat "$out/$name.txt"
}
RLVS_ENGINE=kernel run_seed rlvs
run_seed keepalived --keepalived /usr/sbin/keepalived

# The transcripts with the timed loops' bodies, the times, the final
# listing's connection counters (the loops' length decides them) and the
# lab's switch namespace (named after its process) taken out.
shape() {
    awk '/^== 3.3.3/ {loops = 1} /^\[root@c5 ~\]# ipvsadm -Ln/ {loops = 0; last = 1}
         /^== measured/ {exit}
         loops && /^(rs[12]|curl: .*)$/ {next}
         last && /^  ->/ {print $1, $2, $3, $4; next}
         {sub(/link-netns [^ ]+/, "link-netns SWITCH"); print}' "$1"
}
echo "== transcripts (timed loops and times aside): rlvs vs keepalived"
if diff <(shape "$out/rlvs.txt") <(shape "$out/keepalived.txt"); then
    echo "identical"
else
    fail=1
fi

secs() { awk -F': ' -v k="$2" 'index($0, k) == 1 {sub(/ s$/, "", $2); print $2}' "$1"; }
echo "== times (s)            rlvs   keepalived  window"
for k in "failover:1" "web1 stopped:4" "web1 started:2"; do
    key=${k%%:*}; win=${k##*:}
    a=$(secs "$out/rlvs.txt" "$key"); b=$(secs "$out/keepalived.txt" "$key")
    ok=$(awk -v a="${a:-x}" -v b="${b:-y}" -v w="$win" 'BEGIN {d = a - b; if (d < 0) d = -d; print (a != "x" && b != "y" && d <= w) ? "ok" : "OUT"}')
    printf '%-22s %6s %10s  +-%s s %s\n' "$key" "${a:--}" "${b:--}" "$win" "$ok"
    [ "$ok" = ok ] || fail=1
done
rm -rf "$out"
exit $fail
