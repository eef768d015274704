//! HTTP request metrics: what is measured, under which names, and how.
//!
//! For every request the middleware records, unless the path or status is
//! excluded:
//!
//! | metric (standard names) | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | method, route, status |
//! | `http_request_duration_seconds` | histogram | method, route, status |
//! | `http_requests_in_flight` | gauge | |
//! | `http_request_size_bytes` | histogram | method, route |
//! | `http_response_size_bytes` | histogram | method, route, status |
//!
//! `route` is the matched route template (`/users/{id}`), never the raw path,
//! and every request that matched no route is counted under one value
//! (`<unmatched>` by default), so no client can grow the number of series.
//! Methods outside the HTTP standard ones are counted as `_OTHER` for the same
//! reason. The duration runs until the last byte of the response body has been
//! handed to the connection, so streamed bodies are measured whole.
//!
//! [`Naming`] decides names and label sets; [`Naming::flask_exporter`]
//! reproduces `prometheus_flask_exporter`, so that dashboards built on the
//! Python service keep working.

mod builder;
mod error;
pub(crate) mod exemplars;
mod instruments;
pub(crate) mod labels;
mod middleware;
mod naming;
pub(crate) mod request;
mod route_counter;
pub(crate) mod series_cache;

pub use builder::{HttpMetricsBuilder, DEFAULT_UNMATCHED_ROUTE};
pub use error::BuildError;
pub use exemplars::{ExemplarHistogram, Exemplars};
pub use middleware::HttpMetrics;
pub(crate) use middleware::Shared;
pub use naming::{Dimension, MetricSpec, Naming, FLASK_EXPORTER_BUCKETS};
pub use route_counter::{RouteCounter, RouteCounterService};
pub(crate) use series_cache::FxBuildHasher;
