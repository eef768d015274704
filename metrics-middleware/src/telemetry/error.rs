use thiserror::Error;

use super::config::ConfigError;

/// Why tracing could not be set up. Each message names the setting or the
/// part at fault; none of them is raised for a backend that is merely
/// unreachable, which only costs the spans sent to it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An `OTEL_*` variable holds a value that cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter refused its settings (an endpoint that is not a URI, a
    /// missing credential file, ...).
    #[error("cannot build the {exporter} span exporter: {reason}")]
    Exporter {
        /// The `OTEL_TRACES_EXPORTER` value.
        exporter: &'static str,
        /// The exporter's own message.
        reason: String,
    },
    /// The exporter was asked for but this build lacks its cargo feature.
    #[error(
        "OTEL_TRACES_EXPORTER={exporter} needs the `{feature}` cargo feature of metrics-middleware"
    )]
    FeatureMissing {
        /// The `OTEL_TRACES_EXPORTER` value.
        exporter: &'static str,
        /// The cargo feature that provides it.
        feature: &'static str,
    },
    /// The span counters could not be registered (registered twice, most
    /// likely).
    #[error("cannot register metric `{metric}`: {source}")]
    Register {
        /// The metric's name.
        metric: &'static str,
        /// The registry's own error.
        #[source]
        source: prometheus::Error,
    },
    /// The export thread could not be started.
    #[error("cannot start the span export thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The log subscriber could not be installed (from the `cli` feature's
    /// `TelemetryArgs::start`, which sets up traces and logs together).
    #[error(transparent)]
    Logging(#[from] crate::logging::LoggingError),
}

impl TelemetryError {
    /// The environment variable at fault, when a setting is.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Config(err) => Some(err.variable()),
            Self::Exporter { .. } | Self::FeatureMissing { .. } => Some("OTEL_TRACES_EXPORTER"),
            Self::Logging(err) => err.setting(),
            Self::Register { .. } | Self::Thread(_) => None,
        }
    }
}
