#!/usr/bin/env bash
# User-space instructions per request of each variant (bench/variants.sh),
# counted by valgrind's callgrind over every thread of the server (the span
# export thread and the log writer included): steady whatever else the
# machine does, unlike CPU time. Each variant runs twice, answering N1 and N2
# sequential keep-alive requests to GET /; (I(N2) - I(N1)) / (N2 - N1)
# cancels start-up and shutdown.
#
#   bench/instructions.sh [N1=2000] [N2=8000]
#   VARIANTS="bare metrics full-http" bench/instructions.sh
#
# Prints instructions per request, and the difference to the first variant.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/variants.sh
n1=${1:-2000}
n2=${2:-8000}
variants=(${VARIANTS:-bare metrics full-http full-grpc sampled-10})
path=${BENCH_PATH:-/}

command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
cargo build --release -q -p bench -p flask-app-rs
port=18180
work=$(mktemp -d)
# The traced variants export to this sink (not counted: another process).
"$target_dir/release/otlp-sink" $((port + 2)) $((port + 3)) >/dev/null &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$work"' EXIT

# Total instructions of one server run that answers $2 requests.
count() {
    local variant=$1 requests=$2 out="$work/callgrind.$1.$2"
    start_variant "$variant" "$port" "$work/$variant.log" \
        valgrind --tool=callgrind --callgrind-out-file="$out" -q
    local pid=$variant_pid
    for _ in $(seq 600); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
        sleep 0.1
    done
    curl -s -o /dev/null "http://127.0.0.1:${port}${path}?[1-$requests]"
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^summary:/ {print $2}' "$out"
}

printf "%-16s %14s %14s\n" variant "instr/request" "over first"
base=""
for variant in "${variants[@]}"; do
    i1=$(count "$variant" "$n1")
    i2=$(count "$variant" "$n2")
    per=$(((i2 - i1) / (n2 - n1)))
    [[ -n $base ]] || base=$per
    printf "%-16s %14d %+14d\n" "$variant" "$per" "$((per - base))"
done
