use thiserror::Error;

/// Why [`HttpMetricsBuilder::build`](super::HttpMetricsBuilder::build) or
/// [`HttpMetrics::route_counter`](super::HttpMetrics::route_counter) refused a
/// setting. Each message names the setting and says what is accepted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Histogram buckets must be finite and strictly increasing.
    #[error("invalid buckets for `{setting}`: {reason}")]
    InvalidBuckets {
        /// The builder setting that holds the buckets.
        setting: &'static str,
        /// What is wrong with them.
        reason: String,
    },
    /// A label that cannot be used on that metric.
    #[error("invalid labels for metric `{metric}`: {reason}")]
    InvalidLabels {
        /// The metric's name.
        metric: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The Prometheus registry refused the metric: an invalid name, or a
    /// metric of that name and labels registered already.
    #[error("cannot register metric `{metric}`: {source}")]
    Register {
        /// The metric's name.
        metric: String,
        /// The registry's own error.
        #[source]
        source: prometheus::Error,
    },
}
