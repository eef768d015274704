//! The `OTEL_*` settings: any values (0xff separates them, in a fixed order)
//! give a configuration or an error naming a variable, never a panic; what is
//! accepted can work (a batch within the queue, an endpoint with a host).
#![no_main]
use libfuzzer_sys::fuzz_target;
use metrics_middleware::telemetry::TelemetryConfig;

const VARIABLES: [&str; 14] = [
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
];

fuzz_target!(|data: &[u8]| {
    let values: Vec<Option<String>> = data
        .split(|&b| b == 0xff)
        .map(|v| std::str::from_utf8(v).ok().map(str::to_owned))
        .collect();
    let lookup = |name: &str| {
        let i = VARIABLES.iter().position(|v| *v == name)?;
        values.get(i).cloned().flatten()
    };
    match TelemetryConfig::from_lookup(lookup) {
        Ok(config) => {
            assert!(config.batch.max_export_batch_size <= config.batch.max_queue_size);
            assert!(config.batch.max_export_batch_size > 0);
            let endpoint = &config.otlp_traces_endpoint;
            assert!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "{endpoint}"
            );
        }
        Err(err) => {
            assert!(VARIABLES.contains(&err.variable()), "{err}");
            assert!(err.to_string().contains(err.variable()), "{err}");
        }
    }
});
