//! `traceparent` parsing: never panics; what it accepts formats back to a
//! canonical version-00 value that parses to the same parent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use metrics_middleware::telemetry::propagation::traceparent::format;
use metrics_middleware::telemetry::propagation::TraceParent;

fuzz_target!(|data: &[u8]| {
    if let Some(parent) = TraceParent::parse(data) {
        let text = format(parent.trace_id, parent.parent_id, parent.flags);
        assert_eq!(text.len(), 55, "{text}");
        assert!(text
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(TraceParent::parse(text.as_bytes()), Some(parent), "{text}");
    }
});
