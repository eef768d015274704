//! The scrape endpoint: `GET /metrics` in the Prometheus text format, or in
//! OpenMetrics with exemplars for a scraper that asks for it (as Prometheus
//! does), served on a port of its own so that the public port never exposes
//! metrics and the scrapes are not counted as application requests.
//!
//! The server runs one Actix worker; a scrape takes a few milliseconds even
//! with thousands of series, so one is plenty.
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use prometheus::Registry;
use thiserror::Error;

use crate::metrics::Exemplars;
use crate::text_format::{render_as, Format};

/// An Actix handler that answers a scrape of the `web::Data<Registry>` of
/// the app, in the format the scraper asks for (with the exemplars of a
/// `web::Data<Exemplars>`, if the app has one): mount it on an app port
/// with `web::resource("/metrics").route(web::get().to(...))` where a
/// separate port is not wanted.
pub async fn scrape(req: HttpRequest, registry: web::Data<Registry>) -> HttpResponse {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    let exemplars = req.app_data::<web::Data<Exemplars>>();
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        ))
        .body(render_as(&registry, format, exemplars.map(|e| &***e)))
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
    exemplars: Option<Exemplars>,
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
            exemplars: None,
        }
    }
}

impl MetricsServerBuilder {
    /// Shows these exemplars in OpenMetrics scrapes
    /// ([`HttpMetrics::exemplars`](crate::HttpMetrics::exemplars)).
    pub fn exemplars(mut self, exemplars: Exemplars) -> Self {
        self.exemplars = Some(exemplars);
        self
    }

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
        let addr = self.addr;
        let listener =
            TcpListener::bind(addr).map_err(|source| MetricsServerError { addr, source })?;
        self.serve(listener)
            .map_err(|source| MetricsServerError { addr, source })
    }

    fn serve(self, listener: TcpListener) -> io::Result<Server> {
        let registry = web::Data::new(self.registry);
        let exemplars = self.exemplars.map(web::Data::new);
        let path = self.path;
        Ok(HttpServer::new(move || {
            let app = App::new().app_data(registry.clone());
            let app = match &exemplars {
                Some(exemplars) => app.app_data(exemplars.clone()),
                None => app,
            };
            app.route(&path, web::get().to(scrape))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run())
    }

    /// Binds the port and serves it from a thread of its own, whatever
    /// runtime the application uses (`#[actix_web::main]`, `#[tokio::main]`
    /// or none). Stop it with [`RunningMetricsServer::stop`] once the
    /// application server has drained.
    ///
    /// # Errors
    ///
    /// [`MetricsServerError`], naming the address, if it cannot be bound.
    pub fn spawn(self) -> Result<RunningMetricsServer, MetricsServerError> {
        let addr = self.addr;
        let error = |source| MetricsServerError { addr, source };
        let listener = TcpListener::bind(addr).map_err(error)?;
        let local_addr = listener.local_addr().map_err(error)?;
        let (started_tx, started) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("metrics-server".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match self.serve(listener) {
                        Ok(server) => {
                            let _ = started_tx.send(Ok(server.handle()));
                            server.await
                        }
                        Err(err) => {
                            let _ = started_tx.send(Err(err));
                            Ok(())
                        }
                    }
                })
            })
            .map_err(error)?;
        let handle = match started.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(source)) => return Err(error(source)),
            Err(_) => return Err(error(io::Error::other("the metrics server thread ended"))),
        };
        Ok(RunningMetricsServer {
            addr: local_addr,
            handle,
            thread: Some(thread),
        })
    }
}

/// A metrics server running on its own thread; see
/// [`MetricsServerBuilder::spawn`].
#[derive(Debug)]
pub struct RunningMetricsServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl RunningMetricsServer {
    /// The address it listens on (with the port the system chose, if 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, finishes the scrapes in progress (at most a second)
    /// and waits for the thread to end.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The command is sent at once; its completion is the thread's end.
            drop(self.handle.stop(true));
            let _ = thread.join();
        }
    }
}

impl Drop for RunningMetricsServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}
