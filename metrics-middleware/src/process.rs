//! Facts about the process: the `process_*` metrics that every Prometheus
//! client library exposes, and `rust_build_info`, the Rust counterpart of the
//! original's `python_info`.
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use crate::metrics::{BuildError, MetricSpec};

/// The version of the compiler that built this crate.
pub const RUSTC_VERSION: &str = env!("METRICS_MIDDLEWARE_RUSTC_VERSION");

/// An application's name and version, for `rust_build_info`. Use
/// [`build_info!()`](crate::build_info) to take them from the calling crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    name: String,
    version: String,
}

impl BuildInfo {
    /// The name and version of an application.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }
}

/// The calling crate's [`BuildInfo`], from its `Cargo.toml`.
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::BuildInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
    };
}

/// Registers on `registry`:
///
/// - `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`,
///   `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
///   `process_start_time_seconds`, `process_threads` (Linux, `process`
///   feature; read from `/proc` at each scrape, so they cost nothing between
///   scrapes);
/// - `rust_build_info{name,version,rustc_version}`, set to 1.
///
/// # Errors
///
/// [`BuildError::Register`] if they are registered on that registry already.
pub fn register(registry: &Registry, info: &BuildInfo) -> Result<(), BuildError> {
    #[cfg(all(feature = "process", target_os = "linux"))]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .map_err(|source| BuildError::Register {
            metric: "process_cpu_seconds_total".to_owned(),
            source,
        })?;

    IntGaugeVec::new(
        Opts::new(
            "rust_build_info",
            "The application's name and version and the Rust compiler that built it.",
        ),
        &["name", "version", "rustc_version"],
    )
    .and_then(|gauge| {
        gauge
            .with_label_values(&[info.name.as_str(), &info.version, RUSTC_VERSION])
            .set(1);
        registry.register(Box::new(gauge.clone()))
    })
    .map_err(|source| BuildError::Register {
        metric: "rust_build_info".to_owned(),
        source,
    })
}

/// `flask_exporter_info{version}`: a gauge at 1 whose label holds this
/// crate's version, as the Flask exporter's did with its own.
pub(crate) fn register_exporter_info(
    registry: &Registry,
    spec: &MetricSpec,
) -> Result<(), BuildError> {
    let register_error = |source| BuildError::Register {
        metric: spec.name().to_owned(),
        source,
    };
    let opts = Opts::new(spec.name.clone(), spec.help.clone())
        .const_label("version", env!("CARGO_PKG_VERSION"));
    let gauge = IntGauge::with_opts(opts).map_err(register_error)?;
    gauge.set(1);
    registry.register(Box::new(gauge)).map_err(register_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_and_process_metrics_are_exposed() {
        let registry = Registry::new();
        register(&registry, &BuildInfo::new("demo", "1.2.3")).expect("first registration");
        let text = crate::text_format::render(&registry);
        assert!(
            text.contains(&format!(
                r#"rust_build_info{{name="demo",rustc_version="{RUSTC_VERSION}",version="1.2.3"}} 1"#
            )),
            "{text}"
        );
        assert!(!RUSTC_VERSION.is_empty() && RUSTC_VERSION != "unknown");
        #[cfg(all(feature = "process", target_os = "linux"))]
        for name in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing from\n{text}"
            );
        }
        assert!(register(&registry, &BuildInfo::new("demo", "1.2.3")).is_err());
    }
}
