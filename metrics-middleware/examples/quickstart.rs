//! The README's quickstart: metrics, traces and logs on an Actix app.
//! Run with: `cargo run -p metrics-middleware --example quickstart`
use actix_web::{web, App, HttpServer};
use metrics_middleware::telemetry::TraceContext;
use metrics_middleware::Observability;

#[actix_web::main] // #[tokio::main] works the same
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let observability = Observability::builder()
        .service(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
        .exclude_path("/healthz")
        .install()?; // metrics on :9090, traces as OTEL_* says, JSON logs
    let middleware = observability.middleware();
    HttpServer::new(move || {
        App::new()
            .route(
                "/users/{id}",
                web::get().to(|trace: TraceContext| async move {
                    log::info!("looking up a user"); // carries the trace
                    format!("trace {}", trace.trace_id().unwrap_or_default())
                }),
            )
            .route("/healthz", web::get().to(|| async { "ok" }))
            .wrap(middleware.clone()) // the last `wrap`: outermost
    })
    .bind(("0.0.0.0", 8080))?
    .run()
    .await?;
    observability.shutdown()?; // the last spans and log lines
    Ok(())
}
