//! `X-Cloud-Trace-Context` parsing: never panics; what it accepts formats
//! back to a value that parses to the same span context.
#![no_main]
use libfuzzer_sys::fuzz_target;
use metrics_middleware::telemetry::propagation::CloudTraceContextPropagator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(context) = CloudTraceContextPropagator::parse(text) {
        assert!(context.is_valid());
        let formatted = CloudTraceContextPropagator::format(&context);
        let again = CloudTraceContextPropagator::parse(&formatted).expect("formatted parses");
        assert_eq!(again.trace_id(), context.trace_id());
        assert_eq!(again.span_id(), context.span_id());
        assert_eq!(again.is_sampled(), context.is_sampled());
    }
});
