//! Run with: `cargo run -p loadtester -- --host http://127.0.0.1:8080 -u 10 -t 30s`
//!
//! The Rust replacement of the original's Locust master and workers: Locust's
//! command line (`-H`, `-u`, `-r`, `-t`), goose's engine, a live progress
//! line, a summary table, JSON and HTML reports, thresholds that fail the run,
//! and its own Prometheus metrics on a `*-metrics` port. Many copies (an
//! Indexed Job) split the users among themselves; Prometheus adds them up.
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use goose::prelude::*;
use loadtester::metrics::recorder;
use loadtester::report::{json_report, summary_table};
use loadtester::settings::{Plan, Settings};
use metrics_middleware::MetricsServer;
use serde_json::{json, Value};

fn main() -> ExitCode {
    let settings: Settings = metrics_middleware::cli::parse_or_exit();
    // goose warns once per failed request: thousands a second when the target
    // is down. The progress line counts them instead.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,goose::goose=error"),
    )
    .init();
    let plan = match settings.plan() {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = serve_metrics(&plan) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    // On one CPU (a pinned benchmark, a pod limited to one CPU or less) a
    // current-thread runtime spares the multi-thread scheduler's wake-ups
    // across threads (bench/loadtester-vs-wrk.sh).
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = if cpus > 1 {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(plan))
}

/// Serves this generator's metrics from a thread of its own: the metrics
/// server runs on Actix, the load on goose's Tokio runtime.
fn serve_metrics(plan: &Plan) -> Result<(), String> {
    let addr = SocketAddr::new(plan.settings.bind_address, plan.settings.metrics_port);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("metrics-server".to_owned())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match MetricsServer::builder(recorder().registry().clone())
                    .bind(addr)
                    .run()
                {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok(()));
                        let _ = server.await;
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(format!(
                            "{err} (set by --metrics-port or LOADTESTER_METRICS_PORT)"
                        )));
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the metrics server did not start within 10s".to_owned())?
}

fn goose_attack(plan: &Plan) -> Result<GooseAttack, GooseError> {
    let settings = &plan.settings;
    let mut attack =
        GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())?
            .register_scenario(settings.tasks.scenario()?)
            .set_default(GooseDefault::Host, settings.host.as_str())?
            .set_default(GooseDefault::Users, plan.users)?
            .set_default(
                GooseDefault::IncreaseRate,
                plan.hatch_rate.to_string().as_str(),
            )?
            .set_default(GooseDefault::RunTime, settings.run_time.as_secs() as usize)?
            // Our own progress line and summary replace goose's console output,
            // and no controller ports are opened.
            .set_default(GooseDefault::NoPrintMetrics, true)?
            .set_default(GooseDefault::NoErrorSummary, true)?
            .set_default(GooseDefault::NoTelnet, true)?
            .set_default(GooseDefault::NoResetMetrics, true)?
            // The reports are built from request metrics only; skipping the rest
            // spares goose work on every request (bench/loadtester-vs-wrk.sh).
            .set_default(GooseDefault::NoTransactionMetrics, true)?
            .set_default(GooseDefault::NoScenarioMetrics, true)?
            .set_default(GooseDefault::Quiet, 1usize)?;
    if let Some(rps) = plan.max_rps {
        attack = attack.set_default(GooseDefault::ThrottleRequests, rps)?;
    }
    if let Some(path) = &settings.html_report {
        attack = attack.set_default(GooseDefault::ReportFile, path.to_string_lossy().as_ref())?;
    }
    if let Some(ratio) = settings.max_error_ratio {
        let rule = format!("error-rate<={}%", ratio * 100.0);
        attack = attack.set_default(GooseDefault::Threshold, rule.as_str())?;
    }
    if let Some(p99) = settings.max_p99 {
        let rule = format!("p99<={}ms", p99.as_millis());
        attack = attack.set_default(GooseDefault::Threshold, rule.as_str())?;
    }
    if settings.max_error_ratio.is_some() || settings.max_p99.is_some() {
        // Judge once at the end rather than stop at the first bad second.
        attack = attack.set_default(GooseDefault::NoThresholdAbort, true)?;
    }
    Ok(*attack)
}

async fn run(plan: Plan) -> ExitCode {
    let attack = match goose_attack(&plan) {
        Ok(attack) => attack,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    recorder().set_users(plan.users);
    eprintln!(
        "loading {} with {} users ({} of {} workers), tasks {}, for {}",
        plan.settings.host,
        plan.users,
        plan.settings.worker_index + 1,
        plan.settings.workers,
        plan.settings.tasks,
        humantime::format_duration(plan.settings.run_time)
    );
    let progress = tokio::spawn(progress_lines());
    let outcome = attack.execute().await;
    progress.abort();

    let (metrics, failed_rules) = match outcome {
        Ok(metrics) => (metrics, Vec::new()),
        Err(GooseError::ThresholdsFailed { failed, metrics }) => (*metrics.0, failed),
        Err(err) => {
            eprintln!("error: the load test failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    let thresholds: Vec<Value> = metrics
        .thresholds
        .iter()
        .map(|t| json!({"rule": t.rule, "observed": t.observed, "passed": t.passed}))
        .collect();
    let report = json_report(&metrics, &plan.settings.host, &thresholds);
    print!("{}", summary_table(&report));
    if let Some(path) = &plan.settings.json_report {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(err) = std::fs::write(path, text + "\n") {
            eprintln!(
                "error: cannot write the JSON report {}: {err}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    if failed_rules.is_empty() {
        return ExitCode::SUCCESS;
    }
    for rule in &failed_rules {
        eprintln!(
            "threshold failed: {} (observed {})",
            rule.rule, rule.observed
        );
    }
    ExitCode::FAILURE
}

/// One line a second: requests/s in the last second, the error share and
/// latency percentiles of the whole run so far.
async fn progress_lines() {
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = recorder().snapshot();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = recorder().snapshot();
        let error_percent = if now.requests == 0 {
            0.0
        } else {
            now.failed as f64 * 100.0 / now.requests as f64
        };
        let line = format!(
            "[{:>4}s] {:>7} req/s  errors {:>5.1}%  p50 {:>7.2} ms  p99 {:>7.2} ms  total {}",
            started.elapsed().as_secs(),
            now.requests - last.requests,
            error_percent,
            now.p50 * 1e3,
            now.p99 * 1e3,
            now.requests
        );
        if terminal {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
        last = now;
    }
}
