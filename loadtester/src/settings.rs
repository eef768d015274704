//! Every setting, as a flag (Locust's short flags where Locust has one) and
//! as an environment variable, checked before any load is sent.
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::tasks::TaskMix;

/// Drives HTTP load at the hello service, as the original's Locust did.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Settings {
    /// The service to load, such as `http://flask-app-tutorial` (http or https).
    #[arg(short = 'H', long, env = "TARGET_HOST", value_parser = parse_host)]
    pub host: String,

    /// Users (concurrent clients) across all workers.
    #[arg(short = 'u', long, env = "LOADTESTER_USERS", default_value_t = NonZeroUsize::MIN.saturating_add(9))]
    pub users: NonZeroUsize,

    /// Users started per second across all workers.
    #[arg(short = 'r', long, env = "LOADTESTER_HATCH_RATE", default_value = "10", value_parser = parse_rate)]
    pub hatch_rate: f64,

    /// How long to run once every user has started, such as `30s` or `5m`.
    #[arg(short = 't', long, env = "LOADTESTER_RUN_TIME", default_value = "30s", value_parser = parse_run_time)]
    pub run_time: Duration,

    /// Most requests per second across all workers; unlimited if unset.
    #[arg(long, env = "LOADTESTER_MAX_RPS")]
    pub max_rps: Option<NonZeroUsize>,

    /// Tasks and their weights: `hello` (GET /), `param` (GET /hello/{name}),
    /// `unknown` (GET of a new unknown path each time), `slow` (GET /delay/100),
    /// such as `hello=8,param=1,unknown=1`.
    #[arg(long, env = "LOADTESTER_TASKS", default_value = "hello", value_parser = TaskMix::parse)]
    pub tasks: TaskMix,

    /// Fail (exit 1) if more than this share of requests fail, such as `5%` or `0.05`.
    #[arg(long, env = "LOADTESTER_MAX_ERROR_RATIO", value_parser = parse_ratio)]
    pub max_error_ratio: Option<f64>,

    /// Fail (exit 1) if the 99th percentile response time exceeds this, such as `500ms`.
    #[arg(long, env = "LOADTESTER_MAX_P99", value_parser = humantime::parse_duration)]
    pub max_p99: Option<Duration>,

    /// Write the JSON report here.
    #[arg(long, env = "LOADTESTER_JSON_REPORT")]
    pub json_report: Option<PathBuf>,

    /// Write goose's HTML report here.
    #[arg(long, env = "LOADTESTER_HTML_REPORT")]
    pub html_report: Option<PathBuf>,

    /// Port of this load generator's own Prometheus metrics (`GET /metrics`).
    #[arg(long, env = "LOADTESTER_METRICS_PORT", default_value_t = 9091)]
    pub metrics_port: u16,

    /// Address the metrics port listens on.
    #[arg(long, env = "LOADTESTER_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// How many load generators share the users (pods of an Indexed Job).
    #[arg(long, env = "LOADTESTER_WORKERS", default_value_t = NonZeroUsize::MIN)]
    pub workers: NonZeroUsize,

    /// This generator's index among them; Kubernetes sets it in Indexed Jobs.
    #[arg(long, env = "JOB_COMPLETION_INDEX", default_value_t = 0)]
    pub worker_index: usize,
}

/// What this generator runs: its share of the users, settings checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Users of this generator.
    pub users: usize,
    /// Users started per second by this generator.
    pub hatch_rate: f64,
    /// Requests per second allowed to this generator, if limited.
    pub max_rps: Option<usize>,
    /// The settings it came from.
    pub settings: Settings,
}

/// A setting that is valid alone but not with the others.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The index is not below the worker count.
    #[error("JOB_COMPLETION_INDEX / --worker-index is {index}, but LOADTESTER_WORKERS / --workers is {workers}: it must be below it")]
    IndexOutOfRange { index: usize, workers: usize },
    /// Fewer users than workers leaves a worker idle.
    #[error("LOADTESTER_USERS / --users is {users}, fewer than the {workers} workers (LOADTESTER_WORKERS): every worker needs a user")]
    TooFewUsers { users: usize, workers: usize },
}

impl Settings {
    /// This generator's share of the load: users split as evenly as they go,
    /// the first `users % workers` workers taking one more.
    ///
    /// # Errors
    ///
    /// A [`PlanError`] naming the settings that do not fit together.
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let (users, workers, index) = (self.users.get(), self.workers.get(), self.worker_index);
        if index >= workers {
            return Err(PlanError::IndexOutOfRange { index, workers });
        }
        if users < workers {
            return Err(PlanError::TooFewUsers { users, workers });
        }
        let share = users / workers + usize::from(index < users % workers);
        let fraction = share as f64 / users as f64;
        Ok(Plan {
            users: share,
            hatch_rate: self.hatch_rate * fraction,
            max_rps: self
                .max_rps
                .map(|rps| ((rps.get() as f64 * fraction).round() as usize).max(1)),
            settings: self.clone(),
        })
    }
}

fn parse_host(text: &str) -> Result<String, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| format!("`{text}` has no scheme: write http://{text} or https://{text}"))?;
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "unknown scheme `{scheme}`: use http:// or https://"
        ));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err("no host after the scheme".to_owned());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected a number of users per second above 0, such as 10 or 0.5".to_owned()),
    }
}

fn parse_run_time(text: &str) -> Result<Duration, String> {
    let time = humantime::parse_duration(text).map_err(|e| format!("{e} (try `30s` or `5m`)"))?;
    if time < Duration::from_secs(1) || time.subsec_nanos() != 0 {
        return Err("must be a whole number of seconds, at least 1s".to_owned());
    }
    Ok(time)
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    let ratio = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    match ratio {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a share from 0 to 1, or a percentage such as 5%".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, clap::Error> {
        Settings::try_parse_from(std::iter::once("loadtester").chain(args.iter().copied()))
    }

    #[test]
    fn users_are_shared_among_workers() {
        let shares: Vec<usize> = (0..3)
            .map(|i| {
                let index = i.to_string();
                settings(&[
                    "-H",
                    "http://x",
                    "-u",
                    "10",
                    "--workers",
                    "3",
                    "--worker-index",
                    &index,
                ])
                .expect("valid")
                .plan()
                .expect("fits")
                .users
            })
            .collect();
        assert_eq!(shares, [4, 3, 3]);
        let err = settings(&["-H", "http://x", "-u", "2", "--workers", "3"])
            .expect("valid alone")
            .plan()
            .expect_err("too few users");
        assert!(err.to_string().contains("LOADTESTER_USERS"));
        let err = settings(&["-H", "http://x", "--workers", "2", "--worker-index", "2"])
            .expect("valid alone")
            .plan()
            .expect_err("index too high");
        assert!(err.to_string().contains("JOB_COMPLETION_INDEX"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(settings(&["-H", "ftp://x"]).is_err());
        assert!(settings(&["-H", "localhost:8080"]).is_err());
        assert!(settings(&["-H", "http://x", "-u", "0"]).is_err());
        assert!(settings(&["-H", "http://x", "-t", "5parsecs"]).is_err());
        assert!(settings(&["-H", "http://x", "-t", "1500ms"]).is_err());
        assert!(settings(&["-H", "http://x", "--max-error-ratio", "150%"]).is_err());
        let ok = settings(&["-H", "http://x/", "--max-error-ratio", "5%"]).expect("valid");
        assert_eq!(ok.host, "http://x");
        assert_eq!(ok.max_error_ratio, Some(0.05));
    }
}
