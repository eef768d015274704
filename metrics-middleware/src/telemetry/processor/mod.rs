//! The span processor between request handling and the exporter.
//!
//! Why not the SDK's `BatchSpanProcessor`: it calls the exporter with a
//! bare `block_on`, where a tonic (gRPC) exporter finds no Tokio reactor,
//! and it counts the spans it drops only in its own logs. Here:
//!
//! - ending a span never blocks: it is pushed on a bounded queue, and when
//!   the queue is full it is dropped and counted in
//!   `otel_spans_dropped_total{reason="queue_full"}`. The queue is a vector
//!   behind a mutex that the export thread swaps out whole, and the thread is
//!   woken only when a batch is full (or by its timer), not once per span: a
//!   channel's wake-up per span cost a futex system call per request;
//! - one thread exports, in batches by size or by delay, on a Tokio runtime
//!   of its own, each export bounded by a timeout; spans of a failed or timed
//!   out export are counted as `reason="export_failed"`, and failures are
//!   logged at most once every 10 seconds, so a backend that is down costs
//!   neither the service's speed nor its memory nor its log volume;
//! - after a failed export the thread backs off before the next one:
//!   exponentially from 1 s to 30 s with jitter (half to all of the delay,
//!   so that the pods of a deployment do not come back in step), or as long
//!   as the backend's `Retry-After` asks; spans queue meanwhile (and what
//!   does not fit is dropped and counted), and the first export that works
//!   ends the backoff. A flush or a shutdown still tries once;
//! - flush and shutdown are bounded in time.
//!
//! Server spans reach it without the SDK: for OTLP, encoded by each worker
//! into a buffer of its own (`queue`), for the other exporters as records.
use std::fmt;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use super::error::TelemetryError;
use super::record::{self, QueuedSpan};

pub(crate) mod queue;

use queue::{Batch, SpanQueue, WorkerSink};

/// How often the export thread looks at its control channel while idle.
const CONTROL_POLL: Duration = Duration::from_millis(50);
/// The least time between two logged export failures.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The first wait after a failed export, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// When the next export may be tried, after failures.
#[derive(Debug, Default)]
struct Backoff {
    /// Failed exports in a row.
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// Whether an export may be tried at `now`.
    fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }

    /// One more failure: the wait before the next try (the backend's own
    /// `retry_after` if it gave one, within the longest wait).
    fn failed(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = match retry_after {
            Some(asked) => asked.min(BACKOFF_MAX),
            None => {
                let exponential = BACKOFF_FIRST
                    .saturating_mul(1 << self.failures.saturating_sub(1).min(5))
                    .min(BACKOFF_MAX);
                exponential.mul_f64(0.5 + fastrand::f64() * 0.5)
            }
        };
        self.until = Some(now + wait);
        wait
    }

    fn succeeded(&mut self) {
        *self = Self::default();
    }
}

/// Builds a [`BoundedBatchProcessor`].
#[derive(Debug, Clone)]
#[must_use]
pub struct BoundedBatchProcessorBuilder {
    max_queue_size: usize,
    max_batch_size: usize,
    scheduled_delay: Duration,
    export_timeout: Duration,
    registry: Option<Registry>,
}

impl Default for BoundedBatchProcessorBuilder {
    /// The OpenTelemetry defaults: a queue of 2,048 spans, batches of 512,
    /// every 5 s, each export bounded by 30 s.
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_batch_size: 512,
            scheduled_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
            registry: None,
        }
    }
}

impl BoundedBatchProcessorBuilder {
    /// Spans waiting for export at most; more are dropped and counted.
    pub fn max_queue_size(mut self, spans: usize) -> Self {
        self.max_queue_size = spans.max(1);
        self
    }

    /// Spans per export at most.
    pub fn max_batch_size(mut self, spans: usize) -> Self {
        self.max_batch_size = spans.max(1);
        self
    }

    /// The longest a span waits for a batch to fill.
    pub fn scheduled_delay(mut self, delay: Duration) -> Self {
        self.scheduled_delay = delay;
        self
    }

    /// The longest one export may take before its spans count as lost.
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = timeout;
        self
    }

    /// Registers `otel_spans_exported_total` and `otel_spans_dropped_total`
    /// on `registry` (a private registry otherwise).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Starts the export thread with `exporter`.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Register`] if the counters are registered already,
    /// [`TelemetryError::Thread`] if the thread cannot start.
    pub fn build<E: SpanExporter + 'static>(
        self,
        exporter: E,
    ) -> Result<BoundedBatchProcessor, TelemetryError> {
        self.build_with(move || Ok::<_, std::convert::Infallible>(exporter))
    }

    /// Starts the export thread and builds the exporter there, inside the
    /// thread's Tokio runtime: tonic's channels spawn their connection task
    /// when they are made, so a gRPC exporter cannot be built outside one.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), and [`TelemetryError::Exporter`] with
    /// `make`'s error.
    pub fn build_with<E, F, Err>(self, make: F) -> Result<BoundedBatchProcessor, TelemetryError>
    where
        E: SpanExporter + 'static,
        F: FnOnce() -> Result<E, Err> + Send + 'static,
        Err: fmt::Display,
    {
        self.build_exporting(move || {
            make().map(|exporter| SdkExporter {
                exporter,
                scope: record::scope(),
            })
        })
    }

    /// Starts the export thread with one of this crate's exporters, which
    /// take server spans as they are recorded.
    pub(crate) fn build_exporting<E, F, Err>(
        self,
        make: F,
    ) -> Result<BoundedBatchProcessor, TelemetryError>
    where
        E: BatchExporter,
        F: FnOnce() -> Result<E, Err> + Send + 'static,
        Err: fmt::Display,
    {
        let registry = self.registry.unwrap_or_default();
        let invalid = |metric, source| TelemetryError::Register { metric, source };
        let exported = IntCounter::with_opts(Opts::new(
            "otel_spans_exported_total",
            "Spans the exporter accepted.",
        ))
        .map_err(|e| invalid("otel_spans_exported_total", e))?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "otel_spans_dropped_total",
                "Spans lost: the export queue was full, or their export failed or timed out.",
            ),
            &["reason"],
        )
        .map_err(|e| invalid("otel_spans_dropped_total", e))?;
        registry
            .register(Box::new(exported.clone()))
            .map_err(|e| invalid("otel_spans_exported_total", e))?;
        registry
            .register(Box::new(dropped.clone()))
            .map_err(|e| invalid("otel_spans_dropped_total", e))?;

        let queue = Arc::new(SpanQueue::new(
            self.max_queue_size,
            self.max_batch_size,
            E::TAKES_ENCODED,
        ));
        let worker_queue = Arc::clone(&queue);
        let (control_tx, control_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let queue_full = dropped.with_label_values(&["queue_full"]);
        let queue_full_for_thread = queue_full.clone();
        let export_failed = dropped.with_label_values(&["export_failed"]);
        let (max_batch_size, scheduled_delay, export_timeout) = (
            self.max_batch_size,
            self.scheduled_delay,
            self.export_timeout,
        );
        let thread = std::thread::Builder::new()
            .name("span-export".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(format!("cannot start its runtime: {err}")));
                        return;
                    }
                };
                let exporter = {
                    let _inside = runtime.enter();
                    match make() {
                        Ok(exporter) => exporter,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err.to_string()));
                            return;
                        }
                    }
                };
                let _ = ready_tx.send(Ok(()));
                ExportWorker {
                    exporter,
                    queue: worker_queue,
                    queue_full: queue_full_for_thread,
                    control: control_rx,
                    max_batch_size,
                    scheduled_delay,
                    export_timeout,
                    exported,
                    export_failed,
                    failures_since_log: 0,
                    backoff: Backoff::default(),
                    last_failure_log: None,
                }
                .run(&runtime);
            })
            .map_err(TelemetryError::Thread)?;
        let exporter_error = |reason| TelemetryError::Exporter {
            exporter: std::any::type_name::<E>(),
            reason,
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                let _ = thread.join();
                return Err(exporter_error(reason));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(exporter_error("the export thread ended early".to_owned()));
            }
        }
        Ok(BoundedBatchProcessor {
            sink: SpanSink { queue, queue_full },
            control: Mutex::new(control_tx),
            thread: Mutex::new(Some(thread)),
        })
    }
}

/// A span processor that never blocks the request path; see the module docs.
pub struct BoundedBatchProcessor {
    sink: SpanSink,
    control: Mutex<mpsc::Sender<Control>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Where finished spans go: the processor's queue, shared with the
/// middleware so that server spans skip the SDK.
#[derive(Clone)]
pub(crate) struct SpanSink {
    queue: Arc<SpanQueue>,
    queue_full: IntCounter,
}

impl SpanSink {
    /// Queues a span; when the queue is full it is dropped and counted.
    pub(crate) fn push(&self, span: QueuedSpan) {
        if !self.queue.push(span) {
            self.queue_full.inc();
        }
    }

    /// A sink of its own for one worker thread.
    pub(crate) fn worker(&self) -> WorkerSink {
        WorkerSink::new(Arc::clone(&self.queue), self.queue_full.clone())
    }
}

impl fmt::Debug for SpanSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanSink").finish_non_exhaustive()
    }
}

impl fmt::Debug for BoundedBatchProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedBatchProcessor")
            .finish_non_exhaustive()
    }
}

impl BoundedBatchProcessor {
    /// A builder with OpenTelemetry's default sizes and delays.
    pub fn builder() -> BoundedBatchProcessorBuilder {
        BoundedBatchProcessorBuilder::default()
    }

    /// The queue, for spans recorded without the SDK.
    pub(crate) fn sink(&self) -> SpanSink {
        self.sink.clone()
    }

    /// Sends a control message and waits for its answer, at most `timeout`.
    fn ask(
        &self,
        make: impl FnOnce(mpsc::Sender<OTelSdkResult>) -> Control,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (reply_tx, reply_rx) = mpsc::channel();
        let sent = self
            .control
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("control channel poisoned".to_owned()))?
            .send(make(reply_tx));
        if sent.is_err() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        reply_rx
            .recv_timeout(timeout)
            .unwrap_or(Err(OTelSdkError::Timeout(timeout)))
    }
}

impl SpanProcessor for BoundedBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.sink.push(QueuedSpan::Sdk(Box::new(span)));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush, Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.ask(|reply| Control::Shutdown(reply, timeout), timeout);
        if result.is_ok() {
            if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
                let _ = thread.join();
            }
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Ok(control) = self.control.lock() {
            let _ = control.send(Control::SetResource(resource.clone()));
        }
    }
}

enum Control {
    Flush(mpsc::Sender<OTelSdkResult>),
    Shutdown(mpsc::Sender<OTelSdkResult>, Duration),
    SetResource(Resource),
}

struct ExportWorker<E> {
    exporter: E,
    queue: Arc<SpanQueue>,
    queue_full: IntCounter,
    control: Receiver<Control>,
    max_batch_size: usize,
    scheduled_delay: Duration,
    export_timeout: Duration,
    exported: IntCounter,
    export_failed: IntCounter,
    failures_since_log: u64,
    last_failure_log: Option<Instant>,
    backoff: Backoff,
}

impl<E: BatchExporter> ExportWorker<E> {
    fn run(mut self, runtime: &tokio::runtime::Runtime) {
        let mut deadline = Instant::now() + self.scheduled_delay;
        loop {
            loop {
                match self.control.try_recv() {
                    Ok(Control::SetResource(resource)) => self.exporter.set_resource(&resource),
                    Ok(Control::Flush(reply)) => {
                        let result = self.drain(runtime, true);
                        let _ = reply.send(result);
                    }
                    Ok(Control::Shutdown(reply, timeout)) => {
                        self.queue.close();
                        let result = self.drain(runtime, true);
                        self.exporter.shutdown(timeout);
                        let _ = reply.send(result);
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                    // The processor was dropped without a shutdown.
                    Err(TryRecvError::Disconnected) => {
                        self.queue.close();
                        let _ = self.drain(runtime, true);
                        return;
                    }
                }
            }
            let now = Instant::now();
            if !self.backoff.ready(now) {
                // Backing off: spans wait in the queue (a full batch would
                // make `wait_for_batch` return at once).
                let until = self.backoff.until.unwrap_or(now);
                std::thread::sleep(until.saturating_duration_since(now).min(CONTROL_POLL));
                continue;
            }
            let wait = deadline.saturating_duration_since(now).min(CONTROL_POLL);
            let queued = self.queue.wait_for_batch(wait);
            if queued >= self.max_batch_size || Instant::now() >= deadline {
                let _ = self.drain(runtime, false);
                deadline = Instant::now() + self.scheduled_delay;
            }
        }
    }

    /// Exports what is queued now, batch by batch; spans that arrive
    /// meanwhile wait for the next round, so that this ends. After a failure
    /// the rest waits for the backoff, unless `force` (a flush or shutdown,
    /// which tries every batch once).
    fn drain(&mut self, runtime: &tokio::runtime::Runtime, force: bool) -> OTelSdkResult {
        self.queue.collect_workers(&self.queue_full);
        let mut left = self.queue.len();
        let mut ok = true;
        while left > 0 && (force || self.backoff.ready(Instant::now())) {
            let batch = self.queue.take_batch();
            if batch.len() == 0 {
                break;
            }
            left = left.saturating_sub(batch.len());
            ok &= self.export(runtime, batch);
        }
        if ok {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(
                "some spans could not be exported".to_owned(),
            ))
        }
    }

    /// Exports `spans`; false if they were lost.
    fn export(&mut self, runtime: &tokio::runtime::Runtime, spans: Batch) -> bool {
        let count = spans.len() as u64;
        // The export and its timer are made inside the runtime: both may
        // need its context.
        let (timeout, exporter) = (self.export_timeout, &self.exporter);
        let outcome = runtime
            .block_on(async move { tokio::time::timeout(timeout, exporter.export(spans)).await });
        match outcome {
            Ok(Ok(())) => {
                self.exported.inc_by(count);
                self.backoff.succeeded();
                true
            }
            Ok(Err(err)) => {
                self.failed(count, &err.message, err.retry_after);
                false
            }
            Err(_) => {
                self.failed(
                    count,
                    &format!("no answer within {:?}", self.export_timeout),
                    None,
                );
                false
            }
        }
    }

    fn failed(&mut self, spans: u64, why: &str, retry_after: Option<Duration>) {
        self.export_failed.inc_by(spans);
        let wait = self.backoff.failed(Instant::now(), retry_after);
        self.failures_since_log += 1;
        let due = self
            .last_failure_log
            .is_none_or(|last| last.elapsed() >= FAILURE_LOG_INTERVAL);
        if due {
            log::warn!(
                "span export failed ({} failure(s) since the last report; next try in \
                 {:.1} s): {why}",
                self.failures_since_log,
                wait.as_secs_f64()
            );
            self.failures_since_log = 0;
            self.last_failure_log = Some(Instant::now());
        }
    }
}

/// Why an export failed, in words for the (rate-limited) failure log.
#[derive(Debug)]
pub(crate) struct ExportFailure {
    pub(crate) message: String,
    /// How long the backend asked to wait (`Retry-After`), if it did.
    pub(crate) retry_after: Option<Duration>,
}

impl ExportFailure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// An exporter as the export thread drives it: a batch of queued spans at
/// a time, on the thread's own runtime.
pub(crate) trait BatchExporter: 'static {
    /// Whether it takes server spans encoded by the workers (OTLP), or as
    /// records.
    const TAKES_ENCODED: bool;

    /// Sends one batch.
    fn export(&self, batch: Batch) -> impl std::future::Future<Output = Result<(), ExportFailure>>;

    /// The process's resource, once known.
    fn set_resource(&mut self, _resource: &Resource) {}

    /// Releases what the exporter holds, within `timeout`.
    fn shutdown(&mut self, _timeout: Duration) {}
}

/// Any SDK exporter: server spans are converted to `SpanData` first.
struct SdkExporter<E> {
    exporter: E,
    scope: InstrumentationScope,
}

impl<E: SpanExporter + 'static> BatchExporter for SdkExporter<E> {
    const TAKES_ENCODED: bool = false;

    async fn export(&self, batch: Batch) -> Result<(), ExportFailure> {
        let spans: Vec<SpanData> = batch
            .spans
            .into_iter()
            .map(|span| span.into_span_data(&self.scope))
            .collect();
        self.exporter
            .export(spans)
            .await
            .map_err(|err| ExportFailure::new(err.to_string()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.exporter.set_resource(resource);
    }

    fn shutdown(&mut self, timeout: Duration) {
        let _ = self.exporter.shutdown_with_timeout(timeout);
    }
}
