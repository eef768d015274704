//! The scrape endpoint: `GET /metrics` in the Prometheus text format, served
//! on a port of its own so that the public port never exposes metrics and the
//! scrapes are not counted as application requests.
//!
//! The server runs one Actix worker; a scrape takes a few milliseconds even
//! with thousands of series, so one is plenty.
use std::io;
use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus::Registry;
use thiserror::Error;

use crate::text_format::{render, CONTENT_TYPE};

/// An Actix handler that answers a scrape of `registry`: mount it on an app
/// port with `web::resource("/metrics").route(web::get().to(...))` where a
/// separate port is not wanted.
pub async fn scrape(registry: web::Data<Registry>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)))
        .body(render(&registry))
}

/// Why the metrics server could not start.
#[derive(Debug, Error)]
#[error("cannot listen for metrics scrapes on {addr}: {source}")]
pub struct MetricsServerError {
    addr: SocketAddr,
    #[source]
    source: io::Error,
}

impl MetricsServerError {
    /// The address that could not be bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Builds the metrics server.
///
/// ```no_run
/// use metrics_middleware::{prometheus::Registry, MetricsServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let server = MetricsServer::builder(Registry::new()).bind(([127, 0, 0, 1], 9090)).run()?;
/// server.await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MetricsServerBuilder {
    registry: Registry,
    addr: SocketAddr,
    path: String,
}

/// A server for the scrape endpoint; see [`MetricsServer::builder`].
#[derive(Debug)]
pub struct MetricsServer;

impl MetricsServer {
    /// Serves `registry` on `0.0.0.0:9090` at `/metrics` unless told otherwise.
    pub fn builder(registry: Registry) -> MetricsServerBuilder {
        MetricsServerBuilder {
            registry,
            addr: SocketAddr::from(([0, 0, 0, 0], 9090)),
            path: "/metrics".to_owned(),
        }
    }
}

impl MetricsServerBuilder {
    /// The address to listen on; `0.0.0.0:9090` by default.
    pub fn bind(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.addr = addr.into();
        self
    }

    /// The scrape path; `/metrics` by default. Every other path answers 404.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Binds the port and returns the server, not yet running: spawn or await
    /// it. It does not listen for signals: stop it through its handle once the
    /// application server has drained, so that the last scrape still sees the
    /// final counts.
    ///
    /// # Errors
    ///
    /// [`MetricsServerError`], naming the address, if it cannot be bound.
    pub fn run(self) -> Result<Server, MetricsServerError> {
        let registry = web::Data::new(self.registry);
        let path = self.path;
        let addr = self.addr;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(registry.clone())
                .route(&path, web::get().to(scrape))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)
        .map_err(|source| MetricsServerError { addr, source })?
        .run();
        Ok(server)
    }
}
