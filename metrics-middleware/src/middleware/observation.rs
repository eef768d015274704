//! What is known of one observed request, from its arrival to the end of its
//! response body, and what is recorded when it ends.
use std::rc::Rc;
use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use opentelemetry::Context;

use super::hooks::{ResponseParts, SpanAttributes};
use super::routes::Route;
use super::service::Worker;
use crate::logging::{AccessEntry, AccessRequest};
use crate::metrics::request::RequestMetrics;
use crate::telemetry::server::RequestTrace;

/// One request under observation.
pub(crate) struct Observation {
    pub(crate) worker: Rc<Worker>,
    pub(crate) start: Instant,
    pub(crate) method: &'static str,
    /// The route template the request matched, found when it arrived.
    pub(crate) route: Option<Rc<Route>>,
    /// The path, kept only for metrics that label unmatched requests by it.
    pub(crate) raw_path: Option<Box<str>>,
    /// A HEAD request: no body goes on the wire.
    pub(crate) head_request: bool,
    /// What the access log line needs of the request (boxed: it is large,
    /// and the response that carries it is moved several times).
    pub(crate) access: Option<Box<AccessRequest>>,
    pub(crate) metrics: Option<RequestMetrics>,
    pub(crate) trace: Option<RequestTrace>,
    pub(crate) status: StatusCode,
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every byte of the body was handed to the connection.
    Complete,
    /// The body was dropped before its end: the client went away, or the
    /// server stopped sending.
    Incomplete,
    /// The body failed while streaming.
    BodyError,
}

impl Outcome {
    /// The span's `error.type` for a response that did not complete.
    fn error_type(self) -> Option<&'static str> {
        match self {
            Self::Complete => None,
            Self::Incomplete => Some("response_incomplete"),
            Self::BodyError => Some("response_body_error"),
        }
    }
}

impl Observation {
    /// The request's trace context, current while the application runs.
    pub(crate) fn context(&self) -> Option<&Context> {
        self.trace.as_ref().map(|trace| &trace.cx)
    }

    /// Whether responses to this request carry no body on the wire.
    pub(crate) fn is_head(&self) -> bool {
        self.head_request
    }

    /// The response has started (`response`), or failed before one was made
    /// (`None`: an error from an inner middleware).
    pub(crate) fn respond<B>(&mut self, status: StatusCode, response: Option<&ServiceResponse<B>>) {
        self.status = status;
        let worker = &self.worker;
        let route = self.route.as_deref();
        if let Some(metrics) = &mut self.metrics {
            if let Some(shared) = &worker.shared.metrics {
                metrics.respond(
                    shared,
                    &worker.series,
                    self.method,
                    route,
                    self.raw_path.as_deref(),
                    status,
                );
            }
        }
        if let Some(trace) = &mut self.trace {
            trace.respond(status, route);
            if let (Some(span), Some(response)) = (trace.span_mut(), response) {
                let parts = ResponseParts::new(
                    response.response().head(),
                    response.response().extensions(),
                );
                worker.shared.on_response.on_response(
                    response.request(),
                    &parts,
                    &mut SpanAttributes::new(span),
                );
            }
        }
    }

    /// The response is over: records the metrics, ends the span, writes the
    /// access log line.
    /// Takes what it records (by reference: the observation is boxed, and
    /// moving it out would copy it).
    pub(crate) fn finish(&mut self, response_bytes: u64, outcome: Outcome) {
        let elapsed = self.start.elapsed();
        let shared = &self.worker.shared;
        let upgraded = self.status == StatusCode::SWITCHING_PROTOCOLS;
        let request_bytes = self
            .metrics
            .as_ref()
            .map_or(0, RequestMetrics::request_bytes);
        if let Some(metrics) = self.metrics.take() {
            let latency =
                (!upgraded || shared.upgrades_in_latency).then_some(elapsed.as_secs_f64());
            let sampled = self.trace.as_ref().and_then(RequestTrace::sampled_ids);
            metrics.finish(latency, response_bytes, sampled);
        }
        if let (Some(access_log), Some(request)) = (&shared.access_log, &self.access) {
            access_log.write(&AccessEntry {
                request,
                method: self.method,
                status: self.status,
                request_bytes,
                response_bytes,
                latency: elapsed,
                context: self.trace.as_ref().map(|trace| &trace.cx),
            });
        }
        if let Some(trace) = self.trace.take() {
            trace.end(self.worker.spans.as_ref(), elapsed, outcome.error_type());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_moved_with_each_response_stays_small() {
        // Actix moves a response several times on its way out, and this
        // state travels in the response's body, boxed: only a pointer is
        // copied each time.
        let moved = std::mem::size_of::<Option<Box<Observation>>>();
        assert_eq!(moved, std::mem::size_of::<usize>());
    }
}
