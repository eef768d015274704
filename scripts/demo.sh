#!/usr/bin/env bash
# The whole demo on one machine: flask-app-rs (with some chaos),
# custom-metrics-example and a real Prometheus running the repository's
# scrape configuration and rules, with traffic driven at the hello service.
# A second flask-app-rs instance ("downstream") is what the first one's
# `GET /downstream` calls: one trace across two services (server, client,
# server spans), in the span files of both.
# Ctrl-C stops everything; so does the end of the traffic (DEMO_DURATION).
#
# Settings (environment): APP_PORT (8080), FLASK_METRICS_PORT (9090),
# CUSTOM_METRICS_PORT (9091), PROMETHEUS_PORT (9095), DOWNSTREAM_PORT (8081),
# DOWNSTREAM_METRICS_PORT (9092), DASHBOARD_PORT (9096), CHAOS_TARGET_PERCENT (10),
# DEMO_SCRAPE_INTERVAL (5s), DEMO_DURATION (1800 seconds of traffic),
# DEMO_BUILD_PROFILE (release, or dev for a quicker build).
set -euo pipefail
cd "$(dirname "$0")/.."

app_port=${APP_PORT:-8080}
flask_metrics_port=${FLASK_METRICS_PORT:-9090}
custom_metrics_port=${CUSTOM_METRICS_PORT:-9091}
prometheus_port=${PROMETHEUS_PORT:-9095}
downstream_port=${DOWNSTREAM_PORT:-8081}
downstream_metrics_port=${DOWNSTREAM_METRICS_PORT:-9092}
dashboard_port=${DASHBOARD_PORT:-9096}
chaos=${CHAOS_TARGET_PERCENT:-10}
interval=${DEMO_SCRAPE_INTERVAL:-5s}
duration=${DEMO_DURATION:-1800}
profile=${DEMO_BUILD_PROFILE:-release}

scripts/install-test-deps.sh >/dev/null
echo "building ($profile)..."
cargo build --quiet --profile "$profile" -p flask-app-rs -p custom-metrics-example
bin=${CARGO_TARGET_DIR:-target}/$([[ $profile == dev ]] && echo debug || echo "$profile")

work=$(mktemp -d)
pids=()
cleanup() {
    trap - EXIT INT TERM
    # The traffic loop may have SIGTERM ignored (a background subshell keeps
    # the dispositions its shell inherited), so it also looks for this file.
    touch "$work/stop"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
    echo "demo stopped; everything it started is gone"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The repository's Prometheus configuration and rules, with Kubernetes pod
# discovery swapped for files that describe local "pods" the way pod
# discovery would, so the original's relabelling runs unchanged.
python3 ops/prometheus/localize.py ops/prometheus/prometheus.yml "$work/prometheus.yml" "$interval"
mkdir -p "$work/rules" "$work/targets"
cp ops/prometheus/rules/*.yml "$work/rules/"
pod() { # address, container port name, app, container
    cat <<JSON
  {"targets": ["$1"], "labels": {
    "__meta_kubernetes_namespace": "local",
    "__meta_kubernetes_pod_name": "$3-local",
    "__meta_kubernetes_pod_container_name": "$4",
    "__meta_kubernetes_pod_container_port_name": "$2",
    "__meta_kubernetes_pod_host_ip": "127.0.0.1",
    "__meta_kubernetes_pod_label_app": "$3",
    "__meta_kubernetes_pod_label_name": "$3"}}
JSON
}
{
    echo "["
    pod "127.0.0.1:$flask_metrics_port" flask-metrics flask-app flask-app-rs
    echo ","
    pod "127.0.0.1:$custom_metrics_port" custom-metrics custom-metrics-example custom-metrics-example
    echo ","
    # The application port: not named *-metrics, so the relabelling drops it.
    pod "127.0.0.1:$app_port" http flask-app flask-app-rs
    echo "]"
} > "$work/targets/local.json"
promtool check config "$work/prometheus.yml" >/dev/null

# Spans as readable lines in a file each (no collector runs locally); set
# OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT to use one.
export OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:-stdout}
PORT=$app_port METRICS_PORT=$flask_metrics_port BIND_ADDRESS=127.0.0.1 \
    CHAOS_TARGET_PERCENT=$chaos RUST_LOG=${RUST_LOG:-warn} \
    DOWNSTREAM_URL="http://127.0.0.1:$downstream_port/hello/upstream" "$bin/flask-app-rs" \
    >"$work/flask-app-rs.spans" &
pids+=($!)
PORT=$downstream_port METRICS_PORT=$downstream_metrics_port BIND_ADDRESS=127.0.0.1 \
    OTEL_SERVICE_NAME=flask-app-rs-downstream RUST_LOG=${RUST_LOG:-warn} "$bin/flask-app-rs" \
    >"$work/downstream.spans" &
pids+=($!)
METRICS_PORT=$custom_metrics_port BIND_ADDRESS=127.0.0.1 RUST_LOG=${RUST_LOG:-warn} \
    "$bin/custom-metrics-example" >"$work/custom-metrics-example.spans" &
pids+=($!)
# Exemplar storage on: the duration histogram's buckets link to traces.
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn \
    --enable-feature=exemplar-storage &
pids+=($!)

# The Cloud Monitoring dashboard, drawn locally against this Prometheus
# (ops/dashboards/local: static files; the page queries Prometheus itself).
python3 -m http.server "$dashboard_port" --bind 127.0.0.1 --directory ops/dashboards \
    >/dev/null 2>&1 &
pids+=($!)

wait_for() { # url
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "error: $1 did not answer within 30s" >&2
    exit 1
}
wait_for "http://127.0.0.1:$app_port/healthz"
wait_for "http://127.0.0.1:$downstream_port/healthz"
wait_for "http://127.0.0.1:$custom_metrics_port/metrics"
wait_for "http://127.0.0.1:$prometheus_port/-/ready"
wait_for "http://127.0.0.1:$dashboard_port/local/index.html"

# Traffic: about 30 requests a second for DEMO_DURATION seconds, on every
# route, unknown paths included; bounded in count and time.
(
    app="http://127.0.0.1:$app_port"
    for ((i = 0; i < duration; i++)); do
        [[ -e $work/stop ]] && break
        curl -s --max-time 5 "$app/?[1-20]" "$app/hello/{alice,bob,carol}" \
            "$app/delay/{20,150}" "$app/downstream" "$app/no/such/page" "$app/wp-login.php" \
            >/dev/null || true
        sleep 1
    done
) &
pids+=($!)
traffic=$!

cat <<INFO
ready
  hello service    http://127.0.0.1:$app_port/  (chaos: $chaos% of requests fail)
  its metrics      http://127.0.0.1:$flask_metrics_port/metrics
  custom metric    http://127.0.0.1:$custom_metrics_port/metrics
  Prometheus       http://127.0.0.1:$prometheus_port/  (targets: /targets, rules: /rules, alerts: /alerts)
  dashboard        http://127.0.0.1:$dashboard_port/local/?prometheus=http://127.0.0.1:$prometheus_port
    (ops/dashboards/flask-app-rs.json drawn locally, exemplars on the latency chart)
  downstream       http://127.0.0.1:$downstream_port/  (what GET /downstream calls)
  spans ($OTEL_TRACES_EXPORTER)  $work/flask-app-rs.spans, $work/downstream.spans, $work/custom-metrics-example.spans
    (a trace of GET /downstream is in both flask-app-rs files: grep its trace id)
Queries to try in Prometheus:
  sum by (status) (rate(flask_http_request_total[1m]))
  histogram_quantile(0.99, sum by (le, path) (rate(flask_http_request_duration_seconds_bucket[1m])))
  app:flask_http_request_errors:ratio_rate5m
  rate(custom_metric_example_total[1m])
Traffic runs for $duration s. Press Ctrl-C to stop everything.
INFO

wait "$traffic"
