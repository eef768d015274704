//! Log lines written by a thread of their own, so that a request pays for a
//! copy into memory rather than a `write` system call.
//!
//! Measured on the hello route (bench/run.sh, traced variant): one unbuffered
//! `write(2)` per log line to a file cost more system time than the whole
//! request's span; batching lines into one write every few milliseconds
//! removes nearly all of it. The buffer is bounded: when standard error
//! cannot keep up, lines are dropped and counted in `log_lines_dropped_total`
//! instead of slowing requests or growing memory. Warnings and errors wake
//! the writer at once, and [`FlushGuard`] writes what is left at exit.
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::IntCounter;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Buffered bytes that wake the writer before its interval.
const FLUSH_AT_BYTES: usize = 32 * 1024;

/// A [`MakeWriter`] that hands lines to a writer thread through a bounded
/// buffer; see the module docs.
#[derive(Clone)]
pub struct BufferedWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BufferedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedWriter")
            .field("max_bytes", &self.shared.max_bytes)
            .finish_non_exhaustive()
    }
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    max_bytes: usize,
    dropped: IntCounter,
}

struct Pending {
    bytes: Vec<u8>,
    urgent: bool,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes what is buffered and stops the writer thread when dropped: keep it
/// alive until the end of `main`.
#[must_use = "dropping the guard stops the log writer"]
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FlushGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushGuard").finish_non_exhaustive()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl BufferedWriter {
    /// Lines to `sink`, at most `max_bytes` waiting; lines that do not fit
    /// are counted in `dropped`.
    ///
    /// # Errors
    ///
    /// If the writer thread cannot be started.
    pub fn new(
        sink: impl Write + Send + 'static,
        max_bytes: usize,
        dropped: IntCounter,
    ) -> io::Result<(Self, FlushGuard)> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(FLUSH_AT_BYTES * 2),
                urgent: false,
                closed: false,
            }),
            wake: Condvar::new(),
            max_bytes,
            dropped,
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || write_lines(&for_thread, sink))?;
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            FlushGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped so far because the buffer was full.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.get()
    }

    /// Buffers one whole line (ending in a newline).
    pub(crate) fn write_line(&self, line: &[u8], urgent: bool) {
        self.shared.write_line(line, urgent);
    }
}

fn write_lines(shared: &Shared, mut sink: impl Write) {
    let mut spare = Vec::with_capacity(FLUSH_AT_BYTES * 2);
    loop {
        let closed = {
            let mut pending = shared.lock();
            if !pending.closed && !pending.urgent && pending.bytes.len() < FLUSH_AT_BYTES {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_INTERVAL)
                    .map(|(pending, _)| pending)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            pending.urgent = false;
            std::mem::swap(&mut pending.bytes, &mut spare);
            pending.closed
        };
        if !spare.is_empty() {
            // Nowhere to report a failing standard error; the lines are lost
            // either way, and the service goes on.
            let _ = sink.write_all(&spare);
            let _ = sink.flush();
            spare.clear();
        }
        if closed && shared.lock().bytes.is_empty() {
            return;
        }
    }
}

/// One event's writer: the formatter writes a whole line in one call.
#[derive(Debug)]
pub struct LineWriter<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.shared.write_line(line, self.urgent);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    /// Buffers one whole line, or drops and counts it if the buffer is
    /// full; `urgent` lines (warnings, errors) wake the writer at once.
    fn write_line(&self, line: &[u8], urgent: bool) {
        let mut pending = self.lock();
        if pending.bytes.len() + line.len() > self.max_bytes {
            drop(pending);
            self.dropped.inc();
            return;
        }
        pending.bytes.extend_from_slice(line);
        let wake = urgent || pending.bytes.len() >= FLUSH_AT_BYTES;
        pending.urgent |= urgent;
        drop(pending);
        if wake {
            self.wake.notify_one();
        }
    }
}

impl<'a> MakeWriter<'a> for BufferedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn counter() -> IntCounter {
        IntCounter::new("log_lines_dropped_total", "test").expect("counter")
    }

    #[test]
    fn every_line_is_written_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) =
            BufferedWriter::new(sink.clone(), 1 << 20, counter()).expect("writer");
        for n in 0..10_000 {
            writeln!(writer.make_writer(), "line {n}").expect("buffered");
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 10_000);
        assert_eq!(text.lines().last(), Some("line 9999"));
        assert_eq!(writer.dropped_lines(), 0);
    }

    /// A sink that blocks until released, like a full pipe.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>);

    impl Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let (released, signal) = &*self.0;
            let mut released = released.lock().expect("lock");
            while !*released {
                released = signal.wait(released).expect("wait");
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_lines_instead_of_blocking() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (writer, guard) =
            BufferedWriter::new(Stuck(Arc::clone(&gate)), 4096, counter()).expect("writer");
        let (done_tx, done) = std::sync::mpsc::channel();
        let for_thread = writer.clone();
        std::thread::spawn(move || {
            let mut line = [b'x'; 64];
            line[63] = b'\n';
            for _ in 0..100_000 {
                for_thread
                    .make_writer()
                    .write_all(&line)
                    .expect("never fails");
            }
            let _ = done_tx.send(());
        });
        // A hang guard, not a timing: the writes must end while the sink
        // is still stuck.
        done.recv_timeout(Duration::from_secs(60))
            .expect("writes blocked on a stuck sink");
        assert!(
            writer.dropped_lines() > 99_000,
            "{}",
            writer.dropped_lines()
        );
        *gate.0.lock().expect("lock") = true;
        gate.1.notify_all();
        drop(guard);
    }
}
