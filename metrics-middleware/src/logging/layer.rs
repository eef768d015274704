//! The ways lines reach the writer: a `tracing-subscriber` layer for
//! `tracing` events, and a `log` logger for `log` records.
use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::client_errors::ClientErrors;
use super::line::{
    with_line_buffer, EventFields, LineFormat, LineTrace, MessageField, MessageOut, Text,
};
use super::writer::BufferedWriter;

/// Where lines go, in which format: shared by the layer, the `log` bridge
/// and the access log.
#[derive(Clone)]
pub(crate) struct LineSink {
    pub(crate) format: Arc<LineFormat>,
    pub(crate) writer: BufferedWriter,
    pub(crate) client_errors: Arc<ClientErrors>,
}

impl LineSink {
    /// Formats one line into this thread's buffer and hands it over.
    pub(crate) fn emit(
        &self,
        level: Level,
        target: Text<'_>,
        trace: Option<&LineTrace>,
        message: impl FnOnce(&mut MessageOut<'_>) -> fmt::Result,
        fields: impl FnOnce(&mut super::line::FieldWriter<'_>),
    ) {
        with_line_buffer(|line| {
            self.format
                .write(line, level, target, trace, message, fields);
            self.writer.write_line(line, level <= Level::WARN);
        });
    }
}

/// A `tracing-subscriber` layer that writes each event as a Cloud Logging
/// line, with the trace of the OpenTelemetry context current when it
/// happens. Add it to a subscriber of your own with
/// [`Observability::log_layer`](crate::Observability::log_layer); `log`
/// records reach it through `tracing_log::LogTracer`.
#[derive(Clone)]
pub struct CloudLoggingLayer {
    sink: LineSink,
}

impl CloudLoggingLayer {
    pub(crate) fn new(sink: LineSink) -> Self {
        Self { sink }
    }
}

impl fmt::Debug for CloudLoggingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudLoggingLayer")
            .field("format", &self.sink.format.format)
            .finish_non_exhaustive()
    }
}

impl<S: Subscriber> Layer<S> for CloudLoggingLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        // `log` records arrive with their own target and level in fields.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let target = match normalized {
            Some(_) => Text::Borrowed(metadata.target()),
            None => Text::Static(event.metadata().target()),
        };
        if ClientErrors::may_be(metadata) {
            let mut message = String::new();
            event.record(&mut MessageField {
                out: &mut message,
                result: Ok(()),
            });
            if ClientErrors::is_client_error(&message) {
                if let Some(summary) = self
                    .sink
                    .client_errors
                    .note(&message, std::time::Instant::now())
                {
                    self.sink.emit(
                        Level::INFO,
                        target,
                        None,
                        |out| out.write_str(&summary),
                        |_| {},
                    );
                }
                return;
            }
        }
        let trace = LineTrace::current();
        self.sink.emit(
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
    }
}

/// The `log` crate's logger: records are filtered by the `RUST_LOG` targets
/// and written straight to the line writer, without becoming `tracing`
/// events first (that conversion cost more than the line itself).
pub(crate) struct LogBridge {
    pub(crate) sink: LineSink,
    pub(crate) filter: Targets,
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter
            .would_enable(metadata.target(), &tracing_level(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = tracing_level(record.level());
        if !self.filter.would_enable(record.target(), &level) {
            return;
        }
        let trace = LineTrace::current();
        // The `log` macros' default target is the module path, static.
        let target = match record.module_path_static() {
            Some(path) if std::ptr::eq(path, record.target()) => Text::Static(path),
            _ => Text::Borrowed(record.target()),
        };
        self.sink.emit(
            level,
            target,
            trace.as_ref(),
            |out| match record.args().as_str() {
                // A message without arguments needs no formatting.
                Some(text) => out.write_static(text),
                None => out.write_fmt(*record.args()),
            },
            |_| {},
        );
    }

    fn flush(&self) {}
}

pub(crate) fn tracing_level(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::ERROR,
        log::Level::Warn => Level::WARN,
        log::Level::Info => Level::INFO,
        log::Level::Debug => Level::DEBUG,
        log::Level::Trace => Level::TRACE,
    }
}
