//! The tracing part of the middleware alone: one server span per request,
//! for applications that want spans without this crate's metrics.
//! [`Observability`](crate::Observability) gives both in one middleware.
use std::future::Ready;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;

use super::server::ServerTracer;
use crate::middleware::{Exclude, ObservabilityMiddleware, ObservabilityService, ObservedBody};

/// One server span per request, with OpenTelemetry's stable HTTP
/// conventions, in the caller's trace when it sent one; made by
/// [`Telemetry::middleware`](super::Telemetry::middleware). Wrap the app
/// with it last (outermost).
#[derive(Clone)]
pub struct RequestTracing {
    tracer: Arc<ServerTracer>,
    exclusions: Vec<Exclude>,
    middleware: ObservabilityMiddleware,
}

impl std::fmt::Debug for RequestTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTracing")
            .field("exclusions", &self.exclusions)
            .finish_non_exhaustive()
    }
}

impl RequestTracing {
    pub(crate) fn new(tracer: Arc<ServerTracer>) -> Self {
        let middleware = Self::build(&tracer, &[]);
        Self {
            tracer,
            exclusions: Vec::new(),
            middleware,
        }
    }

    fn build(tracer: &Arc<ServerTracer>, exclusions: &[Exclude]) -> ObservabilityMiddleware {
        let mut builder = ObservabilityMiddleware::builder().server_tracer(Arc::clone(tracer));
        for rule in exclusions {
            builder = builder.exclude(rule.clone());
        }
        builder.build()
    }

    /// No span for requests to `path` (compared in full), such as the
    /// `/healthz` of Kubernetes probes, which would fill traces with noise.
    #[must_use]
    pub fn exclude_path(self, path: impl Into<String>) -> Self {
        self.exclude(Exclude::path(path))
    }

    /// No span for requests that match `rule`.
    #[must_use]
    pub fn exclude(mut self, rule: Exclude) -> Self {
        self.exclusions.push(rule);
        self.middleware = Self::build(&self.tracer, &self.exclusions);
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestTracing
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
