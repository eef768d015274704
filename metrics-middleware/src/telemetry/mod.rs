//! The tracing half, under construction: what is configured through
//! OpenTelemetry's `OTEL_*` variables, and what the resource says about
//! where the process runs. Spans, propagation and exporters build on these.
//!
//! | concern | module |
//! |---|---|
//! | `OTEL_*` settings, checked at start-up | [`config`] |
//! | `service.name`, `OTEL_RESOURCE_ATTRIBUTES`, the GKE/GCE detector | [`resource`] |
//! | the caller's trace: `traceparent`, `X-Cloud-Trace-Context` | [`propagation`] |

pub mod config;
pub mod propagation;
pub mod resource;

pub use config::{ConfigError, OtlpProtocol, Sampler, TelemetryConfig, TracesExporter};
pub use propagation::{incoming_propagator, CloudTraceContextPropagator};
pub use resource::{GcpDetector, Resource};
