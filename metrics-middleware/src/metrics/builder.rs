use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix_web::http::StatusCode;
use prometheus::Registry;

use super::instruments::{InstrumentSettings, Instruments};
use super::middleware::{HttpMetrics, Shared};
use super::{BuildError, Naming};
use crate::middleware::{Exclude, ObservabilityMiddleware};
use crate::process::{self, BuildInfo};

/// Response size buckets in bytes: powers of four from 64 B to 16 MiB.
const DEFAULT_SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// The label value of every request that matched no route.
pub const DEFAULT_UNMATCHED_ROUTE: &str = "<unmatched>";

/// Builds [`HttpMetrics`]. Every setting has a default that suits a service
/// on Kubernetes; [`build`](Self::build) checks them all and registers the
/// metrics.
///
/// ```
/// use metrics_middleware::{HttpMetrics, Naming};
///
/// let metrics = HttpMetrics::builder()
///     .naming(Naming::flask_exporter())
///     .const_label("environment", "staging")
///     .exclude_path("/healthz")
///     .build()
///     .expect("valid settings");
/// assert!(metrics.render().contains("flask_exporter_info"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpMetricsBuilder {
    registry: Option<Registry>,
    naming: Naming,
    namespace: Option<String>,
    const_labels: HashMap<String, String>,
    duration_buckets: Option<Vec<f64>>,
    size_buckets: Vec<f64>,
    exclusions: Vec<Exclude>,
    excluded_statuses: HashSet<StatusCode>,
    unmatched_route: String,
    mask_unmatched: bool,
    process_metrics: bool,
    build_info: Option<BuildInfo>,
}

impl Default for HttpMetricsBuilder {
    fn default() -> Self {
        Self {
            registry: None,
            naming: Naming::standard(),
            namespace: None,
            const_labels: HashMap::new(),
            duration_buckets: None,
            size_buckets: DEFAULT_SIZE_BUCKETS.to_vec(),
            exclusions: Vec::new(),
            excluded_statuses: HashSet::new(),
            unmatched_route: DEFAULT_UNMATCHED_ROUTE.to_owned(),
            mask_unmatched: true,
            process_metrics: cfg!(feature = "process"),
            build_info: None,
        }
    }
}

impl HttpMetricsBuilder {
    /// Records into `registry` instead of a new one, for an application that
    /// already has its own.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Metric names and label sets; [`Naming::standard`] by default.
    pub fn naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// A prefix for the request metrics' names: `myapp` gives
    /// `myapp_http_requests_total`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A label with a fixed value on every request metric.
    pub fn const_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.const_labels.insert(name.into(), value.into());
        self
    }

    /// Latency buckets in seconds; the naming preset's by default.
    pub fn duration_buckets(mut self, buckets: &[f64]) -> Self {
        self.duration_buckets = Some(buckets.to_vec());
        self
    }

    /// Request and response size buckets in bytes; 64 B to 16 MiB by default.
    pub fn size_buckets(mut self, buckets: &[f64]) -> Self {
        self.size_buckets = buckets.to_vec();
        self
    }

    /// Requests to this exact path are not measured (probes, for example).
    pub fn exclude_path(self, path: impl Into<String>) -> Self {
        self.exclude(Exclude::path(path))
    }

    /// Requests that match `rule` are not measured. (With
    /// [`Observability`](crate::Observability), give rules to its builder
    /// instead: they apply to metrics and spans alike.)
    pub fn exclude(mut self, rule: Exclude) -> Self {
        self.exclusions.push(rule);
        self
    }

    /// Responses with this status are not measured.
    pub fn exclude_status(mut self, status: StatusCode) -> Self {
        self.excluded_statuses.insert(status);
        self
    }

    /// The route label value of requests that matched no route;
    /// `<unmatched>` by default.
    pub fn unmatched_route(mut self, value: impl Into<String>) -> Self {
        self.unmatched_route = value.into();
        self
    }

    /// Whether unmatched requests share one route label value (the default).
    /// Turned off, they are labelled by their raw path, as the Flask exporter
    /// did: then any client can create series without bound, so do this only
    /// behind something that limits paths.
    pub fn mask_unmatched(mut self, mask: bool) -> Self {
        self.mask_unmatched = mask;
        self
    }

    /// Whether to register the `process_*` metrics and `rust_build_info`
    /// (on by default where the `process` feature is).
    pub fn process_metrics(mut self, enabled: bool) -> Self {
        self.process_metrics = enabled;
        self
    }

    /// The application's name and version for `rust_build_info`; this
    /// crate's own by default. Pass [`build_info!()`](crate::build_info).
    pub fn build_info(mut self, info: BuildInfo) -> Self {
        self.build_info = Some(info);
        self
    }

    /// The exclusion rules given so far, taken out (the entry point applies
    /// them to every signal).
    pub(crate) fn take_exclusions(&mut self) -> Vec<Exclude> {
        std::mem::take(&mut self.exclusions)
    }

    /// Checks every setting and registers the metrics.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting at fault: buckets that are empty,
    /// not finite or not increasing; a label set that repeats a label or
    /// clashes with a constant label; a metric name that Prometheus refuses or
    /// that the registry already holds.
    pub fn build(self) -> Result<HttpMetrics, BuildError> {
        let duration_buckets = self
            .duration_buckets
            .unwrap_or_else(|| self.naming.duration_buckets.clone());
        check_buckets("duration_buckets", &duration_buckets)?;
        check_buckets("size_buckets", &self.size_buckets)?;

        let registry = self.registry.unwrap_or_default();
        let settings = InstrumentSettings {
            namespace: self.namespace.as_deref(),
            const_labels: &self.const_labels,
            duration_buckets: &duration_buckets,
            size_buckets: &self.size_buckets,
        };
        let instruments = Instruments::register(&registry, &self.naming, &settings)?;
        if let Some(spec) = &self.naming.exporter_info {
            process::register_exporter_info(&registry, spec)?;
        }
        if self.process_metrics {
            let info = self.build_info.unwrap_or_else(|| crate::build_info!());
            process::register(&registry, &info)?;
        }

        let shared = Arc::new(Shared {
            registry,
            instruments,
            exemplars: super::Exemplars::new(),
            excluded_statuses: self.excluded_statuses.into_iter().collect(),
            unmatched_route: self.unmatched_route,
            mask_unmatched: self.mask_unmatched,
        });
        let mut middleware = ObservabilityMiddleware::builder().metrics_shared(Arc::clone(&shared));
        for rule in self.exclusions {
            middleware = middleware.exclude(rule);
        }
        Ok(HttpMetrics::from_parts(shared, middleware.build()))
    }
}

fn check_buckets(setting: &'static str, buckets: &[f64]) -> Result<(), BuildError> {
    let invalid = |reason: &str| BuildError::InvalidBuckets {
        setting,
        reason: reason.to_owned(),
    };
    if buckets.is_empty() {
        return Err(invalid("give at least one bucket"));
    }
    if buckets.iter().any(|b| !b.is_finite()) {
        return Err(invalid(
            "buckets must be finite (+Inf is always added for you)",
        ));
    }
    if buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid("buckets must be strictly increasing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dimension, MetricSpec};

    #[test]
    fn bad_buckets_name_the_setting() {
        let err = HttpMetrics::builder()
            .duration_buckets(&[0.1, 0.05])
            .build()
            .expect_err("decreasing buckets");
        assert!(err.to_string().contains("duration_buckets"), "{err}");
        let err = HttpMetrics::builder()
            .size_buckets(&[])
            .build()
            .expect_err("no buckets");
        assert!(err.to_string().contains("size_buckets"), "{err}");
        let err = HttpMetrics::builder()
            .duration_buckets(&[1.0, f64::INFINITY])
            .build()
            .expect_err("infinite bucket");
        assert!(err.to_string().contains("finite"), "{err}");
    }

    #[test]
    fn label_clashes_are_refused() {
        let err = HttpMetrics::builder()
            .const_label("method", "x")
            .process_metrics(false)
            .build()
            .expect_err("const label clashes");
        assert!(err.to_string().contains("`method`"), "{err}");

        let naming = Naming::standard()
            .requests_in_flight(MetricSpec::new("inflight", "h").label(Dimension::Route, "route"));
        let err = HttpMetrics::builder()
            .naming(naming)
            .process_metrics(false)
            .build()
            .expect_err("in-flight by route");
        assert!(err.to_string().contains("inflight"), "{err}");
    }

    #[test]
    fn invalid_names_and_duplicates_are_refused() {
        let naming = Naming::standard().requests_total(MetricSpec::new("bad name", "h"));
        let err = HttpMetrics::builder()
            .naming(naming)
            .process_metrics(false)
            .build()
            .expect_err("space in name");
        assert!(err.to_string().contains("bad name"), "{err}");

        let registry = Registry::new();
        let first = HttpMetrics::builder()
            .registry(registry.clone())
            .process_metrics(false)
            .build();
        assert!(first.is_ok());
        let err = HttpMetrics::builder()
            .registry(registry)
            .process_metrics(false)
            .build()
            .expect_err("registered twice");
        assert!(matches!(err, BuildError::Register { .. }), "{err}");
    }
}
