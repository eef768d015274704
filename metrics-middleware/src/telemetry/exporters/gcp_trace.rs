//! Cloud Trace's own API (`BatchWriteSpans`) through opentelemetry-stackdriver
//! 0.29, its last release: the crate is deprecated upstream in favour of
//! OTLP, so it lives here alone, behind the `gcp_trace` feature, and can be
//! dropped without touching anything else.
//!
//! Two things of that crate are adapted here, both measured in
//! `tests/gcp_trace.rs`:
//!
//! - its builder connects to `cloudtrace.googleapis.com` and fetches
//!   credentials at once, so a backend that is unreachable at start-up
//!   would be a start-up failure. [`CloudTraceExporter`] connects on the
//!   first export instead, and again at most every 10 s after a failure;
//!   the spans of a failed attempt count as `export_failed`.
//! - it hands batches to a background future of its own and returns before
//!   they are sent. That future runs on the export thread's runtime, which
//!   only runs while an export is awaited, so an export here waits for the
//!   crate's pending count to reach zero: the processor's timeout and
//!   counters then mean what they say.
#![allow(deprecated)] // The crate as a whole is deprecated upstream: that is why it sits here alone.
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_stackdriver::{Authorizer, GcpAuthorizer, StackDriverExporter};

use crate::telemetry::error::TelemetryError;
use crate::telemetry::processor::{BoundedBatchProcessor, BoundedBatchProcessorBuilder};

/// The least time between two connection attempts, by default.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(10);

type Connect<A> =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<A, String>> + Send>> + Send + Sync>;

/// Spans to Cloud Trace, connecting lazily; see the module docs.
pub struct CloudTraceExporter<A> {
    authorizer: Connect<A>,
    reconnect_interval: Duration,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    exporter: Option<StackDriverExporter>,
    next_attempt: Option<Instant>,
    resource: Option<opentelemetry_sdk::Resource>,
}

impl<A> fmt::Debug for CloudTraceExporter<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudTraceExporter").finish_non_exhaustive()
    }
}

impl CloudTraceExporter<GcpAuthorizer> {
    /// Google's usual credential discovery (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// the metadata server's service account, gcloud's), run at the first
    /// export.
    pub fn with_google_credentials() -> Self {
        Self::with_authorizer(|| async { GcpAuthorizer::new().await.map_err(|e| e.to_string()) })
    }
}

impl<A> CloudTraceExporter<A>
where
    A: Authorizer,
    opentelemetry_stackdriver::Error: From<A::Error>,
{
    /// Credentials and project from `authorizer`, called at each connection
    /// attempt.
    pub fn with_authorizer<F, Fut>(authorizer: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A, String>> + Send + 'static,
    {
        Self {
            authorizer: Box::new(move || Box::pin(authorizer())),
            reconnect_interval: RECONNECT_INTERVAL,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The least time between two connection attempts; 10 s by default.
    #[must_use]
    pub fn reconnect_interval(mut self, interval: Duration) -> Self {
        self.reconnect_interval = interval;
        self
    }

    async fn connect(&self, state: &mut State) -> Result<(), String> {
        if state.next_attempt.is_some_and(|at| Instant::now() < at) {
            return Err("not connected to Cloud Trace; the next attempt is due later".to_owned());
        }
        state.next_attempt = Some(Instant::now() + self.reconnect_interval);
        let authorizer = (self.authorizer)().await?;
        let (mut exporter, uploads) = StackDriverExporter::builder()
            .build(authorizer)
            .await
            .map_err(|e| format!("cannot connect to Cloud Trace: {e}"))?;
        if let Some(resource) = &state.resource {
            exporter.set_resource(resource);
        }
        tokio::spawn(uploads);
        state.exporter = Some(exporter);
        Ok(())
    }
}

impl<A> SpanExporter for CloudTraceExporter<A>
where
    A: Authorizer,
    opentelemetry_stackdriver::Error: From<A::Error>,
{
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut state = self.state.lock().await;
        if state.exporter.is_none() {
            self.connect(&mut state)
                .await
                .map_err(OTelSdkError::InternalFailure)?;
        }
        let Some(exporter) = state.exporter.as_ref() else {
            return Err(OTelSdkError::InternalFailure("not connected".to_owned()));
        };
        exporter.export(batch).await?;
        // Let the crate's upload task run until the batch is sent; the
        // processor's export timeout bounds the wait.
        while exporter.pending_count() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        let state = self.state.get_mut();
        if let Some(exporter) = state.exporter.as_mut() {
            exporter.set_resource(resource);
        }
        state.resource = Some(resource.clone());
    }
}

/// The processor for `OTEL_TRACES_EXPORTER=gcp_trace`, with Google's
/// credentials.
pub(crate) fn processor(
    processor: BoundedBatchProcessorBuilder,
) -> Result<BoundedBatchProcessor, TelemetryError> {
    processor.build(CloudTraceExporter::with_google_credentials())
}
