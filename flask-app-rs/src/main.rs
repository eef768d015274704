//! Run with: `cargo run -p flask-app-rs`
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use actix_web::HttpServer;
use flask_app_rs::settings::Settings;
use flask_app_rs::{app, AppState};
use metrics_middleware::{BuildError, MetricsServer, MetricsServerError};

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Metrics(#[from] BuildError),
    #[error("{0} (set by --metrics-port or METRICS_PORT)")]
    MetricsServer(#[from] MetricsServerError),
    #[error("cannot listen on {addr} (set by --port or PORT): {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("server failed: {0}")]
    Serve(io::Error),
}

fn main() -> ExitCode {
    let settings: Settings = metrics_middleware::cli::parse_or_exit();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    metrics_middleware::cli::exit_code(actix_web::rt::System::new().block_on(run(settings)))
}

async fn run(settings: Settings) -> Result<(), StartError> {
    let state = AppState::new(settings.chaos_target_percent)?;

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
        "listening on {addr}, metrics on {metrics_addr}/metrics, {} workers, chaos {}",
        settings.workers(),
        settings.chaos_target_percent
    );

    // Actix stops accepting on SIGTERM or SIGINT and waits for in-flight
    // requests (up to the shutdown timeout) before this returns.
    let served = server.await;
    log::info!("application server stopped; stopping the metrics server");
    metrics_handle.stop(true).await;
    served.map_err(StartError::Serve)
}
