//! The event formatter: Cloud Logging's JSON fields, or readable text, with
//! the trace of the OpenTelemetry context current when the event happens.
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::LogFormat;

/// The event formatter behind [`Logging`](super::Logging): JSON for Cloud Logging or text.
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
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let span_context = span.span_context();
        let trace = span_context.is_valid().then_some(span_context);
        match self.format {
            LogFormat::Json => {
                // Written straight into the line, escaped on the way: no
                // intermediate strings.
                writer.write_str("{\"severity\":\"")?;
                writer.write_str(severity(*metadata.level()))?;
                writer.write_str("\",\"time\":\"")?;
                write_time(&mut writer)?;
                writer.write_str("\",\"message\":\"")?;
                event.record(&mut JsonFields {
                    out: JsonEscape(&mut writer),
                    message: true,
                    result: Ok(()),
                });
                writer.write_str("\",\"target\":\"")?;
                JsonEscape(&mut writer).write_str(metadata.target())?;
                writer.write_char('"')?;
                if let Some(trace) = trace {
                    writer.write_str(",\"logging.googleapis.com/trace\":\"")?;
                    if let Some(prefix) = &self.trace_prefix {
                        writer.write_str(prefix)?;
                    }
                    write_hex(&mut writer, &trace.trace_id().to_bytes())?;
                    writer.write_str("\",\"logging.googleapis.com/spanId\":\"")?;
                    write_hex(&mut writer, &trace.span_id().to_bytes())?;
                    writer.write_str("\",\"logging.googleapis.com/trace_sampled\":")?;
                    writer.write_str(if trace.is_sampled() { "true" } else { "false" })?;
                }
                let mut others = JsonFields {
                    out: JsonEscape(&mut writer),
                    message: false,
                    result: Ok(()),
                };
                event.record(&mut others);
                others.result?;
                writer.write_str("}\n")
            }
            LogFormat::Text => {
                let mut fields = TextFields::default();
                event.record(&mut fields);
                write_time(&mut writer)?;
                write!(
                    writer,
                    " {:>5} {}: {}",
                    metadata.level(),
                    metadata.target(),
                    fields.message
                )?;
                for (name, value) in &fields.others {
                    write!(writer, " {name}={value}")?;
                }
                if let Some(trace) = trace {
                    writer.write_str(" trace_id=")?;
                    write_hex(&mut writer, &trace.trace_id().to_bytes())?;
                }
                writer.write_char('\n')
            }
        }
    }
}

thread_local! {
    /// The current second as `YYYY-MM-DDTHH:MM:SS`, formatted once a second.
    static SECOND: std::cell::RefCell<(u64, String)> =
        const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 UTC with microseconds: `2026-11-26T10:49:28.780871Z`.
fn write_time(writer: &mut Writer<'_>) -> fmt::Result {
    let now = SystemTime::now();
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    SECOND.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let text = humantime::format_rfc3339_seconds(now).to_string();
            cache.1 = text.trim_end_matches('Z').to_owned();
            cache.0 = second;
        }
        writer.write_str(&cache.1)
    })?;
    let mut micros = since_epoch.subsec_micros();
    let mut digits = *b".000000Z";
    for slot in digits[1..7].iter_mut().rev() {
        *slot = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    writer.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// Lower-case hex, as trace and span ids are written.
fn write_hex(writer: &mut Writer<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0_u8; 32];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    let text = &text[..bytes.len().min(16) * 2];
    writer.write_str(std::str::from_utf8(text).map_err(|_| fmt::Error)?)
}

/// Writes the event's fields into a JSON line: the message alone (inside
/// its quotes), or every other field as `,"name":"value"`. `log`'s own
/// bookkeeping fields (`log.target`, ...) are left out.
struct JsonFields<'w, 'a> {
    out: JsonEscape<'w, 'a>,
    message: bool,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut JsonEscape<'_, '_>) -> fmt::Result) {
        let is_message = field.name() == "message";
        if self.result.is_err() || is_message != self.message || field.name().starts_with("log.") {
            return;
        }
        self.result = if self.message {
            value(&mut self.out)
        } else {
            (|| {
                self.out.0.write_str(",\"")?;
                self.out.write_str(field.name())?;
                self.out.0.write_str("\":\"")?;
                value(&mut self.out)?;
                self.out.0.write_char('"')
            })()
        };
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| out.write_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| write!(out, "{value:?}"));
    }
}

/// Escapes what is written through it as the inside of a JSON string.
struct JsonEscape<'w, 'a>(&'w mut Writer<'a>);

impl fmt::Write for JsonEscape<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
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
            self.0.write_str(&text[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&text[start..])
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

/// An event's message and other fields, as text; `log`'s own bookkeeping
/// fields (`log.target`, ...) are left out.
#[derive(Default)]
struct TextFields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for TextFields {
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
            in_trace(
                || tracing::warn!(user = "ada", count = 3, debug = ?"q\"", "quote \" and\nnewline"),
            );
        });
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "quote \" and\nnewline");
        assert_eq!(line["user"], "ada");
        assert_eq!(line["count"], "3");
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
    fn formats_parse_by_name() {
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert!(LogFormat::parse("yaml").is_err());
    }
}
