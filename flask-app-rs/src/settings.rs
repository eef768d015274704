//! Every setting of the service, as a flag and as an environment variable.
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Parser;
use metrics_middleware::cli::TelemetryArgs;

use crate::Chaos;

/// The hello service of the original Flask demo, with Prometheus metrics.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Settings {
    /// Port of the application.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Port of the Prometheus scrape endpoint (`GET /metrics`).
    #[arg(long, env = "METRICS_PORT", default_value_t = 9090)]
    pub metrics_port: u16,

    /// Address both ports listen on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Share of hello requests, in percent (0-100), that fail with a random
    /// status in 400..=500.
    #[arg(long, env = "CHAOS_TARGET_PERCENT", default_value = "0", value_parser = Chaos::parse)]
    pub chaos_target_percent: Chaos,

    /// Worker threads; the number of CPUs by default.
    #[arg(long, env = "WORKERS")]
    pub workers: Option<NonZeroUsize>,

    /// How long SIGTERM waits for in-flight requests before exiting.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "25s",
          value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// One access log line per request, with Cloud Logging's `httpRequest`
    /// (`true` or `false`).
    #[arg(long, env = "ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,

    /// The service `GET /downstream` calls, in the request's trace (an
    /// `http://` or `https://` URL); unset, `GET /downstream` answers 404.
    #[arg(long, env = "DOWNSTREAM_URL", value_parser = crate::downstream::parse_url)]
    pub downstream_url: Option<reqwest::Url>,

    /// Tracing and logging (`OTEL_*`, `LOG_FORMAT`).
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl Settings {
    /// The worker count: as set, else one per CPU.
    pub fn workers(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}
