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
//! | the server span, recorded without the SDK | `server`, `record` |
//! | its attributes, validated, bounded, kept per worker | `attributes`, [`limits`] |
//! | the tracing part of the middleware alone | [`RequestTracing`] |
//! | the request's trace for handlers, and into other work | [`TraceContext`], [`in_current_trace`] |
//! | `tracing` spans exported as child spans | [`SpanBridge`] |
//! | OTLP, Cloud Trace, stdout | [`exporters`] |
//! | what can go wrong at start-up | [`TelemetryError`] |

pub(crate) mod attributes;
mod bridge;
mod builder;
pub mod config;
mod context;
mod error;
pub mod exporters;
pub(crate) mod headers;
pub mod limits;
mod middleware;
pub mod processor;
pub mod propagation;
pub(crate) mod record;
pub mod resource;
pub(crate) mod server;

pub use bridge::SpanBridge;
pub use builder::{Telemetry, TelemetryBuilder};
pub use config::{
    BatchConfig, ConfigError, OtlpCompression, OtlpProtocol, ParentBasedRoot, Sampler,
    TelemetryConfig, TracesExporter,
};
pub use context::{in_current_trace, TraceContext};
pub use error::TelemetryError;
pub use middleware::RequestTracing;
pub use processor::{BoundedBatchProcessor, BoundedBatchProcessorBuilder};
pub use propagation::{
    incoming_propagator, CloudTraceContextPropagator, TraceContextPropagator, W3cTraceState,
};
pub use resource::{GcpDetector, Resource};
