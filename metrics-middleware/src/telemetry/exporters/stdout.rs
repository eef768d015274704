//! Spans as readable lines on standard output, for local runs
//! (`OTEL_TRACES_EXPORTER=stdout`, or `console` as the specification also
//! names it). One line per span: name, kind, ids, duration, status and
//! attributes, so `grep` finds a trace.
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Writes each span as one line on standard output.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutExporter {
    _private: (),
}

impl StdoutExporter {
    /// An exporter to standard output.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SpanExporter for StdoutExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut text = String::with_capacity(batch.len() * 256);
        for span in &batch {
            format_span(&mut text, span);
        }
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|err| OTelSdkError::InternalFailure(format!("cannot write spans: {err}")))
    }
}

/// `span "GET /hello/{name}" kind=Server trace=… span=… parent=… 1.234ms status=Ok http.route="/hello/{name}" …`
pub(crate) fn format_span(out: &mut String, span: &SpanData) {
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or(Duration::ZERO);
    let _ = write!(
        out,
        "span {:?} kind={:?} trace={} span={}",
        span.name,
        span.span_kind,
        span.span_context.trace_id(),
        span.span_context.span_id()
    );
    if span.parent_span_id != SpanId::INVALID {
        let _ = write!(out, " parent={}", span.parent_span_id);
    }
    let _ = write!(out, " {:.3}ms", duration.as_secs_f64() * 1e3);
    match &span.status {
        Status::Unset => {}
        Status::Ok => out.push_str(" status=ok"),
        Status::Error { description } => {
            let _ = write!(out, " status=error({description:?})");
        }
    }
    for attribute in &span.attributes {
        let _ = write!(out, " {}={:?}", attribute.key, attribute.value.as_str());
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::SystemTime;

    use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceId, TraceState};
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    #[test]
    fn a_span_is_one_readable_line() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let span = SpanData {
            span_context: SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
                SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from_hex("b7ad6b7169203331").expect("hex"),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("GET /hello/{name}"),
            start_time: start,
            end_time: start + Duration::from_micros(1_500),
            attributes: vec![
                KeyValue::new("http.route", "/hello/{name}"),
                KeyValue::new("http.response.status_code", 503),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::error("Service Unavailable"),
            instrumentation_scope: Default::default(),
        };
        let mut line = String::new();
        format_span(&mut line, &span);
        assert_eq!(
            line,
            "span \"GET /hello/{name}\" kind=Server trace=4bf92f3577b34da6a3ce929d0e0e4736 \
             span=00f067aa0ba902b7 parent=b7ad6b7169203331 1.500ms \
             status=error(\"Service Unavailable\") http.route=\"/hello/{name}\" \
             http.response.status_code=\"503\"\n"
        );
    }
}
