//! The bounded span processor driven by the real OpenTelemetry SDK: spans
//! are delivered; a stuck, failing or silent backend never blocks the code
//! that ends spans; every span is either exported or counted as dropped.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use metrics_middleware::prometheus::Registry;
use metrics_middleware::telemetry::BoundedBatchProcessor;
use metrics_middleware::text_format::render;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// What an exporter under test does with a batch.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Accept,
    Fail,
    /// Waits until released; stands for a backend that stopped answering.
    StuckUntilReleased,
    Silent,
}

#[derive(Debug, Clone)]
struct TestExporter {
    backend: Backend,
    received: Arc<Mutex<Vec<String>>>,
    released: Arc<AtomicBool>,
}

impl TestExporter {
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            received: Arc::default(),
            released: Arc::default(),
        }
    }
}

impl SpanExporter for TestExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self.backend {
            Backend::Accept => {}
            Backend::Fail => return Err(OTelSdkError::InternalFailure("backend down".to_owned())),
            Backend::StuckUntilReleased => {
                while !self.released.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Backend::Silent => std::future::pending::<()>().await,
        }
        let mut received = self.received.lock().expect("lock");
        received.extend(batch.into_iter().map(|span| span.name.into_owned()));
        Ok(())
    }
}

/// The value of a sample line of the registry's scrape (0 if absent).
fn sample(registry: &Registry, series: &str) -> u64 {
    render(registry)
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Ends `count` spans on another thread and fails the test if that does not
/// finish within 30 s: ending a span must never wait for the exporter.
fn end_spans(provider: &SdkTracerProvider, count: usize) {
    let tracer = provider.tracer("test");
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for i in 0..count {
            let mut span = tracer.start(format!("span {i}"));
            span.end();
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ending spans blocked on the exporter");
}

#[test]
fn spans_are_delivered_and_counted() {
    let registry = Registry::new();
    let exporter = TestExporter::new(Backend::Accept);
    let processor = BoundedBatchProcessor::builder()
        .registry(registry.clone())
        .build(exporter.clone())
        .expect("built");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    end_spans(&provider, 10);
    provider.force_flush().expect("flushed");
    let mut names = exporter.received.lock().expect("lock").clone();
    names.sort();
    assert_eq!(names.len(), 10);
    assert_eq!(names[0], "span 0");
    assert_eq!(sample(&registry, "otel_spans_exported_total"), 10);
    provider.shutdown().expect("shut down");
}

#[test]
fn a_stuck_backend_never_blocks_and_every_span_is_accounted_for() {
    let registry = Registry::new();
    let exporter = TestExporter::new(Backend::StuckUntilReleased);
    let processor = BoundedBatchProcessor::builder()
        .max_queue_size(50)
        .max_batch_size(10)
        .scheduled_delay(Duration::from_millis(10))
        .registry(registry.clone())
        .build(exporter.clone())
        .expect("built");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();

    end_spans(&provider, 20_000);
    let dropped = sample(
        &registry,
        r#"otel_spans_dropped_total{reason="queue_full"}"#,
    );
    // At most the queue and the batch being exported were kept.
    assert!(dropped >= 20_000 - 50 - 10, "dropped {dropped}");

    exporter.released.store(true, Ordering::SeqCst);
    provider.force_flush().expect("flushed");
    let exported = sample(&registry, "otel_spans_exported_total");
    assert_eq!(
        exported + dropped,
        20_000,
        "exported {exported}, dropped {dropped}"
    );
    assert_eq!(
        exporter.received.lock().expect("lock").len() as u64,
        exported
    );
    provider.shutdown().expect("shut down");
}

#[test]
fn failed_and_timed_out_exports_are_counted_and_shutdown_returns() {
    let registry = Registry::new();
    // No batch fills and no timer is due before the flush, so the flush
    // exports (and fails) them all.
    let processor = BoundedBatchProcessor::builder()
        .max_batch_size(50)
        .scheduled_delay(Duration::from_secs(600))
        .registry(registry.clone())
        .build(TestExporter::new(Backend::Fail))
        .expect("built");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    end_spans(&provider, 12);
    assert!(
        provider.force_flush().is_err(),
        "a failed export is reported to flush"
    );
    assert_eq!(
        sample(
            &registry,
            r#"otel_spans_dropped_total{reason="export_failed"}"#
        ),
        12
    );
    assert_eq!(sample(&registry, "otel_spans_exported_total"), 0);
    let _ = provider.shutdown();

    let registry = Registry::new();
    let processor = BoundedBatchProcessor::builder()
        .export_timeout(Duration::from_millis(100))
        .registry(registry.clone())
        .build(TestExporter::new(Backend::Silent))
        .expect("built");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    end_spans(&provider, 3);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = provider.shutdown_with_timeout(Duration::from_secs(5));
        let _ = done_tx.send(result);
    });
    let result = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("shutdown hung on a silent backend");
    assert!(result.is_err(), "the lost spans are reported");
    assert_eq!(
        sample(
            &registry,
            r#"otel_spans_dropped_total{reason="export_failed"}"#
        ),
        3
    );
}

/// Fails every export and counts the attempts.
#[derive(Debug, Clone, Default)]
struct CountingFailures {
    attempts: Arc<std::sync::atomic::AtomicUsize>,
}

impl SpanExporter for CountingFailures {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(OTelSdkError::InternalFailure(
            "connection refused".to_owned(),
        ))
    }
}

#[test]
fn a_failing_backend_is_tried_less_and_less_often() {
    let registry = Registry::new();
    let exporter = CountingFailures::default();
    let processor = BoundedBatchProcessor::builder()
        .max_queue_size(200)
        .max_batch_size(10)
        .scheduled_delay(Duration::from_millis(10))
        .registry(registry.clone())
        .build(exporter.clone())
        .expect("built");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    // Full batches every few milliseconds for 4 s: without backoff, hundreds
    // of attempts; with it (1 s, 2 s, then 4 s, each with jitter), a few.
    let tracer = provider.tracer("test");
    let start = std::time::Instant::now();
    let mut ended = 0_u64;
    while start.elapsed() < Duration::from_secs(4) {
        for _ in 0..10 {
            tracer.start("span").end();
            ended += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let attempts = exporter.attempts.load(Ordering::SeqCst);
    assert!((2..=6).contains(&attempts), "{attempts} attempts in 4 s");
    // Nothing is lost without being counted.
    let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
    let failed = sample(
        &registry,
        r#"otel_spans_dropped_total{reason="export_failed"}"#,
    );
    let full = sample(
        &registry,
        r#"otel_spans_dropped_total{reason="queue_full"}"#,
    );
    assert_eq!(failed + full, ended, "failed {failed}, queue full {full}");
}
