//! Names, help texts and label sets of the request metrics.

/// One property of a request that a metric can be labelled by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The request method; non-standard methods are counted as `_OTHER`.
    Method,
    /// The matched route template, or the unmatched mask value.
    Route,
    /// The response status code, such as `200`.
    Status,
}

/// The name, help text and labels of one metric.
///
/// ```
/// use metrics_middleware::{Dimension, MetricSpec};
///
/// let spec = MetricSpec::new("api_requests_total", "Requests served.")
///     .label(Dimension::Method, "verb")
///     .label(Dimension::Status, "code");
/// assert_eq!(spec.name(), "api_requests_total");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) labels: Vec<(Dimension, String)>,
}

impl MetricSpec {
    /// A metric without labels; add them with [`label`](Self::label).
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            help: help.into(),
            labels: Vec::new(),
        }
    }

    /// Labels the metric by `dimension`, under the label name `name`.
    #[must_use]
    pub fn label(mut self, dimension: Dimension, name: impl Into<String>) -> Self {
        self.labels.push((dimension, name.into()));
        self
    }

    /// The metric's name, without any namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label names, in order.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(|(_, name)| name.as_str())
    }

    fn standard(name: &str, help: &str, dimensions: &[Dimension], route_label: &str) -> Self {
        dimensions.iter().fold(Self::new(name, help), |spec, dim| {
            let label = match dim {
                Dimension::Method => "method",
                Dimension::Route => route_label,
                Dimension::Status => "status",
            };
            spec.label(*dim, label)
        })
    }
}

/// Which request metrics exist, under which names and labels.
///
/// Start from a preset and change what you need; `None` turns a metric off.
///
/// ```
/// use metrics_middleware::{MetricSpec, Naming};
///
/// let naming = Naming::standard()
///     .request_size(None)
///     .requests_total(MetricSpec::new("hits_total", "Requests."));
/// assert!(naming.request_size_spec().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Naming {
    pub(crate) requests_total: Option<MetricSpec>,
    pub(crate) request_duration: Option<MetricSpec>,
    pub(crate) requests_in_flight: Option<MetricSpec>,
    pub(crate) request_size: Option<MetricSpec>,
    pub(crate) response_size: Option<MetricSpec>,
    pub(crate) exporter_info: Option<MetricSpec>,
    pub(crate) duration_buckets: Vec<f64>,
}

/// The latency buckets of `prometheus_flask_exporter`, in seconds.
pub const FLASK_EXPORTER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

impl Naming {
    /// Conventional Prometheus names: `http_requests_total`,
    /// `http_request_duration_seconds`, `http_requests_in_flight`,
    /// `http_request_size_bytes`, `http_response_size_bytes`, labelled by
    /// `method`, `route` and `status`, with Prometheus' default latency buckets.
    pub fn standard() -> Self {
        use Dimension::{Method, Route, Status};
        Self {
            requests_total: Some(MetricSpec::standard(
                "http_requests_total",
                "Total number of HTTP requests handled.",
                &[Method, Route, Status],
                "route",
            )),
            request_duration: Some(MetricSpec::standard(
                "http_request_duration_seconds",
                "Time from receiving an HTTP request to sending the last byte of its response body.",
                &[Method, Route, Status],
                "route",
            )),
            requests_in_flight: Some(MetricSpec::new(
                "http_requests_in_flight",
                "HTTP requests being handled now.",
            )),
            request_size: Some(MetricSpec::standard(
                "http_request_size_bytes",
                "Size of HTTP request bodies.",
                &[Method, Route],
                "route",
            )),
            response_size: Some(MetricSpec::standard(
                "http_response_size_bytes",
                "Size of HTTP response bodies.",
                &[Method, Route, Status],
                "route",
            )),
            exporter_info: None,
            duration_buckets: prometheus::DEFAULT_BUCKETS.to_vec(),
        }
    }

    /// The names and label sets of Python's `prometheus_flask_exporter`, as
    /// the original Flask service exposed them:
    ///
    /// - `flask_http_request_total{method,status}`
    /// - `flask_http_request_duration_seconds{method,path,status}` with the
    ///   exporter's buckets (`.005` to `10` seconds); `path` holds the route
    ///   template, not the raw path, which closes the original's cardinality hole
    /// - `flask_exporter_info{version}`
    ///
    /// The in-flight and size metrics, which the exporter lacked, are kept
    /// under `flask_http_*` names: adding series breaks no dashboard.
    pub fn flask_exporter() -> Self {
        use Dimension::{Method, Route, Status};
        Self {
            requests_total: Some(MetricSpec::standard(
                "flask_http_request_total",
                "Total number of HTTP requests",
                &[Method, Status],
                "path",
            )),
            request_duration: Some(MetricSpec::standard(
                "flask_http_request_duration_seconds",
                "Flask HTTP request duration in seconds",
                &[Method, Route, Status],
                "path",
            )),
            requests_in_flight: Some(MetricSpec::new(
                "flask_http_requests_in_flight",
                "HTTP requests being handled now.",
            )),
            request_size: Some(MetricSpec::standard(
                "flask_http_request_size_bytes",
                "Size of HTTP request bodies.",
                &[Method, Route],
                "path",
            )),
            response_size: Some(MetricSpec::standard(
                "flask_http_response_size_bytes",
                "Size of HTTP response bodies.",
                &[Method, Route, Status],
                "path",
            )),
            exporter_info: Some(MetricSpec::new(
                "flask_exporter_info",
                "Information about the Prometheus Flask exporter",
            )),
            duration_buckets: FLASK_EXPORTER_BUCKETS.to_vec(),
        }
    }

    /// No request metrics at all, for a process without an HTTP server of
    /// its own that still wants the rest (process metrics, a scrape port,
    /// traces and logs).
    pub fn none() -> Self {
        Self {
            requests_total: None,
            request_duration: None,
            requests_in_flight: None,
            request_size: None,
            response_size: None,
            exporter_info: None,
            duration_buckets: Self::standard().duration_buckets,
        }
    }

    /// The request counter.
    #[must_use]
    pub fn requests_total(mut self, spec: impl Into<Option<MetricSpec>>) -> Self {
        self.requests_total = spec.into();
        self
    }

    /// The latency histogram.
    #[must_use]
    pub fn request_duration(mut self, spec: impl Into<Option<MetricSpec>>) -> Self {
        self.request_duration = spec.into();
        self
    }

    /// The in-flight gauge; it may be labelled by [`Dimension::Method`] only,
    /// since route and status are not known when a request starts.
    #[must_use]
    pub fn requests_in_flight(mut self, spec: impl Into<Option<MetricSpec>>) -> Self {
        self.requests_in_flight = spec.into();
        self
    }

    /// The request body size histogram.
    #[must_use]
    pub fn request_size(mut self, spec: impl Into<Option<MetricSpec>>) -> Self {
        self.request_size = spec.into();
        self
    }

    /// The response body size histogram.
    #[must_use]
    pub fn response_size(mut self, spec: impl Into<Option<MetricSpec>>) -> Self {
        self.response_size = spec.into();
        self
    }

    /// A gauge set to 1 with a `version` label holding this crate's version,
    /// as `flask_exporter_info` did; its labels are ignored.
    #[must_use]
    pub fn exporter_info(mut self, spec: impl Into<Option<MetricSpec>>) -> Self {
        self.exporter_info = spec.into();
        self
    }

    /// The request counter's spec, if it is on.
    pub fn requests_total_spec(&self) -> Option<&MetricSpec> {
        self.requests_total.as_ref()
    }

    /// The latency histogram's spec, if it is on.
    pub fn request_duration_spec(&self) -> Option<&MetricSpec> {
        self.request_duration.as_ref()
    }

    /// The request size histogram's spec, if it is on.
    pub fn request_size_spec(&self) -> Option<&MetricSpec> {
        self.request_size.as_ref()
    }
}

impl Default for Naming {
    fn default() -> Self {
        Self::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_preset_has_the_original_names_and_label_sets() {
        let naming = Naming::flask_exporter();
        let total = naming.requests_total.expect("on");
        assert_eq!(total.name, "flask_http_request_total");
        assert_eq!(
            total.label_names().collect::<Vec<_>>(),
            ["method", "status"]
        );
        let duration = naming.request_duration.expect("on");
        assert_eq!(duration.name, "flask_http_request_duration_seconds");
        assert_eq!(
            duration.label_names().collect::<Vec<_>>(),
            ["method", "path", "status"]
        );
        assert_eq!(naming.duration_buckets.len(), 14);
        assert_eq!(
            naming.exporter_info.expect("on").name,
            "flask_exporter_info"
        );
    }
}
