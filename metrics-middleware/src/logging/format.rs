//! The event formatter: Cloud Logging's JSON fields, or readable text, with
//! the trace of the OpenTelemetry context current when the event happens.
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::LogFormat;

/// The event formatter behind [`Logging`]: JSON for Cloud Logging or text.
#[derive(Debug, Clone)]
pub struct CloudLoggingFormat {
    pub(super) format: LogFormat,
    pub(super) trace_prefix: Option<String>,
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
        let mut fields = Fields::default();
        event.record(&mut fields);
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let span_context = span.span_context();
        let trace = span_context.is_valid().then_some(span_context);
        let time = humantime::format_rfc3339_micros(SystemTime::now());
        match self.format {
            LogFormat::Json => {
                writer.write_str("{\"severity\":\"")?;
                writer.write_str(severity(*metadata.level()))?;
                write!(writer, "\",\"time\":\"{time}\",\"message\":")?;
                json_string(&mut writer, &fields.message)?;
                writer.write_str(",\"target\":")?;
                json_string(&mut writer, metadata.target())?;
                if let Some(trace) = trace {
                    writer.write_str(",\"logging.googleapis.com/trace\":\"")?;
                    if let Some(prefix) = &self.trace_prefix {
                        writer.write_str(prefix)?;
                    }
                    write!(
                        writer,
                        "{}\",\"logging.googleapis.com/spanId\":\"{}\",\
                         \"logging.googleapis.com/trace_sampled\":{}",
                        trace.trace_id(),
                        trace.span_id(),
                        trace.is_sampled()
                    )?;
                }
                for (name, value) in &fields.others {
                    writer.write_char(',')?;
                    json_string(&mut writer, name)?;
                    writer.write_char(':')?;
                    json_string(&mut writer, value)?;
                }
                writer.write_str("}\n")
            }
            LogFormat::Text => {
                write!(
                    writer,
                    "{time} {:>5} {}: {}",
                    metadata.level(),
                    metadata.target(),
                    fields.message
                )?;
                for (name, value) in &fields.others {
                    write!(writer, " {name}={value}")?;
                }
                if let Some(trace) = trace {
                    write!(writer, " trace_id={}", trace.trace_id())?;
                }
                writer.write_char('\n')
            }
        }
    }
}

/// Cloud Logging's `LogSeverity` names.
fn severity(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Writes `text` as a JSON string, escaped.
fn json_string(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        writer.write_str(&text[start..i])?;
        if escape.is_empty() {
            write!(writer, "\\u{byte:04x}")?;
        } else {
            writer.write_str(escape)?;
        }
        start = i + 1;
    }
    writer.write_str(&text[start..])?;
    writer.write_char('"')
}

/// An event's message and other fields, as text; `log`'s own bookkeeping
/// fields (`log.target`, ...) are left out.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if !field.name().starts_with("log.") {
            self.others.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if !field.name().starts_with("log.") {
            self.others.push((field.name(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::super::{LogFormat, Logging};
    use super::*;

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
            in_trace(|| tracing::warn!(user = "ada", "quote \" and\nnewline"));
        });
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "quote \" and\nnewline");
        assert_eq!(line["user"], "ada");
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
    fn formats_parse_by_name() {
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert!(LogFormat::parse("yaml").is_err());
    }
}
