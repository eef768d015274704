//! OpenTelemetry's environment variables, read once at start-up. A bad value
//! is an error that names the variable and what it accepts; an unset one
//! takes the default of the OpenTelemetry specification.
use std::fmt;
use std::time::Duration;

/// Where spans go (`OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracesExporter {
    /// OTLP to a collector or to Cloud Trace's OTLP endpoint (the default).
    Otlp,
    /// Cloud Trace's own API, through opentelemetry-stackdriver.
    GcpTrace,
    /// Human-readable spans on standard output, for local runs.
    Stdout,
    /// No export; spans are not recorded at all.
    None,
}

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// gRPC, port 4317 by default.
    Grpc,
    /// Protobuf over HTTP, port 4318 by default (the specification's default).
    HttpProtobuf,
}

/// OTLP payload compression (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpCompression {
    /// Sent as is (the specification's default).
    None,
    /// gzip, for both transports.
    Gzip,
}

/// Which requests are traced (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// Every request.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// A share of traces, decided from the trace id.
    TraceIdRatio(f64),
    /// As the caller decided when there is one, else as `root` decides.
    ParentBased(ParentBasedRoot),
}

impl Sampler {
    /// Whether most requests without a caller's decision are sampled.
    pub(crate) fn mostly_samples(&self) -> bool {
        match self {
            Self::AlwaysOn | Self::ParentBased(ParentBasedRoot::AlwaysOn) => true,
            Self::AlwaysOff | Self::ParentBased(ParentBasedRoot::AlwaysOff) => false,
            Self::TraceIdRatio(ratio) | Self::ParentBased(ParentBasedRoot::TraceIdRatio(ratio)) => {
                *ratio >= 0.5
            }
        }
    }
}

/// The decision of a parent-based sampler for requests without a parent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParentBasedRoot {
    /// Sample every root.
    AlwaysOn,
    /// Sample no root.
    AlwaysOff,
    /// Sample this share of roots.
    TraceIdRatio(f64),
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    expected: String,
}

impl ConfigError {
    fn new(variable: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            variable,
            value: value.to_owned(),
            expected: expected.into(),
        }
    }

    /// The environment variable at fault.
    pub fn variable(&self) -> &'static str {
        self.variable
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every `OTEL_*` setting this crate reads.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// `OTEL_SDK_DISABLED=true` turns tracing off whatever else is set.
    pub sdk_disabled: bool,
    /// `OTEL_SERVICE_NAME`; the caller's default (the binary's name) if unset.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_TRACES_EXPORTER`; if unset, `otlp` as the specification says,
    /// or `none` in a build without the `otlp` feature.
    pub traces_exporter: TracesExporter,
    /// Whether `OTEL_TRACES_EXPORTER` was unset.
    pub traces_exporter_defaulted: bool,
    /// `OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG`;
    /// `parentbased_always_on` if unset.
    pub sampler: Sampler,
    /// The URL spans are sent to by OTLP, as the specification derives it:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is; else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended for
    /// `http/protobuf` (as it is for gRPC); else `http://localhost:4318/v1/traces`
    /// or `http://localhost:4317`.
    pub otlp_traces_endpoint: String,
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`;
    /// `http/protobuf` if unset.
    pub otlp_protocol: OtlpProtocol,
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// (milliseconds); 10 s if unset.
    pub otlp_timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`:
    /// headers sent with every export (such as credentials).
    pub otlp_headers: Vec<(String, String)>,
    /// `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none` (the default).
    pub otlp_compression: OtlpCompression,
    /// The span processor's `OTEL_BSP_*` settings.
    pub batch: BatchConfig,
    /// Settings that are valid but have no effect, worth a warning at start
    /// (such as `OTEL_TRACES_SAMPLER_ARG` for a sampler without argument).
    pub warnings: Vec<String>,
}

/// The batch span processor's settings (`OTEL_BSP_*`), with the
/// specification's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: spans waiting at most; 2048.
    pub max_queue_size: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export at most; 512.
    pub max_export_batch_size: usize,
    /// `OTEL_BSP_SCHEDULE_DELAY` (ms): the longest a span waits; 5 s.
    pub schedule_delay: Duration,
    /// `OTEL_BSP_EXPORT_TIMEOUT` (ms): the longest one export takes; 30 s.
    pub export_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
        }
    }
}

impl TelemetryConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`], naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset, as the specification asks.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`], naming its variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| get(name).map(|value| (name, value)))
        };

        let sdk_disabled = match get("OTEL_SDK_DISABLED") {
            None => false,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(ConfigError::new("OTEL_SDK_DISABLED", &v, "true or false")),
            },
        };
        let traces_exporter_defaulted = get("OTEL_TRACES_EXPORTER").is_none();
        let traces_exporter = match get("OTEL_TRACES_EXPORTER") {
            None if cfg!(feature = "otlp") => TracesExporter::Otlp,
            None => TracesExporter::None,
            Some(v) => match v.as_str() {
                "otlp" => TracesExporter::Otlp,
                "gcp_trace" => TracesExporter::GcpTrace,
                "console" | "stdout" => TracesExporter::Stdout,
                "none" => TracesExporter::None,
                _ => {
                    return Err(ConfigError::new(
                        "OTEL_TRACES_EXPORTER",
                        &v,
                        "one of otlp, gcp_trace, stdout (or console), none",
                    ))
                }
            },
        };
        let otlp_protocol = match first([
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]) {
            None => OtlpProtocol::HttpProtobuf,
            Some((_, v)) if v == "grpc" => OtlpProtocol::Grpc,
            Some((_, v)) if v == "http/protobuf" => OtlpProtocol::HttpProtobuf,
            Some((name, v)) => return Err(ConfigError::new(name, &v, "grpc or http/protobuf")),
        };
        let otlp_compression = match first([
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ]) {
            None => OtlpCompression::None,
            Some((_, v)) if v == "gzip" => OtlpCompression::Gzip,
            Some((_, v)) if v == "none" => OtlpCompression::None,
            Some((name, v)) => return Err(ConfigError::new(name, &v, "gzip or none")),
        };
        let positive = |name: &'static str, value: String| {
            let expected = if name.ends_with("_SIZE") {
                "a whole number above 0"
            } else {
                "a whole number of milliseconds above 0"
            };
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::new(name, &value, expected))
        };
        let otlp_timeout = match first([
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]) {
            None => Duration::from_secs(10),
            Some((name, v)) => Duration::from_millis(positive(name, v)?),
        };
        let defaults = BatchConfig::default();
        let setting = |name: &'static str| get(name).map(|v| positive(name, v)).transpose();
        let batch = BatchConfig {
            max_queue_size: setting("OTEL_BSP_MAX_QUEUE_SIZE")?
                .map_or(defaults.max_queue_size, |n| n as usize),
            max_export_batch_size: setting("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?
                .map_or(defaults.max_export_batch_size, |n| n as usize),
            schedule_delay: setting("OTEL_BSP_SCHEDULE_DELAY")?
                .map_or(defaults.schedule_delay, Duration::from_millis),
            export_timeout: setting("OTEL_BSP_EXPORT_TIMEOUT")?
                .map_or(defaults.export_timeout, Duration::from_millis),
        };
        // A batch larger than the queue can never fill: every span would
        // wait for the timer and the queue would overflow first. The default
        // batch shrinks to a smaller queue; a batch set larger is an error.
        let mut batch = batch;
        if get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none() {
            batch.max_export_batch_size = batch.max_export_batch_size.min(batch.max_queue_size);
        }
        if batch.max_export_batch_size > batch.max_queue_size {
            return Err(ConfigError::new(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                &batch.max_export_batch_size.to_string(),
                format!(
                    "at most OTEL_BSP_MAX_QUEUE_SIZE ({}), as the specification requires",
                    batch.max_queue_size
                ),
            ));
        }
        let otlp_traces_endpoint = match first([
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]) {
            Some((name, v)) if !has_http_host(&v) => {
                return Err(ConfigError::new(
                    name,
                    &v,
                    "an http:// or https:// URL with a host",
                ))
            }
            Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v)) => v,
            Some((_, base)) => match otlp_protocol {
                OtlpProtocol::Grpc => base,
                OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            },
            None => match otlp_protocol {
                OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
                OtlpProtocol::HttpProtobuf => "http://localhost:4318/v1/traces".to_owned(),
            },
        };
        let resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            None => Vec::new(),
            Some(v) => parse_key_values(&v)
                .map_err(|why| ConfigError::new("OTEL_RESOURCE_ATTRIBUTES", &v, why))?,
        };
        let otlp_headers = match first([
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]) {
            None => Vec::new(),
            Some((name, v)) => {
                let headers =
                    parse_key_values(&v).map_err(|why| ConfigError::new(name, &v, why))?;
                // Checked here, so that the error names the variable.
                for (key, value) in &headers {
                    if key.is_empty() || !key.bytes().all(is_token_byte) {
                        return Err(ConfigError::new(name, &v, format!(
                            "header names made of letters, digits and !#$%&'*+-.^_`|~; `{key}` is not one"
                        )));
                    }
                    if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                        return Err(ConfigError::new(
                            name,
                            &v,
                            format!(
                            "header values without control characters; the value of `{key}` has one"
                        ),
                        ));
                    }
                }
                headers
            }
        };
        let sampler_name = get("OTEL_TRACES_SAMPLER");
        let sampler_arg = get("OTEL_TRACES_SAMPLER_ARG");
        let mut warnings = Vec::new();
        if let Some(arg) = &sampler_arg {
            let name = sampler_name.as_deref().unwrap_or("parentbased_always_on");
            if !name.ends_with("traceidratio") {
                warnings.push(format!(
                    "OTEL_TRACES_SAMPLER_ARG={arg:?} is ignored: OTEL_TRACES_SAMPLER={name} \
                     takes no argument (only traceidratio and parentbased_traceidratio do)"
                ));
            }
        }
        Ok(Self {
            sdk_disabled,
            service_name: get("OTEL_SERVICE_NAME"),
            resource_attributes,
            traces_exporter,
            traces_exporter_defaulted,
            sampler: parse_sampler(sampler_name, sampler_arg)?,
            otlp_traces_endpoint,
            otlp_protocol,
            otlp_timeout,
            otlp_headers,
            otlp_compression,
            batch,
            warnings,
        })
    }
}

/// An HTTP token character (RFC 9110), as header names are made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `url` is `http://` or `https://` with a host after it.
fn has_http_host(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    !host.is_empty()
}

fn parse_sampler(name: Option<String>, arg: Option<String>) -> Result<Sampler, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        match &arg {
            // The specification's default ratio.
            None => Ok(1.0),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    ConfigError::new("OTEL_TRACES_SAMPLER_ARG", v, "a number from 0 to 1")
                }),
        }
    };
    let Some(name) = name else {
        return Ok(Sampler::ParentBased(ParentBasedRoot::AlwaysOn));
    };
    Ok(match name.as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(ParentBasedRoot::AlwaysOn),
        "parentbased_always_off" => Sampler::ParentBased(ParentBasedRoot::AlwaysOff),
        "parentbased_traceidratio" => Sampler::ParentBased(ParentBasedRoot::TraceIdRatio(ratio()?)),
        _ => {
            return Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER",
                &name,
                "one of always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio",
            ))
        }
    })
}

/// `key1=value1,key2=value2`, values percent-encoded (W3C Baggage's format),
/// as `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS` are written.
fn parse_key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                format!("key=value pairs separated by commas; `{item}` has no `=`")
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("key=value pairs; `{item}` has an empty key"));
            }
            Ok((key.to_owned(), percent_decode(value.trim())?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("percent-encoded values; `{text}` has a bad escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("UTF-8 values; `{text}` decodes to something else"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn settings_that_cannot_work_are_refused_and_useless_ones_warned_about() {
        let err = config(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100000")])
            .expect_err("a batch larger than the queue");
        assert_eq!(err.variable(), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
        assert!(err.to_string().contains("2048"), "{err}");
        let ok = config(&[
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8192"),
        ])
        .expect("a larger queue allows it");
        assert_eq!(ok.batch.max_export_batch_size, 4096);

        for endpoint in [
            "http://",
            "https:///v1/traces",
            "http://:4318",
            "collector:4317",
        ] {
            let err = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)]).expect_err("no host");
            assert_eq!(err.variable(), "OTEL_EXPORTER_OTLP_ENDPOINT", "{endpoint}");
        }
        for endpoint in [
            "http://collector:4318",
            "https://[::1]:4317",
            "http://u:p@c",
        ] {
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)]).expect(endpoint);
        }

        let warned = config(&[
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ])
        .expect("valid, if useless");
        assert_eq!(warned.warnings.len(), 1);
        assert!(
            warned.warnings[0].contains("OTEL_TRACES_SAMPLER_ARG"),
            "{:?}",
            warned.warnings
        );
        let quiet = config(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ])
        .expect("valid");
        assert!(quiet.warnings.is_empty());
    }

    #[test]
    fn unset_means_the_specification_defaults() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.traces_exporter, TracesExporter::Otlp);
        assert_eq!(c.sampler, Sampler::ParentBased(ParentBasedRoot::AlwaysOn));
        assert_eq!(c.otlp_protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.otlp_timeout, Duration::from_secs(10));
        assert_eq!(c.batch, BatchConfig::default());
        assert!(!c.sdk_disabled && c.service_name.is_none());
        assert_eq!(c.otlp_traces_endpoint, "http://localhost:4318/v1/traces");
        // Empty counts as unset.
        assert_eq!(
            config(&[("OTEL_TRACES_EXPORTER", " ")])
                .expect("empty")
                .traces_exporter,
            TracesExporter::Otlp
        );
    }

    #[test]
    fn the_traces_endpoint_follows_the_specification() {
        let endpoint = |vars: &[(&str, &str)]| config(vars).expect("valid").otlp_traces_endpoint;
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example:4318/")]),
            "https://otel.example:4318/v1/traces"
        );
        assert_eq!(
            endpoint(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://traces:9000/custom"
                ),
            ]),
            "http://traces:9000/custom"
        );
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            "http://localhost:4317"
        );
    }

    #[test]
    fn settings_are_read() {
        let c = config(&[
            ("OTEL_SERVICE_NAME", "flask-app-rs"),
            ("OTEL_TRACES_EXPORTER", "gcp_trace"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20abc,x-tenant=7",
            ),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=staging, team=a%20b%2Cc",
            ),
        ])
        .expect("valid");
        assert_eq!(c.service_name.as_deref(), Some("flask-app-rs"));
        assert_eq!(c.traces_exporter, TracesExporter::GcpTrace);
        assert_eq!(
            c.sampler,
            Sampler::ParentBased(ParentBasedRoot::TraceIdRatio(0.25))
        );
        // gRPC takes the base endpoint as it is.
        assert_eq!(c.otlp_traces_endpoint, "http://collector:4318");
        assert_eq!(
            c.otlp_protocol,
            OtlpProtocol::Grpc,
            "the traces-specific variable wins"
        );
        assert_eq!(c.otlp_timeout, Duration::from_millis(2500));
        assert_eq!(c.batch.schedule_delay, Duration::from_millis(200));
        assert_eq!(c.batch.max_queue_size, 100);
        // The default batch (512) shrinks to the smaller queue.
        assert_eq!(c.batch.max_export_batch_size, 100);
        assert_eq!(
            c.otlp_headers,
            [
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-tenant".to_owned(), "7".to_owned())
            ]
        );
        assert_eq!(
            c.resource_attributes,
            [
                ("deployment.environment".to_owned(), "staging".to_owned()),
                ("team".to_owned(), "a b,c".to_owned())
            ]
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_what_it_accepts() {
        for (vars, variable, accepted) in [
            (
                &[("OTEL_TRACES_EXPORTER", "jaeger")][..],
                "OTEL_TRACES_EXPORTER",
                "otlp, gcp_trace",
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "sometimes")][..],
                "OTEL_TRACES_SAMPLER",
                "traceidratio",
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ][..],
                "OTEL_TRACES_SAMPLER_ARG",
                "from 0 to 1",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")][..],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "grpc",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")][..],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://",
            ),
            (
                &[("OTEL_BSP_MAX_QUEUE_SIZE", "-1")][..],
                "OTEL_BSP_MAX_QUEUE_SIZE",
                "a whole number above 0",
            ),
            (
                &[("OTEL_BSP_SCHEDULE_DELAY", "5s")][..],
                "OTEL_BSP_SCHEDULE_DELAY",
                "milliseconds",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")][..],
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "milliseconds",
            ),
            (
                &[("OTEL_RESOURCE_ATTRIBUTES", "team")][..],
                "OTEL_RESOURCE_ATTRIBUTES",
                "key=value",
            ),
            (
                &[("OTEL_RESOURCE_ATTRIBUTES", "a=%zz")][..],
                "OTEL_RESOURCE_ATTRIBUTES",
                "percent",
            ),
            (
                &[("OTEL_SDK_DISABLED", "yes")][..],
                "OTEL_SDK_DISABLED",
                "true or false",
            ),
        ] {
            let err = config(vars).expect_err("invalid");
            assert_eq!(err.variable(), variable);
            let text = err.to_string();
            assert!(text.contains(variable) && text.contains(accepted), "{text}");
        }
    }
}
