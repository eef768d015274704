#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what they need.
# This is the command the README gives and CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== formatting and lints" >&2
cargo fmt --all --check
# The optional parts are off by default (`gcp_trace`: opentelemetry-stackdriver
# is deprecated and brings a second tonic; `reqwest`, `awc`: client spans for
# services that call out); they are checked and tested here all the same.
features=metrics-middleware/gcp_trace,metrics-middleware/reqwest,metrics-middleware/awc
cargo clippy --workspace --all-targets --locked --features "$features" -- -D warnings
cargo clippy -p metrics-middleware --locked --no-default-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p metrics-middleware --no-deps --locked --quiet \
    --features reqwest,awc

echo "== tests: Rust workspace" >&2
cargo test --workspace --locked --features "$features"

echo "== drills, short: hostile headers, the collector down, SIGTERM under load, a soak" >&2
cargo build --workspace --locked --quiet
scripts/drills.py --short --binary "${CARGO_TARGET_DIR:-target}/debug/flask-app-rs"

echo "== fuzz smoke: every target of metrics-middleware/fuzz for a few seconds" >&2
scripts/fuzz.sh 3

echo "== tests: ops (manifests, Prometheus config and rules, dashboards, local stack)" >&2
python3 -m pytest -q ops/tests
