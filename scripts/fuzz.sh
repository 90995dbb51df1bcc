#!/bin/bash
# Fuzzes rlvs with AFL++ through cargo-afl (stable Rust): each target runs
# for a fixed number of executions from seeds built towards the configured
# tables (fuzz/src/bin/seeds.rs), then its queue is replayed through a
# coverage-instrumented build for a line-coverage report of the code it
# exercises. Crashes are copied to fuzz/crashes/TARGET/ and make the script
# fail; each one fixed gets a regression test next to the code it broke.
#
#   scripts/fuzz.sh [EXECUTIONS] [TARGET...]      (default: 10000000, all)
#
# Targets: conf (keepalived.conf reader and builder), vrrp (advert decoder
# and checks), sync (IPVS sync decoder), packet (Director::process_ipv4/6
# over a director with every forwarding method), adm (ipvsadm argv parser).
# Runs as many targets at once as there are cores. Not part of CI.
#   scripts/fuzz.sh --report [TARGET...]          (the table only, from fuzz/out)
#   scripts/fuzz.sh --resume EXECUTIONS [TARGET...] (continue fuzz/out/TARGET's queue
#                                                  for EXECUTIONS more)
set -euo pipefail
report_only=false
resume=false
if [ "${1:-}" = --resume ]; then
    resume=true
    shift
fi
if [ "${1:-}" = --report ]; then
    report_only=true
    shift
    execs=0
else
    execs=${1:-10000000}
    shift || true
fi
targets=${*:-conf vrrp sync packet adm}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! $report_only; then
    command -v cargo-afl >/dev/null 2>&1 || cargo install cargo-afl
    cargo afl config --build >/dev/null 2>&1 || true   # "already built" is fine
    rustup component add llvm-tools >/dev/null 2>&1
    cargo afl build --release
    cargo run --release --quiet --bin seeds
    # Build scripts run instrumented too: their profiles go to target/, not the sources.
    LLVM_PROFILE_FILE="$root/fuzz/target/cov/build-%p.profraw" RUSTFLAGS="-C instrument-coverage" \
        cargo build --release --target-dir target/cov --bin replay

    export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
    mkdir -p out
    run() {
        local t=$1 input="seeds/$t"
        if $resume && [ -d "out/$t/default/queue" ]; then
            input=-   # AFL++'s resume: the queue in out/$t is the input
        else
            rm -rf "out/$t"
        fi
        cargo afl fuzz -i "$input" -o "out/$t" -E "$execs" "target/release/$t" >> "out/$t.log" 2>&1
    }
    for t in $targets; do
        while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do sleep 2; done
        run "$t" &
    done
    wait
fi
llvm_bin=$(dirname "$(find "$(rustc --print sysroot)" -name llvm-profdata -type f | head -1)")

# Which sources each target is judged on.
declare -A src=(
    [conf]="$root/crates/conf/src"
    [vrrp]="$root/crates/vrrp/src $root/crates/wire/src/vrrp.rs"
    [sync]="$root/crates/wire/src/ipvs_sync.rs"
    [packet]="$root/crates/lvs/src"
    [adm]="$root/crates/adm/src"
)
status=0
printf '%-8s %12s %8s %8s %s\n' target executions crashes queue "line coverage (its crate)"
for t in $targets; do
    # Every instance's executions count (a --resume with --also runs a
    # second instance beside the first on the same queue).
    n=$(cat out/$t/*/fuzzer_stats | awk -F: '/^execs_done/ {gsub(/ /, "", $2); s += $2} END {print s}')
    crashes=$(find out/$t/*/crashes -type f -name 'id:*' | wc -l)
    queue=$(find "out/$t/default/queue" -type f -name 'id:*' | wc -l)
    if [ "$crashes" -gt 0 ]; then
        mkdir -p "crashes/$t"
        find out/$t/*/crashes -type f -name 'id:*' -exec cp {} "crashes/$t/" \;
        status=1
    fi
    rm -rf "out/$t.prof" && mkdir -p "out/$t.prof"
    find "out/$t"/*/queue -type f -name 'id:*' -print0 |
        LLVM_PROFILE_FILE="out/$t.prof/%p-%m.profraw" xargs -0 -n 200 target/cov/release/replay "$t"
    "$llvm_bin/llvm-profdata" merge -sparse "out/$t.prof"/*.profraw -o "out/$t.profdata"
    # shellcheck disable=SC2086
    cover=$("$llvm_bin/llvm-cov" report target/cov/release/replay -instr-profile="out/$t.profdata" ${src[$t]} |
        awk '/^TOTAL/ {print $(NF-3) " of lines (" $(NF-5) " lines)"}')
    printf '%-8s %12s %8s %8s %s\n' "$t" "$n" "$crashes" "$queue" "$cover"
done
exit $status
