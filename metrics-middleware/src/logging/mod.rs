//! Log lines that Cloud Logging files under their trace.
//!
//! Two formats: **JSON**, one object per line in the fields Cloud Logging's
//! agent reads on GKE (`severity`, `time`, `message`, and inside a trace
//! `logging.googleapis.com/trace`, `logging.googleapis.com/spanId`,
//! `logging.googleapis.com/trace_sampled`; see [`mod@line`] for every rule), and
//! **text** for a terminal. `LOG_FORMAT` (`json`, `text`, `auto`) chooses;
//! `auto`, the default, is text on a terminal and JSON otherwise (in a pod).
//!
//! The trace comes from the OpenTelemetry context current when a line is
//! written, which the middleware sets while the application handles a
//! request (and [`in_current_trace`](crate::telemetry::in_current_trace) carries into blocking closures and
//! spawned tasks), so no per-span bookkeeping is needed.
//!
//! Lines go through a bounded buffer to a writer thread ([`BufferedWriter`]):
//! a request pays for a copy, not for a `write(2)`, and when standard error
//! cannot keep up, lines are dropped and counted in
//! `log_lines_dropped_total`.
//!
//! Three ways in:
//! - [`LogSink::install`]: the process's logging, `RUST_LOG` filtering, for
//!   `tracing` events and `log` records (which go straight to the writer,
//!   without becoming `tracing` events);
//! - [`LogSink::layer`]: a `tracing-subscriber` layer to add to a subscriber
//!   the application builds itself (then `tracing_log::LogTracer` brings
//!   `log` records);
//! - [`AccessLog`]: the middleware's line per request.
use std::io::IsTerminal;
use std::sync::Arc;

use thiserror::Error;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub(crate) mod access;
mod client_errors;
mod format;
mod layer;
pub mod line;
mod writer;

pub(crate) use access::{AccessEntry, AccessRequest};
pub use access::{AccessLog, ACCESS_LOG_TARGET};
pub use format::CloudLoggingFormat;
pub use layer::CloudLoggingLayer;
pub use writer::{BufferedWriter, FlushGuard};

use layer::{LineSink, LogBridge};
use line::LineFormat;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines for Cloud Logging.
    Json,
    /// Readable text for a terminal.
    Text,
}

impl LogFormat {
    /// `LOG_FORMAT` when it is set to `json` or `text`; otherwise text when
    /// standard error is a terminal and JSON when it is not (in a pod). Use
    /// [`from_env`](Self::from_env) to refuse a bad value instead.
    pub fn detect() -> Self {
        Self::from_env().unwrap_or_else(|_| Self::auto())
    }

    /// `LOG_FORMAT` (`json`, `text`, `auto`; unset means `auto`).
    ///
    /// # Errors
    ///
    /// [`LoggingError`] naming `LOG_FORMAT` for another value.
    pub fn from_env() -> Result<Self, LoggingError> {
        match std::env::var("LOG_FORMAT") {
            Ok(value) => Self::parse(&value).map_err(|_| LoggingError {
                kind: ErrorKind::Format { value },
            }),
            Err(_) => Ok(Self::auto()),
        }
    }

    /// Text on a terminal, JSON elsewhere.
    fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Text
        } else {
            Self::Json
        }
    }

    /// `json`, `text`, or `auto` (the terminal test).
    ///
    /// # Errors
    ///
    /// [`LogFormatError`] for another value.
    pub fn parse(text: &str) -> Result<Self, LogFormatError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            "auto" | "" => Ok(Self::auto()),
            _ => Err(LogFormatError {
                value: text.to_owned(),
            }),
        }
    }
}

/// A format name that is not `json`, `text` or `auto`.
#[derive(Debug, Clone, Error)]
#[error("{value:?} is not one of json, text, auto")]
pub struct LogFormatError {
    value: String,
}

/// Why logging could not be set up. The message says what to do.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct LoggingError {
    kind: ErrorKind,
}

#[derive(Debug, Error)]
enum ErrorKind {
    #[error("invalid RUST_LOG={value:?}: {reason}")]
    Filter { value: String, reason: String },
    #[error("invalid LOG_FORMAT={value:?}: expected json, text or auto")]
    Format { value: String },
    #[error(
        "a global tracing subscriber is set already: add the log layer to it \
         (`observability.log_layer()`) instead of installing logging"
    )]
    SubscriberSet,
    #[error(
        "a `log` logger is set already (env_logger::init()?): remove it, or \
         install logging yourself with `observability.log_layer()` and \
         tracing_log::LogTracer"
    )]
    LoggerSet,
    #[error("cannot set up the log writer: {0}")]
    Writer(String),
}

impl LoggingError {
    /// The environment variable at fault, if a setting is.
    pub fn setting(&self) -> Option<&'static str> {
        match self.kind {
            ErrorKind::Filter { .. } => Some("RUST_LOG"),
            ErrorKind::Format { .. } => Some("LOG_FORMAT"),
            _ => None,
        }
    }

    /// Whether a logger or subscriber of someone else's is in the way.
    pub fn is_already_installed(&self) -> bool {
        matches!(self.kind, ErrorKind::SubscriberSet | ErrorKind::LoggerSet)
    }
}

/// Builds the process's log output; see the module docs.
///
/// ```no_run
/// use metrics_middleware::logging::Logging;
///
/// // Keep the guard until the end of `main`: it writes the last lines.
/// let _flush = Logging::builder()
///     .gcp_project_id(Some("my-project".to_owned()))
///     .init()
///     .expect("logging installed once");
/// log::info!("ready");
/// ```
#[derive(Clone)]
#[must_use]
pub struct Logging {
    format: Option<LogFormat>,
    default_filter: String,
    project_id: Option<String>,
    registry: Option<prometheus::Registry>,
    max_buffered_bytes: usize,
    writer: Option<MakeWriter>,
}

/// Makes the writer the lines go to.
type MakeWriter = Arc<dyn Fn() -> Box<dyn std::io::Write + Send> + Send + Sync>;

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging")
            .field("format", &self.format)
            .field("default_filter", &self.default_filter)
            .field("project_id", &self.project_id)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("writer", &self.writer.as_ref().map(|_| "custom"))
            .finish_non_exhaustive()
    }
}

impl Logging {
    /// Format from `LOG_FORMAT`, filter from `RUST_LOG` (else `info`).
    pub fn builder() -> Self {
        Self {
            format: None,
            default_filter: "info".to_owned(),
            project_id: None,
            registry: None,
            max_buffered_bytes: 4 << 20,
            writer: None,
        }
    }

    /// Where the lines go, instead of standard error: `make` is called once,
    /// when logging is built, and what it returns gets every line from the
    /// writer thread (a file, a socket, a buffer a test reads).
    pub fn writer<W: std::io::Write + Send + 'static>(
        mut self,
        make: impl Fn() -> W + Send + Sync + 'static,
    ) -> Self {
        self.writer = Some(Arc::new(move || Box::new(make())));
        self
    }

    /// Registers `log_lines_dropped_total` (lines lost because standard
    /// error could not keep up) on `registry`.
    pub fn registry(mut self, registry: prometheus::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The most bytes of log lines waiting to be written; 4 MiB by default.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// The format, instead of `LOG_FORMAT`'s.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// The filter when `RUST_LOG` is unset, in `RUST_LOG`'s syntax.
    pub fn default_filter(mut self, filter: impl Into<String>) -> Self {
        self.default_filter = filter.into();
        self
    }

    /// The Google Cloud project that trace names are qualified with
    /// (`projects/PROJECT/traces/ID`, which is how Cloud Logging links a
    /// line to its trace); see
    /// [`Telemetry::gcp_project_id`](crate::telemetry::Telemetry::gcp_project_id).
    /// Without one, lines carry plain `trace_id` and `span_id` fields.
    pub fn gcp_project_id(mut self, project_id: Option<String>) -> Self {
        self.project_id = project_id;
        self
    }

    pub(crate) fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The formatter alone, to write into a writer of one's own with
    /// `tracing_subscriber::fmt().event_format(...)`.
    pub fn formatter(&self) -> CloudLoggingFormat {
        CloudLoggingFormat::new(self.line_format(self.format.unwrap_or_else(LogFormat::detect)))
    }

    fn line_format(&self, format: LogFormat) -> LineFormat {
        LineFormat {
            format,
            trace_prefix: self
                .project_id
                .as_ref()
                .map(|project| format!("projects/{project}/traces/").into_boxed_str()),
        }
    }

    /// Checks the settings and starts the writer thread; installs nothing.
    /// Keep the guard until the end of `main`: dropping it writes the last
    /// lines.
    ///
    /// # Errors
    ///
    /// [`LoggingError`] for a bad `RUST_LOG` or `LOG_FORMAT` (naming it), or
    /// a writer that cannot be set up.
    pub fn build(self) -> Result<(LogSink, FlushGuard), LoggingError> {
        let format = match self.format {
            Some(format) => format,
            None => LogFormat::from_env()?,
        };
        let filter = std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| self.default_filter.clone());
        EnvFilter::builder()
            .parse(&filter)
            .map_err(|e| LoggingError {
                kind: ErrorKind::Filter {
                    value: filter.clone(),
                    reason: e.to_string(),
                },
            })?;
        let writer_error = |e: String| LoggingError {
            kind: ErrorKind::Writer(e),
        };
        let dropped = prometheus::IntCounter::new(
            "log_lines_dropped_total",
            "Log lines lost because standard error could not keep up.",
        )
        .map_err(|e| writer_error(e.to_string()))?;
        if let Some(registry) = &self.registry {
            registry
                .register(Box::new(dropped.clone()))
                .map_err(|e| writer_error(e.to_string()))?;
        }
        let sink: Box<dyn std::io::Write + Send> = match &self.writer {
            Some(make) => make(),
            None => Box::new(std::io::stderr()),
        };
        let (writer, guard) = BufferedWriter::new(sink, self.max_buffered_bytes, dropped)
            .map_err(|e| writer_error(e.to_string()))?;
        let sink = LogSink {
            line: LineSink {
                client_errors: Arc::default(),
                format: Arc::new(self.line_format(format)),
                writer,
            },
            // `RUST_LOG` in the simple form (`target=level,...`) also
            // filters `log` records on their direct path; a filter that
            // needs spans or fields sends them through `tracing` instead.
            targets: filter.parse::<Targets>().ok(),
            filter,
        };
        Ok((sink, guard))
    }

    /// [`build`](Self::build), then [`LogSink::install`].
    ///
    /// # Errors
    ///
    /// As both.
    pub fn init(self) -> Result<FlushGuard, LoggingError> {
        let (sink, guard) = self.build()?;
        sink.install()?;
        Ok(guard)
    }
}

/// Where the process's log lines go, in one format; see [`Logging::build`].
#[derive(Clone)]
pub struct LogSink {
    line: LineSink,
    filter: String,
    targets: Option<Targets>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("format", &self.line.format.format)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// The subscriber [`LogSink::install`] sets, before any extra layer.
pub(crate) type BaseSubscriber = Layered<CloudLoggingLayer, Layered<EnvFilter, Registry>>;

impl LogSink {
    /// A layer that writes `tracing` events here, for a subscriber of your
    /// own.
    pub fn layer(&self) -> CloudLoggingLayer {
        CloudLoggingLayer::new(self.line.clone())
    }

    /// The `RUST_LOG` filter (or the default), as `tracing-subscriber`'s.
    pub fn env_filter(&self) -> EnvFilter {
        EnvFilter::new(&self.filter)
    }

    /// The access log, writing here; `None` when the filter turns its
    /// target ([`ACCESS_LOG_TARGET`]) off at INFO.
    pub fn access_log(&self) -> Option<AccessLog> {
        let enabled = match &self.targets {
            Some(targets) => targets.would_enable(ACCESS_LOG_TARGET, &tracing::Level::INFO),
            None => self
                .env_filter()
                .max_level_hint()
                .is_none_or(|max| max >= LevelFilter::INFO),
        };
        enabled.then(|| AccessLog::new(self.line.clone()))
    }

    /// Makes these lines the process's logging: a global `tracing`
    /// subscriber (`RUST_LOG` filter, this format) and the `log` logger.
    ///
    /// # Errors
    ///
    /// [`LoggingError`] (saying what to do) if a global subscriber or `log`
    /// logger is set already; nothing is installed then.
    pub fn install(&self) -> Result<(), LoggingError> {
        self.install_with(None::<tracing_subscriber::layer::Identity>)
    }

    /// [`install`](Self::install) with one more layer (the span bridge).
    pub(crate) fn install_with<L>(&self, extra: L) -> Result<(), LoggingError>
    where
        L: Layer<BaseSubscriber> + Send + Sync + 'static,
    {
        let installed = |kind| LoggingError { kind };
        if tracing::dispatcher::has_been_set() {
            return Err(installed(ErrorKind::SubscriberSet));
        }
        let (logger, max_level): (Box<dyn log::Log>, log::LevelFilter) = match &self.targets {
            Some(targets) => (
                Box::new(LogBridge {
                    sink: self.line.clone(),
                    filter: targets.clone(),
                }),
                log_level(max_level(targets)),
            ),
            None => (
                Box::new(tracing_log::LogTracer::new()),
                log::LevelFilter::Trace,
            ),
        };
        log::set_boxed_logger(logger).map_err(|_| installed(ErrorKind::LoggerSet))?;
        log::set_max_level(max_level);
        let subscriber = tracing_subscriber::registry()
            .with(self.env_filter())
            .with(self.layer())
            .with(extra);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| installed(ErrorKind::SubscriberSet))
    }
}

/// The most verbose level `targets` lets through anywhere.
fn max_level(targets: &Targets) -> LevelFilter {
    targets
        .iter()
        .map(|(_, level)| level)
        .chain(targets.default_level())
        .max()
        .unwrap_or(LevelFilter::OFF)
}

fn log_level(level: LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(tracing::Level::ERROR) => log::LevelFilter::Error,
        Some(tracing::Level::WARN) => log::LevelFilter::Warn,
        Some(tracing::Level::INFO) => log::LevelFilter::Info,
        Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
        Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        assert_eq!(LogFormat::parse("JSON").ok(), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text").ok(), Some(LogFormat::Text));
        assert!(LogFormat::parse("yaml").is_err());
    }

    #[test]
    fn the_log_bridge_lets_through_as_much_as_the_filter() {
        let targets: Targets = "warn,my_app=debug".parse().expect("valid");
        assert_eq!(log_level(max_level(&targets)), log::LevelFilter::Debug);
        let targets: Targets = "warn".parse().expect("valid");
        assert_eq!(log_level(max_level(&targets)), log::LevelFilter::Warn);
        let targets: Targets = "off".parse().expect("valid");
        assert_eq!(log_level(max_level(&targets)), log::LevelFilter::Off);
    }
}
