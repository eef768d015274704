//! Run with: `cargo run -p flask-app-rs`
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use actix_web::HttpServer;
use flask_app_rs::settings::Settings;
use flask_app_rs::{app, observability, AppState, Downstream};
use metrics_middleware::{cli, BuildError};

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Metrics(#[from] BuildError),
    #[error("cannot listen on {addr} (set by --port or PORT): {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("server failed: {0}")]
    Serve(io::Error),
    #[error("downstream client (DOWNSTREAM_URL): {0}")]
    Downstream(String),
}

fn main() -> ExitCode {
    let settings: Settings = cli::parse_or_exit();
    let observability = cli::install_or_exit(
        settings
            .telemetry
            .apply(observability())
            .access_log(settings.access_log)
            .metrics_address((settings.bind_address, settings.metrics_port)),
        "--metrics-port or METRICS_PORT",
    );
    let result = AppState::new(observability.clone(), settings.chaos_target_percent)
        .map_err(RunError::from)
        .and_then(|state| match &settings.downstream_url {
            Some(url) => Downstream::new(
                url.clone(),
                observability.client_tracer(),
                std::time::Duration::from_secs(10),
            )
            .map(|downstream| state.with_downstream(downstream))
            .map_err(RunError::Downstream),
            None => Ok(state),
        })
        .and_then(|state| actix_web::rt::System::new().block_on(run(&settings, state)));
    // After SIGTERM has drained the requests: the last spans, the last
    // scrape, the last log lines.
    let _ = observability.shutdown();
    cli::exit_code(result)
}

async fn run(settings: &Settings, state: AppState) -> Result<(), RunError> {
    let addr = SocketAddr::new(settings.bind_address, settings.port);
    let app_state = state.clone();
    let server = HttpServer::new(move || app(app_state.clone()))
        .workers(settings.workers())
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .bind(addr)
        .map_err(|source| RunError::Bind { addr, source })?
        .run();
    log::info!(
        "listening on {addr}, metrics on {:?}, {} workers, chaos {}, traces to {:?}",
        state.observability().metrics_address(),
        settings.workers(),
        settings.chaos_target_percent,
        state.observability().telemetry().exporter(),
    );
    // Actix stops accepting on SIGTERM or SIGINT and waits for in-flight
    // requests (up to the shutdown timeout) before this returns.
    let served = server.await;
    log::info!("application server stopped");
    served.map_err(RunError::Serve)
}
