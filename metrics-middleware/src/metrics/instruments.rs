//! The registered Prometheus vectors and the code that records one request.
use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::exemplars::Slots;
use super::{BuildError, Dimension, Exemplars, MetricSpec};

/// The label values of one finished request, indexed by [`Dimension`].
pub(crate) struct LabelValues<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: &'a str,
    pub(crate) status: &'a str,
}

impl<'a> LabelValues<'a> {
    fn get(&self, dimension: Dimension) -> &'a str {
        match dimension {
            Dimension::Method => self.method,
            Dimension::Route => self.route,
            Dimension::Status => self.status,
        }
    }
}

/// A metric vector and the dimensions its labels take, in order.
struct Labelled<V> {
    vec: V,
    dimensions: Vec<Dimension>,
}

impl<V> Labelled<V> {
    /// Fills `buf` with this metric's label values; at most one per dimension.
    fn values<'a>(&self, all: &LabelValues<'a>, buf: &'a mut [&'a str; 3]) -> &'a [&'a str] {
        for (slot, dim) in buf.iter_mut().zip(&self.dimensions) {
            *slot = all.get(*dim);
        }
        &buf[..self.dimensions.len()]
    }
}

/// Settings the instruments are built from.
pub(crate) struct InstrumentSettings<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) const_labels: &'a HashMap<String, String>,
    pub(crate) duration_buckets: &'a [f64],
    pub(crate) size_buckets: &'a [f64],
}

/// Every request metric that is turned on, registered on one registry.
pub(crate) struct Instruments {
    requests_total: Option<Labelled<IntCounterVec>>,
    request_duration: Option<Labelled<HistogramVec>>,
    request_size: Option<Labelled<HistogramVec>>,
    response_size: Option<Labelled<HistogramVec>>,
    in_flight: Option<InFlight>,
}

/// The in-flight gauge: resolved once when it has no label, since that is
/// the common case and spares a label lookup per request.
enum InFlight {
    Unlabelled(IntGauge),
    ByMethod(IntGaugeVec),
}

/// Decrements the in-flight gauge when the request is done, however it ends
/// (response sent, error, or client gone and the future dropped).
pub(crate) struct InFlightGuard(Option<IntGauge>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

/// The children of every request metric for one combination of label
/// values, resolved once so that recording a request is a few atomic adds
/// rather than a hash-and-lock lookup per metric.
pub(crate) struct Series {
    requests_total: Option<IntCounter>,
    request_duration: Option<Histogram>,
    /// The duration histogram's exemplars, for series that keep them.
    duration_exemplars: Option<Arc<Slots>>,
    request_size: Option<Histogram>,
    response_size: Option<Histogram>,
}

impl Series {
    /// Records one request; `sampled` are its trace and span ids when its
    /// span is exported, for the duration's exemplar.
    pub(crate) fn record(
        &self,
        duration_seconds: Option<f64>,
        request_bytes: u64,
        response_bytes: u64,
        sampled: Option<([u8; 16], [u8; 8])>,
    ) {
        if let Some(counter) = &self.requests_total {
            counter.inc();
        }
        if let (Some(histogram), Some(duration)) = (&self.request_duration, duration_seconds) {
            histogram.observe(duration);
            if let (Some(slots), Some((trace_id, span_id))) = (&self.duration_exemplars, sampled) {
                slots.record(duration, trace_id, span_id);
            }
        }
        if let Some(histogram) = &self.request_size {
            histogram.observe(request_bytes as f64);
        }
        if let Some(histogram) = &self.response_size {
            histogram.observe(response_bytes as f64);
        }
    }
}

impl Instruments {
    pub(crate) fn register(
        registry: &Registry,
        naming: &super::Naming,
        settings: &InstrumentSettings<'_>,
    ) -> Result<Self, BuildError> {
        let requests_total = naming
            .requests_total
            .as_ref()
            .map(|spec| {
                let opts = opts(spec, settings);
                let vec = IntCounterVec::new(opts, &label_names(spec))
                    .map_err(|source| register_error(spec, source))?;
                register(registry, spec, vec, settings)
            })
            .transpose()?;
        let histogram = |spec: &MetricSpec, buckets: &[f64]| {
            let opts = HistogramOpts::from(opts(spec, settings)).buckets(buckets.to_vec());
            let vec = HistogramVec::new(opts, &label_names(spec))
                .map_err(|source| register_error(spec, source))?;
            register(registry, spec, vec, settings)
        };
        let request_duration = naming
            .request_duration
            .as_ref()
            .map(|spec| histogram(spec, settings.duration_buckets))
            .transpose()?;
        let request_size = naming
            .request_size
            .as_ref()
            .map(|spec| histogram(spec, settings.size_buckets))
            .transpose()?;
        let response_size = naming
            .response_size
            .as_ref()
            .map(|spec| histogram(spec, settings.size_buckets))
            .transpose()?;
        let in_flight = naming
            .requests_in_flight
            .as_ref()
            .map(|spec| register_in_flight(registry, spec, settings))
            .transpose()?;
        Ok(Self {
            requests_total,
            request_duration,
            request_size,
            response_size,
            in_flight,
        })
    }

    pub(crate) fn start(&self, method: &str) -> InFlightGuard {
        let gauge = match &self.in_flight {
            None => None,
            Some(InFlight::Unlabelled(gauge)) => Some(gauge.clone()),
            Some(InFlight::ByMethod(vec)) => Some(vec.with_label_values(&[method])),
        };
        if let Some(gauge) = &gauge {
            gauge.inc();
        }
        InFlightGuard(gauge)
    }

    /// Resolves the series of one label combination; its duration keeps
    /// exemplars in `exemplars` if given.
    pub(crate) fn series(&self, labels: &LabelValues<'_>, exemplars: Option<&Exemplars>) -> Series {
        fn child<B: MetricVecBuilder>(
            metric: &Option<Labelled<MetricVec<B>>>,
            labels: &LabelValues<'_>,
        ) -> Option<B::M> {
            metric.as_ref().map(|metric| {
                let mut buf = [""; 3];
                metric
                    .vec
                    .with_label_values(metric.values(labels, &mut buf))
            })
        }
        let request_duration = child(&self.request_duration, labels);
        Series {
            requests_total: child(&self.requests_total, labels),
            duration_exemplars: exemplars
                .zip(request_duration.as_ref())
                .map(|(exemplars, histogram)| exemplars.slots_for(histogram)),
            request_duration,
            request_size: child(&self.request_size, labels),
            response_size: child(&self.response_size, labels),
        }
    }
}

fn label_names(spec: &MetricSpec) -> Vec<&str> {
    spec.label_names().collect()
}

fn opts(spec: &MetricSpec, settings: &InstrumentSettings<'_>) -> Opts {
    let mut opts =
        Opts::new(spec.name.clone(), spec.help.clone()).const_labels(settings.const_labels.clone());
    if let Some(namespace) = settings.namespace {
        opts = opts.namespace(namespace);
    }
    opts
}

fn full_name(spec: &MetricSpec, settings: &InstrumentSettings<'_>) -> String {
    match settings.namespace {
        Some(ns) => format!("{ns}_{}", spec.name),
        None => spec.name.clone(),
    }
}

fn register_error(spec: &MetricSpec, source: prometheus::Error) -> BuildError {
    BuildError::Register {
        metric: spec.name.clone(),
        source,
    }
}

fn check_labels(spec: &MetricSpec, settings: &InstrumentSettings<'_>) -> Result<(), BuildError> {
    let invalid = |reason: String| BuildError::InvalidLabels {
        metric: full_name(spec, settings),
        reason,
    };
    for (i, (dim, name)) in spec.labels.iter().enumerate() {
        if spec.labels[..i].iter().any(|(d, _)| d == dim) {
            return Err(invalid(format!("{dim:?} is used twice")));
        }
        if spec.labels[..i].iter().any(|(_, n)| n == name) {
            return Err(invalid(format!("label name `{name}` is used twice")));
        }
        if settings.const_labels.contains_key(name) {
            return Err(invalid(format!(
                "label name `{name}` is also a constant label"
            )));
        }
    }
    Ok(())
}

fn register<V: Collector + Clone + 'static>(
    registry: &Registry,
    spec: &MetricSpec,
    vec: V,
    settings: &InstrumentSettings<'_>,
) -> Result<Labelled<V>, BuildError> {
    check_labels(spec, settings)?;
    registry
        .register(Box::new(vec.clone()))
        .map_err(|source| BuildError::Register {
            metric: full_name(spec, settings),
            source,
        })?;
    Ok(Labelled {
        vec,
        dimensions: spec.labels.iter().map(|(dim, _)| *dim).collect(),
    })
}

fn register_in_flight(
    registry: &Registry,
    spec: &MetricSpec,
    settings: &InstrumentSettings<'_>,
) -> Result<InFlight, BuildError> {
    match spec.labels.as_slice() {
        [] => {
            let gauge = IntGauge::with_opts(opts(spec, settings))
                .map_err(|source| register_error(spec, source))?;
            registry
                .register(Box::new(gauge.clone()))
                .map_err(|source| register_error(spec, source))?;
            Ok(InFlight::Unlabelled(gauge))
        }
        [(Dimension::Method, _)] => {
            let vec = IntGaugeVec::new(opts(spec, settings), &label_names(spec))
                .map_err(|source| register_error(spec, source))?;
            Ok(InFlight::ByMethod(
                register(registry, spec, vec, settings)?.vec,
            ))
        }
        _ => Err(BuildError::InvalidLabels {
            metric: full_name(spec, settings),
            reason: "the in-flight gauge can be labelled by method only: \
                     route and status are unknown while a request is in flight"
                .to_owned(),
        }),
    }
}
