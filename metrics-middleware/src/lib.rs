//! Observability for [Actix-web] services on Kubernetes and Google Cloud.
//!
//! Add one middleware and one server to an Actix app and it gets Prometheus
//! request metrics labelled by method, route template and status, process
//! metrics, your own metrics on the same registry, and a scrape endpoint on a
//! port of its own.
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use metrics_middleware::{HttpMetrics, MetricsServer};
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let metrics = HttpMetrics::builder().exclude_path("/healthz").build()?;
//!
//!     // `GET /metrics` on port 9090, away from the public port.
//!     let scrape = MetricsServer::builder(metrics.registry().clone())
//!         .bind(([0, 0, 0, 0], 9090))
//!         .run()?;
//!     let scrape_handle = scrape.handle();
//!     actix_web::rt::spawn(scrape);
//!
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(metrics.clone())
//!             .route("/users/{id}", web::get().to(|| async { "a user" }))
//!     })
//!     .bind(("0.0.0.0", 8080))?
//!     .run()
//!     .await?;
//!     scrape_handle.stop(true).await;
//!     Ok(())
//! }
//! ```
//!
//! # Where things are
//!
//! | concern | module |
//! |---|---|
//! | request metrics: builder, names, middleware | [`metrics`] |
//! | the names of the original Flask service | [`Naming::flask_exporter`] |
//! | a counter for one route or scope | [`RouteCounter`] |
//! | `process_*` metrics and `rust_build_info` | [`process`] |
//! | the scrape endpoint on its own port | [`metrics_server`] |
//! | the text exposition format | [`text_format`] |
//! | traces: settings, resource (GKE/GCE), spans, exporters | [`telemetry`] |
//! | log lines joined to traces in Cloud Logging | [`logging`] |
//! | flags and environment variables (`cli` feature) | `cli` |
//!
//! [Actix-web]: https://actix.rs
#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod logging;
pub mod metrics;
pub mod metrics_server;
pub mod middleware;
pub mod observability;
pub mod process;
pub mod telemetry;
pub mod text_format;

pub use metrics::{
    BuildError, Dimension, HttpMetrics, HttpMetricsBuilder, MetricSpec, Naming, RouteCounter,
};
pub use metrics_server::{MetricsServer, MetricsServerBuilder, MetricsServerError};
pub use middleware::{Exclude, ObservabilityMiddleware};
pub use observability::{Observability, ObservabilityBuilder, SetupError, ShutdownError};
pub use process::BuildInfo;

/// The `prometheus` crate this library records into, re-exported so that an
/// application registers its own metrics with the very same version.
pub use prometheus;

/// The OpenTelemetry API this library is built on (0.32), re-exported so that
/// an application names the very same `Context`, `Tracer` and propagators:
/// a second version in the build would be a different type.
pub use opentelemetry;
/// The OpenTelemetry SDK (0.32), for the tracer provider and its types.
pub use opentelemetry_sdk;
/// The `tracing-subscriber` version of this crate's layers.
pub use tracing_subscriber;
