//! The Prometheus text exposition format, written straight into one buffer.
//!
//! Why not `prometheus::TextEncoder`: it writes a histogram's `le` bounds as
//! `1` and `10` where Python's client writes `1.0` and `10.0`, and Prometheus
//! 2.x keeps `le` as text, so queries and dashboards made on the Flask service
//! that select `le="1.0"` would find nothing. It also allocates several
//! strings per sample line; this writer formats each series' labels once and
//! reuses them for all its bucket lines (see `benches/render.rs`).
use std::fmt::Write;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Registry;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric in `registry`.
pub fn render(registry: &Registry) -> String {
    let families = registry.gather();
    let mut out = String::with_capacity(16 * 1024);
    encode(&families, &mut out);
    out
}

/// Appends `families` to `out` in the text format.
pub fn encode(families: &[MetricFamily], out: &mut String) {
    let mut labels = String::new();
    for family in families {
        let name = family.name();
        if !family.help().is_empty() {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_into(out, family.help(), false);
            out.push('\n');
        }
        let kind = family.get_field_type();
        out.push_str("# TYPE ");
        out.push_str(name);
        out.push_str(match kind {
            MetricType::COUNTER => " counter\n",
            MetricType::GAUGE => " gauge\n",
            MetricType::HISTOGRAM => " histogram\n",
            MetricType::SUMMARY => " summary\n",
            MetricType::UNTYPED => " untyped\n",
        });
        for metric in family.get_metric() {
            labels.clear();
            write_labels(&mut labels, metric.get_label());
            encode_metric(out, name, kind, metric, &labels);
        }
    }
}

fn encode_metric(out: &mut String, name: &str, kind: MetricType, metric: &Metric, labels: &str) {
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
            }
            let count = histogram.get_sample_count() as f64;
            if !inf_seen {
                sample(out, name, "_bucket", labels, Some(("le", "+Inf")), count);
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

/// `a="x",b="y"` for a series' own labels, escaped; written once per series.
fn write_labels(out: &mut String, pairs: &[LabelPair]) {
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
    fn values_keep_their_precision() {
        let mut out = String::new();
        for v in [0.1, 1e20, -3.0, f64::NAN, f64::NEG_INFINITY, 123456789.0] {
            write_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "0.1 100000000000000000000 -3 NaN -Inf 123456789 ");
    }
}
