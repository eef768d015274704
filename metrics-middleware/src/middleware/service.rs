//! The middleware's service: one per worker thread, with what that worker
//! remembers between requests.
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse};
use actix_web::Error;

use super::future::ObservedFuture;
use super::hooks::SpanAttributes;
use super::observation::Observation;
use super::routes::Routes;
use super::Shared;
use crate::logging::AccessRequest;
use crate::metrics::labels::method_label;
use crate::metrics::request::RequestMetrics;
use crate::metrics::series_cache::SeriesCache;
use crate::telemetry::attributes::AttributeCache;
use crate::telemetry::headers::RequestHeaders;
use crate::telemetry::processor::queue::WorkerSink;

/// One worker's state: the shared parts and this worker's caches (resolved
/// metric series, remembered attribute values), which only it touches.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) series: SeriesCache,
    pub(crate) attributes: AttributeCache,
    pub(crate) routes: Routes,
    /// Where this worker's server spans go.
    pub(crate) spans: Option<WorkerSink>,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let spans = shared.tracer.as_ref().and_then(|t| t.worker_sink());
        Self {
            shared,
            series: SeriesCache::default(),
            attributes: AttributeCache::default(),
            routes: Routes::default(),
            spans,
        }
    }
}

/// The service [`ObservabilityMiddleware`](super::ObservabilityMiddleware)
/// makes for each worker.
pub struct ObservabilityService<S> {
    service: S,
    worker: Rc<Worker>,
}

impl<S> ObservabilityService<S> {
    pub(crate) fn new(service: S, worker: Rc<Worker>) -> Self {
        Self { service, worker }
    }
}

impl<S, B> Service<ServiceRequest> for ObservabilityService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<super::ObservedBody<B>>;
    type Error = Error;
    type Future = ObservedFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let worker = &self.worker;
        let shared = &worker.shared;
        let route = worker.routes.of(&req);
        if shared.exclusions.matches(&req, route.as_deref()) {
            return ObservedFuture::unobserved(self.service.call(req));
        }
        let start = Instant::now();
        let method = method_label(req.method());
        let raw_path = match (&shared.metrics, &route) {
            (Some(metrics), None) if !metrics.mask_unmatched => Some(req.path().into()),
            _ => None,
        };
        let head_request = req.method() == actix_web::http::Method::HEAD;
        let metrics = shared
            .metrics
            .as_ref()
            .map(|metrics| RequestMetrics::start(metrics, method, &mut req));
        // The access log reads the headers a span reads: one pass for both.
        let found = shared
            .access_log
            .is_some()
            .then(|| RequestHeaders::scan(req.headers()));
        let access = shared
            .access_log
            .as_ref()
            .zip(found.as_ref())
            .map(|(_, found)| Box::new(AccessRequest::new(&req, found)));
        let mut trace = shared
            .tracer
            .as_ref()
            .and_then(|tracer| tracer.start(&req, found.as_ref(), method, &worker.attributes));
        if let Some(span) = trace.as_mut().and_then(|t| t.span_mut()) {
            shared
                .on_request
                .on_request(&req, &mut SpanAttributes::new(span));
        }
        let inner = match &trace {
            Some(trace) => {
                let _current = trace.cx.clone().attach();
                self.service.call(req)
            }
            None => self.service.call(req),
        };
        ObservedFuture::new(
            inner,
            Observation {
                worker: Rc::clone(worker),
                start,
                method,
                route,
                raw_path,
                head_request,
                access,
                metrics,
                trace,
                status: actix_web::http::StatusCode::OK,
            },
        )
    }
}
