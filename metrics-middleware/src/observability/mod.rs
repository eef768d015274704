//! The entry point: request metrics, traces, logs, the scrape server and one
//! shutdown, set up together, and one middleware for the app.
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
//!     observability.shutdown()?; // last spans, last scrape, last log lines
//!     Ok(())
//! }
//! ```
//!
//! Levels, as metrics-exporter-prometheus has them:
//! [`build`](ObservabilityBuilder::build) sets nothing global and listens on
//! nothing: compose [`Observability::log_layer`] and
//! [`Observability::span_layer`] into a subscriber of your own and serve
//! [`Observability::render`] where you like.
//! [`install`](ObservabilityBuilder::install) also installs logging (the
//! global `tracing` subscriber and `log` logger), sets OpenTelemetry's global
//! tracer provider and propagator (so libraries using `opentelemetry::global`
//! join the request's trace), and starts the scrape server on a thread of its
//! own, whatever runtime the application uses.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use prometheus::{Opts, Registry};

mod builder;
mod error;

pub use builder::ObservabilityBuilder;
pub use error::{SetupError, ShutdownError};

use crate::logging::{CloudLoggingLayer, FlushGuard, LogSink};
use crate::metrics_server::RunningMetricsServer;
use crate::middleware::ObservabilityMiddleware;
use crate::telemetry::{SpanBridge, Telemetry};
use crate::{BuildError, HttpMetrics, RouteCounter};

/// Everything observability needs at run time; see the module docs. Cheap
/// to clone, `Send` and `Sync`.
#[derive(Clone)]
pub struct Observability {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: HttpMetrics,
    telemetry: Telemetry,
    logs: Option<LogSink>,
    middleware: ObservabilityMiddleware,
    shutdown_timeout: Duration,
    /// Held until shutdown.
    running: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    metrics_server: Option<RunningMetricsServer>,
    flush_logs: Option<FlushGuard>,
}

impl std::fmt::Debug for Observability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observability")
            .field("middleware", &self.inner.middleware)
            .field("telemetry", &self.inner.telemetry)
            .field("logs", &self.inner.logs)
            .finish_non_exhaustive()
    }
}

impl Observability {
    /// A builder with the defaults: standard metric names on a new registry,
    /// traces as the `OTEL_*` variables say, logs as `RUST_LOG` and
    /// `LOG_FORMAT` say, the scrape server on `0.0.0.0:9090`.
    pub fn builder() -> ObservabilityBuilder {
        ObservabilityBuilder::new()
    }

    /// The middleware for the app: wrap with it last (outermost).
    pub fn middleware(&self) -> ObservabilityMiddleware {
        self.inner.middleware.clone()
    }

    /// The registry that holds every metric: register your own on it.
    pub fn registry(&self) -> &Registry {
        self.inner.metrics.registry()
    }

    /// The request metrics.
    pub fn metrics(&self) -> &HttpMetrics {
        &self.inner.metrics
    }

    /// A counter of the requests reaching the resource or scope it wraps;
    /// see [`HttpMetrics::route_counter`].
    ///
    /// # Errors
    ///
    /// [`BuildError`] if the name is invalid or registered already.
    pub fn route_counter(&self, opts: Opts) -> Result<RouteCounter, BuildError> {
        self.inner.metrics.route_counter(opts)
    }

    /// Every metric, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.inner.metrics.render()
    }

    /// The traces: the tracer for spans of one's own, the resource, the
    /// Google Cloud project.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// A layer that writes `tracing` events as this crate's log lines, for
    /// a subscriber the application builds itself; `None` if logging is off.
    pub fn log_layer(&self) -> Option<CloudLoggingLayer> {
        self.inner.logs.as_ref().map(LogSink::layer)
    }

    /// Where log lines go; `None` if logging is off.
    pub fn log_sink(&self) -> Option<&LogSink> {
        self.inner.logs.as_ref()
    }

    /// A layer that exports `tracing` spans opened inside sampled requests as
    /// child spans of the request's span, for a subscriber of one's own.
    pub fn span_layer(&self) -> SpanBridge {
        SpanBridge::new(self.inner.telemetry.provider().tracer("tracing"))
    }

    /// What the client integrations ([`client`](crate::client)) make client
    /// spans with: this service's tracer, so the spans are exported with
    /// its server spans.
    #[cfg(any(feature = "reqwest", feature = "awc"))]
    pub fn client_tracer(&self) -> crate::client::ClientTracer {
        crate::client::ClientTracer::new(
            self.inner
                .telemetry
                .provider()
                .tracer_with_scope(crate::client::scope()),
        )
    }

    /// Every metric of the registry in `format` (OpenMetrics with the
    /// exemplars), for serving a scrape where you like.
    pub fn render_as(&self, format: crate::text_format::Format) -> String {
        self.inner.metrics.render_as(format)
    }

    /// Where exemplars are kept: the request-duration histogram's, and any
    /// histogram of the application's made with
    /// [`Exemplars::histogram`](crate::metrics::Exemplars::histogram).
    pub fn exemplars(&self) -> &crate::metrics::Exemplars {
        self.inner.metrics.exemplars()
    }

    /// The scrape server's address, once [`install`](ObservabilityBuilder::install)
    /// started it.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.running()
            .metrics_server
            .as_ref()
            .map(RunningMetricsServer::local_addr)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Call once the application server has drained its requests: sends the
    /// spans still queued (within the shutdown timeout, 5 s by default),
    /// stops the scrape server, and writes the last log lines. Later calls
    /// do nothing.
    ///
    /// # Errors
    ///
    /// [`ShutdownError`] if spans could not be sent in time (they are
    /// counted as dropped); everything else is stopped all the same.
    pub fn shutdown(&self) -> Result<(), ShutdownError> {
        let spans = self
            .inner
            .telemetry
            .shutdown(self.inner.shutdown_timeout)
            .map_err(ShutdownError::new);
        let mut running = self.running();
        if let Some(server) = running.metrics_server.take() {
            server.stop();
        }
        if spans.as_ref().is_err() {
            if let Err(err) = &spans {
                log::warn!("{err}");
            }
        }
        drop(running.flush_logs.take());
        spans
    }
}
