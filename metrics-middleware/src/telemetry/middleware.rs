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
use actix_web::http::{header, StatusCode, Version};
use actix_web::web::Bytes;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use opentelemetry::propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use pin_project_lite::pin_project;

use super::propagation::incoming_propagator;
use crate::metrics::labels::method_label;

/// The middleware: wrap an app with it, after [`HttpMetrics`](crate::HttpMetrics)
/// if both are used, so that metrics also time the span's work.
#[derive(Clone)]
pub struct RequestTracing {
    shared: Rc<Shared>,
}

struct Shared {
    tracer: SdkTracer,
    propagator: TextMapCompositePropagator,
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
            shared: Rc::new(Shared {
                tracer,
                propagator: incoming_propagator(),
            }),
        }
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
        }))
    }
}

/// The middleware service made by [`RequestTracing`] for each worker.
pub struct RequestTracingService<S> {
    service: S,
    shared: Rc<Shared>,
}

struct HeaderExtractor<'a>(&'a header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(header::HeaderName::as_str).collect()
    }
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
        let parent = self
            .shared
            .propagator
            .extract_with_context(&Context::new(), &HeaderExtractor(req.headers()));
        let method = method_label(req.method());
        let span = self
            .shared
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Server)
            .start_with_context(&self.shared.tracer, &parent);
        let cx = parent.with_span(span);
        let span = cx.span();
        // The sampler has decided: build attributes only for recorded spans.
        if span.is_recording() {
            span.set_attributes(request_attributes(&req, method));
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
        }
    }
}

fn request_attributes(req: &ServiceRequest, method: &'static str) -> Vec<KeyValue> {
    let info = req.connection_info();
    let mut attributes = vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.path", req.path().to_owned()),
        KeyValue::new("url.scheme", info.scheme().to_owned()),
        KeyValue::new(
            "network.protocol.version",
            match req.version() {
                Version::HTTP_09 => "0.9",
                Version::HTTP_10 => "1.0",
                Version::HTTP_2 => "2",
                Version::HTTP_3 => "3",
                _ => "1.1",
            },
        ),
    ];
    let (address, port) = split_host(info.host());
    attributes.push(KeyValue::new("server.address", address.to_owned()));
    if let Some(port) = port {
        attributes.push(KeyValue::new("server.port", port));
    }
    if let Some(client) = info.realip_remote_addr() {
        let client = client.rsplit_once(':').map_or(client, |(ip, _)| ip);
        attributes.push(KeyValue::new(
            "client.address",
            client.trim_matches(['[', ']']).to_owned(),
        ));
    }
    if let Some(agent) = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    attributes
}

/// `host:port`, `[v6]:port`, `host` or `[v6]` into the address (without
/// brackets) and the port.
fn split_host(host: &str) -> (&str, Option<i64>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((address, port)) => (address, port.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        };
    }
    match host.rsplit_once(':') {
        Some((address, port)) => (address, port.parse().ok()),
        None => (host, None),
    }
}

/// Sets what the response tells: status, route, name, error status for 5xx
/// (4xx are the client's errors, not the server span's, per the conventions).
fn respond(cx: &Context, method: &str, status: StatusCode, route: Option<String>) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if let Some(route) = route {
        span.update_name(format!("{method} {route}"));
        span.set_attribute(KeyValue::new("http.route", route));
    }
    if status.is_server_error() {
        span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
        span.set_status(Status::error(
            status.canonical_reason().unwrap_or("server error"),
        ));
    }
}

pin_project! {
    /// The response future of [`RequestTracingService`]: the request's
    /// context is current while the handler runs.
    pub struct TracedFuture<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
        method: &'static str,
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
        Poll::Ready(match result {
            Ok(res) => {
                respond(
                    &cx,
                    this.method,
                    res.status(),
                    res.request().match_pattern(),
                );
                Ok(res.map_body(|_, body| TracedBody { body, cx: Some(cx) }))
            }
            Err(err) => {
                respond(
                    &cx,
                    this.method,
                    err.as_response_error().status_code(),
                    None,
                );
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

#[cfg(test)]
mod tests {
    use super::split_host;

    #[test]
    fn hosts_split_into_address_and_port() {
        assert_eq!(split_host("example.com:8080"), ("example.com", Some(8080)));
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:9090"), ("::1", Some(9090)));
        assert_eq!(split_host("[::1]"), ("::1", None));
    }
}
