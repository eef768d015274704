//! The exposition formats, written straight into one buffer: Prometheus'
//! text format (0.0.4) for every scraper, and OpenMetrics 1.0 (with
//! exemplars) for a scraper that asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does).
//!
//! Why not `prometheus::TextEncoder`: it writes a histogram's `le` bounds as
//! `1` and `10` where Python's client writes `1.0` and `10.0`, and Prometheus
//! 2.x keeps `le` as text, so queries and dashboards made on the Flask service
//! that select `le="1.0"` would find nothing. It also allocates several
//! strings per sample line; this writer formats each series' labels once and
//! reuses them for all its bucket lines (see `benches/render.rs`).
use std::fmt::Write;
use std::time::UNIX_EPOCH;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Registry;

use crate::logging::line::{span_hex, trace_hex};
use crate::metrics::Exemplars;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format, 0.0.4.
    Text,
    /// OpenMetrics 1.0, with exemplars.
    OpenMetrics,
}

impl Format {
    /// What a scraper's `Accept` header asks for: OpenMetrics if it names
    /// `application/openmetrics-text` with a non-zero weight, else the text
    /// format (which every scraper reads).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && parts.all(|param| {
                        let (key, value) = param.split_once('=').unwrap_or((param, ""));
                        !key.trim().eq_ignore_ascii_case("q")
                            || value.trim().parse::<f32>().is_ok_and(|q| q > 0.0)
                    })
            })
        });
        if wants_openmetrics {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    /// The format's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Renders every metric in `registry` in the text format.
pub fn render(registry: &Registry) -> String {
    render_as(registry, Format::Text, None)
}

/// Renders every metric in `registry` in `format`, with the exemplars of
/// `exemplars` for OpenMetrics.
pub fn render_as(registry: &Registry, format: Format, exemplars: Option<&Exemplars>) -> String {
    let families = registry.gather();
    let mut out = String::with_capacity(16 * 1024);
    match format {
        Format::Text => encode(&families, &mut out),
        Format::OpenMetrics => encode_openmetrics(&families, &mut out, exemplars),
    }
    out
}

/// Appends `families` to `out` in the text format.
pub fn encode(families: &[MetricFamily], out: &mut String) {
    encode_families(families, out, None);
}

/// Appends `families` to `out` in OpenMetrics, with the exemplars of
/// `exemplars`, and the final `# EOF`.
pub fn encode_openmetrics(
    families: &[MetricFamily],
    out: &mut String,
    exemplars: Option<&Exemplars>,
) {
    encode_families(families, out, Some(OpenMetrics { exemplars }));
    out.push_str("# EOF\n");
}

/// What OpenMetrics adds.
#[derive(Clone, Copy)]
struct OpenMetrics<'a> {
    exemplars: Option<&'a Exemplars>,
}

fn encode_families(
    families: &[MetricFamily],
    out: &mut String,
    openmetrics: Option<OpenMetrics<'_>>,
) {
    let mut labels = String::new();
    for family in families {
        let name = family.name();
        let kind = family.get_field_type();
        // OpenMetrics names a counter family without `_total`, which its
        // samples carry; a counter whose name lacks it is `unknown` there.
        let (family_name, type_name) = match (openmetrics, kind) {
            (Some(_), MetricType::COUNTER) => match name.strip_suffix("_total") {
                Some(base) => (base, " counter\n"),
                None => (name, " unknown\n"),
            },
            (Some(_), MetricType::UNTYPED) => (name, " unknown\n"),
            (_, MetricType::COUNTER) => (name, " counter\n"),
            (_, MetricType::GAUGE) => (name, " gauge\n"),
            (_, MetricType::HISTOGRAM) => (name, " histogram\n"),
            (_, MetricType::SUMMARY) => (name, " summary\n"),
            (_, MetricType::UNTYPED) => (name, " untyped\n"),
        };
        if !family.help().is_empty() {
            out.push_str("# HELP ");
            out.push_str(family_name);
            out.push(' ');
            escape_into(out, family.help(), openmetrics.is_some());
            out.push('\n');
        }
        out.push_str("# TYPE ");
        out.push_str(family_name);
        out.push_str(type_name);
        for metric in family.get_metric() {
            labels.clear();
            write_labels(&mut labels, metric.get_label());
            let exemplars = match (openmetrics, kind) {
                (
                    Some(OpenMetrics {
                        exemplars: Some(store),
                    }),
                    MetricType::HISTOGRAM,
                ) => store
                    .get(name, &labels)
                    .map(|slots| (slots, store.project_id())),
                _ => None,
            };
            encode_metric(
                out,
                name,
                kind,
                metric,
                &labels,
                exemplars.as_ref().map(|(s, p)| (&**s, *p)),
            );
        }
    }
}

fn encode_metric(
    out: &mut String,
    name: &str,
    kind: MetricType,
    metric: &Metric,
    labels: &str,
    exemplars: Option<(&crate::metrics::exemplars::Slots, Option<&str>)>,
) {
    match kind {
        MetricType::COUNTER => {
            sample(
                out,
                name,
                "",
                labels,
                None,
                metric.get_counter().get_value(),
            );
        }
        MetricType::GAUGE => sample(out, name, "", labels, None, metric.get_gauge().get_value()),
        // The prometheus crate has no way to make an untyped metric.
        MetricType::UNTYPED => {}
        MetricType::HISTOGRAM => {
            let histogram = metric.get_histogram();
            let mut bound = String::new();
            let mut inf_seen = false;
            for bucket in histogram.get_bucket() {
                let upper = bucket.upper_bound();
                inf_seen |= upper == f64::INFINITY;
                bound.clear();
                write_bound(&mut bound, upper);
                let count = bucket.cumulative_count() as f64;
                sample(out, name, "_bucket", labels, Some(("le", &bound)), count);
                write_exemplar(out, exemplars, upper);
            }
            let count = histogram.get_sample_count() as f64;
            if !inf_seen {
                sample(out, name, "_bucket", labels, Some(("le", "+Inf")), count);
                write_exemplar(out, exemplars, f64::INFINITY);
            }
            sample(out, name, "_sum", labels, None, histogram.get_sample_sum());
            sample(out, name, "_count", labels, None, count);
        }
        MetricType::SUMMARY => {
            let summary = metric.get_summary();
            let mut quantile = String::new();
            for q in summary.get_quantile() {
                quantile.clear();
                write_bound(&mut quantile, q.quantile());
                sample(
                    out,
                    name,
                    "",
                    labels,
                    Some(("quantile", &quantile)),
                    q.value(),
                );
            }
            sample(out, name, "_sum", labels, None, summary.sample_sum());
            sample(
                out,
                name,
                "_count",
                labels,
                None,
                summary.sample_count() as f64,
            );
        }
    }
}

/// After a bucket line's value (replacing its newline): the bucket's
/// exemplar, ` # {trace_id="...",span_id="...",project_id="..."} value time`.
fn write_exemplar(
    out: &mut String,
    exemplars: Option<(&crate::metrics::exemplars::Slots, Option<&str>)>,
    upper: f64,
) {
    let Some((slots, project_id)) = exemplars else {
        return;
    };
    let Some(exemplar) = slots.for_bound(upper) else {
        return;
    };
    out.pop(); // the newline
    out.push_str(" # {trace_id=\"");
    out.push_str(std::str::from_utf8(&trace_hex(&exemplar.trace_id)).unwrap_or_default());
    out.push_str("\",span_id=\"");
    out.push_str(std::str::from_utf8(&span_hex(&exemplar.span_id)).unwrap_or_default());
    if let Some(project_id) = project_id {
        out.push_str("\",project_id=\"");
        out.push_str(project_id);
    }
    out.push_str("\"} ");
    write_value(out, exemplar.value);
    let since_epoch = exemplar.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let _ = write!(
        out,
        " {}.{:03}",
        since_epoch.as_secs(),
        since_epoch.subsec_millis()
    );
    out.push('\n');
}

/// `a="x",b="y"` for a series' own labels, escaped; written once per series.
pub(crate) fn write_labels(out: &mut String, pairs: &[LabelPair]) {
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(pair.name());
        out.push_str("=\"");
        escape_into(out, pair.value(), true);
        out.push('"');
    }
}

fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((label, label_value)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            out.push_str(label_value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

/// A bucket bound or quantile as Python's client writes it (Go's float
/// format): `0.005`, `1.0`, `10.0`, `+Inf`.
fn write_bound(out: &mut String, bound: f64) {
    if bound == f64::INFINITY {
        out.push_str("+Inf");
    } else if bound == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if bound.fract() == 0.0 && bound.abs() < 1e15 {
        let _ = write!(out, "{bound:.1}");
    } else {
        let _ = write!(out, "{bound}");
    }
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 9.0e15 {
        // Counts and counters are integers: skip float formatting.
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Escapes `\` and newline (and `"` in label values), as the format requires.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

    use super::*;

    #[test]
    fn writes_the_exposition_format_with_python_style_bounds() {
        let registry = Registry::new();
        let counter = IntCounterVec::new(
            Opts::new("hits_total", "Hits, with a \\ and\na newline."),
            &["path"],
        )
        .expect("valid");
        counter.with_label_values(&["/a\"b\\c\nd"]).inc_by(3);
        let histogram = HistogramVec::new(
            HistogramOpts::new("latency_seconds", "Latency.").buckets(vec![0.005, 1.0, 10.0]),
            &["method"],
        )
        .expect("valid");
        histogram.with_label_values(&["GET"]).observe(0.5);
        histogram.with_label_values(&["GET"]).observe(0.25);
        registry.register(Box::new(counter)).expect("register");
        registry.register(Box::new(histogram)).expect("register");

        assert_eq!(
            render(&registry),
            r#"# HELP hits_total Hits, with a \\ and\na newline.
# TYPE hits_total counter
hits_total{path="/a\"b\\c\nd"} 3
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{method="GET",le="0.005"} 0
latency_seconds_bucket{method="GET",le="1.0"} 2
latency_seconds_bucket{method="GET",le="10.0"} 2
latency_seconds_bucket{method="GET",le="+Inf"} 2
latency_seconds_sum{method="GET"} 0.75
latency_seconds_count{method="GET"} 2
"#
        );
    }

    #[test]
    fn openmetrics_names_counters_by_family_and_shows_exemplars() {
        let registry = Registry::new();
        let hits =
            IntCounterVec::new(Opts::new("hits_total", "Say \"hi\"."), &["path"]).expect("valid");
        hits.with_label_values(&["/"]).inc();
        let odd = prometheus::IntCounter::new("odd_count", "No suffix.").expect("valid");
        odd.inc_by(2);
        let histogram = HistogramVec::new(
            HistogramOpts::new("latency_seconds", "Latency.").buckets(vec![0.1, 1.0]),
            &["method"],
        )
        .expect("valid");
        let child = histogram.with_label_values(&["GET"]);
        let exemplars = Exemplars::new();
        exemplars.set_project_id(Some("demo"));
        let kept = exemplars.histogram(child.clone());
        child.observe(0.05); // no trace current: no exemplar
        kept.histogram().observe(0.5);
        exemplars
            .slots_for(&child)
            .record(0.5, [0xab; 16], [0xcd; 8]);
        registry.register(Box::new(hits)).expect("register");
        registry.register(Box::new(odd)).expect("register");
        registry.register(Box::new(histogram)).expect("register");

        let text = render_as(&registry, Format::OpenMetrics, Some(&exemplars));
        let time_at = text.rfind("} 0.5 ").expect("exemplar") + "} 0.5 ".len();
        let time = &text[time_at
            ..text[time_at..]
                .find('\n')
                .map_or(text.len(), |i| time_at + i)];
        assert_eq!(
            text,
            format!(
                r#"# HELP hits Say \"hi\".
# TYPE hits counter
hits_total{{path="/"}} 1
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{{method="GET",le="0.1"}} 1
latency_seconds_bucket{{method="GET",le="1.0"}} 2 # {{trace_id="abababababababababababababababab",span_id="cdcdcdcdcdcdcdcd",project_id="demo"}} 0.5 {time}
latency_seconds_bucket{{method="GET",le="+Inf"}} 2
latency_seconds_sum{{method="GET"}} 0.55
latency_seconds_count{{method="GET"}} 2
# HELP odd_count No suffix.
# TYPE odd_count unknown
odd_count 2
# EOF
"#
            )
        );
        assert!(time.parse::<f64>().is_ok_and(|t| t > 1.7e9), "{time}");
        // The text format of the same data: no exemplar, as before.
        let plain = render_as(&registry, Format::Text, Some(&exemplars));
        assert_eq!(plain, render(&registry));
        assert!(
            !plain.contains("# {") && !plain.contains("# EOF"),
            "{plain}"
        );
    }

    #[test]
    fn prometheus_accept_headers_get_openmetrics() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }

    #[test]
    fn values_keep_their_precision() {
        let mut out = String::new();
        for v in [0.1, 1e20, -3.0, f64::NAN, f64::NEG_INFINITY, 123456789.0] {
            write_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "0.1 100000000000000000000 -3 NaN -Inf 123456789 ");
    }
}
