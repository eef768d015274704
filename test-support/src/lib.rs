//! Real parts for the workspace's tests: our binaries on free ports, a real
//! Prometheus server scraping them, promtool, and an OTLP receiver
//! ([`otlp::OtlpReceiver`]).
//!
//! `prometheus` and `promtool` come from Debian's `prometheus` package, which
//! `scripts/test.sh` installs; a test that needs them fails with a message
//! that says so rather than skipping quietly.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod capture;
pub mod otlp;
pub mod websocket;

pub use capture::LogCapture;

/// A port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral loopback port")
}

/// An HTTP client that returns every status as a response, with timeouts.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// `GET url`: the status and the body, or the transport error.
pub fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), ureq::Error> {
    let mut response = agent.get(url).call()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    Ok((status, body))
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `timeout`
/// with `what` and the last answer.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A child process that is killed when dropped, its output kept in a file so
/// that a failing test can show it.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts `command` with stdout and stderr sent to a log file.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
            _dir: dir,
        }
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (by name, such as `TERM`) through `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until `url` answers 200, or panics with the process's output.
    pub fn wait_ready(&mut self, url: &str, timeout: Duration) {
        let agent = agent();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before {url} answered:\n{}",
                    self.name,
                    self.output()
                );
            }
            if matches!(get(&agent, url), Ok((200, _))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer {url} within {timeout:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds an executable on `PATH`, or panics saying how to install it.
pub fn require_tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run ./scripts/test.sh, which installs Debian's \
                 `prometheus` package (prometheus and promtool)"
            )
        })
}

/// A sample's name and its exemplar's labels.
pub type SampleExemplar = (String, BTreeMap<String, String>);

/// Parses `text` with the OpenMetrics parser of Python's `prometheus_client`
/// (the reference implementation's strict parser; `scripts/test.sh`
/// installs it): the exemplars of each sample that has one, as
/// `(sample name, exemplar labels)`, or the parser's complaint.
pub fn openmetrics_exemplars(text: &str) -> Result<Vec<SampleExemplar>, String> {
    const SCRIPT: &str = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       if s.exemplar is not None:\n\
        \x20           out.append([s.name, s.exemplar.labels])\n\
        print(json.dumps(out))\n";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let parsed: Vec<SampleExemplar> =
        serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    Ok(parsed)
}

/// One sample of a Prometheus query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The label names, `__name__` and the target labels `job` and `instance`
    /// aside: the labels that the exporter itself set.
    pub fn exporter_label_names(&self) -> Vec<&str> {
        self.labels
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "__name__" | "job" | "instance"))
            .collect()
    }
}

/// A real Prometheus server, started with a generated configuration that
/// scrapes the given targets every `interval`, its data in a temp dir.
pub struct Prometheus {
    process: Process,
    base: String,
    agent: ureq::Agent,
    _data: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with one job per `(job, target)` pair, scraping
    /// `target` (`host:port`) at `/metrics`.
    pub fn start(targets: &[(&str, String)], interval: Duration) -> Self {
        Self::start_scraping(targets, interval, &[])
    }

    /// As [`start`](Self::start), with exemplar storage on
    /// (`--enable-feature=exemplar-storage`).
    pub fn start_with_exemplars(targets: &[(&str, String)], interval: Duration) -> Self {
        Self::start_scraping(targets, interval, &["--enable-feature=exemplar-storage"])
    }

    fn start_scraping(targets: &[(&str, String)], interval: Duration, args: &[&str]) -> Self {
        let mut config = format!(
            "global:\n  scrape_interval: {ms}ms\n  scrape_timeout: {ms}ms\nscrape_configs:\n",
            ms = interval.as_millis()
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let prometheus = Self::start_with_args(&config, &[], args);
        prometheus.wait_for_targets(targets.len(), Duration::from_secs(30));
        prometheus
    }

    /// Waits until Prometheus knows `count` targets. Its discovery manager
    /// hands targets over in batches every 5 s, so `/-/ready` comes first.
    pub fn wait_for_targets(&self, count: usize, timeout: Duration) {
        wait_for("Prometheus to load its targets", timeout, || {
            let data = self.api("/api/v1/targets", &[("state", "active")])?;
            let active = data["activeTargets"].as_array().map_or(0, Vec::len);
            if active == count {
                Ok(())
            } else {
                Err(format!("{active} active targets"))
            }
        });
    }

    /// Starts Prometheus with a configuration text and extra files (rule
    /// files, for example) written beside it.
    pub fn start_with_config(config: &str, files: &[(&str, &Path)]) -> Self {
        Self::start_with_args(config, files, &[])
    }

    /// As [`start_with_config`](Self::start_with_config), with more flags.
    pub fn start_with_args(config: &str, files: &[(&str, &Path)], args: &[&str]) -> Self {
        let binary = require_tool("prometheus");
        let data = tempfile::tempdir().expect("temp dir");
        let config_path = data.path().join("prometheus.yml");
        File::create(&config_path)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .expect("write config");
        for (name, source) in files {
            std::fs::copy(source, data.path().join(name)).expect("copy file beside the config");
        }
        let port = free_port();
        let mut process = Process::spawn(
            "prometheus",
            Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    data.path().join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .args(args),
        );
        let base = format!("http://127.0.0.1:{port}");
        process.wait_ready(&format!("{base}/-/ready"), Duration::from_secs(60));
        Self {
            process,
            base,
            agent: agent(),
            _data: data,
        }
    }

    /// The base URL, such as `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// An instant query: its samples, or Prometheus' error.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let data = self.api("/api/v1/query", &[("query", promql)])?;
        let result = data["result"].as_array().ok_or("no result array")?;
        result
            .iter()
            .map(|item| {
                let labels = item["metric"]
                    .as_object()
                    .ok_or("no metric labels")?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let value = item["value"][1]
                    .as_str()
                    .ok_or("no value")?
                    .parse::<f64>()
                    .map_err(|e| e.to_string())?;
                Ok(Sample { labels, value })
            })
            .collect()
    }

    /// A query's raw `data` object, for range vectors and other shapes.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        for (key, value) in params {
            request = request.query(*key, *value);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if json["status"] != "success" {
            return Err(format!("{path} failed: {body}"));
        }
        Ok(json["data"].clone())
    }

    /// Waits until `promql` returns samples that `accept` takes.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        accept: impl Fn(&[Sample]) -> bool,
    ) -> Vec<Sample> {
        wait_for(promql, timeout, || {
            let samples = self.query(promql)?;
            if accept(&samples) {
                Ok(samples)
            } else {
                Err(format!("{samples:?}"))
            }
        })
    }

    /// Waits until every target of the configuration is `up`.
    pub fn wait_all_up(&self, targets: usize, timeout: Duration) {
        self.wait_for("up == 1", timeout, |s| s.len() == targets);
    }

    /// Prometheus' own output, for failure messages.
    pub fn output(&self) -> String {
        self.process.output()
    }
}

/// Runs `promtool check metrics` on a scrape: `Ok` with no complaint, else
/// what promtool said.
pub fn promtool_check_metrics(scrape: &str) -> Result<(), String> {
    let promtool = require_tool("promtool");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(scrape.as_bytes())
        .expect("write scrape to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool ({}): {said}", out.status))
    }
}
