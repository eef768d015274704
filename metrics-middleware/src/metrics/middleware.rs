use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{header, StatusCode};
use actix_web::{Error, HttpMessage, HttpRequest};
use pin_project_lite::pin_project;
use prometheus::{IntCounter, Opts, Registry};

use super::body::{CountingPayload, Pending, RecordingBody, RequestBytes};
use super::instruments::{Instruments, LabelValues, Series};
use super::labels::{method_label, RouteLabel};
use super::series_cache::SeriesCache;
use super::{BuildError, HttpMetricsBuilder, RouteCounter};

/// Request metrics for an Actix app: a middleware (wrap the app with it) and
/// a handle on the registry it records into.
///
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
///         .wrap(metrics.clone())
///         .route("/users/{id}", web::get().to(|| async { "a user" })),
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
}

/// State shared by every worker's middleware.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) instruments: Instruments,
    // Short lists, compared in full: cheaper than hashing the path of
    // every request, and empty for most apps.
    pub(crate) excluded_paths: Vec<String>,
    pub(crate) excluded_statuses: Vec<StatusCode>,
    pub(crate) unmatched_route: String,
    pub(crate) mask_unmatched: bool,
}

impl Shared {
    pub(crate) fn route_label<'a>(&'a self, route: &'a RouteLabel) -> &'a str {
        match route {
            RouteLabel::Template(template) => template,
            RouteLabel::RawPath(path) => path,
            RouteLabel::Unmatched => &self.unmatched_route,
        }
    }
}

/// One worker's view: the shared state and the series it has resolved.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    cache: SeriesCache,
}

impl Worker {
    pub(crate) fn series(
        &self,
        method: &'static str,
        route: &RouteLabel,
        status: StatusCode,
    ) -> Rc<Series> {
        let instruments = &self.shared.instruments;
        match route {
            RouteLabel::RawPath(path) => Rc::new(instruments.series(&LabelValues {
                method,
                route: path,
                status: status.as_str(),
            })),
            _ => self
                .cache
                .get(instruments, method, self.shared.route_label(route), status),
        }
    }
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics")
            .field("excluded_paths", &self.shared.excluded_paths)
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

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
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
    type Response = ServiceResponse<RecordingBody<B>>;
    type Error = Error;
    type Transform = HttpMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpMetricsService {
            service,
            worker: Rc::new(Worker {
                shared: Arc::clone(&self.shared),
                cache: SeriesCache::default(),
            }),
        }))
    }
}

/// The middleware service made by [`HttpMetrics`] for each worker.
pub struct HttpMetricsService<S> {
    service: S,
    worker: Rc<Worker>,
}

impl<S, B> Service<ServiceRequest> for HttpMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<RecordingBody<B>>;
    type Error = Error;
    type Future = MetricsFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let shared = &self.worker.shared;
        if shared.excluded_paths.iter().any(|path| path == req.path()) {
            return MetricsFuture {
                inner: self.service.call(req),
                pending: None,
            };
        }
        let method = method_label(req.method());
        let in_flight = shared.instruments.start(method);
        let request_bytes = request_bytes(&mut req);
        MetricsFuture {
            inner: self.service.call(req),
            pending: Some(Pending {
                worker: Rc::clone(&self.worker),
                start: Instant::now(),
                method,
                request_bytes,
                in_flight,
            }),
        }
    }
}

/// The request body size: 0 when the request has no body (most requests: no
/// header lookup then), from `Content-Length` where the client sent it, else
/// counted as the handler reads a chunked body.
fn request_bytes(req: &mut ServiceRequest) -> RequestBytes {
    if matches!(req.parts().1, Payload::None) {
        return RequestBytes::Known(0);
    }
    let headers = req.headers();
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        return RequestBytes::Known(
            length
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        );
    }
    if !headers.contains_key(header::TRANSFER_ENCODING) {
        return RequestBytes::Known(0);
    }
    let (payload, counter) = CountingPayload::wrap(req.take_payload());
    req.set_payload(payload);
    RequestBytes::Counted(counter)
}

pin_project! {
    /// The response future of [`HttpMetricsService`].
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F, B> Future for MetricsFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<RecordingBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(pending) = this.pending.take() else {
            return Poll::Ready(
                result.map(|res| res.map_body(|_, body| RecordingBody::new(body, None))),
            );
        };
        match result {
            Ok(res) => {
                let completion =
                    pending.respond(res.status(), |shared| route_of(shared, res.request()));
                Poll::Ready(Ok(
                    res.map_body(|_, body| RecordingBody::new(body, completion))
                ))
            }
            Err(err) => {
                // An error that no handler turned into a response (rare: most
                // become responses inside the app). The request is gone with
                // it, so its route is unknown: count it as unmatched.
                let status = err.as_response_error().status_code();
                if let Some(completion) = pending.respond(status, |_| RouteLabel::Unmatched) {
                    completion.finish(0);
                }
                Poll::Ready(Err(err))
            }
        }
    }
}

fn route_of(shared: &Shared, req: &HttpRequest) -> RouteLabel {
    match req.match_pattern() {
        Some(template) => RouteLabel::Template(template),
        None if shared.mask_unmatched => RouteLabel::Unmatched,
        None => RouteLabel::RawPath(req.path().to_owned()),
    }
}
