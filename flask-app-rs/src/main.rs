//! Run with: `cargo run -p flask-app-rs`
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::HttpServer;
use flask_app_rs::settings::Settings;
use flask_app_rs::{app, AppState};
use metrics_middleware::telemetry::TelemetryError;
use metrics_middleware::{BuildError, MetricsServer, MetricsServerError};

/// The longest SIGTERM waits for queued spans to be sent, after the
/// in-flight requests are done.
const SPAN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Metrics(#[from] BuildError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error("{0} (set by --metrics-port or METRICS_PORT)")]
    MetricsServer(#[from] MetricsServerError),
    #[error("cannot listen on {addr} (set by --port or PORT): {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("server failed: {0}")]
    Serve(io::Error),
}

fn main() -> ExitCode {
    let settings: Settings = metrics_middleware::cli::parse_or_exit();
    let telemetry_config = settings.telemetry.config_or_exit();
    let result = (|| {
        let state = AppState::new(settings.chaos_target_percent)?;
        // The guard is held to the end: dropping it writes the last log lines.
        let (telemetry, _flush_logs) = settings.telemetry.start(
            telemetry_config,
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            state.metrics().registry(),
        )?;
        actix_web::rt::System::new().block_on(run(settings, state.with_telemetry(telemetry)))
    })();
    metrics_middleware::cli::exit_code(result)
}

async fn run(settings: Settings, state: AppState) -> Result<(), StartError> {
    // Bind both ports before serving on either, so that a port in use ends
    // start-up before anything runs.
    let addr = SocketAddr::new(settings.bind_address, settings.port);
    let app_state = state.clone();
    let server = HttpServer::new(move || app(app_state.clone()))
        .workers(settings.workers())
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .bind(addr)
        .map_err(|source| StartError::Bind { addr, source })?;

    let metrics_addr = SocketAddr::new(settings.bind_address, settings.metrics_port);
    let metrics_server = MetricsServer::builder(state.metrics().registry().clone())
        .bind(metrics_addr)
        .run()?;
    let metrics_handle = metrics_server.handle();
    actix_web::rt::spawn(metrics_server);

    let server = server.run();
    log::info!(
        "listening on {addr}, metrics on {metrics_addr}/metrics, {} workers, chaos {}, traces to {:?}",
        settings.workers(),
        settings.chaos_target_percent,
        state.telemetry().exporter(),
    );

    // Actix stops accepting on SIGTERM or SIGINT and waits for in-flight
    // requests (up to the shutdown timeout) before this returns.
    let served = server.await;
    log::info!("application server stopped; sending the last spans");
    if let Err(err) = state.telemetry().shutdown(SPAN_FLUSH_TIMEOUT) {
        log::warn!("spans not sent before exit: {err}");
    }
    metrics_handle.stop(true).await;
    served.map_err(StartError::Serve)
}
