//! The server span of one request, recorded without the SDK's span object.
//!
//! When a request arrives: the caller's trace is read (bounded, see
//! [`propagation::extract`]), the sampler decides on ids alone, and an
//! OpenTelemetry [`Context`] is made with the request's span context, so
//! that log lines, child spans and outgoing calls see the trace. A sampled
//! request also gets a [`ServerSpan`] record with its attributes; an
//! unsampled one gets nothing more. When the response body is done, the
//! record gets its end time and goes to the export queue.
//!
//! With nothing to export (`OTEL_TRACES_EXPORTER=none`), the caller's span
//! context is passed on unchanged, as a pass-through service does: log lines
//! carry the caller's trace, outgoing calls continue it, and a request that
//! came without one costs nothing.
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry::Context;

use super::attributes::AttributeCache;
use super::config::{ParentBasedRoot, Sampler};
use super::headers::RequestHeaders;
use super::limits::{Field, Reason, Rejections};
use super::processor::queue::WorkerSink;
use super::processor::SpanSink;
use super::propagation::{self, traceparent, RemoteParent, TraceParent};
use super::record::ServerSpan;
use crate::middleware::routes::Route;

/// How requests are traced.
#[derive(Clone)]
pub(crate) enum Mode {
    /// Sample, record and export.
    Record { sampler: Sampler, sink: SpanSink },
    /// Pass the caller's trace on, record nothing.
    Propagate,
}

/// What every worker shares to trace requests.
pub(crate) struct ServerTracer {
    mode: Mode,
    rejections: Rejections,
}

impl ServerTracer {
    pub(crate) fn new(mode: Mode, rejections: Rejections) -> Self {
        Self { mode, rejections }
    }

    /// Starts tracing `req`; `None` when there is nothing to trace (no
    /// export and no caller's trace).
    /// `found` are the request's headers if the caller scanned them already.
    pub(crate) fn start(
        &self,
        req: &ServiceRequest,
        found: Option<&RequestHeaders<'_>>,
        method: &'static str,
        cache: &AttributeCache,
    ) -> Option<RequestTrace> {
        let sampler = match &self.mode {
            Mode::Propagate => {
                let (parent, rejected) = match found {
                    Some(found) => propagation::extract_found(found, req.headers()),
                    None => propagation::extract(req.headers()),
                };
                self.count(&rejected);
                let parent = parent?;
                let cx = propagation::context_with_parent(&Context::new(), &parent);
                return Some(RequestTrace { cx, span: None });
            }
            Mode::Record { sampler, .. } => sampler,
        };
        // A sampled request reads up to nine headers, found in one pass; an
        // unsampled one only the trace headers, found by lookup. Which it
        // will be is known after the trace headers are read, so a sampler
        // that mostly samples has all headers found first, and one that
        // mostly does not has the others found only for the sampled few.
        let mut scanned = None;
        let found = match found {
            Some(found) => found,
            None if sampler.mostly_samples() => scanned.insert(RequestHeaders::scan(req.headers())),
            None => scanned.insert(RequestHeaders::trace_only(req.headers())),
        };
        let (parent, rejected) = propagation::extract_found(found, req.headers());
        self.count(&rejected);
        let ids = Ids::for_request(sampler, parent.as_ref());
        let state = parent.as_ref().map(|p| p.state.clone()).unwrap_or_default();
        let span_context = SpanContext::new(
            ids.trace_id,
            ids.span_id,
            ids.flags,
            false,
            if state.is_empty() {
                Default::default()
            } else {
                state.to_otel()
            },
        );
        let cx = Context::new().with_remote_span_context(span_context);
        let cx = propagation::with_trace_state(cx, ids.trace_id, &state);
        let span = ids.flags.is_sampled().then(|| {
            Box::new(ServerSpan {
                trace_id: ids.trace_id,
                span_id: ids.span_id,
                flags: ids.flags,
                parent_span_id: parent.as_ref().map(|p| p.parent.parent_id),
                trace_state: state,
                start: SystemTime::now(),
                end: SystemTime::UNIX_EPOCH,
                name: Cow::Borrowed(method),
                attributes: cache.request(req, &all_headers(req, found), method, &self.rejections),
            })
        });
        Some(RequestTrace { cx, span })
    }

    fn count(&self, rejected: &propagation::Rejected) {
        if rejected.traceparent {
            self.rejections.count(Field::Traceparent, Reason::Malformed);
        }
        if rejected.tracestate_oversized {
            self.rejections.count(Field::Tracestate, Reason::Oversized);
        }
        if rejected.tracestate_malformed {
            self.rejections.count(Field::Tracestate, Reason::Malformed);
        }
        if rejected.cloud_trace_context {
            self.rejections
                .count(Field::CloudTraceContext, Reason::Malformed);
        }
    }

    /// A sink for one worker's spans; `None` when nothing is recorded.
    pub(crate) fn worker_sink(&self) -> Option<WorkerSink> {
        match &self.mode {
            Mode::Record { sink, .. } => Some(sink.worker()),
            Mode::Propagate => None,
        }
    }
}

/// `found` if it has every header a span reads, else a pass that finds them.
fn all_headers<'a, 'b>(
    req: &'a ServiceRequest,
    found: &'b RequestHeaders<'a>,
) -> Cow<'b, RequestHeaders<'a>> {
    if found.complete {
        Cow::Borrowed(found)
    } else {
        Cow::Owned(RequestHeaders::scan(req.headers()))
    }
}

/// The request's ids and flags.
struct Ids {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
}

impl Ids {
    /// Ids for a request: in the caller's trace when there is one, with the
    /// sampler's decision in the sampled flag and the random trace id flag
    /// kept from the caller, or set for a trace started here.
    fn for_request(sampler: &Sampler, parent: Option<&RemoteParent>) -> Self {
        let (trace_id, random) = match parent {
            Some(p) => (
                p.parent.trace_id,
                p.parent.flags.to_u8() & traceparent::FLAG_RANDOM,
            ),
            None => (new_trace_id(), traceparent::FLAG_RANDOM),
        };
        let sampled = sample(sampler, parent.map(|p| &p.parent), trace_id);
        Self {
            trace_id,
            span_id: new_span_id(),
            flags: TraceFlags::new(random | u8::from(sampled)),
        }
    }
}

/// A random trace id, never all zero.
pub(crate) fn new_trace_id() -> TraceId {
    loop {
        let id = u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..));
        if id != 0 {
            return TraceId::from(id);
        }
    }
}

/// A random span id, never zero.
pub(crate) fn new_span_id() -> SpanId {
    SpanId::from(fastrand::u64(1..))
}

/// The sampler's decision, as the SDK's samplers make it: the ratio
/// samplers compare the trace id's low 63 bits with the ratio, so that the
/// SDK and this code agree about a trace.
pub(crate) fn sample(sampler: &Sampler, parent: Option<&TraceParent>, trace_id: TraceId) -> bool {
    let ratio = |ratio: f64| {
        if ratio >= 1.0 {
            return true;
        }
        let bound = (ratio.max(0.0) * (1_u64 << 63) as f64) as u64;
        let bytes = trace_id.to_bytes();
        let mut low = [0_u8; 8];
        low.copy_from_slice(&bytes[8..]);
        (u64::from_be_bytes(low) >> 1) < bound
    };
    match sampler {
        Sampler::AlwaysOn => true,
        Sampler::AlwaysOff => false,
        Sampler::TraceIdRatio(r) => ratio(*r),
        Sampler::ParentBased(root) => match parent {
            Some(parent) => parent.flags.is_sampled(),
            None => match root {
                ParentBasedRoot::AlwaysOn => true,
                ParentBasedRoot::AlwaysOff => false,
                ParentBasedRoot::TraceIdRatio(r) => ratio(*r),
            },
        },
    }
}

/// One request's trace: its context, and its record when sampled.
pub(crate) struct RequestTrace {
    pub(crate) cx: Context,
    /// The record, for sampled requests only (boxed: it is large, and the
    /// observation of an unsampled request moves without it).
    span: Option<Box<ServerSpan>>,
}

impl RequestTrace {
    /// The trace and span ids of a sampled request (whose span is exported).
    pub(crate) fn sampled_ids(&self) -> Option<([u8; 16], [u8; 8])> {
        self.span
            .as_ref()
            .map(|span| (span.trace_id.to_bytes(), span.span_id.to_bytes()))
    }

    /// The record, for hooks; `None` unless sampled.
    pub(crate) fn span_mut(&mut self) -> Option<&mut ServerSpan> {
        self.span.as_deref_mut()
    }

    /// The response has started: its status and route name the span.
    pub(crate) fn respond(&mut self, status: StatusCode, route: Option<&Route>) {
        let Some(span) = &mut self.span else {
            return;
        };
        span.attributes.status_code = status.as_u16();
        if let Some(route) = route {
            span.name = route.span_name(span.attributes.method);
            span.attributes.route = Some(route.attr.clone());
        }
    }

    /// The response is done after `elapsed`; `error` says how it failed
    /// if it did. Hands the record to the worker's sink.
    pub(crate) fn end(
        self,
        sink: Option<&WorkerSink>,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        let (Some(mut span), Some(sink)) = (self.span, sink) else {
            return;
        };
        span.end = span.start + elapsed;
        if span.attributes.error.is_none() {
            span.attributes.error = error;
        }
        sink.push(span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::propagation::W3cTraceState;

    fn parent(flags: u8) -> TraceParent {
        TraceParent {
            trace_id: TraceId::from(0x1234),
            parent_id: SpanId::from(7),
            flags: TraceFlags::new(flags),
        }
    }

    #[test]
    fn parent_based_sampling_follows_the_caller() {
        let sampler = Sampler::ParentBased(ParentBasedRoot::AlwaysOn);
        assert!(sample(&sampler, Some(&parent(1)), TraceId::from(1)));
        assert!(!sample(&sampler, Some(&parent(0)), TraceId::from(1)));
        assert!(sample(&sampler, None, TraceId::from(1)));
        let off = Sampler::ParentBased(ParentBasedRoot::AlwaysOff);
        assert!(!sample(&off, None, TraceId::from(1)));
        assert!(sample(&off, Some(&parent(3)), TraceId::from(1)));
    }

    #[test]
    fn ratios_agree_with_the_sdk() {
        use opentelemetry::trace::SpanKind;
        use opentelemetry_sdk::trace::{Sampler as Sdk, ShouldSample};
        for ratio in [0.0, 0.1, 0.5, 0.9, 1.0] {
            let sdk = Sdk::TraceIdRatioBased(ratio);
            for _ in 0..2_000 {
                let trace_id = new_trace_id();
                let theirs = sdk
                    .should_sample(None, trace_id, "x", &SpanKind::Server, &[], &[])
                    .decision
                    == opentelemetry_sdk::trace::SamplingDecision::RecordAndSample;
                assert_eq!(
                    sample(&Sampler::TraceIdRatio(ratio), None, trace_id),
                    theirs
                );
            }
        }
    }

    #[test]
    fn new_traces_have_the_random_flag_and_continued_ones_keep_the_callers() {
        let sampler = Sampler::ParentBased(ParentBasedRoot::AlwaysOn);
        let fresh = Ids::for_request(&sampler, None);
        assert_eq!(fresh.flags.to_u8(), 0x03);
        let continued = |flags| {
            Ids::for_request(
                &sampler,
                Some(&RemoteParent {
                    parent: parent(flags),
                    state: W3cTraceState::EMPTY,
                }),
            )
        };
        assert_eq!(continued(0x01).flags.to_u8(), 0x01);
        assert_eq!(continued(0x02).flags.to_u8(), 0x02);
        assert_eq!(continued(0x03).flags.to_u8(), 0x03);
        let ids = continued(0x01);
        assert_eq!(ids.trace_id, TraceId::from(0x1234));
        assert_ne!(ids.span_id, SpanId::from(7));
    }
}
