//! The one middleware: request metrics, the server span and the access log
//! line of every request, in one pass and in a fixed order.
//!
//! **Where it goes: the last `.wrap()` of the `App`**, which makes it the
//! outermost middleware. Actix runs the last-registered middleware first, so
//! placed last it sees every request before the application's own
//! middlewares do, and every response after them: a redirect that an
//! authentication middleware returns early, a timeout middleware's 408, an
//! error an inner middleware returns, all are counted, traced and logged.
//! Placed earlier, those would pass around it unseen.
//!
//! ```
//! use actix_web::{web, App};
//! use metrics_middleware::Observability;
//!
//! # fn app(observability: &Observability) {
//! let middleware = observability.middleware();
//! let app = App::new()
//!     .route("/users/{id}", web::get().to(|| async { "a user" }))
//!     // .wrap(your_auth_middleware) ...
//!     .wrap(middleware); // last: outermost
//! # drop(app);
//! # }
//! ```
//!
//! What happens to one request, in order: the exclusion rules are checked
//! ([`Exclude`]); the request enters the in-flight gauge; the caller's trace
//! is read and the sampler decides; the application runs with the request's
//! trace context current (so its log lines and child spans join the trace);
//! when the response starts, the route template names the span and the
//! metric series; when the last byte of the body has been handed to the
//! connection (or the client went away), the metrics are recorded, the
//! span ends and the access log line is written. Errors returned by inner
//! middlewares keep the route template they matched.
//!
//! [`HttpMetrics`](crate::HttpMetrics) and
//! [`RequestTracing`](crate::telemetry::RequestTracing) are this middleware
//! with one part each, for applications that want only that part.
use std::fmt;
use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;

mod body;
mod exclude;
mod future;
mod hooks;
mod observation;
pub(crate) mod routes;
mod service;

pub use body::ObservedBody;
pub use exclude::Exclude;
pub use future::ObservedFuture;
pub use hooks::{
    DefaultOnRequest, DefaultOnResponse, OnRequest, OnResponse, ResponseParts, SpanAttributes,
    MAX_HOOK_ATTRIBUTES,
};
pub use service::ObservabilityService;

use crate::logging::AccessLog;
use crate::telemetry::server::ServerTracer;
use exclude::Exclusions;

/// The middleware; see the module docs for where it goes. Cheap to clone,
/// `Send` and `Sync`: build it once, hand a clone to each worker's `App`.
#[derive(Clone)]
pub struct ObservabilityMiddleware {
    shared: Arc<Shared>,
}

/// What every worker's service shares.
pub(crate) struct Shared {
    pub(crate) metrics: Option<Arc<crate::metrics::Shared>>,
    pub(crate) tracer: Option<Arc<ServerTracer>>,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) exclusions: Exclusions,
    pub(crate) on_request: Arc<dyn OnRequest>,
    pub(crate) on_response: Arc<dyn OnResponse>,
    pub(crate) upgrades_in_latency: bool,
}

impl fmt::Debug for ObservabilityMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservabilityMiddleware")
            .field("metrics", &self.shared.metrics.is_some())
            .field("traces", &self.shared.tracer.is_some())
            .field("access_log", &self.shared.access_log.is_some())
            .field("exclusions", &self.shared.exclusions)
            .finish_non_exhaustive()
    }
}

impl ObservabilityMiddleware {
    /// A middleware of parts of one's choosing; usually made by
    /// [`Observability::middleware`](crate::Observability::middleware).
    pub fn builder() -> ObservabilityMiddlewareBuilder {
        ObservabilityMiddlewareBuilder {
            shared: Shared {
                metrics: None,
                tracer: None,
                access_log: None,
                exclusions: Exclusions::default(),
                on_request: Arc::new(DefaultOnRequest),
                on_response: Arc::new(DefaultOnResponse),
                upgrades_in_latency: false,
            },
        }
    }
}

/// Builds an [`ObservabilityMiddleware`] from parts.
#[must_use]
pub struct ObservabilityMiddlewareBuilder {
    shared: Shared,
}

impl fmt::Debug for ObservabilityMiddlewareBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservabilityMiddlewareBuilder")
            .finish_non_exhaustive()
    }
}

impl ObservabilityMiddlewareBuilder {
    /// Records request metrics into `metrics`' registry.
    pub fn metrics(self, metrics: &crate::HttpMetrics) -> Self {
        self.metrics_shared(Arc::clone(metrics.shared()))
    }

    pub(crate) fn metrics_shared(mut self, shared: Arc<crate::metrics::Shared>) -> Self {
        self.shared.metrics = Some(shared);
        self
    }

    /// One server span per request, from `telemetry`.
    pub fn telemetry(self, telemetry: &crate::telemetry::Telemetry) -> Self {
        self.server_tracer(Arc::clone(telemetry.server_tracer()))
    }

    pub(crate) fn server_tracer(mut self, tracer: Arc<ServerTracer>) -> Self {
        self.shared.tracer = Some(tracer);
        self
    }

    /// One access log line per request.
    pub fn access_log(mut self, access_log: AccessLog) -> Self {
        self.shared.access_log = Some(access_log);
        self
    }

    /// Keeps requests that match `rule` out of every signal.
    pub fn exclude(mut self, rule: Exclude) -> Self {
        self.shared.exclusions.push(rule);
        self
    }

    /// Adds to each sampled request's span when the request arrives.
    pub fn on_request(self, hook: impl OnRequest) -> Self {
        self.on_request_shared(Arc::new(hook))
    }

    /// Adds to each sampled request's span when its response starts.
    pub fn on_response(self, hook: impl OnResponse) -> Self {
        self.on_response_shared(Arc::new(hook))
    }

    pub(crate) fn on_request_shared(mut self, hook: Arc<dyn OnRequest>) -> Self {
        self.shared.on_request = hook;
        self
    }

    pub(crate) fn on_response_shared(mut self, hook: Arc<dyn OnResponse>) -> Self {
        self.shared.on_response = hook;
        self
    }

    /// Whether requests upgraded to another protocol (websockets: status
    /// 101, a body that lasts the whole session) go into the latency
    /// histogram. Off by default: a session's length is not a latency. They
    /// are counted either way.
    pub fn upgrades_in_latency(mut self, include: bool) -> Self {
        self.shared.upgrades_in_latency = include;
        self
    }

    /// The middleware.
    pub fn build(self) -> ObservabilityMiddleware {
        ObservabilityMiddleware {
            shared: Arc::new(self.shared),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for ObservabilityMiddleware
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
        ready(Ok(ObservabilityService::new(
            service,
            Rc::new(service::Worker::new(Arc::clone(&self.shared))),
        )))
    }
}
