#!/usr/bin/env bash
# Requests/s and server CPU time per request of the hello app: bare, with our
# metrics middleware, with actix-web-prom, and (VARIANTS="bare traced
# standard") with a span per request exported over OTLP plus a JSON log line,
# ours against the standard tracing-actix-web + tracing-opentelemetry stack.
# One worker pinned to core 0; wrk (and, for the traced variants, the OTLP
# sink that receives the spans) on core 1; variants interleaved over several
# rounds in one run.
#
#   bench/run.sh [ROUNDS=3] [SECONDS=10]
#   VARIANTS="bare traced standard" bench/run.sh 5 10
#
# Prints the median of each variant and its ratio to the bare app. Not a
# test: the figures depend on the machine; the ratios are what to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-10}
connections=${CONNECTIONS:-32}
variants=(${VARIANTS:-bare metrics actix-web-prom})

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p bench
server=target/release/hello-server
port=18080
results=$(mktemp)
logs=$(mktemp -d)
clk_tck=$(getconf CLK_TCK)
sink_grpc=$((port + 2)); sink_http=$((port + 3))
taskset -c 1 target/release/otlp-sink "$sink_grpc" "$sink_http" >"$logs/sink.out" &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$logs" "$results"' EXIT

# utime and stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

for round in $(seq "$rounds"); do
    for variant in "${variants[@]}"; do
        taskset -c 0 "$server" --variant "$variant" --port "$port" --metrics-port $((port + 1)) \
            --otlp-port "$sink_http" 2>"$logs/$variant.log" &
        pid=$!
        for _ in $(seq 100); do
            curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
            sleep 0.05
        done
        taskset -c 1 wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$port/" >/dev/null
        read -r user0 sys0 < <(cpu_ticks "$pid")
        out=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/")
        read -r user1 sys1 < <(cpu_ticks "$pid")
        kill "$pid"; wait "$pid" 2>/dev/null || true
        requests=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        per_req() { awk -v t="$1" -v hz="$clk_tck" -v n="$requests" 'BEGIN {printf "%.3f", t / hz * 1e6 / n}'; }
        user_us=$(per_req $((user1 - user0)))
        sys_us=$(per_req $((sys1 - sys0)))
        echo "$round $variant $rps $user_us $sys_us" | tee -a "$results" >&2
        echo "    $(wc -l <"$logs/$variant.log") log lines; sink: $(tail -n1 "$logs/sink.out")" >&2
    done
done

echo
# Medians over rounds, and the median of per-round ratios to the bare app
# (each round runs the variants back to back, so a ratio within a round is
# less exposed to the machine's drift than a ratio of medians).
awk -v variants="${variants[*]}" '
function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
{ rps[$2, $1] = $3; user[$2, $1] = $4; sys[$2, $1] = $5; rounds[$1] = 1 }
END {
    split(variants, order, " ")
    base = order[1]
    printf "%-16s %11s %9s %13s %12s %11s\n", "variant", "requests/s", "ratio*", "cpu us/req", "user us/req", "cpu ratio*"
    for (k = 1; k in order; k++) {
        v = order[k]; n = 0
        for (r in rounds) {
            n++
            a[n] = rps[v, r]; c[n] = user[v, r] + sys[v, r]; u[n] = user[v, r]
            pr[n] = rps[v, r] / rps[base, r]
            pc[n] = (user[base, r] + sys[base, r]) / (user[v, r] + sys[v, r])
        }
        printf "%-16s %11.0f %9.3f %13.3f %12.3f %11.3f\n", v, median(a, n), median(pr, n), median(c, n), median(u, n), median(pc, n)
    }
    print "* median of per-round ratios to " base "; cpu ratio = bare cpu time per request / this one"
}' "$results"
