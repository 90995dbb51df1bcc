#!/bin/bash
# Runs in the lab guest (scripts/lab-test.sh): the real ipvsadm and
# `rlvs adm` on the kernel backend must show the same kernel table byte for
# byte, whichever of them programmed it, and fail alike on the same errors.
# RLVS=path of the rlvs binary.
set -u
rlvs=${RLVS:?}
ns=kadm$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link set lo up
# Real servers must be unicast to the kernel: routes for both families.
ip -n "$ns" link add d0 type dummy
ip -n "$ns" addr add 10.1.1.1/24 dev d0
ip -n "$ns" addr add 2001:db8::2/64 dev d0 nodad
ip -n "$ns" link set d0 up
# And a route for the namespace's own clients of the virtual services.
ip -n "$ns" route add 10.0.0.0/24 dev d0
failures=0
real() { ip netns exec "$ns" ipvsadm "$@"; }
ours() { ip netns exec "$ns" env RLVS_BACKEND=kernel "$rlvs" adm "$@"; }
same() {
    local r o
    r=$(real "$@" 2>&1; echo "exit=$?")
    o=$(ours "$@" 2>&1; echo "exit=$?")
    if [ "$r" == "$o" ]; then
        echo "same: ipvsadm $*"
    else
        echo "DIFFERENT: ipvsadm $*"
        diff <(echo "$r") <(echo "$o") | head -20
        failures=$((failures + 1))
    fi
}
table() {
    local adm=$1
    $adm -A -t 10.0.0.100:80 -s rr
    $adm -a -t 10.0.0.100:80 -r 10.1.1.244:80 -g -w 1
    $adm -a -t 10.0.0.100:80 -r 10.1.1.245:80 -g -w 3 -x 100 -y 10
    $adm -A -t 10.0.0.100:443 -s wlc -p 600 -M 255.255.255.0
    $adm -a -t 10.0.0.100:443 -r 10.1.1.244:8443 -m -w 2
    $adm -A -u 10.0.0.100:53 -s sh -b sh-fallback,sh-port
    $adm -a -u 10.0.0.100:53 -r 10.1.1.246 -i -w 1
    $adm -A -f 42 -s lc
    $adm -a -f 42 -r 10.1.1.247:0 -g
    $adm -A -t [2001:db8::1]:80 -s wrr
    $adm -a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 2
    $adm -A --sctp-service 10.0.0.101:9000 -s mh
    $adm -a --sctp-service 10.0.0.101:9000 -r 10.1.1.248:9000 -m
    $adm -A -f 7 -6 -s rr
    $adm -a -f 7 -6 -r 2001:db8::11 -g
}
listings() {
    same -Ln
    same -L -n --stats
    same -L -n --stats --exact
    same -L -n --rate
    same -L -n --thresholds
    same -L -n --persistent-conn
    same -Sn
    same -Ln -t 10.0.0.100:80
    same -Ln -f 42
    same -Ln -f 7 -6
    same -Ln --sctp-service 10.0.0.101:9000
    same -Ln --sort
    same -L --timeout
}
errors() {
    same -A -t 10.0.0.100:80 -s rr
    same -a -t 10.0.0.100:80 -r 10.1.1.244:80 -g
    same -a -t 10.0.0.200:80 -r 10.1.1.244:80 -g
    same -d -t 10.0.0.100:80 -r 10.9.9.9:80
    same -D -t 10.0.0.200:80
    same -E -t 10.0.0.100:80 -s nosuch
    same -A -t 10.0.0.102:80 -s nosuch
    same -Ln -t 10.0.0.200:80
    same -A -f 42 -s rr
    same -D -f 43
    same -a -f 43 -r 10.1.1.1 -g
    same -e -f 42 -r 10.1.1.247:0 -g -w 5
    same -Ln -f 42
}
# A comparison of two empty or failing listings would prove nothing.
filled() {
    local lines
    lines=$(real -Ln | wc -l)
    if [ "$lines" -ne 18 ]; then
        echo "DIFFERENT: the table has $lines lines, 18 expected"
        real -Ln
        failures=$((failures + 1))
    fi
}
echo "== programmed by the real ipvsadm"
table real
filled
listings
errors
real -C
conns() {
    # Traffic from inside the namespace: IPVS takes local clients too, and
    # the entries stay (the real servers behind d0 never answer).
    ip netns exec "$ns" curl -s --max-time 1 http://10.0.0.100/ >/dev/null
    ip netns exec "$ns" bash -c 'echo x > /dev/udp/10.0.0.100/53'
    # Expiry counts down while the two tools run (slowly, under TCG): every
    # other byte must match, and each expiry within one estimator tick (2 s).
    local r o
    r=$(real -Lnc 2>&1; echo "exit=$?")
    o=$(ours -Lnc 2>&1; echo "exit=$?")
    if [ "$(echo "$r" | wc -l)" -lt 5 ]; then
        echo "DIFFERENT: no connection entries to compare"; echo "$r"
        failures=$((failures + 1))
    elif paste -d '\n' <(echo "$r") <(echo "$o") | awk '
        function secs(e) { split(e, p, ":"); return p[1] * 60 + p[2] }
        NR % 2 { a = $0; next }
        {
            if (a ~ /^(TCP|UDP|SCTP) / && $0 ~ /^(TCP|UDP|SCTP) /) {
                split(a, x, " "); ea = x[2]; sub(/ [0-9][0-9]:[0-9][0-9] /, " EXPIRE ", a)
                eb = $2; b = $0; sub(/ [0-9][0-9]:[0-9][0-9] /, " EXPIRE ", b)
                d = secs(ea) - secs(eb); if (d < 0) d = -d
                if (a != b || d > 2) bad = 1
            } else if (a != $0) bad = 1
        }
        END { exit bad }'; then
        echo "same: ipvsadm -Lnc (expiry within 2 s)"
    else
        echo "DIFFERENT: ipvsadm -Lnc"; diff <(echo "$r") <(echo "$o")
        failures=$((failures + 1))
    fi
}
echo "== programmed by rlvs adm"
table ours
filled
listings
conns
# Nothing configured (no RLVS_BACKEND, no /etc/rlvs/backend): on a kernel
# with ip_vs the face reads the kernel, as a drop-in ipvsadm binary.
mkdir -p /tmp/dropin-$$ && ln -sf "$rlvs" /tmp/dropin-$$/ipvsadm
if [ ! -e /etc/rlvs/backend ] && [ "$(real -Ln)" == "$(ip netns exec "$ns" /tmp/dropin-$$/ipvsadm -Ln)" ]; then
    echo "same: ipvsadm -Ln (rlvs as a drop-in ipvsadm, no backend configured)"
else
    echo "DIFFERENT: rlvs as a drop-in ipvsadm did not list the kernel's table"
    failures=$((failures + 1))
fi
rm -rf /tmp/dropin-$$
same --set 900 120 300
same -L --timeout
same -Z
same -C
same -Ln
# Every case of the golden transcripts, replayed in order on two tables
# of their own, one per tool: outputs and exit codes must match case by
# case. (The golden files hold what ipvsadm 1.31 printed; here both tools
# run on this kernel.)
golden() {  # FILE [setup commands...]
    local file=$1; shift
    local a=${ns}r b=${ns}o n=0 bad=0 prev_r= prev_o= line
    # As lab/golden-ipvsadm.py captured them: lo up and nothing else (no
    # route, so name lookups of `-L` fail at once), stdin empty.
    for x in $a $b; do
        ip netns add $x; ip -n $x link set lo up
        # For the sync daemons' cases: a link without address or route.
        ip -n $x link add d0 type dummy; ip -n $x link set d0 up
    done
    for c in "$@"; do
        ip netns exec $a ipvsadm $c
        ip netns exec $b env RLVS_BACKEND=kernel "$rlvs" adm $c
    done
    while IFS= read -r line; do
        case $line in ''|'#'*) continue ;; esac
        n=$((n + 1))
        local r o
        if [ "$line" = "-R <prev" ]; then
            r=$(echo "$prev_r" | ip netns exec $a ipvsadm -R 2>&1; echo "exit=$?")
            o=$(echo "$prev_o" | ip netns exec $b env RLVS_BACKEND=kernel "$rlvs" adm -R 2>&1; echo "exit=$?")
        else
            r=$(eval "ip netns exec $a ipvsadm $line" </dev/null 2>&1; echo "exit=$?")
            # Listings read the real tool's table: the kernel dumps in its
            # hash order, which depends on the namespace, and ipvsadm's
            # sort (glibc's merge sort over a comparator that overflows)
            # depends on that order, so two namespaces can list the same
            # services in different orders even with the real ipvsadm.
            local on=$b
            # Sync daemons have no order to disagree on: each its own.
            case $line in *--daemon*) ;; -L*|-l*|-S*|--list*|--save*) on=$a ;; esac
            o=$(eval "ip netns exec $on env RLVS_BACKEND=kernel \"\$rlvs\" adm $line" </dev/null 2>&1; echo "exit=$?")
        fi
        prev_r=${r%exit=*}; prev_o=${o%exit=*}
        if [ "$r" != "$o" ]; then
            echo "DIFFERENT: $(basename "$file") case $n: ipvsadm $line"
            diff <(echo "$r") <(echo "$o") | head -10
            bad=$((bad + 1))
        fi
    done < "$file"
    echo "golden $(basename "$file"): $n cases, $bad different"
    failures=$((failures + bad))
    ip netns del $a; ip netns del $b
}
cases=$(dirname "$0")/golden
golden "$cases/errors.cases" "-A -t 10.0.0.100:80 -s rr" \
    "-a -t 10.0.0.100:80 -r 10.1.1.244 -g -w 1" "-a -t 10.0.0.100:80 -r 10.1.1.245 -g -w 1"
golden "$cases/face.cases"
golden "$cases/listing.cases"
golden "$cases/daemon.cases"
echo "differences: $failures"
[ "$failures" -eq 0 ]
