//! Log lines that Cloud Logging files under their trace.
//!
//! [`Logging`] installs tracing-subscriber with `RUST_LOG` filtering and
//! bridges `log` records (actix-web's, the app's `log::info!`). Two formats:
//!
//! - **JSON**, one object per line, in the fields Cloud Logging's agent reads
//!   on GKE: `severity`, `message`, `time`, and, inside a traced request,
//!   `logging.googleapis.com/trace` (`projects/PROJECT/traces/TRACE_ID`),
//!   `logging.googleapis.com/spanId` and `logging.googleapis.com/trace_sampled`,
//!   so that the Logs Explorer shows a request's lines under its trace;
//! - **text** for a terminal, with the trace id appended when there is one.
//!
//! The default is JSON unless standard error is a terminal. The trace comes
//! from the OpenTelemetry context that [`RequestTracing`](crate::telemetry::RequestTracing)
//! makes current while a handler runs, so no tracing-opentelemetry layer (and
//! none of its per-span cost) is needed.
//!
//! A binary that wants plain logs without traces can keep using env_logger.
use std::io::IsTerminal;

use thiserror::Error;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

mod format;
mod writer;

pub use format::CloudLoggingFormat;
pub use writer::{BufferedWriter, FlushGuard};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines for Cloud Logging.
    Json,
    /// Readable text for a terminal.
    Text,
}

impl LogFormat {
    /// Text when standard error is a terminal, JSON otherwise (in a pod).
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Text
        } else {
            Self::Json
        }
    }

    /// `json`, `text`, or `auto` for [`detect`](Self::detect).
    ///
    /// # Errors
    ///
    /// A message listing the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            "auto" | "" => Ok(Self::detect()),
            _ => Err(format!("{text:?} is not one of json, text, auto")),
        }
    }
}

/// Why logging could not be installed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// `RUST_LOG` (or the default filter) cannot be parsed.
    #[error("invalid RUST_LOG={value:?}: {reason}")]
    Filter {
        /// The filter text.
        value: String,
        /// The parser's message.
        reason: String,
    },
    /// A global logger or subscriber is installed already.
    #[error("a global logger is installed already: {0}")]
    AlreadyInstalled(String),
    /// The drop counter could not be registered, or the writer thread not
    /// started.
    #[error("cannot set up the log writer: {0}")]
    Writer(String),
}

/// Builds and installs the process's logging; see the module docs.
///
/// ```no_run
/// use metrics_middleware::logging::{LogFormat, Logging};
///
/// // Keep the guard until the end of `main`: it writes the last lines.
/// let _flush = Logging::builder()
///     .format(LogFormat::detect())
///     .gcp_project_id(Some("my-project".to_owned()))
///     .init()
///     .expect("logging installed once");
/// log::info!("ready");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Logging {
    format: LogFormat,
    default_filter: String,
    project_id: Option<String>,
    registry: Option<prometheus::Registry>,
    max_buffered_bytes: usize,
}

impl Logging {
    /// Format from [`LogFormat::detect`], filter `RUST_LOG` else `info`.
    pub fn builder() -> Self {
        Self {
            format: LogFormat::detect(),
            default_filter: "info".to_owned(),
            project_id: None,
            registry: None,
            max_buffered_bytes: 4 << 20,
        }
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

    /// The format.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// The filter when `RUST_LOG` is unset, in `RUST_LOG`'s syntax.
    pub fn default_filter(mut self, filter: impl Into<String>) -> Self {
        self.default_filter = filter.into();
        self
    }

    /// The Google Cloud project that trace names are qualified with
    /// (`projects/PROJECT/traces/ID`); see
    /// [`Telemetry::gcp_project_id`](crate::telemetry::Telemetry::gcp_project_id).
    /// Without one, the bare trace id is written.
    pub fn gcp_project_id(mut self, project_id: Option<String>) -> Self {
        self.project_id = project_id;
        self
    }

    /// The formatter alone, to write into a writer of one's own (tests,
    /// benchmarks) with `tracing_subscriber::fmt().event_format(...)`.
    pub fn formatter(&self) -> CloudLoggingFormat {
        CloudLoggingFormat {
            format: self.format,
            trace_prefix: self
                .project_id
                .as_ref()
                .map(|project| format!("projects/{project}/traces/")),
        }
    }

    /// Installs the subscriber and the `log` bridge, writing to standard
    /// error through a [`BufferedWriter`]. Keep the guard until the end of
    /// `main`: dropping it writes the last lines.
    ///
    /// # Errors
    ///
    /// [`LoggingError::Filter`] for a bad `RUST_LOG`,
    /// [`LoggingError::AlreadyInstalled`] if called twice,
    /// [`LoggingError::Writer`] if the writer cannot be set up.
    pub fn init(self) -> Result<FlushGuard, LoggingError> {
        let text = std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| self.default_filter.clone());
        let filter = EnvFilter::builder()
            .parse(&text)
            .map_err(|e| LoggingError::Filter {
                value: text.clone(),
                reason: e.to_string(),
            })?;
        let dropped = prometheus::IntCounter::new(
            "log_lines_dropped_total",
            "Log lines lost because standard error could not keep up.",
        )
        .map_err(|e| LoggingError::Writer(e.to_string()))?;
        if let Some(registry) = &self.registry {
            registry
                .register(Box::new(dropped.clone()))
                .map_err(|e| LoggingError::Writer(e.to_string()))?;
        }
        let (writer, guard) =
            BufferedWriter::new(std::io::stderr(), self.max_buffered_bytes, dropped)
                .map_err(|e| LoggingError::Writer(e.to_string()))?;
        let layer = tracing_subscriber::fmt::layer()
            .event_format(self.formatter())
            .with_writer(writer);
        let subscriber = tracing_subscriber::registry().with(filter).with(layer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))?;
        tracing_log::LogTracer::init()
            .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))?;
        Ok(guard)
    }
}
