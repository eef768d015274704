//! Run with: `cargo run -p custom-metrics-example`
//!
//! A process with no web application that exposes one custom counter,
//! `custom_metric_example_total{app="custom-metrics-example",environment="staging"}`,
//! incremented every interval (5 s by default), next to the process metrics,
//! on the crate's metrics server. Each increment is a span of its own (a
//! background job traced as `OTEL_*` says), and its log line carries it.
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::rt::signal::unix::{signal, SignalKind};
use clap::Parser;
use metrics_middleware::cli::{self, TelemetryArgs};
use metrics_middleware::opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use metrics_middleware::prometheus::{IntCounter, Opts, Registry};
use metrics_middleware::{BuildError, HttpMetrics, Naming, Observability};

/// A custom Prometheus counter that rises by one every interval.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Settings {
    /// Port of the Prometheus scrape endpoint (`GET /metrics`).
    #[arg(long, env = "METRICS_PORT", default_value_t = 9090)]
    metrics_port: u16,

    /// Address the metrics port listens on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0")]
    bind_address: IpAddr,

    /// Time between two increments of the counter, such as `5s` or `500ms`.
    #[arg(long, env = "INCREMENT_INTERVAL", default_value = "5s", value_parser = parse_interval)]
    increment_interval: Duration,

    /// Tracing and logging (`OTEL_*`, `LOG_FORMAT`).
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval =
        humantime::parse_duration(text).map_err(|e| format!("{e} (try `5s` or `500ms`)"))?;
    if interval < Duration::from_millis(10) {
        return Err("must be at least 10ms".to_owned());
    }
    Ok(interval)
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Metrics(#[from] BuildError),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
}

fn main() -> ExitCode {
    let settings: Settings = cli::parse_or_exit();
    let observability = cli::install_or_exit(
        settings
            .telemetry
            .apply(Observability::builder())
            .service(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            // No HTTP server of its own: process metrics, no request metrics.
            .http_metrics(HttpMetrics::builder().naming(Naming::none()))
            .metrics_address((settings.bind_address, settings.metrics_port)),
        "--metrics-port or METRICS_PORT",
    );
    let result = custom_counter(observability.registry())
        .map_err(RunError::from)
        .and_then(|counter| {
            actix_web::rt::System::new().block_on(run(&settings, &observability, counter))
        });
    let _ = observability.shutdown();
    cli::exit_code(result)
}

/// Registers the counter of the original, with its constant labels.
fn custom_counter(registry: &Registry) -> Result<IntCounter, BuildError> {
    let name = "custom_metric_example_total";
    let register_error = |source| BuildError::Register {
        metric: name.to_owned(),
        source,
    };
    let counter = IntCounter::with_opts(
        Opts::new(name, "A custom counter incremented at a fixed interval")
            .const_label("app", "custom-metrics-example")
            .const_label("environment", "staging"),
    )
    .map_err(register_error)?;
    registry
        .register(Box::new(counter.clone()))
        .map_err(register_error)?;
    Ok(counter)
}

async fn run(
    settings: &Settings,
    observability: &Observability,
    counter: IntCounter,
) -> Result<(), RunError> {
    log::info!(
        "metrics on {:?}, incrementing every {}",
        observability.metrics_address(),
        humantime::format_duration(settings.increment_interval)
    );
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut ticks = actix_web::rt::time::interval(settings.increment_interval);
    let tracer = observability.telemetry().tracer();
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let span = tracer
                    .span_builder("increment custom_metric_example_total")
                    .with_kind(SpanKind::Internal)
                    .start(tracer);
                let _current = metrics_middleware::opentelemetry::Context::current_with_span(span)
                    .attach();
                counter.inc();
                log::info!("Custom metric incremented.");
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    log::info!("stopping");
    Ok(())
}
