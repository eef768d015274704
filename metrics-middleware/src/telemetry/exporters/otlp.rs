//! OTLP, the exporter that lasts: any OpenTelemetry collector accepts it, and
//! so does Cloud Trace's own OTLP endpoint (`telemetry.googleapis.com`, with
//! the `otlp-tls` feature and Google credentials in `OTEL_EXPORTER_OTLP_HEADERS`,
//! or better through a collector that adds them).
//!
//! The endpoint, protocol and timeout come from [`TelemetryConfig`], so that
//! settings read through a lookup (in tests) apply; headers, compression and
//! certificates are read by opentelemetry-otlp itself from the
//! `OTEL_EXPORTER_OTLP_*` variables.
use opentelemetry_otlp::{ExporterBuildError, SpanExporter, WithExportConfig};

use crate::telemetry::config::{OtlpProtocol, TelemetryConfig};

/// Makes the exporter; to be called inside the export thread's runtime
/// (tonic's channel spawns its connection task when it is made).
pub(crate) fn exporter(
    config: &TelemetryConfig,
) -> impl FnOnce() -> Result<SpanExporter, ExporterBuildError> + Send + 'static {
    let endpoint = config.otlp_traces_endpoint.clone();
    let timeout = config.otlp_timeout;
    let protocol = config.otlp_protocol;
    move || match protocol {
        OtlpProtocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build(),
        OtlpProtocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build(),
    }
}
