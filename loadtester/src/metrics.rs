//! This generator's own Prometheus metrics, served on its `*-metrics` port so
//! that Prometheus and Cloud Monitoring add up many load pods: no
//! coordinator of ours is needed. The live progress line reads them too.
use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_middleware::prometheus::core::Collector;
use metrics_middleware::prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry,
};

use crate::tasks::Task;

/// The metrics of one load generator.
#[derive(Debug)]
pub struct Recorder {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    users: IntGauge,
}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// The process's recorder (goose calls tasks as plain functions, so they
/// reach it through a static).
pub fn recorder() -> &'static Recorder {
    RECORDER.get_or_init(Recorder::new)
}

impl Recorder {
    fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "loadtester_requests_total",
                "Requests sent, by task and response status (0: no response).",
            ),
            &["task", "status"],
        )
        .expect("valid metric");
        // 100 µs to about 50 s in steps of 1.5x: fine enough for p50/p99 lines.
        let buckets = exponential_buckets(0.0001, 1.5, 33).expect("valid buckets");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "loadtester_request_duration_seconds",
                "Response time, body included, by task.",
            )
            .buckets(buckets),
            &["task"],
        )
        .expect("valid metric");
        let users =
            IntGauge::new("loadtester_users", "Users this generator runs.").expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn Collector>,
            Box::new(duration.clone()),
            Box::new(users.clone()),
        ] {
            registry.register(collector).expect("registered once");
        }
        let _ =
            metrics_middleware::process::register(&registry, &metrics_middleware::build_info!());
        Self {
            registry,
            requests,
            duration,
            users,
        }
    }

    /// The registry to serve.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets the user count of this generator.
    pub fn set_users(&self, users: usize) {
        self.users.set(i64::try_from(users).unwrap_or(i64::MAX));
    }

    /// Records one request.
    pub fn record(&self, task: Task, status: u16, elapsed: Duration) {
        // A label lookup hashes and takes a lock; this runs for every request,
        // so each thread resolves a (task, status) child once and indexes it.
        // The cache is not keyed by recorder: there is one per process
        // (`recorder()`; `new` is private), and tests make theirs on their
        // own thread.
        thread_local! {
            static COUNTERS: RefCell<Vec<Option<IntCounter>>> = const { RefCell::new(Vec::new()) };
            static HISTOGRAMS: RefCell<Vec<Option<Histogram>>> = const { RefCell::new(Vec::new()) };
        }
        let status = status.min(999);
        COUNTERS.with_borrow_mut(|counters| {
            if counters.is_empty() {
                counters.resize(Task::ALL.len() * 1000, None);
            }
            counters[task.index() * 1000 + usize::from(status)]
                .get_or_insert_with(|| {
                    self.requests
                        .with_label_values(&[task.name(), &status.to_string()])
                })
                .inc();
        });
        HISTOGRAMS.with_borrow_mut(|histograms| {
            if histograms.is_empty() {
                histograms.resize(Task::ALL.len(), None);
            }
            histograms[task.index()]
                .get_or_insert_with(|| self.duration.with_label_values(&[task.name()]))
                .observe(elapsed.as_secs_f64());
        });
    }

    /// Totals so far: requests, failed requests (no response, or 4xx/5xx),
    /// and the response time percentiles `p50` and `p99` in seconds,
    /// interpolated within the histogram's buckets.
    pub fn snapshot(&self) -> Snapshot {
        let (mut requests, mut failed) = (0, 0);
        for family in self.requests.collect() {
            for metric in family.get_metric() {
                let count = metric.get_counter().get_value() as u64;
                requests += count;
                let status = metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "status")
                    .and_then(|l| l.value().parse::<u16>().ok())
                    .unwrap_or(0);
                if status == 0 || status >= 400 {
                    failed += count;
                }
            }
        }
        let mut bounds: Vec<f64> = Vec::new();
        let mut cumulative: Vec<u64> = Vec::new();
        for family in self.duration.collect() {
            for metric in family.get_metric() {
                for (i, bucket) in metric.get_histogram().get_bucket().iter().enumerate() {
                    if bounds.len() <= i {
                        bounds.push(bucket.upper_bound());
                        cumulative.push(0);
                    }
                    cumulative[i] += bucket.cumulative_count();
                }
            }
        }
        Snapshot {
            requests,
            failed,
            p50: quantile(&bounds, &cumulative, 0.5),
            p99: quantile(&bounds, &cumulative, 0.99),
        }
    }
}

/// Totals of the run so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    /// Requests sent and answered or failed.
    pub requests: u64,
    /// Requests without a response or with a 4xx/5xx status.
    pub failed: u64,
    /// Median response time, seconds.
    pub p50: f64,
    /// 99th percentile response time, seconds.
    pub p99: f64,
}

fn quantile(bounds: &[f64], cumulative: &[u64], q: f64) -> f64 {
    let Some(&total) = cumulative.last() else {
        return 0.0;
    };
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for (&bound, &count) in bounds.iter().zip(cumulative) {
        if count as f64 >= rank {
            let within = count - lower.1;
            let fraction = if within == 0 {
                1.0
            } else {
                (rank - lower.1 as f64) / within as f64
            };
            return lower.0 + (bound - lower.0) * fraction;
        }
        lower = (bound, count);
    }
    lower.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_labelled_and_quantiles_interpolated() {
        let recorder = Recorder::new();
        recorder.record(Task::Hello, 200, Duration::from_millis(1));
        recorder.record(Task::Unknown, 0, Duration::from_millis(1));
        let scrape = metrics_middleware::text_format::render(recorder.registry());
        assert!(
            scrape.contains(r#"loadtester_requests_total{status="200",task="hello"} 1"#),
            "{scrape}"
        );
        assert!(
            scrape.contains(r#"loadtester_requests_total{status="0",task="unknown"} 1"#),
            "{scrape}"
        );
        assert_eq!(quantile(&[1.0, 2.0], &[0, 10], 0.5), 1.5);
        assert_eq!(quantile(&[1.0, 2.0], &[10, 10], 0.99), 0.99);
        assert_eq!(quantile(&[], &[], 0.5), 0.0);
    }
}
