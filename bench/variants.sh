# The variants the benchmarks compare, sourced by run.sh and instructions.sh.
#
# "bare" is the hello app with one worker and nothing else. Ours are the
# flask-app-rs binary itself, started only with environment variables as a
# user would (its defaults, one worker, standard error to a file):
#
#   metrics      OTEL_TRACES_EXPORTER=none RUST_LOG=warn
#   full-http    every request traced (always_on), OTLP http/protobuf to the
#                sink, OTEL_BSP_SCHEDULE_DELAY=1000, RUST_LOG=info: the hello
#                log line, one per request (ACCESS_LOG=false)
#   full-grpc    the same over OTLP gRPC
#   sampled-10   parentbased_traceidratio 0.1, OTLP http/protobuf, RUST_LOG=info,
#                ACCESS_LOG=false
#   full-access  full-http with the access log line too (flask-app-rs's
#                default): two lines per request
#   standard     the same app on tracing-actix-web, tracing-opentelemetry,
#                the SDK's batch processor and tracing-subscriber's JSON lines
#                (every request traced), for reference
#   actix-web-prom  actix-web-prom 0.10's metrics, for reference
#   metrics-mw   the bare app with our metrics middleware alone (no service
#                code): what the middleware costs by itself
#
# variant_env NAME SINK_GRPC_PORT SINK_HTTP_PORT prints the environment of a
# flask-app-rs variant (nothing for the hello-server ones);
# variant_command NAME prints the program.

target_dir=${CARGO_TARGET_DIR:-target}

variant_command() {
    case $1 in
        bare | metrics-mw | standard | actix-web-prom) echo "$target_dir/release/hello-server" ;;
        *) echo "$target_dir/release/flask-app-rs" ;;
    esac
}

# Arguments of the hello-server variants.
variant_args() { # name port metrics_port sink_http
    case $1 in
        metrics-mw)
            echo "--variant metrics --port $2 --metrics-port $3 --otlp-port $4" ;;
        bare | standard | actix-web-prom)
            echo "--variant $1 --port $2 --metrics-port $3 --otlp-port $4" ;;
        *) echo "" ;;
    esac
}

variant_env() { # name port metrics_port sink_grpc sink_http
    local name=$1 port=$2 metrics_port=$3 grpc=$4 http=$5
    case $name in
        bare | metrics-mw | standard | actix-web-prom) return ;;
    esac
    echo "PORT=$port METRICS_PORT=$metrics_port BIND_ADDRESS=127.0.0.1 WORKERS=1"
    case $name in
        metrics)
            echo "OTEL_TRACES_EXPORTER=none RUST_LOG=warn" ;;
        full-http | full-access)
            echo "OTEL_TRACES_SAMPLER=always_on OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$http"
            echo "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_BSP_SCHEDULE_DELAY=1000 RUST_LOG=info"
            [[ $name == full-access ]] && echo "ACCESS_LOG=true" || echo "ACCESS_LOG=false" ;;
        full-grpc)
            echo "OTEL_TRACES_SAMPLER=always_on OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$grpc"
            echo "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_BSP_SCHEDULE_DELAY=1000 RUST_LOG=info ACCESS_LOG=false" ;;
        sampled-10)
            echo "OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1"
            echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$http OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
            echo "OTEL_BSP_SCHEDULE_DELAY=1000 RUST_LOG=info ACCESS_LOG=false" ;;
        *)
            echo "unknown variant: $name" >&2
            return 1 ;;
    esac
}

# Starts a variant in the background with a prefix command (taskset,
# valgrind, ...); sets $variant_pid. Standard error goes to $3 (give
# /dev/null, as the CPU benchmark does, to leave the cost of a log pipe
# out of the figures).
start_variant() { # name port log prefix...
    local name=$1 port=$2 log=$3
    shift 3
    local metrics_port=$((port + 1)) grpc=$((port + 2)) http=$((port + 3))
    local command
    command=$(variant_command "$name")
    # shellcheck disable=SC2046
    env $(variant_env "$name" "$port" "$metrics_port" "$grpc" "$http") \
        "$@" "$command" $(variant_args "$name" "$port" "$metrics_port" "$http") \
        >/dev/null 2>"$log" &
    variant_pid=$!
}

# Spans exported and dropped by a flask-app-rs variant, from its scrape.
span_counts() { # metrics_port
    curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null | awk '
        /^otel_spans_exported_total / { exported += $2 }
        /^otel_spans_dropped_total\{/ { dropped += $2 }
        END { printf "%d exported, %d dropped", exported, dropped }'
}
