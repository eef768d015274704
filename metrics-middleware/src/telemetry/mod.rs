//! Traces: one OpenTelemetry server span per request, in the caller's trace,
//! exported as the `OTEL_*` variables say, with the GKE/GCE resource. Start
//! from [`Telemetry::builder`]; the design and its measurements are in
//! `docs/tracing-design.md`.
//!
//! | concern | module |
//! |---|---|
//! | settings to a running tracer: [`Telemetry::builder`] | `builder` |
//! | `OTEL_*` settings, checked at start-up | [`config`] |
//! | `service.name`, `OTEL_RESOURCE_ATTRIBUTES`, the GKE/GCE detector | [`resource`] |
//! | the caller's trace: `traceparent`, `X-Cloud-Trace-Context` | [`propagation`] |
//! | spans to the exporter: bounded, never blocking, drops counted | [`processor`] |
//! | one server span per request, the handler's [`TraceContext`] | [`middleware`] |
//! | its attributes, with what repeats kept per worker | `attributes` |
//! | OTLP, Cloud Trace, stdout | [`exporters`] |
//! | what can go wrong at start-up | [`TelemetryError`] |

mod attributes;
mod builder;
pub mod config;
mod error;
pub mod exporters;
pub mod middleware;
pub mod processor;
pub mod propagation;
pub mod resource;

pub use builder::{Telemetry, TelemetryBuilder};
pub use config::{
    BatchConfig, ConfigError, OtlpProtocol, ParentBasedRoot, Sampler, TelemetryConfig,
    TracesExporter,
};
pub use error::TelemetryError;
pub use middleware::{RequestTracing, TraceContext};
pub use processor::{BoundedBatchProcessor, BoundedBatchProcessorBuilder};
pub use propagation::{
    incoming_propagator, CloudTraceContextPropagator, TraceContextPropagator, W3cTraceState,
};
pub use resource::{GcpDetector, Resource};
