//! The event formatter for `tracing_subscriber::fmt`: the same lines as
//! [`CloudLoggingLayer`](super::CloudLoggingLayer), for applications that
//! compose a `fmt` layer of their own.
use std::fmt;

use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::line::{EventFields, LineFormat, LineTrace, MessageField, Text};

/// The event formatter behind [`Logging`](super::Logging): JSON for Cloud
/// Logging or text.
#[derive(Debug, Clone)]
pub struct CloudLoggingFormat {
    line: LineFormat,
}

impl CloudLoggingFormat {
    pub(crate) fn new(line: LineFormat) -> Self {
        Self { line }
    }
}

impl<S, N> FormatEvent<S, N> for CloudLoggingFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // `log` records arrive with their own target and level in fields.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let target = match normalized {
            Some(_) => Text::Borrowed(metadata.target()),
            None => Text::Static(event.metadata().target()),
        };
        let trace = LineTrace::current();
        let mut line = Vec::with_capacity(256);
        self.line.write(
            &mut line,
            *metadata.level(),
            target,
            trace.as_ref(),
            |out| {
                let mut message = MessageField {
                    out,
                    result: Ok(()),
                };
                event.record(&mut message);
                message.result
            },
            |fields| event.record(&mut EventFields { out: fields }),
        );
        // Every piece written is text: the line is UTF-8.
        writer.write_str(&String::from_utf8_lossy(&line))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    use super::super::{LogFormat, Logging};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: LogFormat, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(
                Logging::builder()
                    .format(format)
                    .gcp_project_id(Some("demo-project".to_owned()))
                    .formatter(),
            )
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    fn in_trace(emit: impl FnOnce()) {
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let _attached = opentelemetry::Context::current()
            .with_remote_span_context(span_context)
            .attach();
        emit();
    }

    #[test]
    fn json_lines_carry_severity_message_and_the_trace() {
        let out = capture(LogFormat::Json, || {
            in_trace(
                || tracing::warn!(user = "ada", count = 3, debug = ?"q\"", "quote \" and\nnewline"),
            );
        });
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "quote \" and\nnewline");
        assert_eq!(line["user"], "ada");
        assert_eq!(line["count"], 3, "numbers stay numbers");
        assert_eq!(line["debug"], "\"q\\\"\"");
        assert_eq!(
            line["logging.googleapis.com/trace"],
            "projects/demo-project/traces/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(line["logging.googleapis.com/spanId"], "00f067aa0ba902b7");
        assert_eq!(line["logging.googleapis.com/trace_sampled"], true);
        let time = line["time"].as_str().expect("time");
        humantime::parse_rfc3339(time).expect("RFC 3339 time");
    }

    #[test]
    fn outside_a_trace_there_are_no_trace_fields_and_text_is_readable() {
        let out = capture(LogFormat::Json, || tracing::info!("plain"));
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
        assert_eq!(line["severity"], "INFO");
        assert!(line.get("logging.googleapis.com/trace").is_none(), "{line}");

        let text = capture(LogFormat::Text, || {
            in_trace(|| tracing::error!(code = 7, "it broke"));
        });
        assert!(text.contains("ERROR"), "{text}");
        assert!(
            text.trim_end()
                .ends_with("it broke code=7 trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            "{text}"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let out = capture(LogFormat::Json, || tracing::info!("bell \u{7} tab\t"));
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("valid JSON");
        assert_eq!(line["message"], "bell \u{7} tab\t");
    }

    #[test]
    fn fields_named_like_the_lines_own_keys_are_prefixed() {
        let out = capture(LogFormat::Json, || {
            tracing::info!(severity = "low", time = 5, ok = true, ratio = 0.5, "clash");
        });
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(line["severity"], "INFO");
        assert_eq!(line["fields.severity"], "low");
        assert_eq!(line["fields.time"], 5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ratio"], 0.5);
        let keys = out.matches("\"severity\"").count();
        assert_eq!(keys, 1, "{out}");
    }

    #[test]
    fn without_a_project_the_trace_is_written_as_plain_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Logging::builder().format(LogFormat::Json).formatter())
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || in_trace(|| tracing::info!("x")));
        let bytes = buffer.0.lock().expect("lock").clone();
        let line: serde_json::Value = serde_json::from_slice(&bytes).expect("one JSON line");
        assert!(line.get("logging.googleapis.com/trace").is_none(), "{line}");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["span_id"], "00f067aa0ba902b7");
        assert_eq!(line["trace_sampled"], true);
    }
}
