#!/usr/bin/env bash
# Server instructions per request of the hello app variants, counted by
# valgrind's callgrind: steady whatever else the machine does, unlike
# requests/s. Each variant runs twice, with N1 and N2 sequential keep-alive
# requests; (I(N2) - I(N1)) / (N2 - N1) cancels start-up and shutdown.
#
#   bench/instructions.sh [N1=2000] [N2=12000]
#   VARIANTS="bare metrics traced standard" bench/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n1=${1:-2000}
n2=${2:-12000}
variants=(${VARIANTS:-bare metrics actix-web-prom})
path=${BENCH_PATH:-/}

command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
cargo build --release -q -p bench
server=target/release/hello-server
port=18180
work=$(mktemp -d)
# The traced variants export to this sink (not counted: another process).
target/release/otlp-sink $((port + 2)) $((port + 3)) >/dev/null &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$work"' EXIT

# Total instructions of one server run that answers $2 requests.
count() {
    local variant=$1 requests=$2 out="$work/callgrind.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" -q \
        "$server" --variant "$variant" --port "$port" --metrics-port $((port + 1)) \
        --otlp-port $((port + 3)) 2>/dev/null &
    local pid=$!
    for _ in $(seq 600); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
        sleep 0.1
    done
    curl -s -o /dev/null "http://127.0.0.1:${port}${path}?[1-$requests]"
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^summary:/ {print $2}' "$out"
}

printf "%-16s %16s %8s\n" variant "instr/request" ratio
base=""
for variant in "${variants[@]}"; do
    i1=$(count "$variant" "$n1")
    i2=$(count "$variant" "$n2")
    per=$(( (i2 - i1) / (n2 - n1) ))
    [[ -n $base ]] || base=$per
    printf "%-16s %16d %8.3f\n" "$variant" "$per" "$(awk -v b="$base" -v p="$per" 'BEGIN {print b / p}')"
done
