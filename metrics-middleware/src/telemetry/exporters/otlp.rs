//! OTLP over gRPC: opentelemetry-otlp's tonic exporter. (HTTP/protobuf,
//! the default protocol, is [`OtlpHttpExporter`](super::OtlpHttpExporter).)
//!
//! OTLP is the exporter that lasts: any OpenTelemetry collector accepts it,
//! and so does Cloud Trace's own endpoint (`telemetry.googleapis.com`, with
//! the `otlp-tls` feature and Google credentials in
//! `OTEL_EXPORTER_OTLP_HEADERS`, or better through a collector that adds
//! them).
//!
//! The endpoint and timeout come from [`TelemetryConfig`], so that settings
//! read through a lookup (in tests) apply; gRPC metadata, compression and
//! certificates are read by opentelemetry-otlp itself from the
//! `OTEL_EXPORTER_OTLP_*` variables.
use opentelemetry_otlp::{ExporterBuildError, SpanExporter, WithExportConfig};

use crate::telemetry::config::TelemetryConfig;

/// Makes the gRPC exporter; to be called inside the export thread's runtime
/// (tonic's channel spawns its connection task when it is made).
pub(crate) fn grpc_exporter(
    config: &TelemetryConfig,
) -> impl FnOnce() -> Result<SpanExporter, ExporterBuildError> + Send + 'static {
    let endpoint = config.otlp_traces_endpoint.clone();
    let timeout = config.otlp_timeout;
    move || {
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build()
    }
}
