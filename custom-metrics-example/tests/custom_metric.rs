//! The custom-metrics-example binary scraped by a real Prometheus.
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::otlp::OtlpReceiver;
use test_support::{agent, free_port, get, promtool_check_metrics, Process, Prometheus};

fn start(interval: &str) -> (Process, u16) {
    start_on(free_port(), interval)
}

fn start_on(port: u16, interval: &str) -> (Process, u16) {
    start_with(port, interval, &[("OTEL_TRACES_EXPORTER", "none")])
}

fn start_with(port: u16, interval: &str, envs: &[(&str, &str)]) -> (Process, u16) {
    let mut process = Process::spawn(
        "custom-metrics-example",
        Command::new(env!("CARGO_BIN_EXE_custom-metrics-example"))
            .env("METRICS_PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("INCREMENT_INTERVAL", interval)
            .envs(envs.iter().copied()),
    );
    process.wait_ready(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_secs(30),
    );
    (process, port)
}

#[test]
fn prometheus_sees_the_counter_rise_by_one_every_interval() {
    // Prometheus first: it takes seconds to start, and must see the counter from 1.
    let port = free_port();
    let prometheus = Prometheus::start(
        &[("custom", format!("127.0.0.1:{port}"))],
        Duration::from_millis(250),
    );
    let (process, _) = start_on(port, "1s");
    let started = Instant::now();
    let query =
        r#"custom_metric_example_total{app="custom-metrics-example",environment="staging"}"#;
    prometheus.wait_for(query, Duration::from_secs(30), |s| {
        s.len() == 1 && s[0].value >= 6.0
    });
    let elapsed = started.elapsed().as_secs_f64();

    // Every sample Prometheus stored in the last 30 s, in order.
    let data = prometheus
        .api("/api/v1/query", &[("query", &format!("{query}[30s]"))])
        .expect("range vector");
    let values: Vec<f64> = data["result"][0]["values"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|pair| pair[1].as_str().expect("value").parse().expect("number"))
        .collect();
    assert!(values.len() >= 12, "too few scrapes: {values:?}");
    assert!(values[0] <= 2.0, "Prometheus missed the start: {values:?}");
    for pair in values.windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            step == 0.0 || step == 1.0,
            "rose by {step}, not by one: {values:?}"
        );
    }
    // One increment at start, then one a second.
    let last = *values.last().expect("samples");
    let expected = elapsed.floor() + 1.0;
    assert!(
        (last - expected).abs() <= 1.0,
        "{last} increments after {elapsed:.1}s"
    );
    let output = process.output();
    assert!(
        output.matches("Custom metric incremented.").count() >= 5,
        "{output}"
    );
}

#[test]
fn scrape_passes_promtool_and_names_the_counter_like_the_original() {
    let (_process, port) = start("50ms");
    std::thread::sleep(Duration::from_millis(200));
    let (status, scrape) =
        get(&agent(), &format!("http://127.0.0.1:{port}/metrics")).expect("scrape");
    assert_eq!(status, 200);
    promtool_check_metrics(&scrape).unwrap_or_else(|said| panic!("{said}\n{scrape}"));
    assert!(
        scrape.contains("# TYPE custom_metric_example_total counter"),
        "{scrape}"
    );
    assert!(
        scrape.contains("\nprocess_resident_memory_bytes "),
        "{scrape}"
    );
    assert!(
        scrape.contains("rust_build_info{name=\"custom-metrics-example\""),
        "{scrape}"
    );
    let (status, _) = get(&agent(), &format!("http://127.0.0.1:{port}/")).expect("other path");
    assert_eq!(status, 404);
}

#[test]
fn sigterm_exits_zero_and_bad_settings_exit_with_one_line() {
    let (process, _port) = start("5s");
    let mut process = process;
    process.signal("TERM");
    let status = process.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status}");

    for (env, value) in [
        ("INCREMENT_INTERVAL", "soon"),
        ("INCREMENT_INTERVAL", "0s"),
        ("METRICS_PORT", "-1"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_custom-metrics-example"))
            .env(env, value)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env}={value} accepted");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(env) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn each_increment_is_a_span_and_its_log_line_carries_the_trace() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let (mut process, _) = start_with(
        free_port(),
        "100ms",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("LOG_FORMAT", "json"),
        ],
    );
    let name = "increment custom_metric_example_total";
    receiver.wait_for_spans("3 increments", Duration::from_secs(20), |spans| {
        spans.iter().filter(|s| s.name() == name).count() >= 3
    });
    process.signal("TERM");
    let status = process.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        process.output()
    );

    let spans = receiver.spans();
    let output = process.output();
    let logged: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "Custom metric incremented.")
        .collect();
    assert!(logged.len() >= 3, "{output}");
    // Every logged increment was exported (the last ones by SIGTERM's flush).
    for line in &logged {
        // No Google Cloud project here: the trace is a plain field.
        let trace = line["trace_id"].as_str().expect("trace");
        let span = spans
            .iter()
            .find(|s| s.trace_id() == trace)
            .unwrap_or_else(|| panic!("no span for {line}"));
        assert_eq!(span.name(), name);
        assert_eq!(line["span_id"], span.span_id());
        assert_eq!(
            span.resource.get("service.name").map(String::as_str),
            Some("custom-metrics-example")
        );
    }
}
