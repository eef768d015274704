//! The README's example: metrics, traces and logs on an Actix app.
//! Run with: `cargo run -p metrics-middleware --example quickstart`
use actix_web::{web, App, HttpServer};
use metrics_middleware::logging::{LogFormat, Logging};
use metrics_middleware::telemetry::{Telemetry, TraceContext};
use metrics_middleware::{prometheus::Opts, HttpMetrics, MetricsServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = HttpMetrics::builder()
        .exclude_path("/healthz")
        .build_info(metrics_middleware::build_info!())
        .build()?;

    // Your own metrics go on the same registry, into the same scrape.
    let orders = metrics.route_counter(Opts::new("orders_total", "Orders placed."))?;

    // Traces as the OTEL_* variables say (OTLP to localhost:4318 by default),
    // with the GKE/GCE resource; a bad value is an error naming the variable.
    let telemetry = Telemetry::builder()
        .default_service_name(env!("CARGO_PKG_NAME"))
        .service_version(env!("CARGO_PKG_VERSION"))
        .registry(metrics.registry().clone())
        .build()?;
    // JSON lines for Cloud Logging (text on a terminal), RUST_LOG, `log` bridged.
    let _flush_logs = Logging::builder()
        .format(LogFormat::detect())
        .gcp_project_id(telemetry.gcp_project_id())
        .registry(metrics.registry().clone())
        .init()?;

    actix_web::rt::System::new().block_on(async {
        // GET /metrics on its own port; stop it after the app has drained.
        let scrape = MetricsServer::builder(metrics.registry().clone())
            .bind(([0, 0, 0, 0], 9090))
            .run()?;
        let scrape_handle = scrape.handle();
        actix_web::rt::spawn(scrape);

        let for_workers = telemetry.clone();
        HttpServer::new(move || {
            App::new()
                .wrap(for_workers.middleware()) // one server span per request
                .wrap(metrics.clone()) // outermost: times the span's work too
                .route(
                    "/users/{id}",
                    web::get().to(|trace: TraceContext| async move {
                        log::info!("looking up a user"); // carries the trace and span ids
                        format!("trace {}", trace.trace_id().unwrap_or_default())
                    }),
                )
                .service(
                    web::resource("/orders")
                        .wrap(orders.clone())
                        .to(|| async { "ok" }),
                )
        })
        .bind(("0.0.0.0", 8080))?
        .run()
        .await?;
        scrape_handle.stop(true).await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // After SIGTERM has drained the requests: send the last spans.
    telemetry.shutdown(std::time::Duration::from_secs(5))?;
    Ok(())
}
