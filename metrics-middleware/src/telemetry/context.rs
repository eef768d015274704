//! The request's trace, for handlers, and the way to carry it where the
//! handler's own future does not go.
//!
//! While the middleware polls the application (and while a streamed
//! response body produces its bytes), the request's OpenTelemetry context
//! is the current one: log lines carry its trace, spans made with
//! `tracing` or the OpenTelemetry API become its children, outgoing calls
//! continue it. Work that runs elsewhere needs to take it along:
//!
//! ```
//! use actix_web::{web, HttpResponse};
//! use metrics_middleware::opentelemetry::context::FutureExt as _;
//! use metrics_middleware::telemetry::in_current_trace;
//!
//! async fn handler() -> actix_web::Result<HttpResponse> {
//!     // A blocking closure on actix's thread pool.
//!     let rows = web::block(in_current_trace(|| {
//!         log::info!("querying"); // carries the request's trace
//!         42
//!     }))
//!     .await?;
//!     // A task that outlives the handler (a websocket session, say).
//!     actix_web::rt::spawn(
//!         async move { log::info!("still in the request's trace: {rows}") }
//!             .with_current_context(),
//!     );
//!     Ok(HttpResponse::Ok().finish())
//! }
//! ```
use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, ContextGuard};

use super::propagation::{self, traceparent, W3cTraceState};

/// Wraps `work` so that it runs in the trace current where it was
/// wrapped: for `web::block`, a thread, any closure run elsewhere.
pub fn in_current_trace<F, R>(work: F) -> impl FnOnce() -> R + Send + 'static
where
    F: FnOnce() -> R + Send + 'static,
{
    let cx = Context::current();
    move || {
        let _current = cx.attach();
        work()
    }
}

/// The request's trace context, for handlers: its ids (for log lines or
/// answers), what an outgoing call needs to continue the trace by hand,
/// and the context to parent spans on or to carry into other work.
///
/// It is the context current when the handler runs, which the middleware
/// set; outside a traced request it is empty.
#[derive(Debug, Clone, Default)]
pub struct TraceContext(Context);

impl TraceContext {
    /// The current context.
    pub fn current() -> Self {
        Self(Context::current())
    }

    /// The OpenTelemetry context of the request's span.
    pub fn context(&self) -> &Context {
        &self.0
    }

    /// The trace id in hexadecimal, if the request has a trace.
    pub fn trace_id(&self) -> Option<String> {
        let span = self.0.span();
        let context = span.span_context();
        context.is_valid().then(|| context.trace_id().to_string())
    }

    /// The span id in hexadecimal, if the request has a trace.
    pub fn span_id(&self) -> Option<String> {
        let span = self.0.span();
        let context = span.span_context();
        context.is_valid().then(|| context.span_id().to_string())
    }

    /// Whether the request is sampled (its spans are exported).
    pub fn is_sampled(&self) -> bool {
        self.0.span().span_context().is_sampled()
    }

    /// The W3C `traceparent` value that continues this trace in an outgoing
    /// request, if there is a trace.
    pub fn traceparent(&self) -> Option<String> {
        let span = self.0.span();
        let context = span.span_context();
        context.is_valid().then(|| {
            traceparent::format(context.trace_id(), context.span_id(), context.trace_flags())
        })
    }

    /// The `tracestate` to send with it (empty when there is none: then send
    /// no `tracestate` field at all).
    pub fn tracestate(&self) -> W3cTraceState {
        propagation::trace_state_of(&self.0)
    }

    /// Makes this context current until the guard is dropped.
    pub fn attach(&self) -> ContextGuard {
        self.0.clone().attach()
    }

    /// `work`, to run in this trace wherever it runs.
    pub fn bind<F, R>(&self, work: F) -> impl FnOnce() -> R + Send + 'static
    where
        F: FnOnce() -> R + Send + 'static,
    {
        let cx = self.0.clone();
        move || {
            let _current = cx.attach();
            work()
        }
    }

    /// `future`, polled in this trace wherever it is polled.
    pub fn instrument<F>(&self, future: F) -> WithContext<F> {
        future.with_context(self.0.clone())
    }
}

impl FromRequest for TraceContext {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    /// The context current while the middleware runs the handler; empty
    /// without it.
    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::current()))
    }
}
