//! One server span per request, with OpenTelemetry's stable HTTP semantic
//! conventions, in the caller's trace when it sent one.
//!
//! The sampler decides when the span starts, before any attribute is built:
//! an unsampled request costs ids and a sampler call, not attributes. The
//! route template is known only after routing, so the span starts named
//! after the method and is renamed `{method} {route}` when the response
//! starts. The span ends when the response body is dropped, so streaming
//! is inside it. Handlers reach the span through [`TraceContext`].
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use pin_project_lite::pin_project;

use super::attributes::{AttributeCache, START_ATTRIBUTES};
use super::propagation;
use crate::metrics::labels::method_label;

/// The middleware: wrap an app with it, after [`HttpMetrics`](crate::HttpMetrics)
/// if both are used, so that metrics also time the span's work.
#[derive(Clone)]
pub struct RequestTracing {
    shared: Rc<Shared>,
    excluded_paths: Rc<Vec<String>>,
}

struct Shared {
    tracer: SdkTracer,
}

impl std::fmt::Debug for RequestTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTracing").finish_non_exhaustive()
    }
}

impl RequestTracing {
    /// Spans from `tracer`, parents from `traceparent` or `X-Cloud-Trace-Context`.
    pub fn new(tracer: SdkTracer) -> Self {
        Self {
            shared: Rc::new(Shared { tracer }),
            excluded_paths: Rc::default(),
        }
    }

    /// No span for requests to `path` (compared in full), such as the
    /// `/healthz` of Kubernetes probes, which would fill traces with noise.
    #[must_use]
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        Rc::make_mut(&mut self.excluded_paths).push(path.into());
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestTracing
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<TracedBody<B>>;
    type Error = Error;
    type Transform = RequestTracingService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestTracingService {
            service,
            shared: Rc::clone(&self.shared),
            excluded_paths: Rc::clone(&self.excluded_paths),
            attributes: Rc::new(AttributeCache::default()),
        }))
    }
}

/// The middleware service made by [`RequestTracing`] for each worker.
pub struct RequestTracingService<S> {
    service: S,
    shared: Rc<Shared>,
    excluded_paths: Rc<Vec<String>>,
    attributes: Rc<AttributeCache>,
}

impl<S, B> Service<ServiceRequest> for RequestTracingService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<TracedBody<B>>;
    type Error = Error;
    type Future = TracedFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let method = method_label(req.method());
        if self.excluded_paths.iter().any(|path| path == req.path()) {
            return TracedFuture {
                inner: self.service.call(req),
                cx: None,
                method,
                recording: false,
                attributes: Rc::clone(&self.attributes),
            };
        }
        // Bounded and allocation-free unless a valid `tracestate` came.
        let parent = match propagation::extract(req.headers()).0 {
            Some(remote) => propagation::context_with_parent(&Context::new(), &remote),
            None => Context::new(),
        };
        // An empty vector with room for every attribute: the SDK keeps it
        // as the span's own, so adding them later does not reallocate.
        let span = self
            .shared
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Server)
            .with_attributes(Vec::with_capacity(START_ATTRIBUTES + 4))
            .start_with_context(&self.shared.tracer, &parent);
        let cx = parent.with_span(span);
        let span = cx.span();
        // The sampler has decided: build attributes only for recorded spans.
        let recording = span.is_recording();
        if recording {
            let mut attributes = Vec::with_capacity(START_ATTRIBUTES);
            self.attributes.request(&req, method, &mut attributes);
            span.set_attributes(attributes);
        }
        req.extensions_mut().insert(TraceContext(cx.clone()));
        let inner = {
            let _attached = cx.clone().attach();
            self.service.call(req)
        };
        TracedFuture {
            inner,
            cx: Some(cx),
            method,
            recording,
            attributes: Rc::clone(&self.attributes),
        }
    }
}

/// Sets what the response tells: status, route, name, error status for 5xx
/// (4xx are the client's errors, not the server span's, per the conventions).
fn respond(
    cx: &Context,
    cache: &AttributeCache,
    method: &'static str,
    status: StatusCode,
    route: Option<String>,
) {
    let span = cx.span();
    let mut attributes = Vec::with_capacity(3);
    attributes.push(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if let Some(route) = route {
        let (name, route) = cache.route(method, route);
        span.update_name(name);
        attributes.push(KeyValue::new("http.route", route));
    }
    if status.is_server_error() {
        attributes.push(KeyValue::new("error.type", status.as_str().to_owned()));
        span.set_status(Status::error(
            status.canonical_reason().unwrap_or("server error"),
        ));
    }
    span.set_attributes(attributes);
}

pin_project! {
    /// The response future of [`RequestTracingService`]: the request's
    /// context is current while the handler runs.
    pub struct TracedFuture<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
        method: &'static str,
        recording: bool,
        attributes: Rc<AttributeCache>,
    }
}

impl<F, B> Future for TracedFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<TracedBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.cx {
            Some(cx) => {
                let _attached = cx.clone().attach();
                std::task::ready!(this.inner.poll(task))
            }
            None => std::task::ready!(this.inner.poll(task)),
        };
        let cx = this.cx.take().unwrap_or_default();
        // Unsampled spans record nothing: skip the route lookup too.
        let recording = *this.recording;
        Poll::Ready(match result {
            Ok(res) => {
                if recording {
                    respond(
                        &cx,
                        this.attributes,
                        this.method,
                        res.status(),
                        res.request().match_pattern(),
                    );
                }
                Ok(res.map_body(|_, body| TracedBody { body, cx: Some(cx) }))
            }
            Err(err) => {
                if recording {
                    let status = err.as_response_error().status_code();
                    respond(&cx, this.attributes, this.method, status, None);
                }
                cx.span().end();
                Err(err)
            }
        })
    }
}

pin_project! {
    /// A response body that ends the request's span when it is dropped.
    pub struct TracedBody<B> {
        #[pin]
        body: B,
        cx: Option<Context>,
    }

    impl<B> PinnedDrop for TracedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(cx) = this.project().cx.take() {
                cx.span().end();
            }
        }
    }
}

impl<B: MessageBody> MessageBody for TracedBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        task: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(task)
    }
}

/// The request's trace context, for handlers: its trace and span ids (for
/// log lines or answers), and the context to parent child spans on.
#[derive(Debug, Clone, Default)]
pub struct TraceContext(Context);

impl TraceContext {
    /// The OpenTelemetry context of the request's span.
    pub fn context(&self) -> &Context {
        &self.0
    }

    /// The trace id in hexadecimal, if the request has a span.
    pub fn trace_id(&self) -> Option<String> {
        let span = self.0.span();
        let context = span.span_context();
        context.is_valid().then(|| context.trace_id().to_string())
    }

    /// The span id in hexadecimal, if the request has a span.
    pub fn span_id(&self) -> Option<String> {
        let span = self.0.span();
        let context = span.span_context();
        context.is_valid().then(|| context.span_id().to_string())
    }
}

impl FromRequest for TraceContext {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    /// The context set by [`RequestTracing`]; an empty one without it.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(req
            .extensions()
            .get::<TraceContext>()
            .cloned()
            .unwrap_or_default()))
    }
}
