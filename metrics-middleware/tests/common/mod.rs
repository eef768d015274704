//! What the app-shape tests share: settings that send spans to the test's
//! OTLP receiver quickly, and finding a span by name.
#![allow(dead_code)] // each test crate uses part of it

use metrics_middleware::telemetry::TelemetryConfig;
use test_support::otlp::{OtlpReceiver, ReceivedSpan};

/// OTLP to `receiver` over `protocol` (`"http/protobuf"` or `"grpc"`),
/// batches sent every 100 ms.
pub(crate) fn telemetry_to(receiver: &OtlpReceiver, protocol: &str) -> TelemetryConfig {
    let endpoint = match protocol {
        "grpc" => receiver.grpc_endpoint(),
        _ => receiver.http_endpoint(),
    };
    let protocol = protocol.to_owned();
    TelemetryConfig::from_lookup(|name| {
        Some(match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => endpoint.clone(),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => protocol.clone(),
            "OTEL_BSP_SCHEDULE_DELAY" => "100".to_owned(),
            _ => return None,
        })
    })
    .expect("valid settings")
}

/// The span named `name`; panics listing the spans if there is none.
pub(crate) fn span<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}
