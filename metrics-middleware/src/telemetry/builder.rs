//! From settings to a running tracer: the resource (service, `OTEL_RESOURCE_ATTRIBUTES`,
//! GKE/GCE), the sampler, the exporter behind the bounded processor, and the
//! middleware that uses them.
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{self as sdk, SdkTracer, SdkTracerProvider};
use prometheus::Registry;

use super::config::{ParentBasedRoot, Sampler, TelemetryConfig, TracesExporter};
use super::error::TelemetryError;
use super::exporters::StdoutExporter;
use super::limits::Rejections;
use super::middleware::RequestTracing;
use super::processor::{BoundedBatchProcessor, BoundedBatchProcessorBuilder};
use super::record::SCOPE_NAME as SCOPE;
use super::resource::{GcpDetector, Resource};
use super::server::{Mode, ServerTracer};

/// An exporter given in code, started on the export thread.
type CustomExporter = Box<
    dyn FnOnce(BoundedBatchProcessorBuilder) -> Result<BoundedBatchProcessor, TelemetryError>
        + Send,
>;

/// Builds [`Telemetry`]; see [`Telemetry::builder`].
#[must_use]
pub struct TelemetryBuilder {
    config: Option<TelemetryConfig>,
    default_service_name: Option<String>,
    service_version: Option<String>,
    registry: Option<Registry>,
    detector: Option<GcpDetector>,
    processor: Option<BoundedBatchProcessorBuilder>,
    sampler: Option<Sampler>,
    exporter: Option<CustomExporter>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("config", &self.config)
            .field("default_service_name", &self.default_service_name)
            .field("sampler", &self.sampler)
            .field("custom_exporter", &self.exporter.is_some())
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// Settings to use instead of the process environment's `OTEL_*`
    /// variables (which [`build`](Self::build) reads otherwise).
    pub fn config(mut self, config: TelemetryConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// `service.name` when neither `OTEL_SERVICE_NAME` nor
    /// `OTEL_RESOURCE_ATTRIBUTES` sets it; usually the binary's name,
    /// `env!("CARGO_PKG_NAME")`.
    pub fn default_service_name(mut self, name: impl Into<String>) -> Self {
        self.default_service_name = Some(name.into());
        self
    }

    /// `service.version`, usually `env!("CARGO_PKG_VERSION")`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// Registers the span counters (`otel_spans_exported_total`,
    /// `otel_spans_dropped_total`) on `registry`, next to the HTTP metrics.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The GKE/GCE detector to use; [`GcpDetector::from_env`] by default.
    pub fn gcp_detector(mut self, detector: GcpDetector) -> Self {
        self.detector = Some(detector);
        self
    }

    /// Skips GKE/GCE detection (for processes known to run elsewhere).
    pub fn without_gcp_detection(mut self) -> Self {
        self.detector = None;
        self
    }

    /// Queue size, batch size and delays of the span processor, instead of
    /// the `OTEL_BSP_*` settings.
    pub fn processor(mut self, processor: BoundedBatchProcessorBuilder) -> Self {
        self.processor = Some(processor);
        self
    }

    /// The sampler, instead of `OTEL_TRACES_SAMPLER`'s.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Sends spans to `exporter` (any OpenTelemetry SDK exporter) instead of
    /// the one `OTEL_TRACES_EXPORTER` names; it runs behind the same bounded
    /// processor.
    pub fn span_exporter<E>(mut self, exporter: E) -> Self
    where
        E: opentelemetry_sdk::trace::SpanExporter + Send + 'static,
    {
        self.exporter = Some(Box::new(move |processor| processor.build(exporter)));
        self
    }

    /// Reads the settings (unless given), detects the resource and starts
    /// the exporter. An unreachable backend is not an error: its spans are
    /// counted as dropped once they fail.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Config`] for a bad `OTEL_*` value (the message names
    /// it), [`TelemetryError::Exporter`] for settings the exporter refuses,
    /// [`TelemetryError::FeatureMissing`] for an exporter not built in, and
    /// [`TelemetryError::Register`] if the span counters exist already.
    pub fn build(self) -> Result<Telemetry, TelemetryError> {
        let config = match self.config {
            Some(config) => config,
            None => TelemetryConfig::from_env()?,
        };
        let resource = detect_resource(
            &config,
            self.detector.as_ref(),
            self.default_service_name.as_deref(),
            self.service_version.as_deref(),
        );
        let exporter = if config.sdk_disabled {
            TracesExporter::None
        } else if self.exporter.is_some() {
            TracesExporter::Otlp
        } else {
            config.traces_exporter
        };
        let sampler_setting = self.sampler.unwrap_or(config.sampler);
        let sampler = match exporter {
            // Nothing would be exported: record nothing, but still continue
            // the caller's trace so that log lines carry its id.
            TracesExporter::None => sdk::Sampler::AlwaysOff,
            _ => sdk_sampler(sampler_setting),
        };
        let mut provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_resource(sdk_resource(&resource));
        let processor = self.processor.unwrap_or_else(|| {
            BoundedBatchProcessor::builder()
                .max_queue_size(config.batch.max_queue_size)
                .max_batch_size(config.batch.max_export_batch_size)
                .scheduled_delay(config.batch.schedule_delay)
                .export_timeout(config.batch.export_timeout)
        });
        let processor = match &self.registry {
            Some(registry) => processor.registry(registry.clone()),
            None => processor,
        };
        let rejections = match &self.registry {
            Some(registry) => {
                Rejections::new(Some(registry)).map_err(|source| TelemetryError::Register {
                    metric: "http_request_header_rejections_total",
                    source,
                })?
            }
            None => Rejections::unregistered(),
        };
        let processor = match (exporter, self.exporter) {
            (TracesExporter::None, _) => None,
            (_, Some(custom)) => Some(custom(processor)?),
            (TracesExporter::Stdout, None) => Some(processor.build(StdoutExporter::new())?),
            (TracesExporter::Otlp, None) => {
                Some(otlp_processor(processor, &config).map_err(named("otlp"))?)
            }
            (TracesExporter::GcpTrace, None) => {
                Some(gcp_trace_processor(processor).map_err(named("gcp_trace"))?)
            }
        };
        let mode = match &processor {
            Some(processor) => Mode::Record {
                sampler: sampler_setting,
                sink: processor.sink(),
            },
            None => Mode::Propagate,
        };
        if let Some(processor) = processor {
            provider = provider.with_span_processor(processor);
        }
        let provider = provider.build();
        let tracer = provider.tracer(SCOPE);
        Ok(Telemetry {
            provider,
            tracer,
            resource,
            exporter,
            exporter_defaulted: config.traces_exporter_defaulted,
            warnings: config.warnings.clone(),
            server: Arc::new(ServerTracer::new(mode, rejections)),
        })
    }
}

/// Names the exporter in an [`TelemetryError::Exporter`] by its
/// `OTEL_TRACES_EXPORTER` value rather than by its Rust type.
fn named(exporter: &'static str) -> impl FnOnce(TelemetryError) -> TelemetryError {
    move |err| match err {
        TelemetryError::Exporter { reason, .. } => TelemetryError::Exporter { exporter, reason },
        other => other,
    }
}

#[cfg(feature = "otlp")]
fn otlp_processor(
    processor: BoundedBatchProcessorBuilder,
    config: &TelemetryConfig,
) -> Result<BoundedBatchProcessor, TelemetryError> {
    use super::config::OtlpProtocol;
    use super::exporters::{OtlpGrpcExporter, OtlpHttpExporter};
    let config = config.clone();
    match config.otlp_protocol {
        OtlpProtocol::Grpc => processor.build_exporting(move || OtlpGrpcExporter::new(&config)),
        OtlpProtocol::HttpProtobuf => {
            processor.build_exporting(move || OtlpHttpExporter::new(&config))
        }
    }
}

#[cfg(not(feature = "otlp"))]
fn otlp_processor(
    _: BoundedBatchProcessorBuilder,
    _: &TelemetryConfig,
) -> Result<BoundedBatchProcessor, TelemetryError> {
    Err(TelemetryError::FeatureMissing {
        exporter: "otlp",
        feature: "otlp",
    })
}

#[cfg(feature = "gcp_trace")]
fn gcp_trace_processor(
    processor: BoundedBatchProcessorBuilder,
) -> Result<BoundedBatchProcessor, TelemetryError> {
    super::exporters::gcp_trace::processor(processor)
}

#[cfg(not(feature = "gcp_trace"))]
fn gcp_trace_processor(
    _: BoundedBatchProcessorBuilder,
) -> Result<BoundedBatchProcessor, TelemetryError> {
    Err(TelemetryError::FeatureMissing {
        exporter: "gcp_trace",
        feature: "gcp_trace",
    })
}

/// A running tracer: hand [`middleware`](Self::middleware) to each app,
/// and call [`shutdown`](Self::shutdown) once the server has stopped so that
/// the last spans are sent.
///
/// ```
/// use actix_web::{web, App, HttpServer};
/// use metrics_middleware::telemetry::{Telemetry, TelemetryConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // From the environment in a real service: `Telemetry::builder().build()?`.
/// let config = TelemetryConfig::from_lookup(|name| {
///     (name == "OTEL_TRACES_EXPORTER").then(|| "none".to_owned())
/// })?;
/// let telemetry = Telemetry::builder()
///     .config(config)
///     .default_service_name("hello")
///     .without_gcp_detection()
///     .build()?;
/// let for_workers = telemetry.clone();
/// let server = HttpServer::new(move || {
///     App::new()
///         .wrap(for_workers.middleware())
///         .route("/", web::get().to(|| async { "Hello" }))
/// });
/// # drop(server);
/// // ... after `server.run().await`:
/// telemetry.shutdown(std::time::Duration::from_secs(5))?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    resource: Resource,
    exporter: TracesExporter,
    /// Whether `OTEL_TRACES_EXPORTER` was unset (and this build's default
    /// chosen).
    exporter_defaulted: bool,
    /// Settings that have no effect, said once logging is up.
    warnings: Vec<String>,
    server: Arc<ServerTracer>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("exporter", &self.exporter)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// A builder that reads `OTEL_*` variables and detects GKE/GCE.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder {
            config: None,
            default_service_name: None,
            service_version: None,
            registry: None,
            detector: Some(GcpDetector::from_env()),
            processor: None,
            sampler: None,
            exporter: None,
        }
    }

    /// Tracing off: no export, no GKE detection, nothing recorded; the
    /// middleware still continues a caller's trace, so that log lines carry
    /// its id. For tests and for apps that add tracing later.
    pub fn disabled() -> Self {
        let provider = SdkTracerProvider::builder()
            .with_sampler(sdk::Sampler::AlwaysOff)
            .build();
        Self {
            tracer: provider.tracer(SCOPE),
            provider,
            resource: Resource::default(),
            exporter: TracesExporter::None,
            exporter_defaulted: false,
            warnings: Vec::new(),
            server: Arc::new(ServerTracer::new(
                Mode::Propagate,
                Rejections::unregistered(),
            )),
        }
    }

    /// The request-span middleware alone (without metrics).
    pub fn middleware(&self) -> RequestTracing {
        RequestTracing::new(Arc::clone(&self.server))
    }

    pub(crate) fn server_tracer(&self) -> &Arc<ServerTracer> {
        &self.server
    }

    /// The SDK's provider, for libraries that take one (and for
    /// `opentelemetry::global`, which [`Observability`](crate::Observability)
    /// sets).
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The tracer, for spans of one's own (background work, clients).
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// What the spans say about the process.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The exporter in use (`None` when the SDK is disabled).
    pub fn exporter(&self) -> TracesExporter {
        self.exporter
    }

    /// The Google Cloud project the process runs in (`cloud.account.id`,
    /// from the metadata server or `OTEL_RESOURCE_ATTRIBUTES`), else
    /// `GOOGLE_CLOUD_PROJECT`: what log lines name their traces by.
    pub fn gcp_project_id(&self) -> Option<String> {
        self.resource
            .get("cloud.account.id")
            .map(str::to_owned)
            .or_else(|| {
                std::env::var("GOOGLE_CLOUD_PROJECT")
                    .ok()
                    .filter(|p| !p.is_empty())
            })
    }

    /// One line saying where spans go, once logging is up.
    pub(crate) fn log_start(&self) {
        for warning in &self.warnings {
            log::warn!("{warning}");
        }
        match self.exporter {
            TracesExporter::None if self.exporter_defaulted => log::info!(
                "OTEL_TRACES_EXPORTER is unset and this build has no OTLP exporter \
                 (cargo feature `otlp`): spans are not exported; log lines still carry \
                 callers' traces"
            ),
            exporter => log::debug!("spans go to the {exporter:?} exporter"),
        }
    }

    /// Sends the spans still queued and stops the exporter, within `timeout`.
    ///
    /// # Errors
    ///
    /// The SDK's error if spans could not be sent in time; they are counted
    /// as dropped.
    pub fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        self.provider.shutdown_with_timeout(timeout)
    }
}

/// The resource: GKE/GCE first, then `OTEL_RESOURCE_ATTRIBUTES`, then
/// `service.name` (`OTEL_SERVICE_NAME` wins, as the specification says) and
/// `service.version`, and the SDK's own attributes.
fn detect_resource(
    config: &TelemetryConfig,
    detector: Option<&GcpDetector>,
    default_service_name: Option<&str>,
    service_version: Option<&str>,
) -> Resource {
    let mut resource = Resource::default();
    if let Some(detector) = detector {
        resource.merge(detector.detect());
    }
    resource.merge(config.resource_attributes.iter().cloned());
    match (&config.service_name, resource.get("service.name")) {
        (Some(name), _) => resource.set("service.name", name.clone()),
        (None, Some(_)) => {}
        (None, None) => resource.set(
            "service.name",
            default_service_name.unwrap_or("unknown_service"),
        ),
    }
    if let (Some(version), None) = (service_version, resource.get("service.version")) {
        resource.set("service.version", version);
    }
    resource.set("telemetry.sdk.name", "opentelemetry");
    resource.set("telemetry.sdk.language", "rust");
    resource.set("telemetry.sdk.version", "0.32");
    resource
}

fn sdk_resource(resource: &Resource) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes(
            resource
                .iter()
                .map(|(key, value)| KeyValue::new(key.to_owned(), value.to_owned())),
        )
        .build()
}

fn sdk_sampler(sampler: Sampler) -> sdk::Sampler {
    match sampler {
        Sampler::AlwaysOn => sdk::Sampler::AlwaysOn,
        Sampler::AlwaysOff => sdk::Sampler::AlwaysOff,
        Sampler::TraceIdRatio(ratio) => sdk::Sampler::TraceIdRatioBased(ratio),
        Sampler::ParentBased(root) => sdk::Sampler::ParentBased(Box::new(match root {
            ParentBasedRoot::AlwaysOn => sdk::Sampler::AlwaysOn,
            ParentBasedRoot::AlwaysOff => sdk::Sampler::AlwaysOff,
            ParentBasedRoot::TraceIdRatio(ratio) => sdk::Sampler::TraceIdRatioBased(ratio),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> TelemetryConfig {
        TelemetryConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("valid settings")
    }

    #[test]
    fn the_service_name_comes_from_otel_service_name_first() {
        let resource = |vars: &[(&str, &str)]| {
            detect_resource(&config(vars), None, Some("flask-app-rs"), Some("1.2.3"))
        };
        let named = resource(&[
            ("OTEL_SERVICE_NAME", "from-variable"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attributes,team=web",
            ),
        ]);
        assert_eq!(named.get("service.name"), Some("from-variable"));
        assert_eq!(named.get("team"), Some("web"));
        assert_eq!(named.get("service.version"), Some("1.2.3"));
        let from_attributes = resource(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr")]);
        assert_eq!(from_attributes.get("service.name"), Some("attr"));
        assert_eq!(resource(&[]).get("service.name"), Some("flask-app-rs"));
    }

    #[test]
    fn span_counters_register_once_per_registry() {
        let registry = Registry::new();
        let stdout = Telemetry::builder()
            .config(config(&[("OTEL_TRACES_EXPORTER", "stdout")]))
            .without_gcp_detection()
            .registry(registry.clone())
            .build()
            .expect("stdout exporter");
        assert_eq!(stdout.exporter(), TracesExporter::Stdout);
        // The counters are registered once per registry.
        let twice = Telemetry::builder()
            .config(config(&[("OTEL_TRACES_EXPORTER", "stdout")]))
            .without_gcp_detection()
            .registry(registry)
            .build();
        assert!(matches!(twice, Err(TelemetryError::Register { .. })));
        stdout.shutdown(Duration::from_secs(1)).expect("shutdown");
    }
}
