#!/usr/bin/env bash
# Runs the official W3C Trace Context validation suite against
# metrics-middleware's example service (examples/w3c_validation.rs): every
# case, at spec level 2 and strict level 2. Exits non-zero if any case fails.
#
#   scripts/w3c-validation.sh [SUITE_DIR]
#
# SUITE_DIR is the `test/` directory of a checkout of
# https://github.com/w3c/trace-context (W3C_TRACE_CONTEXT_TEST, or cloned
# into a temporary directory when it is not given). The suite is W3C's, not
# part of this repository; the repository's own tests of the propagators,
# derived from the specification, run in scripts/test.sh.
#
# Needs python3 with aiohttp (scripts/install-test-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${1:-${W3C_TRACE_CONTEXT_TEST:-}}
if [[ -z $suite ]]; then
    checkout=$(mktemp -d)
    git clone --quiet --depth 1 https://github.com/w3c/trace-context "$checkout/trace-context"
    suite=$checkout/trace-context/test
fi
[[ -f $suite/test.py ]] || { echo "no test.py in $suite" >&2; exit 1; }
suite=$(cd "$suite" && pwd)

cargo build --quiet --locked -p metrics-middleware --features reqwest --example w3c_validation
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
service_port=$(free_port)
harness_port=$(free_port)
log=$(mktemp)
PORT=$service_port RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/debug/examples/w3c_validation" >"$log" 2>&1 &
service=$!
trap 'kill $service 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$service_port") 2>/dev/null && break
    sleep 0.1
done

cd "$suite"
if ! SPEC_LEVEL=2 STRICT_LEVEL=2 HARNESS_PORT=$harness_port HARNESS_TIMEOUT=10 \
        python3 test.py "http://127.0.0.1:$service_port/test" 2>&1 | tail -n 4; then
    echo "the service's log:" >&2
    cat "$log" >&2
    exit 1
fi
