//! Exemplars: the link from a histogram bucket to a trace (see [`Exemplars`]).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use prometheus::core::{Collector, Metric};
use prometheus::Histogram;

use crate::logging::line::LineTrace;

/// The longest Google Cloud project id (6 to 30 characters).
const MAX_PROJECT_ID_LEN: usize = 30;

/// Exemplars: the link from a histogram bucket to a trace. For a sampled
/// request, the bucket of the duration histogram it lands in keeps the
/// latest exemplar: its trace and span ids, the value and when it was
/// recorded. They appear in the OpenMetrics exposition (a scrape that asks
/// for `application/openmetrics-text`, as Prometheus does), never in the
/// 0.0.4 text format.
///
/// The labels are `trace_id` and `span_id`, and `project_id` when the
/// Google Cloud project is known: Google Cloud Managed Service for
/// Prometheus links an exemplar to its trace in Cloud Trace when it has all
/// three. Together they stay within OpenMetrics' 128 characters.
///
/// Unsampled requests record nothing (their spans are not exported, so an
/// exemplar would point nowhere) and cost nothing. Histograms of your own
/// can carry exemplars too:
///
/// ```
/// use metrics_middleware::prometheus::{Histogram, HistogramOpts};
/// use metrics_middleware::metrics::Exemplars;
///
/// let exemplars = Exemplars::new(); // or observability.exemplars()
/// let histogram = Histogram::with_opts(HistogramOpts::new("query_seconds", "Query time.")).unwrap();
/// let queries = exemplars.histogram(histogram);
/// queries.observe(0.042); // with the current trace, if it is sampled
/// ```
///
/// This value holds the exemplars of every histogram that keeps them, by
/// series; it is cheap to clone (clones share the store).
#[derive(Clone, Default)]
pub struct Exemplars {
    store: Arc<Store>,
}

#[derive(Default)]
struct Store {
    /// By metric name and the series' labels as the text format writes
    /// them (`a="x",b="y"`), so that rendering finds them by what it has.
    series: Mutex<HashMap<(String, String), Arc<Slots>>>,
    project_id: OnceLock<Option<Box<str>>>,
}

impl std::fmt::Debug for Exemplars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exemplars")
            .field("project_id", &self.project_id())
            .finish_non_exhaustive()
    }
}

/// One histogram series' exemplars: the latest per bucket.
pub(crate) struct Slots {
    /// The buckets' upper bounds, `+Inf` not included.
    bounds: Box<[f64]>,
    /// One per bound, then one for `+Inf`.
    cells: Box<[Mutex<Option<Exemplar>>]>,
}

/// A recorded exemplar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) value: f64,
    pub(crate) time: SystemTime,
}

impl Slots {
    fn new(bounds: Vec<f64>) -> Self {
        let cells = (0..=bounds.len()).map(|_| Mutex::new(None)).collect();
        Self {
            bounds: bounds.into_boxed_slice(),
            cells,
        }
    }

    /// Keeps an exemplar for `value` in its bucket.
    pub(crate) fn record(&self, value: f64, trace_id: [u8; 16], span_id: [u8; 8]) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        let exemplar = Exemplar {
            trace_id,
            span_id,
            value,
            time: SystemTime::now(),
        };
        *self.cells[bucket]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(exemplar);
    }

    /// The exemplar of the bucket bounded by `upper` (`+Inf` for the last).
    pub(crate) fn for_bound(&self, upper: f64) -> Option<Exemplar> {
        let bucket = if upper == f64::INFINITY {
            self.bounds.len()
        } else {
            self.bounds.iter().position(|bound| *bound == upper)?
        };
        *self.cells[bucket]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Exemplars {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the Google Cloud project that traces are written to, for the
    /// `project_id` label; the first call decides. A value that is not a
    /// project id (at most 30 lowercase letters, digits and hyphens) is
    /// ignored.
    pub(crate) fn set_project_id(&self, project_id: Option<&str>) {
        let valid = project_id.filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_PROJECT_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        let _ = self
            .store
            .project_id
            .set(valid.map(|id| id.to_owned().into_boxed_str()));
    }

    /// The `project_id` label's value, if known.
    pub fn project_id(&self) -> Option<&str> {
        self.store.project_id.get().and_then(|id| id.as_deref())
    }

    /// `histogram` (a child of a `HistogramVec` or a plain one), made to
    /// keep exemplars; register the histogram (or its vector) on the
    /// registry as usual.
    pub fn histogram(&self, histogram: Histogram) -> ExemplarHistogram {
        let slots = self.slots_for(&histogram);
        ExemplarHistogram { histogram, slots }
    }

    /// The slots of `histogram`'s series, made on first use.
    pub(crate) fn slots_for(&self, histogram: &Histogram) -> Arc<Slots> {
        let name = histogram
            .desc()
            .first()
            .map(|desc| desc.fq_name.clone())
            .unwrap_or_default();
        let metric = histogram.metric();
        let mut labels = String::new();
        crate::text_format::write_labels(&mut labels, metric.get_label());
        let bounds = metric
            .get_histogram()
            .get_bucket()
            .iter()
            .map(|bucket| bucket.upper_bound())
            .filter(|bound| bound.is_finite())
            .collect();
        let mut series = self
            .store
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            series
                .entry((name, labels))
                .or_insert_with(|| Arc::new(Slots::new(bounds))),
        )
    }

    /// The slots of a series, for rendering.
    pub(crate) fn get(&self, name: &str, labels: &str) -> Option<Arc<Slots>> {
        let series = self
            .store
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        series.get(&(name.to_owned(), labels.to_owned())).cloned()
    }
}

/// A histogram that keeps an exemplar per bucket for the observations made
/// in a sampled trace; see [`Exemplars`].
#[derive(Clone)]
pub struct ExemplarHistogram {
    histogram: Histogram,
    slots: Arc<Slots>,
}

impl std::fmt::Debug for ExemplarHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExemplarHistogram").finish_non_exhaustive()
    }
}

impl ExemplarHistogram {
    /// Observes `value`; in a sampled trace (the one current on this
    /// thread), its bucket keeps the trace as its exemplar.
    pub fn observe(&self, value: f64) {
        self.histogram.observe(value);
        if let Some(trace) = LineTrace::current().filter(|trace| trace.sampled) {
            self.slots.record(value, trace.trace_id, trace.span_id);
        }
    }

    /// The histogram itself.
    pub fn histogram(&self) -> &Histogram {
        &self.histogram
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{HistogramOpts, HistogramVec};

    use super::*;

    #[test]
    fn each_bucket_keeps_its_latest_exemplar() {
        let vec = HistogramVec::new(
            HistogramOpts::new("t_seconds", "T.").buckets(vec![0.1, 1.0]),
            &["route"],
        )
        .expect("histogram");
        let exemplars = Exemplars::new();
        let slots = exemplars.slots_for(&vec.with_label_values(&["/a"]));
        slots.record(0.05, [1; 16], [1; 8]);
        slots.record(0.07, [2; 16], [2; 8]);
        slots.record(5.0, [3; 16], [3; 8]);
        assert_eq!(slots.for_bound(0.1).map(|e| e.trace_id), Some([2; 16]));
        assert_eq!(slots.for_bound(1.0), None);
        assert_eq!(slots.for_bound(f64::INFINITY).map(|e| e.value), Some(5.0));
        // Found again by what rendering has: the name and the labels.
        let found = exemplars.get("t_seconds", "route=\"/a\"").expect("found");
        assert!(Arc::ptr_eq(&found, &slots));
        assert!(exemplars.get("t_seconds", "route=\"/b\"").is_none());
    }

    #[test]
    fn only_a_real_project_id_is_kept() {
        let bad = Exemplars::new();
        bad.set_project_id(Some("Not A Project"));
        assert_eq!(bad.project_id(), None);
        let good = Exemplars::new();
        good.set_project_id(Some("demo-project-42"));
        good.set_project_id(Some("another"));
        assert_eq!(good.project_id(), Some("demo-project-42"));
    }
}
