//! The end of a run: the summary table and the JSON report, both made from
//! goose's metrics, so that they agree with its HTML report.
use std::collections::BTreeMap;

use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use serde_json::{json, Value};

/// Response times of several requests merged: goose keeps its merge to
/// itself, so the run's totals add up its public buckets here.
#[derive(Default)]
struct Timing {
    /// Count per bucket, keyed by the bucket's fastest time in microseconds.
    buckets: BTreeMap<u64, usize>,
    maximum_us: u64,
    total_us: u64,
    count: usize,
}

impl Timing {
    fn add(&mut self, data: &GooseRequestMetricTimingData) {
        for (bucket, count) in &data.times_us {
            *self.buckets.entry(*bucket).or_default() += count;
        }
        self.maximum_us = self.maximum_us.max(data.maximum_time_us);
        self.total_us += data.total_time_us;
        self.count += data.counter;
    }

    /// The nearest-rank percentile, in the bucket's time, at most the maximum.
    fn percentile_us(&self, percent: f64) -> u64 {
        let rank = ((percent / 100.0) * self.count as f64).ceil().max(1.0) as usize;
        let mut seen = 0;
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return (*bucket).min(self.maximum_us);
            }
        }
        self.maximum_us
    }

    fn json(&self) -> Value {
        let ms = |us: u64| us as f64 / 1000.0;
        let mean = if self.count == 0 {
            0.0
        } else {
            ms(self.total_us) / self.count as f64
        };
        json!({
            "p50": ms(self.percentile_us(50.0)),
            "p90": ms(self.percentile_us(90.0)),
            "p99": ms(self.percentile_us(99.0)),
            "max": ms(self.maximum_us),
            "mean": mean,
        })
    }
}

fn latency(data: &GooseRequestMetricTimingData) -> Value {
    let mut timing = Timing::default();
    timing.add(data);
    timing.json()
}

/// The JSON report: totals, latency percentiles, the count of each status
/// code (`0`: no response), per task and for the whole run.
pub fn json_report(metrics: &GooseMetrics, host: &str, thresholds: &[Value]) -> Value {
    let mut status_codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut requests = 0;
    let mut failures = 0;
    let mut all = Timing::default();
    let mut tasks = Vec::new();
    let mut names: Vec<_> = metrics.requests.keys().collect();
    names.sort();
    for name in names {
        let aggregate = &metrics.requests[name];
        let count = aggregate.success_count + aggregate.fail_count;
        requests += count;
        failures += aggregate.fail_count;
        let codes: BTreeMap<String, usize> = aggregate
            .status_code_counts
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect();
        for (code, n) in &codes {
            *status_codes.entry(code.clone()).or_default() += n;
        }
        all.add(&aggregate.raw_data);
        tasks.push(json!({
            "name": name,
            "requests": count,
            "failures": aggregate.fail_count,
            "status_codes": codes,
            "latency_ms": latency(&aggregate.raw_data),
        }));
    }
    let seconds = metrics.duration.max(1) as f64;
    json!({
        "target": host,
        "users": metrics.maximum_users,
        "duration_seconds": metrics.duration,
        "requests": requests,
        "failures": failures,
        "error_ratio": if requests == 0 { 0.0 } else { failures as f64 / requests as f64 },
        "requests_per_second": requests as f64 / seconds,
        "latency_ms": all.json(),
        "status_codes": status_codes,
        "tasks": tasks,
        "thresholds": thresholds,
    })
}

/// The summary table printed at the end of a run.
pub fn summary_table(report: &Value) -> String {
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let millis = |v: &Value, key: &str| v["latency_ms"][key].as_f64().unwrap_or(0.0);
    let mut out = format!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "request", "requests", "failures", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let tasks = report["tasks"].as_array().into_iter().flatten();
    for (name, v) in tasks
        .map(|t| (t["name"].as_str().unwrap_or("?"), t))
        .chain([("all", report)])
    {
        out.push_str(&format!(
            "{name:<20} {:>10} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
            number(&v["requests"]),
            number(&v["failures"]),
            millis(v, "p50"),
            millis(v, "p90"),
            millis(v, "p99"),
            millis(v, "max"),
        ));
    }
    // By class here; every code is in the JSON report.
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    for (code, count) in report["status_codes"].as_object().into_iter().flatten() {
        let class = match code.as_str() {
            "0" => "no response".to_owned(),
            code => format!("{}xx", &code[..1]),
        };
        *classes.entry(class).or_default() += number(count);
    }
    let classes: Vec<String> = classes
        .iter()
        .map(|(class, n)| format!("{class}: {n}"))
        .collect();
    out.push_str(&format!(
        "{:.0} requests/s over {} s; statuses {}\n",
        report["requests_per_second"].as_f64().unwrap_or(0.0),
        number(&report["duration_seconds"]),
        classes.join(", ")
    ));
    out
}
