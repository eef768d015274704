//! The tracing half, under construction: what is configured through
//! OpenTelemetry's `OTEL_*` variables, and what the resource says about
//! where the process runs. Spans, propagation and exporters build on these.
//!
//! | concern | module |
//! |---|---|
//! | `OTEL_*` settings, checked at start-up | [`config`] |
//! | `service.name`, `OTEL_RESOURCE_ATTRIBUTES`, the GKE/GCE detector | [`resource`] |
//! | the caller's trace: `traceparent`, `X-Cloud-Trace-Context` | [`propagation`] |
//! | spans to the exporter: bounded, never blocking, drops counted | [`processor`] |
//! | one server span per request, the handler's [`TraceContext`] | [`middleware`] |

pub mod config;
pub mod middleware;
pub mod processor;
pub mod propagation;
pub mod resource;

pub use config::{ConfigError, OtlpProtocol, Sampler, TelemetryConfig, TracesExporter};
pub use middleware::{RequestTracing, TraceContext};
pub use processor::{BoundedBatchProcessor, BoundedBatchProcessorBuilder};
pub use propagation::{incoming_propagator, CloudTraceContextPropagator};
pub use resource::{GcpDetector, Resource};
