//! `tracestate` parsing over several header fields (split at 0xff bytes):
//! never panics; what it keeps is within the limits and parses back to
//! itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use metrics_middleware::telemetry::propagation::W3cTraceState;

fuzz_target!(|data: &[u8]| {
    let fields: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    if let Ok(state) = W3cTraceState::parse_fields(fields.iter().copied()) {
        let text = state.as_str();
        assert!(text.len() <= 512, "{text}");
        assert!(state.members().count() <= 32, "{text}");
        let again = W3cTraceState::parse(text).expect("what was kept parses");
        assert_eq!(again.as_str(), text);
        for (key, value) in state.members() {
            assert_eq!(state.get(key), Some(value));
        }
    }
});
