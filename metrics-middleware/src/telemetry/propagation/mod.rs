//! Which trace a request joins, and what an outgoing request carries.
//!
//! - **W3C Trace Context** (`traceparent`, `tracestate`), strictly as the
//!   Recommendation says, level 2's random trace id flag included: field
//!   lengths, lowercase hexadecimal, version rules, repeated fields
//!   ([`traceparent`], [`tracestate`]).
//! - **`X-Cloud-Trace-Context`**, what Google's load balancers and older
//!   Google libraries send.
//!
//! A request with a valid `traceparent` joins that trace; otherwise a valid
//! `X-Cloud-Trace-Context` decides; otherwise a new trace starts. A malformed
//! or repeated `traceparent` counts as absent (never an error), and so does a
//! `tracestate` that breaks the grammar or its bounds.
//!
//! Both propagators implement OpenTelemetry's [`TextMapPropagator`], so they
//! compose with any other (`TextMapCompositePropagator`) and serve as the
//! global propagator; [`extract`] is the allocation-free path the middleware
//! takes on Actix's own header map.
use actix_web::http::header::{HeaderMap, HeaderName};
use opentelemetry::propagation::{
    text_map_propagator::FieldIter, Extractor, Injector, TextMapCompositePropagator,
    TextMapPropagator,
};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId};
use opentelemetry::Context;

use super::headers::RequestHeaders;

mod cloud_trace;
pub mod traceparent;
pub mod tracestate;

pub use traceparent::TraceParent;
pub use tracestate::{TraceStateError, W3cTraceState};

/// The W3C header names (lower case, as the specification recommends).
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// See [`TRACEPARENT_HEADER`].
pub const TRACESTATE_HEADER: &str = "tracestate";
/// Google's header name; header lookups ignore case.
pub const CLOUD_TRACE_CONTEXT_HEADER: &str = "x-cloud-trace-context";

pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static(TRACESTATE_HEADER);
pub(crate) static X_CLOUD_TRACE_CONTEXT: HeaderName =
    HeaderName::from_static(CLOUD_TRACE_CONTEXT_HEADER);

/// The caller's trace, as read from a request's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteParent {
    /// Trace id, the caller's span id and flags.
    pub parent: TraceParent,
    /// The caller's `tracestate` (empty for `X-Cloud-Trace-Context`).
    pub state: W3cTraceState,
}

impl RemoteParent {
    /// The parent as OpenTelemetry's remote span context.
    pub fn span_context(&self) -> SpanContext {
        SpanContext::new(
            self.parent.trace_id,
            self.parent.parent_id,
            self.parent.flags,
            true,
            self.state.to_otel(),
        )
    }
}

/// What extraction found wrong with a request's trace headers; each is also
/// a reason the header was ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    /// `traceparent` was present but malformed, or sent more than once.
    pub traceparent: bool,
    /// `tracestate` was discarded for its length.
    pub tracestate_oversized: bool,
    /// `tracestate` was discarded for its content.
    pub tracestate_malformed: bool,
    /// `X-Cloud-Trace-Context` was present, looked at, and malformed.
    pub cloud_trace_context: bool,
}

/// Reads the caller's trace from Actix's headers: `traceparent` (with
/// `tracestate`) first, then `X-Cloud-Trace-Context`. Looks at raw bytes
/// with bounded effort and allocates only for a valid, non-empty
/// `tracestate`.
#[inline]
pub fn extract(headers: &HeaderMap) -> (Option<RemoteParent>, Rejected) {
    extract_found(&RequestHeaders::trace_only(headers), headers)
}

/// [`extract`] from headers found already. Most requests carry no trace
/// header: that case is a test inlined into the caller.
#[inline]
pub(crate) fn extract_found(
    found: &RequestHeaders<'_>,
    headers: &HeaderMap,
) -> (Option<RemoteParent>, Rejected) {
    if !found.has_trace_header() {
        return (None, Rejected::default());
    }
    extract_present(found, headers)
}

fn extract_present(
    found: &RequestHeaders<'_>,
    headers: &HeaderMap,
) -> (Option<RemoteParent>, Rejected) {
    let mut rejected = Rejected::default();
    match (found.traceparent, found.traceparent_repeated) {
        (Some(value), false) => match TraceParent::parse(value.as_bytes()) {
            Some(parent) => {
                let state = if found.tracestate {
                    let fields = headers.get_all(&TRACESTATE).map(|v| v.as_bytes());
                    match W3cTraceState::parse_fields(fields) {
                        Ok(state) => state,
                        Err(err) => {
                            rejected.tracestate_oversized = err.is_oversized();
                            rejected.tracestate_malformed = !err.is_oversized();
                            W3cTraceState::EMPTY
                        }
                    }
                } else {
                    W3cTraceState::EMPTY
                };
                return (Some(RemoteParent { parent, state }), rejected);
            }
            None => rejected.traceparent = true,
        },
        // Two `traceparent` fields: the specification asks for a new trace.
        (Some(_), true) => rejected.traceparent = true,
        (None, _) => {}
    }
    let cloud = found.cloud_trace_context.and_then(|value| {
        let parsed = cloud_trace::parse(value.as_bytes());
        rejected.cloud_trace_context = parsed.is_none();
        parsed
    });
    let parent = cloud.map(|parent| RemoteParent {
        parent,
        state: W3cTraceState::EMPTY,
    });
    (parent, rejected)
}

/// The `tracestate` of the span in a context, kept beside it as parsed:
/// OpenTelemetry's own `TraceState` refuses some keys that the current
/// grammar allows, and would lose them on the way out.
#[derive(Debug, Clone)]
struct ContextTraceState {
    trace_id: TraceId,
    state: W3cTraceState,
}

/// `cx` with `parent` as its remote span, and its `tracestate` kept whole.
pub fn context_with_parent(cx: &Context, parent: &RemoteParent) -> Context {
    let cx = cx.with_remote_span_context(parent.span_context());
    with_trace_state(cx, parent.parent.trace_id, &parent.state)
}

/// Keeps `state` beside the span of `cx` (for trace `trace_id`); nothing
/// when it is empty.
pub(crate) fn with_trace_state(cx: Context, trace_id: TraceId, state: &W3cTraceState) -> Context {
    if state.is_empty() {
        return cx;
    }
    cx.with_value(ContextTraceState {
        trace_id,
        state: state.clone(),
    })
}

/// The `tracestate` to send on from `cx`: the one kept whole beside its
/// span when it belongs to the same trace, else the span's own.
pub fn trace_state_of(cx: &Context) -> W3cTraceState {
    let span = cx.span();
    let span_context = span.span_context();
    match cx.get::<ContextTraceState>() {
        Some(kept) if kept.trace_id == span_context.trace_id() => kept.state.clone(),
        _ => W3cTraceState::from_otel(span_context.trace_state()),
    }
}

/// W3C Trace Context, strict; see the module docs. Injects `traceparent`
/// (version 00, the sampled and random flags) and `tracestate` when there is
/// one (never an empty field).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextPropagator {
    _private: (),
}

impl TraceContextPropagator {
    /// The propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

static W3C_FIELDS: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| [TRACEPARENT_HEADER.to_owned(), TRACESTATE_HEADER.to_owned()]);

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        injector.set(
            TRACEPARENT_HEADER,
            traceparent::format(
                span_context.trace_id(),
                span_context.span_id(),
                span_context.trace_flags(),
            ),
        );
        let state = trace_state_of(cx);
        if !state.is_empty() {
            injector.set(TRACESTATE_HEADER, state.as_str().to_owned());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let parents = extractor.get_all(TRACEPARENT_HEADER).unwrap_or_default();
        let [value] = parents.as_slice() else {
            return cx.clone();
        };
        let Some(parent) = TraceParent::parse(value.as_bytes()) else {
            return cx.clone();
        };
        let fields = extractor.get_all(TRACESTATE_HEADER).unwrap_or_default();
        let state =
            W3cTraceState::parse_fields(fields.iter().map(|f| f.as_bytes())).unwrap_or_default();
        context_with_parent(cx, &RemoteParent { parent, state })
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(W3C_FIELDS.as_slice())
    }
}

/// `X-Cloud-Trace-Context`: `TRACE_ID/SPAN_ID;o=OPTIONS`, where `TRACE_ID`
/// is 32 hexadecimal digits, `SPAN_ID` a decimal 64-bit number, and `o=1`
/// means the caller traces this request. Without `o=1` the remote parent
/// counts as not sampled, so a parent-based sampler follows the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudTraceContextPropagator;

impl CloudTraceContextPropagator {
    /// Parses a header value; `None` if it is malformed.
    pub fn parse(value: &str) -> Option<SpanContext> {
        let parent = cloud_trace::parse(value.as_bytes())?;
        Some(SpanContext::new(
            parent.trace_id,
            parent.parent_id,
            parent.flags,
            true,
            Default::default(),
        ))
    }

    /// The header value for a span context.
    pub fn format(context: &SpanContext) -> String {
        cloud_trace::format(context.trace_id(), context.span_id(), context.trace_flags())
    }
}

impl TextMapPropagator for CloudTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if context.is_valid() {
            injector.set(CLOUD_TRACE_CONTEXT_HEADER, Self::format(context));
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor
            .get(CLOUD_TRACE_CONTEXT_HEADER)
            .and_then(Self::parse)
        {
            Some(context) => cx.with_remote_span_context(context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(CLOUD_FIELDS.as_slice())
    }
}

/// `fields()` hands out a slice of `String`s, made once.
static CLOUD_FIELDS: std::sync::LazyLock<[String; 1]> =
    std::sync::LazyLock::new(|| [CLOUD_TRACE_CONTEXT_HEADER.to_owned()]);

/// The propagator for incoming requests: `X-Cloud-Trace-Context`, then W3C
/// Trace Context, each overriding what came before when its header is valid,
/// so that `traceparent` wins and the Google header is the fallback.
pub fn incoming_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(CloudTraceContextPropagator),
        Box::new(TraceContextPropagator::new()),
    ])
}

/// An [`Extractor`] over Actix's header map, repeated fields included.
#[derive(Debug, Clone, Copy)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .filter_map(|value| value.to_str().ok())
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// An [`Injector`] into Actix's (and awc's) header map.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(key),
            actix_web::http::header::HeaderValue::try_from(value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Whether `flags` has the random trace id flag (level 2).
pub fn is_random(flags: TraceFlags) -> bool {
    flags.to_u8() & traceparent::FLAG_RANDOM != 0
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use actix_web::http::header::HeaderValue;

    use super::*;

    const TRACEPARENT_VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const CLOUD: &str = "105445aa7843bc8bf206b12000100000/1234567890;o=1";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    fn extracted(pairs: &[(&'static str, &str)]) -> Option<RemoteParent> {
        extract(&headers(pairs)).0
    }

    #[test]
    fn traceparent_wins_over_the_google_header() {
        let parent = extracted(&[
            ("traceparent", TRACEPARENT_VALUE),
            ("x-cloud-trace-context", CLOUD),
        ])
        .expect("a parent");
        assert_eq!(
            parent.parent.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.parent.parent_id.to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn a_bad_or_repeated_traceparent_leaves_the_google_header_to_decide() {
        let (parent, rejected) = extract(&headers(&[
            ("traceparent", "00-zz-yy-01"),
            ("x-cloud-trace-context", CLOUD),
        ]));
        assert_eq!(
            parent
                .expect("the Google header")
                .parent
                .trace_id
                .to_string(),
            "105445aa7843bc8bf206b12000100000"
        );
        assert!(rejected.traceparent);
        let (parent, rejected) = extract(&headers(&[
            ("traceparent", TRACEPARENT_VALUE),
            ("traceparent", TRACEPARENT_VALUE),
        ]));
        assert!(parent.is_none() && rejected.traceparent);
    }

    #[test]
    fn tracestate_comes_only_with_a_valid_traceparent() {
        assert!(extracted(&[("tracestate", "foo=1")]).is_none());
        let parent = extracted(&[
            ("traceparent", TRACEPARENT_VALUE),
            ("tracestate", "foo=1,bar=2"),
            ("tracestate", "baz=3"),
        ])
        .expect("a parent");
        assert_eq!(parent.state.as_str(), "foo=1,bar=2,baz=3");
        let huge = "a=b,".repeat(25_000);
        let (parent, rejected) = extract(&headers(&[
            ("traceparent", TRACEPARENT_VALUE),
            ("tracestate", &huge),
        ]));
        assert!(parent.expect("kept").state.is_empty());
        assert!(rejected.tracestate_oversized);
    }

    fn extract_with(propagator: &dyn TextMapPropagator, pairs: &[(&str, &str)]) -> Context {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        propagator.extract(&map)
    }

    fn inject(propagator: &dyn TextMapPropagator, cx: &Context) -> HashMap<String, String> {
        let mut map = HashMap::new();
        propagator.inject_context(cx, &mut map);
        map
    }

    #[test]
    fn the_w3c_propagator_round_trips_flags_and_the_whole_tracestate() {
        let propagator = TraceContextPropagator::new();
        let cx = extract_with(
            &propagator,
            &[
                (
                    "traceparent",
                    "00-12345678901234567890123456789012-1234567890123456-03",
                ),
                ("tracestate", "foo@@bar=1,bar=2"),
            ],
        );
        let out = inject(&propagator, &cx);
        assert_eq!(
            out["traceparent"],
            "00-12345678901234567890123456789012-1234567890123456-03"
        );
        assert_eq!(out["tracestate"], "foo@@bar=1,bar=2");

        // No state: no empty `tracestate` field.
        let cx = extract_with(
            &propagator,
            &[(
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-00",
            )],
        );
        assert!(!inject(&propagator, &cx).contains_key("tracestate"));
        // Nothing valid: nothing injected.
        let cx = extract_with(&propagator, &[("traceparent", "00-1-2-01")]);
        assert!(inject(&propagator, &cx).is_empty());
    }

    #[test]
    fn the_composite_reads_either_header() {
        let cx = extract_with(&incoming_propagator(), &[("x-cloud-trace-context", CLOUD)]);
        let span = cx.span();
        assert!(span.span_context().is_sampled() && span.span_context().is_remote());
        assert_eq!(
            CloudTraceContextPropagator::format(span.span_context()),
            CLOUD
        );
    }
}
