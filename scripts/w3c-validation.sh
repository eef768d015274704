#!/usr/bin/env bash
# Runs the official W3C Trace Context validation suite (vendored in
# third_party/w3c-trace-context-test) against metrics-middleware's example
# service (examples/w3c_validation.rs): every case, at spec level 2 and
# strict level 2. Exits non-zero if any case fails. Part of scripts/test.sh.
#
#   scripts/w3c-validation.sh
#
# Needs python3 with aiohttp (scripts/install-test-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

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

cd third_party/w3c-trace-context-test
if ! SPEC_LEVEL=2 STRICT_LEVEL=2 HARNESS_PORT=$harness_port HARNESS_TIMEOUT=10 \
        python3 test.py "http://127.0.0.1:$service_port/test" 2>&1 | tail -n 4; then
    echo "the service's log:" >&2
    cat "$log" >&2
    exit 1
fi
