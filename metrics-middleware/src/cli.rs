//! Settings from command-line flags that mirror environment variables, with
//! errors that fit on one line and name both the flag and the variable.
use clap::error::{ContextKind, ErrorKind};
use clap::{Args, CommandFactory, Parser};

use crate::logging::{LogFormat, LogFormatError};
use crate::telemetry::{ConfigError, TelemetryConfig};
use crate::{Observability, ObservabilityBuilder};

/// Parses the process's arguments and environment into `T`. On `--help` and
/// `--version`, prints them and exits 0; on a bad setting, prints one line
/// naming the flag, its environment variable and what is accepted, and exits 2.
pub fn parse_or_exit<T: Parser>() -> T {
    match T::try_parse() {
        Ok(settings) => settings,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(err) => {
            eprintln!("{}", one_line_error::<T>(&err));
            std::process::exit(2)
        }
    }
}

/// Builds and installs observability, or prints one line `error: …` and
/// exits: status 2 for a bad setting (as for a bad flag), 1 for anything
/// else (the metrics port in use, a logger installed already).
/// `metrics_port_setting` names the flag and variable of the metrics
/// address, for the message when it cannot be bound.
pub fn install_or_exit(builder: ObservabilityBuilder, metrics_port_setting: &str) -> Observability {
    builder.install().unwrap_or_else(|err| {
        match err.metrics_server() {
            Some(_) => eprintln!("error: {err} (set by {metrics_port_setting})"),
            None => eprintln!("error: {err}"),
        }
        std::process::exit(if err.is_bad_setting() { 2 } else { 1 })
    })
}

/// The exit status of a service whose `run` returned `result`: success, or
/// failure after one line `error: …` on standard error.
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The first line of clap's message, plus the environment variable behind the
/// flag at fault, since most deployments set variables, not flags.
pub fn one_line_error<T: CommandFactory>(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first_line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid settings")
        .trim_end();
    let env = err.get(ContextKind::InvalidArg).and_then(|arg| {
        let arg = arg.to_string();
        let mut command = T::command();
        command.build();
        let env = command
            .get_arguments()
            .find(|candidate| candidate.to_string() == arg)
            .and_then(|candidate| candidate.get_env())
            .map(|env| env.to_string_lossy().into_owned());
        env
    });
    match env {
        Some(env) => format!("{first_line} (set by the flag or by the environment variable {env})"),
        None => first_line.to_owned(),
    }
}

/// The tracing and logging settings as flags, each mirroring the
/// OpenTelemetry variable of the same meaning; `#[command(flatten)]` them
/// into a binary's settings. Values are checked by [`TelemetryConfig`], so a
/// flag and its variable give the same error.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Where spans go: otlp, gcp_trace, stdout or none.
    #[arg(long, env = "OTEL_TRACES_EXPORTER", help_heading = "Tracing")]
    pub otel_traces_exporter: Option<String>,

    /// The service's name in traces; the binary's name by default.
    #[arg(long, env = "OTEL_SERVICE_NAME", help_heading = "Tracing")]
    pub otel_service_name: Option<String>,

    /// Which requests are traced: parentbased_always_on (default),
    /// parentbased_traceidratio, always_on, always_off, traceidratio, ...
    #[arg(long, env = "OTEL_TRACES_SAMPLER", help_heading = "Tracing")]
    pub otel_traces_sampler: Option<String>,

    /// The sampler's ratio, from 0 to 1.
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", help_heading = "Tracing")]
    pub otel_traces_sampler_arg: Option<String>,

    /// The OTLP collector's URL (`/v1/traces` is appended for http/protobuf).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", help_heading = "Tracing")]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// The OTLP transport: http/protobuf (default) or grpc.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", help_heading = "Tracing")]
    pub otel_exporter_otlp_protocol: Option<String>,

    /// Extra resource attributes, `key=value,key=value`.
    #[arg(long, env = "OTEL_RESOURCE_ATTRIBUTES", help_heading = "Tracing")]
    pub otel_resource_attributes: Option<String>,

    /// Log line format: json (Cloud Logging), text, or auto (text on a
    /// terminal, else JSON).
    #[arg(long, env = "LOG_FORMAT", default_value = "auto", value_parser = parse_log_format,
          help_heading = "Logging")]
    pub log_format: LogFormat,
}

impl TelemetryArgs {
    /// The settings: these flags first, then the other `OTEL_*` variables.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable (which the flag mirrors).
    pub fn config(&self) -> Result<TelemetryConfig, ConfigError> {
        TelemetryConfig::from_lookup(|name| {
            let flag = match name {
                "OTEL_TRACES_EXPORTER" => &self.otel_traces_exporter,
                "OTEL_SERVICE_NAME" => &self.otel_service_name,
                "OTEL_TRACES_SAMPLER" => &self.otel_traces_sampler,
                "OTEL_TRACES_SAMPLER_ARG" => &self.otel_traces_sampler_arg,
                "OTEL_EXPORTER_OTLP_ENDPOINT" => &self.otel_exporter_otlp_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL" => &self.otel_exporter_otlp_protocol,
                "OTEL_RESOURCE_ATTRIBUTES" => &self.otel_resource_attributes,
                _ => return std::env::var(name).ok(),
            };
            flag.clone()
        })
    }

    /// [`config`](Self::config), or one line naming the setting and exit 2,
    /// as [`parse_or_exit`] does for the other flags.
    pub fn config_or_exit(&self) -> TelemetryConfig {
        self.config().unwrap_or_else(|err| {
            eprintln!("error: {err}");
            std::process::exit(2)
        })
    }

    /// An [`Observability`] builder with these settings: the `OTEL_*`
    /// values (or one line naming the bad one, and exit 2) and the log
    /// format. Add the service's own settings and
    /// [`install_or_exit`] it.
    pub fn builder(&self) -> ObservabilityBuilder {
        self.apply(Observability::builder())
    }

    /// `builder` with these settings (see [`builder`](Self::builder)).
    pub fn apply(&self, builder: ObservabilityBuilder) -> ObservabilityBuilder {
        builder
            .telemetry_config(self.config_or_exit())
            .log_format(self.log_format)
    }
}

fn parse_log_format(text: &str) -> Result<LogFormat, LogFormatError> {
    LogFormat::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Settings {
        #[arg(long, env = "TEST_CLI_PORT", default_value_t = 8080)]
        port: u16,
    }

    #[derive(Debug, Parser)]
    struct WithTelemetry {
        #[command(flatten)]
        telemetry: TelemetryArgs,
    }

    #[test]
    fn telemetry_flags_mirror_the_otel_variables() {
        let args = WithTelemetry::try_parse_from([
            "app",
            "--otel-traces-exporter",
            "stdout",
            "--otel-traces-sampler",
            "traceidratio",
            "--otel-traces-sampler-arg",
            "0.5",
            "--log-format",
            "json",
        ])
        .expect("valid flags");
        let config = args.telemetry.config().expect("valid settings");
        assert_eq!(
            config.traces_exporter,
            crate::telemetry::TracesExporter::Stdout
        );
        assert_eq!(config.sampler, crate::telemetry::Sampler::TraceIdRatio(0.5));
        assert_eq!(args.telemetry.log_format, LogFormat::Json);

        let bad = WithTelemetry::try_parse_from(["app", "--otel-traces-exporter", "jaeger"])
            .expect("parsed");
        let err = bad.telemetry.config().expect_err("unknown exporter");
        assert_eq!(err.variable(), "OTEL_TRACES_EXPORTER");
    }

    #[test]
    fn a_bad_value_gives_one_line_naming_flag_and_variable() {
        let err = Settings::try_parse_from(["app", "--port", "70000"]).expect_err("out of range");
        let line = one_line_error::<Settings>(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--port"), "{line}");
        assert!(line.contains("TEST_CLI_PORT"), "{line}");
        assert!(line.contains("70000"), "{line}");
    }
}
