//! Outgoing calls in the request's trace: a client span for each call, with
//! the stable HTTP client conventions, and the trace's headers written on
//! the request, so that the service called continues the trace.
//!
//! - reqwest, through reqwest-middleware (cargo feature `reqwest`):
//!   [`ReqwestTracing`].
//! - awc (cargo feature `awc`): [`AwcTracing`], for
//!   `awc::ClientBuilder::wrap`.
//!
//! Both take a [`ClientTracer`]: the tracer that makes the client spans
//! (from [`Observability::client_tracer`](crate::Observability::client_tracer),
//! or OpenTelemetry's global one) and the propagator that writes the
//! headers (W3C `traceparent`/`tracestate` and `X-Cloud-Trace-Context` by
//! default).
//!
//! ```no_run
//! # #[cfg(feature = "reqwest")]
//! # fn client(observability: &metrics_middleware::Observability) -> reqwest_middleware::ClientWithMiddleware {
//! use metrics_middleware::client::ReqwestTracing;
//!
//! reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(ReqwestTracing::new(observability.client_tracer()))
//!     .build()
//! # }
//! ```
//!
//! A client span is a child of the span current when the call is made
//! (the request's, inside a handler), named by the method, with
//! `http.request.method`, `server.address`, `server.port`, `url.full`
//! (credentials and signatures in the query redacted, bounded),
//! `http.response.status_code`, and `error.type` with an error status for a
//! 4xx or 5xx answer or a call that failed. Inside an unsampled request the
//! span records nothing, and the headers say "not sampled", so the service
//! called does not sample either.
use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::{Injector, TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, Tracer as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};

use crate::telemetry::propagation::{
    traceparent, CloudTraceContextPropagator, TraceContextPropagator,
};

#[cfg(feature = "awc")]
mod awc;
#[cfg(feature = "reqwest")]
mod reqwest;

#[cfg(feature = "awc")]
pub use self::awc::{AwcTracing, AwcTracingService, TracedCall};
#[cfg(feature = "reqwest")]
pub use self::reqwest::ReqwestTracing;

/// The longest `url.full` recorded; longer URLs are cut (at a character
/// boundary) and end with `...`.
pub const MAX_URL_LEN: usize = 2048;

/// Query parameters whose values are secrets (signed URLs of cloud
/// storage), recorded as `REDACTED` as the HTTP conventions ask.
const SECRET_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// What the client integrations share: the tracer that makes client spans
/// and the propagator that writes the trace headers. Cheap to clone.
#[derive(Clone)]
pub struct ClientTracer {
    tracer: Arc<BoxedTracer>,
    propagator: Arc<dyn TextMapPropagator + Send + Sync>,
}

impl std::fmt::Debug for ClientTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTracer").finish_non_exhaustive()
    }
}

/// The instrumentation scope of client spans.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("metrics-middleware.client")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

impl ClientTracer {
    /// Client spans from `tracer`, headers from the default propagator.
    pub fn new<T>(tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        Self {
            tracer: Arc::new(BoxedTracer::new(Box::new(tracer))),
            propagator: Arc::new(default_propagator()),
        }
    }

    /// Client spans from OpenTelemetry's global tracer provider (the one
    /// [`install`](crate::ObservabilityBuilder::install) sets).
    pub fn global() -> Self {
        Self {
            tracer: Arc::new(opentelemetry::global::tracer_with_scope(scope())),
            propagator: Arc::new(default_propagator()),
        }
    }

    /// Writes the headers with `propagator` instead: W3C Trace Context alone
    /// ([`TraceContextPropagator`]), say, for services outside Google Cloud.
    #[must_use]
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagator = Arc::new(propagator);
        self
    }

    /// Starts the client span of a call to `target` in the current context,
    /// and writes the trace headers with `headers`.
    pub(crate) fn start(&self, target: &CallTarget<'_>, headers: &mut dyn Injector) -> ClientCall {
        let parent = Context::current();
        let mut attributes = Vec::with_capacity(5);
        attributes.push(KeyValue::new("http.request.method", target.method_label()));
        if target.method_label() == "_OTHER" {
            attributes.push(KeyValue::new(
                "http.request.method_original",
                bounded(target.method, 64).into_owned(),
            ));
        }
        if let Some(host) = target.host {
            attributes.push(KeyValue::new(
                "server.address",
                bounded(host, 255).into_owned(),
            ));
        }
        if let Some(port) = target.port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        attributes.push(KeyValue::new("url.full", redact_url(target.url)));
        let name = match target.method_label() {
            "_OTHER" => "HTTP",
            method => method,
        };
        let builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes);
        let span = self.tracer.build_with_context(builder, &parent);
        let cx = if span.span_context().is_sampled() || !span.span_context().is_valid() {
            parent.with_span(span)
        } else {
            // The SDK clears every flag of a span it does not sample, level
            // 2's random flag with them: the caller's flags are kept (but
            // "sampled"), as a service passing the trace on must.
            let dropped = span.span_context();
            let flags = if parent.has_active_span() {
                parent
                    .span()
                    .span_context()
                    .trace_flags()
                    .with_sampled(false)
            } else {
                TraceFlags::new(traceparent::FLAG_RANDOM)
            };
            let kept = SpanContext::new(
                dropped.trace_id(),
                dropped.span_id(),
                flags,
                false,
                dropped.trace_state().clone(),
            );
            parent.with_remote_span_context(kept)
        };
        self.propagator.inject_context(&cx, headers);
        ClientCall { cx }
    }
}

/// W3C Trace Context, then `X-Cloud-Trace-Context`: what the services of
/// this crate read, and what Google's own services understand.
fn default_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(CloudTraceContextPropagator),
    ])
}

/// The call about to be made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallTarget<'a> {
    pub(crate) method: &'a str,
    pub(crate) host: Option<&'a str>,
    pub(crate) port: Option<u16>,
    pub(crate) url: &'a str,
}

impl CallTarget<'_> {
    /// The method as the conventions name it: a standard one, or `_OTHER`.
    fn method_label(&self) -> &'static str {
        crate::metrics::labels::method_name_label(self.method)
    }
}

/// A call under way: its span, in the context it was started in.
#[derive(Debug)]
pub(crate) struct ClientCall {
    cx: Context,
}

/// How a call ended.
#[derive(Debug)]
pub(crate) enum CallOutcome<'a> {
    /// An answer with this status code.
    Status(u16),
    /// No answer: `kind` names the failure for `error.type`.
    Failed {
        kind: &'static str,
        message: &'a str,
    },
}

impl ClientCall {
    /// Ends the span with how the call went.
    pub(crate) fn end(self, outcome: CallOutcome<'_>) {
        let span = self.cx.span();
        match outcome {
            CallOutcome::Status(status) => {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                // For a client, a 4xx is an error too: the call did not do
                // what it was made for.
                if status >= 400 {
                    span.set_attribute(KeyValue::new("error.type", status.to_string()));
                    span.set_status(Status::error(""));
                }
            }
            CallOutcome::Failed { kind, message } => {
                span.set_attribute(KeyValue::new("error.type", kind));
                span.set_status(Status::error(bounded(message, 256).into_owned()));
            }
        }
        span.end();
    }
}

/// `url` for `url.full`: user and password in it replaced by `REDACTED`,
/// the values of signature parameters too, and cut to [`MAX_URL_LEN`].
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len().min(MAX_URL_LEN + 3));
    let (before_fragment, _) = url.split_once('#').unwrap_or((url, ""));
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (before_fragment, None),
    };
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            out.push_str(scheme);
            out.push_str("://");
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    out.push_str(if userinfo.contains(':') {
                        "REDACTED:REDACTED@"
                    } else {
                        "REDACTED@"
                    });
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) if SECRET_QUERY_KEYS.contains(&key) => {
                    out.push_str(key);
                    out.push_str("=REDACTED");
                }
                _ => out.push_str(pair),
            }
        }
    }
    bounded(&out, MAX_URL_LEN).into_owned()
}

/// `text` cut to at most `max` bytes at a character boundary, with `...`
/// when cut.
fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_signatures_are_redacted() {
        assert_eq!(
            redact_url("https://user:secret@example.com:8443/a/b?x=1&sig=abc&y=2#top"),
            "https://REDACTED:REDACTED@example.com:8443/a/b?x=1&sig=REDACTED&y=2"
        );
        assert_eq!(
            redact_url("http://token@example.com/"),
            "http://REDACTED@example.com/"
        );
        assert_eq!(
            redact_url("https://storage.googleapis.com/b/o?X-Goog-Signature=ff&X-Goog-Date=1"),
            "https://storage.googleapis.com/b/o?X-Goog-Signature=REDACTED&X-Goog-Date=1"
        );
        assert_eq!(redact_url("http://a.example/p@th"), "http://a.example/p@th");
        let long = format!("http://a.example/{}", "é".repeat(3000));
        let redacted = redact_url(&long);
        assert!(redacted.len() <= MAX_URL_LEN + 3 && redacted.ends_with("..."));
    }
}
