//! Which trace a request joins: the caller's, from W3C `traceparent` and
//! `tracestate`, or from `X-Cloud-Trace-Context`, the header Google's load
//! balancers and older Google libraries send. A request with both joins the
//! `traceparent` trace; a malformed header is ignored (a new trace starts),
//! never an error.
use opentelemetry::propagation::{
    text_map_propagator::FieldIter, Extractor, Injector, TextMapCompositePropagator,
    TextMapPropagator,
};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The header's name; header lookups ignore case.
pub const CLOUD_TRACE_CONTEXT_HEADER: &str = "x-cloud-trace-context";

/// `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS`, where `TRACE_ID` is
/// 32 hexadecimal digits, `SPAN_ID` a decimal 64-bit number, and `o=1` means
/// the caller traces this request. Without `o=1` the remote parent counts as
/// not sampled, so a parent-based sampler follows the caller's choice.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudTraceContextPropagator;

impl CloudTraceContextPropagator {
    /// Parses a header value; `None` if it is malformed.
    pub fn parse(value: &str) -> Option<SpanContext> {
        let (ids, options) = match value.trim().split_once(';') {
            Some((ids, options)) => (ids, Some(options)),
            None => (value.trim(), None),
        };
        let (trace, span) = ids.split_once('/')?;
        if trace.len() != 32 || !trace.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let trace_id = TraceId::from_hex(trace)
            .ok()
            .filter(|id| *id != TraceId::INVALID)?;
        let span_id = span
            .parse::<u64>()
            .ok()
            .filter(|id| *id != 0)
            .map(|id| SpanId::from_bytes(id.to_be_bytes()))?;
        let sampled = options.is_some_and(|o| o.trim() == "o=1");
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Some(SpanContext::new(
            trace_id,
            span_id,
            flags,
            true,
            TraceState::default(),
        ))
    }

    /// The header value for a span context.
    pub fn format(context: &SpanContext) -> String {
        let span = u64::from_be_bytes(context.span_id().to_bytes());
        let sampled = u8::from(context.is_sampled());
        format!("{}/{span};o={sampled}", context.trace_id())
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn extract(headers: &[(&str, &str)]) -> SpanContext {
        let headers: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        incoming_propagator()
            .extract_with_context(&Context::new(), &headers)
            .span()
            .span_context()
            .clone()
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const CLOUD: &str = "105445aa7843bc8bf206b12000100000/1234567890;o=1";

    #[test]
    fn cloud_trace_context_is_read_and_written() {
        let context = extract(&[("x-cloud-trace-context", CLOUD)]);
        assert!(context.is_valid() && context.is_remote() && context.is_sampled());
        assert_eq!(
            context.trace_id().to_string(),
            "105445aa7843bc8bf206b12000100000"
        );
        assert_eq!(
            u64::from_be_bytes(context.span_id().to_bytes()),
            1_234_567_890
        );
        assert_eq!(CloudTraceContextPropagator::format(&context), CLOUD);

        let unsampled = extract(&[(
            "x-cloud-trace-context",
            "105445aa7843bc8bf206b12000100000/1;o=0",
        )]);
        assert!(unsampled.is_valid() && !unsampled.is_sampled());
        let no_options = extract(&[(
            "x-cloud-trace-context",
            "105445aa7843bc8bf206b12000100000/1",
        )]);
        assert!(no_options.is_valid() && !no_options.is_sampled());
    }

    #[test]
    fn traceparent_wins_over_the_google_header() {
        let context = extract(&[
            ("traceparent", TRACEPARENT),
            ("x-cloud-trace-context", CLOUD),
        ]);
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn a_malformed_header_is_ignored_not_an_error() {
        // A bad traceparent leaves the Google header to decide.
        let context = extract(&[
            ("traceparent", "00-zz-yy-01"),
            ("x-cloud-trace-context", CLOUD),
        ]);
        assert_eq!(
            context.trace_id().to_string(),
            "105445aa7843bc8bf206b12000100000"
        );
        for bad in [
            "",
            "105445aa7843bc8bf206b12000100000",
            "105445aa7843bc8bf206b1200010000/1;o=1",
            "105445aa7843bc8bf206b12000100000x/1;o=1",
            "g05445aa7843bc8bf206b12000100000/1;o=1",
            "00000000000000000000000000000000/1;o=1",
            "105445aa7843bc8bf206b12000100000/0;o=1",
            "105445aa7843bc8bf206b12000100000/-5;o=1",
            "105445aa7843bc8bf206b12000100000/18446744073709551616;o=1",
            "105445aa7843bc8bf206b12000100000/abc;o=1",
        ] {
            assert!(
                !extract(&[("x-cloud-trace-context", bad)]).is_valid(),
                "{bad:?}"
            );
        }
        assert!(!extract(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        )])
        .is_valid());
    }
}
