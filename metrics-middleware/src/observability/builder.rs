use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::propagation::TextMapCompositePropagator;

use super::{Inner, Observability, Running, SetupError};
use crate::logging::{LogFormat, Logging};
use crate::middleware::{Exclude, ObservabilityMiddleware, OnRequest, OnResponse};
use crate::telemetry::propagation::{CloudTraceContextPropagator, TraceContextPropagator};
use crate::telemetry::{Telemetry, TelemetryBuilder, TelemetryConfig};
use crate::{BuildInfo, HttpMetrics, HttpMetricsBuilder, MetricsServer};

/// Builds [`Observability`]; see the [module docs](super).
#[must_use]
pub struct ObservabilityBuilder {
    service: Option<(String, String)>,
    metrics: HttpMetricsBuilder,
    telemetry: TelemetryBuilder,
    logging: Option<Logging>,
    access_log: bool,
    metrics_address: Option<SocketAddr>,
    exclusions: Vec<Exclude>,
    on_request: Option<Arc<dyn OnRequest>>,
    on_response: Option<Arc<dyn OnResponse>>,
    upgrades_in_latency: bool,
    global_telemetry: bool,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for ObservabilityBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservabilityBuilder")
            .field("service", &self.service)
            .field("metrics_address", &self.metrics_address)
            .field("exclusions", &self.exclusions)
            .finish_non_exhaustive()
    }
}

impl ObservabilityBuilder {
    pub(super) fn new() -> Self {
        Self {
            service: None,
            metrics: HttpMetrics::builder(),
            telemetry: Telemetry::builder(),
            logging: Some(Logging::builder()),
            access_log: false,
            metrics_address: Some(SocketAddr::from(([0, 0, 0, 0], 9090))),
            exclusions: Vec::new(),
            on_request: None,
            on_response: None,
            upgrades_in_latency: false,
            global_telemetry: true,
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    /// The service's name and version: `service.name` when neither
    /// `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` sets it,
    /// `service.version`, and `rust_build_info`. Usually
    /// `env!("CARGO_PKG_NAME")` and `env!("CARGO_PKG_VERSION")`.
    pub fn service(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.service = Some((name.into(), version.into()));
        self
    }

    /// The request metrics' settings (names, buckets, a registry of your
    /// own, ...), instead of the standard ones. Exclusion rules given there
    /// apply to every signal.
    pub fn http_metrics(mut self, metrics: HttpMetricsBuilder) -> Self {
        self.metrics = metrics;
        self
    }

    /// The traces' settings, instead of the defaults (which read `OTEL_*`
    /// and detect GKE/GCE).
    pub fn telemetry(mut self, telemetry: TelemetryBuilder) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Trace settings to use instead of the `OTEL_*` variables.
    pub fn telemetry_config(mut self, config: TelemetryConfig) -> Self {
        self.telemetry = self.telemetry.config(config);
        self
    }

    /// The logging's settings, instead of the defaults.
    pub fn logging(mut self, logging: Logging) -> Self {
        self.logging = Some(logging);
        self
    }

    /// The log line format, instead of `LOG_FORMAT`'s.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.logging = Some(self.logging.unwrap_or_else(Logging::builder).format(format));
        self
    }

    /// No logging of this crate's, for an application that keeps its own
    /// untouched. (To add this crate's lines to a subscriber of your own
    /// instead, keep logging on, [`build`](Self::build), and add
    /// [`Observability::log_layer`] to it.)
    pub fn without_logging(mut self) -> Self {
        self.logging = None;
        self
    }

    /// One access log line per request with Cloud Logging's `httpRequest`
    /// field and the trace (off by default); see
    /// [`AccessLog`](crate::logging::AccessLog).
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.access_log = enabled;
        self
    }

    /// Where [`install`](Self::install) serves `GET /metrics`;
    /// `0.0.0.0:9090` by default.
    pub fn metrics_address(mut self, address: impl Into<SocketAddr>) -> Self {
        self.metrics_address = Some(address.into());
        self
    }

    /// No scrape server: serve [`Observability::render`] yourself.
    pub fn without_metrics_server(mut self) -> Self {
        self.metrics_address = None;
        self
    }

    /// Keeps requests that match `rule` out of metrics, traces and the
    /// access log.
    pub fn exclude(mut self, rule: Exclude) -> Self {
        self.exclusions.push(rule);
        self
    }

    /// Keeps requests to exactly `path` (a probe's) out of every signal.
    pub fn exclude_path(self, path: impl Into<String>) -> Self {
        self.exclude(Exclude::path(path))
    }

    /// Adds to each sampled request's span when it arrives; see
    /// [`OnRequest`].
    pub fn on_request(mut self, hook: impl OnRequest) -> Self {
        self.on_request = Some(Arc::new(hook));
        self
    }

    /// Adds to each sampled request's span when its response starts; see
    /// [`OnResponse`].
    pub fn on_response(mut self, hook: impl OnResponse) -> Self {
        self.on_response = Some(Arc::new(hook));
        self
    }

    /// Whether upgraded connections (websockets) go into the latency
    /// histogram; off by default, see
    /// [`ObservabilityMiddlewareBuilder::upgrades_in_latency`](crate::middleware::ObservabilityMiddlewareBuilder::upgrades_in_latency).
    pub fn upgrades_in_latency(mut self, include: bool) -> Self {
        self.upgrades_in_latency = include;
        self
    }

    /// Whether [`install`](Self::install) sets OpenTelemetry's global tracer
    /// provider and propagator (on by default).
    pub fn global_telemetry(mut self, set: bool) -> Self {
        self.global_telemetry = set;
        self
    }

    /// How long [`Observability::shutdown`] waits for the last spans to be
    /// sent; 5 s by default.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Builds every part without installing anything global or listening on
    /// anything: the export thread and the log writer thread start, nothing
    /// else.
    ///
    /// # Errors
    ///
    /// [`SetupError`] naming the setting at fault.
    pub fn build(self) -> Result<Observability, SetupError> {
        self.build_parts().map(|(observability, _)| observability)
    }

    fn build_parts(self) -> Result<(Observability, InstallPlan), SetupError> {
        let mut metrics = self.metrics;
        let mut telemetry = self.telemetry;
        if let Some((name, version)) = &self.service {
            metrics = metrics.build_info(BuildInfo::new(name.clone(), version.clone()));
            telemetry = telemetry
                .default_service_name(name.clone())
                .service_version(version.clone());
        }
        let mut exclusions = metrics.take_exclusions();
        exclusions.extend(self.exclusions);
        let metrics = metrics.build()?;
        let registry = metrics.registry().clone();
        let telemetry = telemetry.registry(registry.clone()).build()?;
        metrics
            .exemplars()
            .set_project_id(telemetry.gcp_project_id().as_deref());
        let logs = match self.logging {
            Some(logging) => {
                let logging = match logging.project_id() {
                    Some(_) => logging,
                    None => logging.gcp_project_id(telemetry.gcp_project_id()),
                };
                Some(logging.registry(registry).build()?)
            }
            None => None,
        };
        let mut middleware = ObservabilityMiddleware::builder()
            .metrics(&metrics)
            .telemetry(&telemetry)
            .upgrades_in_latency(self.upgrades_in_latency);
        for rule in exclusions {
            middleware = middleware.exclude(rule);
        }
        if let Some(hook) = self.on_request {
            middleware = middleware.on_request_shared(hook);
        }
        if let Some(hook) = self.on_response {
            middleware = middleware.on_response_shared(hook);
        }
        if self.access_log {
            if let Some(access_log) = logs.as_ref().and_then(|(sink, _)| sink.access_log()) {
                middleware = middleware.access_log(access_log);
            }
        }
        let (logs, flush_logs) = match logs {
            Some((sink, guard)) => (Some(sink), Some(guard)),
            None => (None, None),
        };
        let observability = Observability {
            inner: Arc::new(Inner {
                metrics,
                telemetry,
                logs,
                middleware: middleware.build(),
                shutdown_timeout: self.shutdown_timeout,
                running: Mutex::new(Running {
                    metrics_server: None,
                    flush_logs,
                }),
            }),
        };
        let plan = InstallPlan {
            metrics_address: self.metrics_address,
            global_telemetry: self.global_telemetry,
        };
        Ok((observability, plan))
    }

    /// Builds every part, then: binds and serves the scrape port on a thread
    /// of its own, installs logging with the `tracing` span bridge, and sets
    /// OpenTelemetry's global tracer provider and propagator.
    ///
    /// # Errors
    ///
    /// [`SetupError`] naming the setting at fault, the metrics address if it
    /// cannot be bound, or saying what to do if the application has a
    /// logger or subscriber of its own already (use [`build`](Self::build)
    /// and compose the layers then).
    pub fn install(self) -> Result<Observability, SetupError> {
        let (observability, plan) = self.build_parts()?;
        if let Some(address) = plan.metrics_address {
            let server = MetricsServer::builder(observability.registry().clone())
                .exemplars(observability.metrics().exemplars().clone())
                .bind(address)
                .spawn()?;
            observability.running().metrics_server = Some(server);
        }
        if let Some(logs) = &observability.inner.logs {
            logs.install_with(observability.span_layer())?;
        }
        if plan.global_telemetry {
            opentelemetry::global::set_tracer_provider(
                observability.inner.telemetry.provider().clone(),
            );
            opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
                Box::new(CloudTraceContextPropagator),
                Box::new(TraceContextPropagator::new()),
            ]));
        }
        observability.inner.telemetry.log_start();
        Ok(observability)
    }
}

/// What `install` does after building.
struct InstallPlan {
    metrics_address: Option<SocketAddr>,
    global_telemetry: bool,
}
