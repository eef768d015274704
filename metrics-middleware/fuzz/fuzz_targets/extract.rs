//! The whole extraction from a request's headers: any mix of repeated
//! `traceparent`, `tracestate` and `X-Cloud-Trace-Context` fields (lines of
//! the input; the first byte of a line picks the header) never panics, and
//! a parent found is re-injected and extracted again unchanged.
#![no_main]
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use metrics_middleware::telemetry::propagation::{
    extract, trace_state_of, HeaderExtractor, HeaderInjector, TraceContextPropagator,
};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;

const NAMES: [&str; 4] = [
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "other",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let name = HeaderName::from_static(NAMES[usize::from(pick) % NAMES.len()]);
            headers.append(name, value);
        }
    }
    let (parent, _rejected) = extract(&headers);
    // The OpenTelemetry propagator reads the same headers the same way.
    let propagator = TraceContextPropagator::new();
    let cx = propagator.extract(&HeaderExtractor(&headers));
    if let Some(parent) = parent {
        let context = parent.span_context();
        assert!(context.is_valid());
        let cx = Context::new().with_remote_span_context(context.clone());
        let mut out = HeaderMap::new();
        propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
        let (again, _) = extract(&out);
        let again = again.expect("an injected parent is extracted");
        assert_eq!(again.span_context().trace_id(), context.trace_id());
        assert_eq!(again.span_context().span_id(), context.span_id());
    } else {
        let _ = trace_state_of(&cx);
    }
});
