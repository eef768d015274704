//! The span exporters `OTEL_TRACES_EXPORTER` chooses from. Each sits behind
//! [`BoundedBatchProcessor`](super::BoundedBatchProcessor), which owns the
//! queue, the batching, the timeouts and the drop counter; an exporter only
//! turns a batch into a request.
//!
//! | `OTEL_TRACES_EXPORTER` | module | cargo feature |
//! |---|---|---|
//! | `otlp`, `http/protobuf` | `otlp_http` (our encoder, reqwest) | `otlp` (default) |
//! | `otlp`, `grpc` | `otlp_grpc` (our encoder, tonic's generic client) | `otlp` (default) |
//! | `gcp_trace` | `gcp_trace` (opentelemetry-stackdriver, deprecated upstream) | `gcp_trace` |
//! | `stdout` | [`stdout`] | none |

#[cfg(feature = "gcp_trace")]
pub mod gcp_trace;
#[cfg(feature = "otlp")]
mod otlp_grpc;
#[cfg(feature = "otlp")]
mod otlp_http;
#[cfg(feature = "otlp")]
mod otlp_proto;
pub mod stdout;

#[cfg(feature = "otlp")]
pub(crate) use otlp_grpc::OtlpGrpcExporter;
#[cfg(feature = "otlp")]
pub(crate) use otlp_http::OtlpHttpExporter;
#[cfg(feature = "otlp")]
pub(crate) use otlp_proto::encode_server_span;
pub use stdout::StdoutExporter;
