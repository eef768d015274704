use thiserror::Error;

use crate::logging::LoggingError;
use crate::telemetry::TelemetryError;
use crate::{BuildError, MetricsServerError};

/// Why observability could not be set up. The message names the setting
/// or the part at fault and, where it can, says what to do.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct SetupError {
    kind: Kind,
}

#[derive(Debug, Error)]
enum Kind {
    #[error(transparent)]
    Metrics(BuildError),
    #[error(transparent)]
    Telemetry(TelemetryError),
    #[error(transparent)]
    Logging(LoggingError),
    #[error(transparent)]
    MetricsServer(MetricsServerError),
}

impl SetupError {
    /// The environment variable at fault, when a setting is.
    pub fn setting(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::Telemetry(err) => err.setting(),
            Kind::Logging(err) => err.setting(),
            Kind::Metrics(_) | Kind::MetricsServer(_) => None,
        }
    }

    /// Whether a setting is wrong (as opposed to the environment: a port in
    /// use, a logger installed by someone else). Binaries exit 2 for the
    /// first, as for any bad flag, and 1 for the second.
    pub fn is_bad_setting(&self) -> bool {
        match &self.kind {
            Kind::Metrics(_) => true,
            Kind::Telemetry(err) => err.setting().is_some(),
            Kind::Logging(err) => err.setting().is_some(),
            Kind::MetricsServer(_) => false,
        }
    }

    /// The metrics port's error, if binding it failed.
    pub fn metrics_server(&self) -> Option<&MetricsServerError> {
        match &self.kind {
            Kind::MetricsServer(err) => Some(err),
            _ => None,
        }
    }
}

impl From<BuildError> for SetupError {
    fn from(err: BuildError) -> Self {
        Self {
            kind: Kind::Metrics(err),
        }
    }
}

impl From<TelemetryError> for SetupError {
    fn from(err: TelemetryError) -> Self {
        Self {
            kind: Kind::Telemetry(err),
        }
    }
}

impl From<LoggingError> for SetupError {
    fn from(err: LoggingError) -> Self {
        Self {
            kind: Kind::Logging(err),
        }
    }
}

impl From<MetricsServerError> for SetupError {
    fn from(err: MetricsServerError) -> Self {
        Self {
            kind: Kind::MetricsServer(err),
        }
    }
}

/// Why [`Observability::shutdown`](super::Observability::shutdown) could not
/// send every span in time: they are counted as dropped.
#[derive(Debug, Error)]
#[error("spans not sent before exit: {reason}")]
pub struct ShutdownError {
    reason: String,
}

impl ShutdownError {
    pub(crate) fn new(reason: impl std::fmt::Display) -> Self {
        Self {
            reason: reason.to_string(),
        }
    }
}
