#!/usr/bin/env bash
# Server CPU time per request of each variant (bench/variants.sh) against the
# bare hello app, as a ratio measured side by side: the server pinned to core
# 0, wrk (and the OTLP sink that receives the spans) on core 1.
#
#   bench/run.sh [ROUNDS=9] [SECONDS=6]
#   VARIANTS="metrics full-http" bench/run.sh 11 6
#
# Standard error goes to /dev/null (BENCH_STDERR=FILE to keep it): log lines
# cost their formatting and the writer thread's write(2) calls, not a pipe.
#
# Each round runs, for every variant in a shuffled order, the bare app then
# the variant (a pair), each with a 2 s warm-up and SECONDS of
# `wrk -t1 -c32`. CPU per request is utime + stime of the server process from
# /proc/PID/stat over the measured seconds; the ratio of a pair is the bare
# app's CPU per request divided by the variant's, so 1.0 means free. The
# figure reported is the median of the per-pair ratios: a single round on this
# kind of machine swings by ±8%. Per-thread user and kernel time per request
# (from /proc/PID/task/*/stat) show where the rest goes, and for the traced
# variants the spans exported and dropped (from the service's own scrape).
# Not a test: the figures depend on the machine; the ratios are what to
# compare.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/variants.sh
rounds=${1:-9}
seconds=${2:-6}
connections=${CONNECTIONS:-32}
variants=(${VARIANTS:-metrics full-http full-grpc sampled-10})

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p bench -p flask-app-rs
port=18080
results=$(mktemp)
logs=$(mktemp -d)
clk_tck=$(getconf CLK_TCK)
taskset -c 1 "$target_dir/release/otlp-sink" $((port + 2)) $((port + 3)) >"$logs/sink.out" &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$logs" "$results"' EXIT

# utime and stime of a process (or a thread's stat file), in clock ticks.
cpu_ticks() { awk '{print $14, $15}' "$1"; }

# Per-thread ticks as "tid:name user sys" lines (thread names are cut to
# 15 characters, so two threads can share one).
thread_ticks() {
    for stat in /proc/"$1"/task/*/stat; do
        awk '{ match($0, /\(.*\)/); name = substr($0, RSTART + 1, RLENGTH - 2);
               gsub(/ /, "_", name); n = split(substr($0, RSTART + RLENGTH + 1), f, " ");
               print $1 ":" name, f[12], f[13] }' "$stat" 2>/dev/null
    done | sort
}

# Runs one variant; prints "cpu_us user_us sys_us requests rps" and leaves
# per-thread figures in $logs/threads.
measure() {
    local variant=$1
    start_variant "$variant" "$port" "${BENCH_STDERR:-/dev/null}" taskset -c 0
    local pid=$variant_pid
    for _ in $(seq 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
        sleep 0.05
    done
    taskset -c 1 wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$port/" >/dev/null
    local user0 sys0 user1 sys1
    read -r user0 sys0 < <(cpu_ticks "/proc/$pid/stat")
    thread_ticks "$pid" >"$logs/threads0"
    local out
    out=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/")
    read -r user1 sys1 < <(cpu_ticks "/proc/$pid/stat")
    thread_ticks "$pid" >"$logs/threads1"
    local requests rps
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    # Let the last batch of spans go before reading the counters.
    local spans=""
    if [[ $variant != bare && $variant != metrics* && $variant != standard && $variant != actix-web-prom ]]; then
        sleep 1.5
        spans=$(span_counts $((port + 1)))
    fi
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    join "$logs/threads0" "$logs/threads1" | awk -v hz="$clk_tck" -v n="$requests" '
        { u = ($4 - $2) / hz * 1e6 / n; s = ($5 - $3) / hz * 1e6 / n;
          sub(/^[0-9]+:/, "", $1);
          if (u + s > 0.005) printf "      %-18s user %.3f us  sys %.3f us per request\n", $1, u, s }' \
        >"$logs/threads"
    awk -v u=$((user1 - user0)) -v s=$((sys1 - sys0)) -v hz="$clk_tck" -v n="$requests" -v rps="$rps" -v spans="$spans" \
        'BEGIN { printf "%.3f %.3f %.3f %d %s %s\n", (u + s) / hz * 1e6 / n, u / hz * 1e6 / n, s / hz * 1e6 / n, n, rps, spans }'
}

for round in $(seq "$rounds"); do
    for variant in $(printf '%s\n' "${variants[@]}" | shuf); do
        read -r bare_cpu bare_user bare_sys bare_n bare_rps _ < <(measure bare)
        read -r cpu user sys n rps spans < <(measure "$variant")
        echo "$round $variant $cpu $user $sys $bare_cpu $bare_user $bare_sys $rps $bare_rps" >>"$results"
        printf "round %d %-12s %7.3f us/req (user %.3f, sys %.3f), bare %.3f: ratio %.3f; %s req/s" \
            "$round" "$variant" "$cpu" "$user" "$sys" "$bare_cpu" \
            "$(awk -v b="$bare_cpu" -v c="$cpu" 'BEGIN {print b / c}')" "$rps" >&2
        [[ -z ${spans:-} ]] || printf "; spans %s" "$spans" >&2
        echo >&2
        cat "$logs/threads" >&2
    done
done

echo
awk -v variants="${variants[*]}" '
function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
{ n[$2]++; k = n[$2]; ratio[$2, k] = $6 / $3; cpu[$2, k] = $3; user[$2, k] = $4; bcpu[$2, k] = $6; buser[$2, k] = $7 }
END {
    split(variants, order, " ")
    printf "%-12s %8s %10s %10s %10s %10s %8s\n", "variant", "pairs", "cpu ratio*", "us/req", "bare us", "user us", "bare user"
    for (i = 1; i in order; i++) {
        v = order[i]; m = n[v]
        for (k = 1; k <= m; k++) { r[k] = ratio[v, k]; c[k] = cpu[v, k]; b[k] = bcpu[v, k]; u[k] = user[v, k]; bu[k] = buser[v, k] }
        printf "%-12s %8d %10.3f %10.3f %10.3f %10.3f %8.3f\n", v, m, median(r, m), median(c, m), median(b, m), median(u, m), median(bu, m)
    }
    print "* median of the per-pair ratios (bare CPU per request / the variant'"'"'s): 1.0 is free"
}' "$results"
