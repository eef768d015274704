#!/usr/bin/env bash
# Fuzzes what metrics-middleware reads from clients and settings with
# cargo-fuzz (libFuzzer, nightly Rust, AddressSanitizer): the propagators
# (`traceparent`, `tracestate` over several fields, `X-Cloud-Trace-Context`,
# the whole extraction with re-injection), the request attributes and access
# line from hostile headers (`attributes`), the `OTEL_*` settings (`config`)
# and the log line writer (`log_line`). Each target starts from its seeds
# (metrics-middleware/fuzz/seeds/, kept in the repository) and runs for
# SECONDS; any crash (a panic, a failed assertion, a sanitizer report) stops
# the script with the failing input under metrics-middleware/fuzz/artifacts/.
# scripts/test.sh runs a smoke of a few seconds each; a long run is the
# point of running it by hand.
#
#   scripts/fuzz.sh [SECONDS=60] [TARGET...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/../metrics-middleware/fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(traceparent tracestate cloud_trace_context extract attributes config log_line)

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is needed: cargo install cargo-fuzz" >&2; exit 1; }
cargo +nightly fuzz build -O >/dev/null 2>&1 || cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log=$(mktemp)
    if ! cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
            -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "$target: FAILED (input saved under fuzz/artifacts/$target)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(ls "corpus/$target" | wc -l)
    echo "$target: ${seconds}s, $runs executions, no crash; corpus $corpus inputs"
    rm -f "$log"
done
