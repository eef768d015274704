//! The flask-app-rs binary seen from outside: started on free ports, driven
//! over HTTP, scraped by a real Prometheus and checked by promtool.
use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use test_support::otlp::{OtlpReceiver, SpanKind};
use test_support::{
    agent, free_port, get, promtool_check_metrics, wait_for, Process, Prometheus, Sample,
};

struct Service {
    process: Process,
    app: String,
    metrics: String,
    metrics_target: String,
}

fn start(envs: &[(&str, &str)]) -> Service {
    let (port, metrics_port) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_flask-app-rs"));
    command
        .env("PORT", port.to_string())
        .env("METRICS_PORT", metrics_port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("WORKERS", "2")
        .env("RUST_LOG", "warn")
        // Tests that want spans say where to; the others export none.
        .env("OTEL_TRACES_EXPORTER", "none")
        .envs(envs.iter().copied());
    let mut process = Process::spawn("flask-app-rs", &mut command);
    let app = format!("http://127.0.0.1:{port}");
    process.wait_ready(&format!("{app}/healthz"), Duration::from_secs(30));
    Service {
        process,
        app,
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        metrics_target: format!("127.0.0.1:{metrics_port}"),
    }
}

fn total(samples: &[Sample]) -> f64 {
    samples.iter().map(|s| s.value).sum()
}

fn label_values(samples: &[Sample], label: &str) -> BTreeSet<String> {
    samples
        .iter()
        .filter_map(|s| s.labels.get(label).cloned())
        .collect()
}

#[test]
fn prometheus_scrapes_the_original_metrics_with_bounded_series() {
    let service = start(&[]);
    let prometheus = Prometheus::start(
        &[("flask-app", service.metrics_target.clone())],
        Duration::from_millis(500),
    );
    let http = agent();
    for _ in 0..10 {
        assert_eq!(
            get(&http, &format!("{}/", service.app)).expect("hello"),
            (200, "Hello World!".into())
        );
    }
    for name in ["alice", "alice", "alice", "bob", "bob"] {
        let (status, body) =
            get(&http, &format!("{}/hello/{name}", service.app)).expect("hello name");
        assert_eq!((status, body), (200, format!("Hello {name}!")));
    }
    // Unknown paths, then the number of series Prometheus holds for the
    // target once it has scraped all requests so far.
    let unknown_paths = |paths: std::ops::Range<u32>| {
        for n in paths {
            let url = format!("{}/unknown/{n}?q={n}", service.app);
            assert_eq!(get(&http, &url).expect("404").0, 404);
        }
    };
    let series_once_counted = |requests: f64| {
        prometheus.wait_for(
            "sum(flask_http_request_total)",
            Duration::from_secs(30),
            |s| total(s) == requests,
        );
        total(
            &prometheus
                .query(r#"count({job="flask-app"})"#)
                .expect("count"),
        )
    };
    unknown_paths(0..10);
    let series_before = series_once_counted(25.0);
    unknown_paths(10..1010);
    let series_after = series_once_counted(1025.0);
    assert_eq!(
        series_before, series_after,
        "1,000 unknown paths must not add series"
    );
    assert!(prometheus
        .query(r#"{__name__=~".+", path=~"/unknown.*"}"#)
        .expect("query")
        .is_empty());

    // flask_http_request_total{method,status}
    let requests = prometheus.query("flask_http_request_total").expect("query");
    for sample in &requests {
        assert_eq!(
            sample.exporter_label_names(),
            ["method", "status"],
            "{sample:?}"
        );
    }
    let by_status = |status: &str| {
        total(
            &prometheus
                .query(&format!(
                    r#"flask_http_request_total{{method="GET",status="{status}"}}"#
                ))
                .expect("query"),
        )
    };
    assert_eq!(by_status("200"), 15.0);
    assert_eq!(by_status("404"), 1010.0);

    // flask_http_request_duration_seconds{method,path,status}, route templates only
    let counts = prometheus
        .query("flask_http_request_duration_seconds_count")
        .expect("query");
    for sample in &counts {
        assert_eq!(
            sample.exporter_label_names(),
            ["method", "path", "status"],
            "{sample:?}"
        );
    }
    assert_eq!(
        label_values(&counts, "path"),
        BTreeSet::from([
            "/".to_owned(),
            "/hello/{name}".to_owned(),
            "<unmatched>".to_owned()
        ])
    );
    let buckets = prometheus
        .query(r#"flask_http_request_duration_seconds_bucket{path="/"}"#)
        .expect("query");
    let le: BTreeSet<String> = label_values(&buckets, "le");
    let expected: BTreeSet<String> = [
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5",
        "5.0", "7.5", "10.0", "+Inf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(le, expected);

    let hello = prometheus
        .query("flask_app_hello_requests_total")
        .expect("query");
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0].exporter_label_names(), ["app", "environment"]);
    assert_eq!(hello[0].labels["app"], "flask-app");
    assert_eq!(hello[0].labels["environment"], "staging");
    assert_eq!(hello[0].value, 10.0);

    let info = prometheus.query("flask_exporter_info").expect("query");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].exporter_label_names(), ["version"]);
    assert_eq!(info[0].value, 1.0);

    for name in [
        "process_cpu_seconds_total",
        "process_max_fds",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_virtual_memory_bytes",
        "rust_build_info",
        "flask_http_requests_in_flight",
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
    ] {
        let samples = prometheus.query(name).expect("query");
        assert_eq!(samples.len(), 1, "{name}: {samples:?}");
    }
    assert_eq!(prometheus.query("up").expect("query")[0].value, 1.0);
    let rss = prometheus
        .query("process_resident_memory_bytes")
        .expect("query")[0]
        .value;
    assert!(rss > 1e6 && rss < 1e9, "resident memory {rss}");
    drop(service);
}

#[test]
fn scrape_passes_promtool_and_metrics_stay_off_the_app_port() {
    let service = start(&[]);
    let http = agent();
    get(&http, &format!("{}/", service.app)).expect("hello");
    get(&http, &format!("{}/hello/x", service.app)).expect("hello name");
    get(&http, &format!("{}/nope", service.app)).expect("404");

    let (status, scrape) = get(&http, &service.metrics).expect("scrape");
    assert_eq!(status, 200);
    promtool_check_metrics(&scrape).unwrap_or_else(|said| panic!("{said}\n{scrape}"));

    assert_eq!(
        get(&http, &format!("{}/metrics", service.app))
            .expect("app port")
            .0,
        404
    );
    let other = service.metrics.replace("/metrics", "/other");
    assert_eq!(get(&http, &other).expect("metrics port").0, 404);
    // Scrapes are not counted as requests.
    let (_, scrape) = get(&http, &service.metrics).expect("scrape");
    assert!(!scrape.contains("/metrics"), "{scrape}");
}

#[test]
fn chaos_fails_about_half_the_requests_and_the_status_label_shows_them() {
    let service = start(&[("CHAOS_TARGET_PERCENT", "50")]);
    let http = agent();
    let mut failed = 0;
    for _ in 0..2000 {
        let (status, _) = get(&http, &format!("{}/", service.app)).expect("request");
        if status != 200 {
            assert!((400..=500).contains(&status), "{status}");
            failed += 1;
        }
    }
    // Binomial(2000, 0.5): standard deviation 22; allow about 7 of them.
    assert!((850..=1150).contains(&failed), "{failed} of 2000 failed");

    let (_, scrape) = get(&http, &service.metrics).expect("scrape");
    let mut counted_failures = 0.0;
    let mut counted = 0.0;
    for line in scrape
        .lines()
        .filter(|l| l.starts_with("flask_http_request_total{"))
    {
        let status: u16 = line
            .split("status=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|s| s.parse().ok())
            .expect("status label");
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("value");
        counted += value;
        if status != 200 {
            assert!((400..=500).contains(&status), "{line}");
            counted_failures += value;
        }
    }
    assert_eq!(counted, 2000.0, "{scrape}");
    assert_eq!(counted_failures, f64::from(failed), "{scrape}");
    // All 2,000 were counted by the hello counter, failures included.
    assert!(scrape.contains(
        "flask_app_hello_requests_total{app=\"flask-app\",environment=\"staging\"} 2000"
    ));
}

fn start_expecting_failure(envs: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_flask-app-rs"))
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .env("METRICS_PORT", free_port().to_string())
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .output()
        .expect("run flask-app-rs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "started despite {envs:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    // A bad setting is exit status 2; a port in use, 1 (as the README says).
    let expected = if stderr.contains("cannot listen") {
        1
    } else {
        2
    };
    assert_eq!(output.status.code(), Some(expected), "{stderr}");
    stderr
}

#[test]
fn bad_settings_end_start_up_with_one_line_naming_them() {
    let err = start_expecting_failure(&[("CHAOS_TARGET_PERCENT", "abc")]);
    assert!(
        err.contains("CHAOS_TARGET_PERCENT") && err.contains("0 to 100"),
        "{err}"
    );
    let err = start_expecting_failure(&[("CHAOS_TARGET_PERCENT", "150")]);
    assert!(err.contains("CHAOS_TARGET_PERCENT"), "{err}");
    let err = start_expecting_failure(&[("PORT", "70000")]);
    assert!(err.contains("PORT") && err.contains("70000"), "{err}");
    let err = start_expecting_failure(&[("WORKERS", "0")]);
    assert!(err.contains("WORKERS"), "{err}");
    let err = start_expecting_failure(&[("OTEL_TRACES_EXPORTER", "jaeger")]);
    assert!(
        err.contains("OTEL_TRACES_EXPORTER") && err.contains("otlp"),
        "{err}"
    );
    let err = start_expecting_failure(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
    ]);
    assert!(err.contains("OTEL_TRACES_SAMPLER_ARG"), "{err}");
    let err = start_expecting_failure(&[("LOG_FORMAT", "xml")]);
    assert!(err.contains("LOG_FORMAT"), "{err}");
    let err = start_expecting_failure(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100000")]);
    assert!(
        err.contains("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") && err.contains("2048"),
        "{err}"
    );
    let err = start_expecting_failure(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://")]);
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && err.contains("host"),
        "{err}"
    );
    let err = start_expecting_failure(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad header=x")]);
    assert!(err.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{err}");
    let err = start_expecting_failure(&[("RUST_LOG", "a=b=c")]);
    assert!(err.contains("RUST_LOG"), "{err}");
    let err = start_expecting_failure(&[("DOWNSTREAM_URL", "ftp://files.example/")]);
    assert!(
        err.contains("DOWNSTREAM_URL") && err.contains("http"),
        "{err}"
    );

    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let err = start_expecting_failure(&[("PORT", port.as_str())]);
    assert!(
        err.contains("PORT") && err.contains(&port) && err.contains("in use"),
        "{err}"
    );
    let err = start_expecting_failure(&[("METRICS_PORT", port.as_str())]);
    assert!(err.contains("METRICS_PORT") && err.contains(&port), "{err}");
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let mut service = start(&[]);
    let slow_url = format!("{}/delay/1500", service.app);
    let slow = std::thread::spawn(move || get(&agent(), &slow_url));
    std::thread::sleep(Duration::from_millis(300));
    service.process.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // The listener is closed: new connections are refused...
    assert!(
        TcpStream::connect(service.app.trim_start_matches("http://")).is_err(),
        "still accepting after SIGTERM"
    );
    // ...while the request in flight is answered in full.
    let answer = slow
        .join()
        .expect("client thread")
        .expect("in-flight request answered");
    assert_eq!(answer, (200, "Waited 1500 ms".to_owned()));
    let status = service
        .process
        .wait_exit(Duration::from_secs(20))
        .expect("exited");
    assert!(status.success(), "{status}: {}", service.process.output());
}

/// `VmRSS` of a process, in kB.
fn resident_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn spans_are_flushed_on_sigterm_and_log_lines_carry_their_trace() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.grpc_endpoint();
    let mut service = start(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_RESOURCE_ATTRIBUTES", "cloud.account.id=demo-project"),
        // No batch is due before the end: only SIGTERM's flush sends them.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ]);
    let http = agent();
    let mut hello = http
        .get(&format!("{}/", service.app))
        .header(
            "x-cloud-trace-context",
            "105445aa7843bc8bf206b12000100000/1;o=1",
        )
        .call()
        .expect("hello");
    assert_eq!(
        hello.body_mut().read_to_string().expect("body"),
        "Hello World!"
    );
    assert_eq!(
        get(&http, &format!("{}/hello/ada", service.app))
            .expect("ok")
            .0,
        200
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.spans().is_empty(), "exported before the flush");

    service.process.signal("TERM");
    let status = service.process.wait_exit(Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        service.process.output()
    );
    let spans = receiver.spans();
    let names: BTreeSet<&str> = spans.iter().map(|s| s.name()).collect();
    // Not /healthz, the readiness probe of `start`: probes are not traced.
    assert_eq!(
        names,
        BTreeSet::from(["GET /", "GET /hello/{name}"]),
        "{names:?}"
    );
    assert_eq!(spans.len(), 2);
    let root = spans
        .iter()
        .find(|s| s.name() == "GET /")
        .expect("hello span");
    assert_eq!(root.kind(), SpanKind::Server);
    assert_eq!(root.trace_id(), "105445aa7843bc8bf206b12000100000");
    assert_eq!(root.parent_span_id(), "0000000000000001");
    assert_eq!(
        root.resource.get("service.name").map(String::as_str),
        Some("flask-app-rs")
    );
    assert_eq!(
        root.resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );

    // The handler's log line, as Cloud Logging reads it.
    let output = service.process.output();
    let line: serde_json::Value = output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "Received hello request !")
        .unwrap_or_else(|| panic!("no hello log line in:\n{output}"));
    assert_eq!(line["severity"], "INFO");
    assert_eq!(
        line["logging.googleapis.com/trace"],
        format!("projects/demo-project/traces/{}", root.trace_id())
    );
    assert_eq!(line["logging.googleapis.com/spanId"], root.span_id());
    assert_eq!(line["logging.googleapis.com/trace_sampled"], true);
}

#[test]
fn with_the_collector_down_every_request_succeeds_and_drops_are_counted() {
    // A port nothing listens on: every export is refused.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let service = start(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "512"),
    ]);
    let pid = service.process.pid();
    let send = |requests: usize| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let url = format!("{}/hello/load", service.app);
                std::thread::spawn(move || {
                    let http = agent();
                    (0..requests / 4)
                        .filter(|_| matches!(get(&http, &url), Ok((200, _))))
                        .count()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .sum::<usize>()
    };
    assert_eq!(send(4_000), 4_000);
    let warmed_up = resident_kb(pid);
    assert_eq!(send(16_000), 16_000, "every request answered 200");
    let after = resident_kb(pid);

    // Spans are held in a bounded queue: 16,000 more of them (about 1 kB
    // each) would add megabytes if they were kept.
    assert!(
        after < warmed_up + 4_096,
        "resident memory grew from {warmed_up} kB to {after} kB"
    );
    let dropped = wait_for("failed exports counted", Duration::from_secs(10), || {
        let (_, scrape) = get(&agent(), &service.metrics).map_err(|e| e.to_string())?;
        let dropped: f64 = scrape
            .lines()
            .filter(|l| l.starts_with("otel_spans_dropped_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        // After a failed export the thread backs off (up to 30 s), so spans
        // can still be waiting, bounded: at most a queue's worth in the
        // queue and in each of the two workers' buffers. All the others are
        // counted, and none has been exported.
        let waiting_at_most = 3.0 * 512.0;
        if (20_000.0 - waiting_at_most..=20_000.0).contains(&dropped)
            && scrape.contains("otel_spans_dropped_total{reason=\"export_failed\"}")
            && scrape.contains("otel_spans_exported_total 0")
        {
            Ok(dropped)
        } else {
            Err(scrape)
        }
    });
    eprintln!(
        "collector down: resident {warmed_up} kB after 4,000 requests, {after} kB after \
         20,000; {dropped} spans dropped"
    );
    // Spans are accounted for, queued and failed or refused by the queue:
    // one per request (the /healthz probes make none).
    // A failure is logged at most once per 10 s, not once per batch.
    let output = service.process.output();
    let warnings = output.matches("span export failed").count();
    assert!(
        (1..=3).contains(&warnings),
        "{warnings} warnings:\n{output}"
    );
}

#[test]
fn two_instances_chained_by_downstream_url_make_one_trace() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let traced = [
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let second = start(&[traced.as_slice(), &[("OTEL_SERVICE_NAME", "second")]].concat());
    let downstream = format!("{}/hello/first", second.app);
    let first = start(
        &[
            traced.as_slice(),
            &[
                ("OTEL_SERVICE_NAME", "first"),
                ("DOWNSTREAM_URL", downstream.as_str()),
            ],
        ]
        .concat(),
    );
    let http = agent();
    let (status, body) = get(&http, &format!("{}/downstream", first.app)).expect("downstream");
    assert_eq!((status, body.as_str()), (200, "Hello first!"));
    // Without DOWNSTREAM_URL there is nothing to call.
    assert_eq!(
        get(&http, &format!("{}/downstream", second.app))
            .expect("404")
            .0,
        404
    );

    let spans = receiver.wait_for_spans("server, client, server", Duration::from_secs(10), |s| {
        s.iter().any(|s| s.name() == "GET /hello/{name}")
            && s.iter().any(|s| s.kind() == SpanKind::Client)
    });
    let first_span = spans
        .iter()
        .find(|s| {
            s.name() == "GET /downstream"
                && s.attribute("http.response.status_code").as_deref() == Some("200")
        })
        .expect("the first instance's server span");
    let client = spans
        .iter()
        .find(|s| s.kind() == SpanKind::Client)
        .expect("the client span");
    let second_span = spans
        .iter()
        .find(|s| s.name() == "GET /hello/{name}")
        .expect("the second instance's server span");
    assert_eq!(client.trace_id(), first_span.trace_id());
    assert_eq!(second_span.trace_id(), first_span.trace_id());
    assert_eq!(client.parent_span_id(), first_span.span_id());
    assert_eq!(second_span.parent_span_id(), client.span_id());
    assert_eq!(
        first_span.resource.get("service.name").map(String::as_str),
        Some("first")
    );
    assert_eq!(
        second_span.resource.get("service.name").map(String::as_str),
        Some("second")
    );
    assert_eq!(client.attribute("url.full"), Some(downstream));
}

#[test]
fn an_unreachable_downstream_is_a_502_and_a_failed_client_span() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    // A port nothing listens on.
    let nowhere = format!("http://127.0.0.1:{}/", free_port());
    let service = start(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("DOWNSTREAM_URL", nowhere.as_str()),
    ]);
    let (status, _) = get(&agent(), &format!("{}/downstream", service.app)).expect("answer");
    assert_eq!(status, 502);
    let spans = receiver.wait_for_spans("the client span", Duration::from_secs(10), |s| {
        s.iter().any(|s| s.kind() == SpanKind::Client)
    });
    let client = spans
        .iter()
        .find(|s| s.kind() == SpanKind::Client)
        .expect("client span");
    assert_eq!(client.attribute("error.type").as_deref(), Some("connect"));
    assert_eq!(client.status(), test_support::otlp::StatusCode::Error);
}

#[test]
fn exemplars_link_duration_buckets_to_exported_traces() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let service = start(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_RESOURCE_ATTRIBUTES", "cloud.account.id=demo-project"),
    ]);
    let http = agent();
    let unsampled = "5a2d2b0c1e0f4d3c8b7a695847362514";
    for _ in 0..3 {
        assert_eq!(
            get(&http, &format!("{}/delay/30", service.app))
                .expect("delay")
                .0,
            200
        );
        let status = http
            .get(format!("{}/hello/quiet", service.app))
            .header("traceparent", format!("00-{unsampled}-1111111111111111-00"))
            .call()
            .expect("unsampled")
            .status();
        assert_eq!(status, 200);
    }
    let spans = receiver.wait_for_spans("three delay spans", Duration::from_secs(10), |s| {
        s.iter().filter(|s| s.name() == "GET /delay/{ms}").count() == 3
    });
    let exported: BTreeSet<String> = spans.iter().map(|s| s.trace_id()).collect();

    // OpenMetrics, as Prometheus asks for it.
    let mut response = http
        .get(&service.metrics)
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .call()
        .expect("OpenMetrics scrape");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let openmetrics = response.body_mut().read_to_string().expect("body");
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    let exemplars = test_support::openmetrics_exemplars(&openmetrics)
        .unwrap_or_else(|e| panic!("prometheus_client's parser refused it: {e}\n{openmetrics}"));
    assert!(!exemplars.is_empty(), "{openmetrics}");
    for (sample, labels) in &exemplars {
        assert_eq!(
            sample, "flask_http_request_duration_seconds_bucket",
            "{labels:?}"
        );
        assert!(
            exported.contains(&labels["trace_id"]),
            "{labels:?} not in {exported:?}"
        );
        assert!(
            spans.iter().any(|s| s.span_id() == labels["span_id"]),
            "{labels:?}"
        );
        assert_eq!(labels["project_id"], "demo-project");
        let length: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(length <= 128, "{labels:?}");
    }
    assert!(
        !openmetrics.contains(unsampled),
        "no exemplar for an unsampled request"
    );
    // The 30 ms requests' bucket has one (the latest of the three).
    let delay_bucket = openmetrics
        .lines()
        .find(|l| l.contains("path=\"/delay/{ms}\"") && l.contains("le=\"0.05\""))
        .expect("the 50 ms bucket of /delay/{ms}");
    assert!(delay_bucket.contains(" # {trace_id=\""), "{delay_bucket}");

    // The text format is unchanged: no exemplars, and promtool is content.
    let (_, text) = get(&http, &service.metrics).expect("text scrape");
    assert!(!text.contains("# {") && !text.contains("# EOF"), "{text}");
    promtool_check_metrics(&text).expect("promtool");

    // A real Prometheus with exemplar storage keeps them, by trace id.
    let prometheus = Prometheus::start_with_exemplars(
        &[("flask-app", service.metrics_target.clone())],
        Duration::from_millis(500),
    );
    let found = wait_for("exemplars in Prometheus", Duration::from_secs(30), || {
        let data = prometheus.api(
            "/api/v1/query_exemplars",
            &[
                ("query", "flask_http_request_duration_seconds_bucket"),
                ("start", "0"),
                ("end", "9999999999"),
            ],
        )?;
        let ids: Vec<String> = data
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            Err(format!("none yet: {data}"))
        } else {
            Ok(ids)
        }
    });
    assert!(
        found.iter().all(|id| exported.contains(id)),
        "{found:?} vs {exported:?}"
    );
}

#[test]
fn client_garbage_writes_no_error_line() {
    use std::io::{Read, Write};
    let mut service = start(&[("RUST_LOG", "info"), ("LOG_FORMAT", "json")]);
    let addr = service.app.trim_start_matches("http://").to_owned();
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        b"\x00\x01\x02 nonsense\r\n\r\n".to_vec(),
        [
            b"GET /".as_slice(),
            &vec![b'a'; 40_000],
            b" HTTP/1.1\r\n\r\n",
        ]
        .concat(),
        [
            b"GET / HTTP/1.1\r\nX-Big: ".as_slice(),
            &vec![b'b'; 40_000],
            b"\r\n\r\n",
        ]
        .concat(),
    ];
    for _ in 0..20 {
        for request in &garbage {
            let mut stream = TcpStream::connect(&addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let _ = stream.write_all(request);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
                "{answer}"
            );
        }
    }
    // The service still answers.
    assert_eq!(
        get(&agent(), &format!("{}/", service.app))
            .expect("hello")
            .0,
        200
    );
    service.process.signal("TERM");
    service.process.wait_exit(Duration::from_secs(15));
    let output = service.process.output();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let errors: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["severity"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "ERROR lines from client garbage: {errors:#?}"
    );
    let summaries = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed on the client's side"))
        })
        .count();
    assert!(
        (1..=2).contains(&summaries),
        "{summaries} summary lines in:\n{output}"
    );
}

/// A rolling restart as Kubernetes does it, with the manifests' preStop
/// pause: the pod leaves the Service's endpoints (here: the client stops
/// sending it new requests), the pause lets that reach every client, then
/// SIGTERM drains what is in flight. No request fails, slow ones included.
#[test]
fn a_rolling_restart_with_the_pre_stop_pause_loses_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let mut old = start(&[]);
    let new = start(&[]);
    let endpoints = Arc::new(Mutex::new(vec![old.app.clone(), new.app.clone()]));
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (endpoints, stop) = (Arc::clone(&endpoints), Arc::clone(&stop));
            let (answered, failed) = (Arc::clone(&answered), Arc::clone(&failed));
            std::thread::spawn(move || {
                let agent = agent(); // keep-alive connections, per endpoint
                let mut n = client;
                while !stop.load(Ordering::SeqCst) {
                    let list = endpoints.lock().expect("lock").clone();
                    let base = &list[n % list.len()];
                    // Every fifth request is slow: in flight at SIGTERM.
                    let path = if n % 5 == 0 { "/delay/800" } else { "/" };
                    match get(&agent, &format!("{base}{path}")) {
                        Ok((200, _)) => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        other => failed
                            .lock()
                            .expect("lock")
                            .push(format!("{base}{path}: {other:?}")),
                    }
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    // Terminating: out of the endpoints; the preStop pause (1 s here, 5 s in
    // the manifests) lets in-flight requests finish before SIGTERM.
    endpoints.lock().expect("lock").retain(|e| *e != old.app);
    std::thread::sleep(Duration::from_millis(1000));
    old.process.signal("TERM");
    let status = old
        .process
        .wait_exit(Duration::from_secs(20))
        .expect("exited");
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("client");
    }
    let failed = failed.lock().expect("lock");
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(answered.load(Ordering::SeqCst) > 40);
}
