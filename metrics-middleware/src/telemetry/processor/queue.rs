//! The spans waiting for export: spans the SDK ended, server spans as
//! records (for exporters that take `SpanData`), and, for OTLP, server
//! spans already encoded by the workers, in chunks.
//!
//! Each worker encodes its server spans into a buffer of its own (see
//! [`WorkerSink`]): copying the pre-encoded attributes there is cheaper than
//! any other hand-over, and the reference counts of the shared attribute
//! values go up and down on the same thread, where they cost an increment,
//! instead of moving between cores with every span. A full batch moves to
//! the queue at once; a partial one is collected by the export thread when
//! its timer fires.
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use prometheus::IntCounter;

use crate::telemetry::record::{QueuedSpan, ServerSpan};

/// Server spans encoded as `ScopeSpans.spans` fields, back to back.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) count: usize,
}

impl Encoded {
    /// What is buffered, leaving an empty buffer of the same capacity: a
    /// buffer that grew by doubling would copy its spans again and again.
    fn take(&mut self) -> Self {
        let capacity = self.bytes.capacity();
        std::mem::replace(
            self,
            Self {
                bytes: Vec::with_capacity(capacity),
                count: 0,
            },
        )
    }
}

/// One export's worth of spans.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) encoded: Encoded,
    pub(crate) spans: Vec<QueuedSpan>,
}

impl Batch {
    /// Spans in the batch.
    pub(crate) fn len(&self) -> usize {
        self.encoded.count + self.spans.len()
    }
}

pub(crate) struct SpanQueue {
    state: Mutex<QueueState>,
    /// Signalled when the queue reaches a full batch.
    batch_ready: Condvar,
    pub(crate) max_queue_size: usize,
    pub(crate) max_batch_size: usize,
    /// Whether workers encode server spans (the exporter takes encoded
    /// spans) or queue them as records.
    encodes: bool,
    /// The workers' buffers, for the export thread to collect.
    workers: Mutex<Vec<Weak<Mutex<Encoded>>>>,
}

#[derive(Default)]
struct QueueState {
    spans: Vec<QueuedSpan>,
    chunks: Vec<Encoded>,
    /// Spans in `spans` and `chunks`.
    queued: usize,
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves buffers of spans,
    // which are still buffers of spans.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SpanQueue {
    pub(crate) fn new(max_queue_size: usize, max_batch_size: usize, encodes: bool) -> Self {
        Self {
            state: Mutex::new(QueueState {
                spans: Vec::with_capacity(max_batch_size.min(max_queue_size)),
                ..QueueState::default()
            }),
            batch_ready: Condvar::new(),
            max_queue_size,
            max_batch_size,
            encodes,
            workers: Mutex::default(),
        }
    }

    /// Queues `span`; false if the queue is full or closed.
    pub(crate) fn push(&self, span: QueuedSpan) -> bool {
        let mut state = lock(&self.state);
        if state.closed || state.queued >= self.max_queue_size {
            return false;
        }
        state.spans.push(span);
        state.queued += 1;
        let batch_full = state.queued == self.max_batch_size;
        drop(state);
        if batch_full {
            self.batch_ready.notify_one();
        }
        true
    }

    /// Queues a chunk of encoded spans whole; false if it does not fit (or
    /// the queue is closed, unless the export thread itself collects it).
    fn push_chunk(&self, chunk: Encoded, from_worker: bool) -> bool {
        let mut state = lock(&self.state);
        if (from_worker && state.closed) || state.queued + chunk.count > self.max_queue_size {
            return false;
        }
        state.queued += chunk.count;
        let batch_full = state.queued >= self.max_batch_size;
        state.chunks.push(chunk);
        drop(state);
        if from_worker && batch_full {
            self.batch_ready.notify_one();
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.state).queued
    }

    /// Waits up to `timeout` for a full batch; the number of spans queued.
    pub(crate) fn wait_for_batch(&self, timeout: Duration) -> usize {
        let mut state = lock(&self.state);
        if state.queued < self.max_batch_size && !state.closed {
            state = self
                .batch_ready
                .wait_timeout(state, timeout)
                .map(|(state, _)| state)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        state.queued
    }

    /// Moves what the workers have buffered into the queue (what does not
    /// fit is dropped and counted in `queue_full`).
    pub(crate) fn collect_workers(&self, queue_full: &IntCounter) {
        let mut workers = lock(&self.workers);
        workers.retain(|worker| {
            let Some(buffer) = worker.upgrade() else {
                return false;
            };
            let mut buffer = lock(&buffer);
            if buffer.count > 0 {
                let chunk = buffer.take();
                drop(buffer);
                let count = chunk.count;
                if !self.push_chunk(chunk, false) {
                    queue_full.inc_by(count as u64);
                }
            }
            true
        });
    }

    /// The oldest batch: a chunk of encoded spans (a worker's, at most a
    /// batch) and records up to a batch in all, so that at most one batch is
    /// held outside the queue while it is exported.
    pub(crate) fn take_batch(&self) -> Batch {
        let mut state = lock(&self.state);
        let encoded = if state.chunks.is_empty() {
            Encoded::default()
        } else {
            state.chunks.remove(0)
        };
        let room = self.max_batch_size.saturating_sub(encoded.count);
        let spans = if state.spans.len() <= room {
            std::mem::take(&mut state.spans)
        } else {
            // Only under overload: more than a batch waiting.
            let rest = state.spans.split_off(room);
            std::mem::replace(&mut state.spans, rest)
        };
        state.queued -= encoded.count + spans.len();
        Batch { encoded, spans }
    }

    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
    }
}

/// A worker's way into the queue: server spans are encoded into its own
/// buffer (or queued as records for exporters that take `SpanData`).
pub(crate) struct WorkerSink {
    queue: Arc<SpanQueue>,
    buffer: Arc<Mutex<Encoded>>,
    queue_full: IntCounter,
}

impl WorkerSink {
    pub(crate) fn new(queue: Arc<SpanQueue>, queue_full: IntCounter) -> Self {
        let buffer = Arc::new(Mutex::new(Encoded::default()));
        lock(&queue.workers).push(Arc::downgrade(&buffer));
        Self {
            queue,
            buffer,
            queue_full,
        }
    }

    /// Hands over a finished server span.
    pub(crate) fn push(&self, span: Box<ServerSpan>) {
        if !self.queue.encodes {
            if !self.queue.push(QueuedSpan::Server(span)) {
                self.queue_full.inc();
            }
            return;
        }
        let mut buffer = lock(&self.buffer);
        if buffer.count >= self.queue.max_queue_size {
            // The export thread has not collected this worker's spans for a
            // whole queue's worth: it is stuck.
            drop(buffer);
            self.queue_full.inc();
            return;
        }
        if !encode(&mut buffer.bytes, &span) {
            drop(buffer);
            self.queue_full.inc();
            return;
        }
        buffer.count += 1;
        if buffer.count >= self.queue.max_batch_size {
            let chunk = buffer.take();
            drop(buffer);
            let count = chunk.count;
            if !self.queue.push_chunk(chunk, true) {
                self.queue_full.inc_by(count as u64);
            }
        }
    }
}

/// Encodes a server span for OTLP (only OTLP exporters take them encoded).
#[cfg(feature = "otlp")]
fn encode(out: &mut Vec<u8>, span: &ServerSpan) -> bool {
    crate::telemetry::exporters::encode_server_span(out, span)
}

#[cfg(not(feature = "otlp"))]
fn encode(_: &mut Vec<u8>, _: &ServerSpan) -> bool {
    false
}

impl Drop for WorkerSink {
    /// A worker going away (the server stopping) hands over what it holds.
    fn drop(&mut self) {
        let chunk = std::mem::take(&mut *lock(&self.buffer));
        let count = chunk.count;
        if count > 0 && !self.queue.push_chunk(chunk, true) {
            self.queue_full.inc_by(count as u64);
        }
    }
}

impl std::fmt::Debug for WorkerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSink").finish_non_exhaustive()
    }
}
