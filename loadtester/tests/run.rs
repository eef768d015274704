//! The loadtester binary against the real hello service (flask-app-rs's app
//! on a real socket, in this process so that its counters can be read).
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::HttpServer;
use flask_app_rs::{app, AppState, Chaos};
use serde_json::Value;
use test_support::{agent, free_port, get};

struct Service {
    url: String,
    state: AppState,
    handle: ServerHandle,
}

impl Drop for Service {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
    }
}

fn start_service(chaos_percent: u8) -> Service {
    let config = metrics_middleware::telemetry::TelemetryConfig::from_lookup(|name| {
        (name == "OTEL_TRACES_EXPORTER").then(|| "none".to_owned())
    })
    .expect("valid");
    let observability = flask_app_rs::observability()
        .telemetry_config(config)
        .without_logging()
        .build()
        .expect("observability");
    let state =
        AppState::new(observability, Chaos::new(chaos_percent).expect("0..=100")).expect("metrics");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    let app_state = state.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || app(app_state.clone()))
                .workers(1)
                .disable_signals()
                .listen(listener)
                .expect("listen")
                .run();
            tx.send(server.handle()).expect("test alive");
            server.await
        })
    });
    let handle = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("service started");
    Service { url, state, handle }
}

/// `flask_http_request_total` of the service by status, from its own scrape.
fn counted_by_status(service: &Service) -> Vec<(String, u64)> {
    let scrape = service.state.observability().render();
    let mut counts: Vec<(String, u64)> = scrape
        .lines()
        .filter(|l| l.starts_with("flask_http_request_total{"))
        .map(|line| {
            let status = line
                .split("status=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("status");
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("value");
            (status.to_owned(), value as u64)
        })
        .fold(Vec::new(), |mut acc: Vec<(String, u64)>, (status, n)| {
            match acc.iter_mut().find(|(s, _)| *s == status) {
                Some((_, total)) => *total += n,
                None => acc.push((status, n)),
            }
            acc
        });
    counts.sort();
    counts
}

fn loadtester(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadtester"))
        .args(args)
        .env("LOADTESTER_BIND_ADDRESS", "127.0.0.1")
        .env_remove("TARGET_HOST")
        .output()
        .expect("run loadtester")
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("JSON report")
}

#[test]
fn report_matches_what_the_service_counted_status_by_status() {
    let service = start_service(30);
    let dir = tempfile::tempdir().expect("temp dir");
    let (json, html) = (
        dir.path().join("report.json"),
        dir.path().join("report.html"),
    );
    let metrics_port = free_port();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");

    let scraper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        get(&agent(), &metrics_url)
    });
    let port = metrics_port.to_string();
    let out = loadtester(&[
        "-H",
        &service.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "2s",
        "--tasks",
        "hello=8,param=1,unknown=1",
        "--json-report",
        json.to_str().expect("utf-8"),
        "--html-report",
        html.to_str().expect("utf-8"),
        "--metrics-port",
        &port,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("req/s") && stderr.contains("p99"),
        "no progress line: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("p99 ms") && stdout.contains("requests/s"),
        "no summary: {stdout}"
    );

    let report = read_report(&json);
    let requests = report["requests"].as_u64().expect("count");
    assert!(requests > 100, "{report}");
    let counted = counted_by_status(&service);
    assert_eq!(
        counted.iter().map(|(_, n)| n).sum::<u64>(),
        requests,
        "{counted:?}\n{report}"
    );
    let mut reported: Vec<(String, u64)> = report["status_codes"]
        .as_object()
        .expect("status codes")
        .iter()
        .map(|(code, n)| (code.clone(), n.as_u64().expect("count")))
        .collect();
    reported.sort();
    assert_eq!(reported, counted);
    assert!(
        reported
            .iter()
            .any(|(code, _)| code.starts_with('4') && code != "404"),
        "chaos statuses: {reported:?}"
    );
    for key in ["p50", "p90", "p99", "max"] {
        assert!(
            report["latency_ms"][key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }
    assert_eq!(report["tasks"].as_array().expect("tasks").len(), 3);

    let html = std::fs::read_to_string(&html).expect("HTML report written");
    assert!(
        html.contains("<html") && html.contains("/hello/{name}"),
        "{}",
        &html[..html.len().min(300)]
    );

    let (status, scrape) = scraper
        .join()
        .expect("scraper")
        .expect("metrics port answered during the run");
    assert_eq!(status, 200);
    assert!(
        scrape.contains("loadtester_requests_total{status=\"200\",task=\"hello\"}"),
        "{scrape}"
    );
    assert!(scrape.contains("loadtester_users 4"), "{scrape}");
}

#[test]
fn an_exceeded_threshold_fails_the_run_and_says_which() {
    let service = start_service(50);
    let out = loadtester(&[
        "-H",
        &service.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "1s",
        "--max-error-ratio",
        "10%",
        "--max-p99",
        "10s",
        "--metrics-port",
        &free_port().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("threshold failed: error-rate<=10%"),
        "{stderr}"
    );
    assert!(!stderr.contains("threshold failed: p99"), "{stderr}");

    let slow = start_service(0);
    let out = loadtester(&[
        "-H",
        &slow.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "1s",
        "--tasks",
        "slow",
        "--max-p99",
        "20ms",
        "--metrics-port",
        &free_port().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("threshold failed: p99<=20ms"), "{stderr}");
}

#[test]
fn bad_arguments_give_one_clear_line() {
    for (args, names) in [
        (
            &["-H", "ftp://example"][..],
            &["--host", "TARGET_HOST", "scheme"][..],
        ),
        (
            &["-H", "http://127.0.0.1:1", "-u", "0"],
            &["--users", "LOADTESTER_USERS"],
        ),
        (
            &["-H", "http://127.0.0.1:1", "-t", "5parsecs"],
            &["--run-time", "LOADTESTER_RUN_TIME"],
        ),
        (
            &["-H", "http://127.0.0.1:1", "--tasks", "fly"],
            &["unknown task", "LOADTESTER_TASKS"],
        ),
        (
            &["-H", "http://127.0.0.1:1", "-u", "2", "--workers", "3"],
            &["LOADTESTER_USERS", "workers"],
        ),
    ] {
        let out = loadtester(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{stderr}"
        );
        for name in names {
            assert!(
                stderr.contains(name),
                "{args:?}: {name} missing from {stderr}"
            );
        }
    }
}
