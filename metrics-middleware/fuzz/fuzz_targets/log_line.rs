//! The log line writer: any message, target and fields make exactly one
//! line; in JSON, one object whose message is the message given, whatever
//! it holds (quotes, control characters, non-ASCII).
#![no_main]
use libfuzzer_sys::fuzz_target;
use metrics_middleware::fuzzing::log_line;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\u{1f}');
    let message = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or("target");
    let rest: Vec<&str> = parts.collect();
    let fields: Vec<(&str, &str)> = rest
        .chunks(2)
        .map(|pair| (pair[0], pair.get(1).copied().unwrap_or_default()))
        .filter(|(name, _)| !name.is_empty())
        .collect();
    for json in [true, false] {
        let line = log_line(json, message, target, &fields);
        assert_eq!(line.last(), Some(&b'\n'));
        if json {
            assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
            let value: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
            assert_eq!(value["message"], message);
            assert_eq!(value["target"], target);
        }
    }
});
