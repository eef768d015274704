//! Observability for [Actix-web] services on Kubernetes and Google Cloud:
//! Prometheus request metrics by method, route template and status on a
//! scrape port of their own, one OpenTelemetry server span per request in the
//! caller's trace (exported by OTLP or to Cloud Trace, with the GKE
//! resource), and JSON log lines that Cloud Logging files under their trace.
//!
//! One entry point sets it all up, and gives the app one middleware:
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use metrics_middleware::Observability;
//!
//! #[actix_web::main] // or #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let observability = Observability::builder()
//!         .service(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
//!         .exclude_path("/healthz")
//!         .install()?; // metrics on :9090, traces as OTEL_* says, JSON logs
//!     let middleware = observability.middleware();
//!     HttpServer::new(move || {
//!         App::new()
//!             .route("/users/{id}", web::get().to(|| async { "a user" }))
//!             .wrap(middleware.clone()) // the last `wrap`: outermost
//!     })
//!     .bind(("0.0.0.0", 8080))?
//!     .run()
//!     .await?;
//!     observability.shutdown()?;
//!     Ok(())
//! }
//! ```
//!
//! # Where things are
//!
//! | concern | module |
//! |---|---|
//! | the entry point: every part set up together, one shutdown | [`observability`] |
//! | the one middleware: exclusions, span hooks, where it goes | [`middleware`] |
//! | request metrics: builder, names, the metrics-only middleware | [`metrics`] |
//! | the names of the original Flask service | [`Naming::flask_exporter`] |
//! | a counter for one route or scope | [`RouteCounter`] |
//! | `process_*` metrics and `rust_build_info` | [`process`] |
//! | the scrape endpoint on its own port | [`metrics_server`] |
//! | the text exposition format | [`text_format`] |
//! | traces: settings, propagation, the request's context, exporters | [`telemetry`] |
//! | log lines joined to traces, the access log | [`logging`] |
//! | outgoing calls: client spans, trace headers (`reqwest`, `awc` features) | `client` |
//! | flags and environment variables (`cli` feature) | `cli` |
//!
//! [Actix-web]: https://actix.rs
#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(any(feature = "reqwest", feature = "awc"))]
pub mod client;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
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
