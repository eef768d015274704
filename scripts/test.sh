#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what they need.
# This is the command the README gives and CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== formatting and lints" >&2
cargo fmt --all --check
# `gcp_trace` is off by default (opentelemetry-stackdriver is deprecated and
# brings a second tonic); it is checked and tested here all the same.
cargo clippy --workspace --all-targets --locked --features metrics-middleware/gcp_trace -- -D warnings
cargo clippy -p metrics-middleware --locked --no-default-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p metrics-middleware --no-deps --locked --quiet

echo "== tests: Rust workspace" >&2
cargo test --workspace --locked --features metrics-middleware/gcp_trace

echo "== tests: ops (manifests, Prometheus config and rules, dashboards, local stack)" >&2
python3 -m pytest -q ops/tests
