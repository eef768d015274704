#!/usr/bin/env bash
# Requests/s that our loadtester drives, against what wrk drives, at the bare
# hello app: the app's one worker pinned to core 0, the load generator (wrk or
# loadtester) pinned to core 1, alternating in the same run for several rounds.
#
#   bench/loadtester-vs-wrk.sh [ROUNDS=5] [SECONDS=8] [CONNECTIONS=32]
#
# For the loadtester, requests/s is the median of its per-second progress
# lines (steady state, as wrk measures it); its report's overall figure,
# start-up and shutdown included, is shown beside it. Each generator's own
# CPU time per request comes from /proc. Target: at least half of wrk's
# requests/s (the median of per-round ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-8}
connections=${3:-32}

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p bench -p loadtester
port=18680
taskset -c 0 target/release/hello-server --variant bare --port "$port" --metrics-port $((port + 1)) &
server=$!
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
hz=$(getconf CLK_TCK)


printf "%-6s %10s %8s %14s %12s %8s %8s\n" round "wrk rps" "wrk us" "loadtester rps" "(overall)" "lt us" ratio
ratios=()
for round in $(seq "$rounds"); do
    /usr/bin/time -f "%U %S" -o "$work/wrk.time" taskset -c 1 \
        wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/" > "$work/wrk.out"
    wrk_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
    wrk_requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
    wrk_us=$(awk -v n="$wrk_requests" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$work/wrk.time")

    /usr/bin/time -f "%U %S" -o "$work/lt.time" taskset -c 1 \
        target/release/loadtester -H "http://127.0.0.1:$port" -u "$connections" -r 1000 \
        -t "${seconds}s" --json-report "$work/report.json" --metrics-port $((port + 2)) \
        > /dev/null 2> "$work/lt.err"
    lt_rps=$(grep -E '^\[ *[0-9]+s\]' "$work/lt.err" | sed 1d | sed '$d' | awk '{print $3}' | sort -n |
        awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    lt_overall=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['requests_per_second']))" "$work/report.json")
    lt_requests=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$work/report.json")
    lt_us=$(awk -v n="$lt_requests" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$work/lt.time")
    ratio=$(awk -v a="$lt_rps" -v b="$wrk_rps" 'BEGIN {printf "%.3f", a / b}')
    ratios+=("$ratio")
    printf "%-6s %10.0f %8s %14.0f %12s %8s %8s\n" "$round" "$wrk_rps" "$wrk_us" "$lt_rps" "$lt_overall" "$lt_us" "$ratio"
done
printf "median ratio: %s (target: at least 0.5)\n" \
    "$(printf "%s\n" "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
