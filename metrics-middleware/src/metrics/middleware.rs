use std::future::Ready;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::Error;
use prometheus::{IntCounter, Opts, Registry};

use super::instruments::Instruments;
use super::labels::RouteLabel;
use super::{BuildError, HttpMetricsBuilder, RouteCounter};
use crate::middleware::{ObservabilityMiddleware, ObservabilityService, ObservedBody};

/// Request metrics for an Actix app: a middleware (wrap the app with it) and
/// a handle on the registry it records into.
///
/// This is the metrics part alone; [`Observability`](crate::Observability)
/// gives one middleware with metrics, spans and the access log together.
/// Cloning is cheap; every clone and every worker thread records into the
/// same registry, so one process serves one scrape, whatever its thread count.
///
/// ```
/// use actix_web::{test, web, App};
/// use metrics_middleware::HttpMetrics;
///
/// # actix_web::rt::System::new().block_on(async {
/// let metrics = HttpMetrics::builder().process_metrics(false).build().unwrap();
/// let app = test::init_service(
///     App::new()
///         .route("/users/{id}", web::get().to(|| async { "a user" }))
///         .wrap(metrics.clone()),
/// )
/// .await;
/// test::call_and_read_body(&app, test::TestRequest::get().uri("/users/7").to_request()).await;
///
/// let scrape = metrics.render();
/// assert!(scrape.contains(r#"http_requests_total{method="GET",route="/users/{id}",status="200"} 1"#));
/// # });
/// ```
#[derive(Clone)]
pub struct HttpMetrics {
    shared: Arc<Shared>,
    middleware: ObservabilityMiddleware,
}

/// State shared by every worker's middleware.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) instruments: Instruments,
    /// The duration histogram's exemplars (and any of the application's).
    pub(crate) exemplars: super::Exemplars,
    pub(crate) excluded_statuses: Vec<StatusCode>,
    pub(crate) unmatched_route: String,
    pub(crate) mask_unmatched: bool,
}

impl Shared {
    pub(crate) fn route_label<'a>(&'a self, route: &RouteLabel<'a>) -> &'a str {
        match route {
            RouteLabel::Template(template) => template,
            RouteLabel::RawPath(path) => path,
            RouteLabel::Unmatched => &self.unmatched_route,
        }
    }
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics")
            .field("unmatched_route", &self.shared.unmatched_route)
            .finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// A builder with the defaults: standard names, a new registry, process
    /// metrics on.
    pub fn builder() -> HttpMetricsBuilder {
        HttpMetricsBuilder::default()
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, middleware: ObservabilityMiddleware) -> Self {
        Self { shared, middleware }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The registry that the middleware records into. Register your own
    /// metrics on it and they appear in the same scrape.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Renders every metric of the registry in the Prometheus text format.
    pub fn render(&self) -> String {
        crate::text_format::render(&self.shared.registry)
    }

    /// Renders every metric of the registry in `format`; OpenMetrics with
    /// the exemplars.
    pub fn render_as(&self, format: crate::text_format::Format) -> String {
        crate::text_format::render_as(&self.shared.registry, format, Some(&self.shared.exemplars))
    }

    /// Where the request-duration histogram keeps its exemplars; histograms
    /// of the application's can keep theirs there too
    /// ([`Exemplars::histogram`](super::Exemplars::histogram)), to be
    /// rendered in the same scrape.
    pub fn exemplars(&self) -> &super::Exemplars {
        &self.shared.exemplars
    }

    /// Registers a counter with fixed labels that counts the requests
    /// reaching the resource or scope it wraps; what the original did with a
    /// `@metrics.counter` decorator on one view.
    ///
    /// ```
    /// use actix_web::{web, App};
    /// use metrics_middleware::{prometheus::Opts, HttpMetrics};
    ///
    /// let metrics = HttpMetrics::builder().process_metrics(false).build().unwrap();
    /// let hello = metrics
    ///     .route_counter(
    ///         Opts::new("hello_requests_total", "Requests to /.").const_label("app", "demo"),
    ///     )
    ///     .unwrap();
    /// let app = App::new().service(web::resource("/").wrap(hello).to(|| async { "hi" }));
    /// ```
    ///
    /// # Errors
    ///
    /// [`BuildError::Register`] if the name is invalid or already registered.
    pub fn route_counter(&self, opts: Opts) -> Result<RouteCounter, BuildError> {
        let name = opts.fq_name();
        let counter = IntCounter::with_opts(opts).map_err(|source| BuildError::Register {
            metric: name.clone(),
            source,
        })?;
        self.shared
            .registry
            .register(Box::new(counter.clone()))
            .map_err(|source| BuildError::Register {
                metric: name,
                source,
            })?;
        Ok(RouteCounter::new(counter))
    }
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ObservedBody<B>>;
    type Error = Error;
    type Transform = ObservabilityService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        self.middleware.new_transform(service)
    }
}
