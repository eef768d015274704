//! Bounds on what a client can put into a span or a log line, and the
//! counter of values that were ignored or cut.
//!
//! Every header value copied into telemetry is validated and bounded first:
//! a value that is not what its header means (`not-an-ip` in
//! `X-Forwarded-For`, a 10 kB scheme) is ignored, one that is too long is
//! cut or ignored, and each case is counted in
//! `http_request_header_rejections_total{header, reason}`, so an operator
//! sees hostile or broken clients without reading spans.
use prometheus::{IntCounterVec, Opts, Registry};

/// The longest `url.path` kept, in bytes; longer paths are cut.
pub const MAX_PATH_LEN: usize = 1024;
/// The longest `user_agent.original` kept, in bytes; longer values are cut.
pub const MAX_USER_AGENT_LEN: usize = 512;
/// The longest `Host` or `X-Forwarded-Host` read: a 255-character name and a
/// port.
pub const MAX_HOST_LEN: usize = 261;
/// How far into `X-Forwarded-For` the first address is looked for: the
/// longest bracketed IPv6 address with a port fits.
pub const MAX_FORWARDED_FOR_SCAN: usize = 64;

/// The request fields telemetry reads from clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Traceparent,
    Tracestate,
    CloudTraceContext,
    Host,
    ForwardedHost,
    ForwardedFor,
    ForwardedProto,
    Forwarded,
    UserAgent,
    Path,
}

impl Field {
    fn label(self) -> &'static str {
        match self {
            Self::Traceparent => "traceparent",
            Self::Tracestate => "tracestate",
            Self::CloudTraceContext => "x-cloud-trace-context",
            Self::Host => "host",
            Self::ForwardedHost => "x-forwarded-host",
            Self::ForwardedFor => "x-forwarded-for",
            Self::ForwardedProto => "x-forwarded-proto",
            Self::Forwarded => "forwarded",
            Self::UserAgent => "user-agent",
            Self::Path => ":path",
        }
    }
}

/// Why a value was not used as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Not a valid value for its header: ignored.
    Malformed,
    /// Longer than its bound: ignored unread.
    Oversized,
    /// Longer than its bound: cut to it.
    Truncated,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Oversized => "oversized",
            Self::Truncated => "truncated",
        }
    }
}

/// `http_request_header_rejections_total{header, reason}`.
#[derive(Clone, Debug)]
pub(crate) struct Rejections {
    counter: IntCounterVec,
}

impl Rejections {
    /// The counter, registered on `registry` (a private one otherwise).
    pub(crate) fn new(registry: Option<&Registry>) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(
            Opts::new(
                "http_request_header_rejections_total",
                "Request header values that telemetry ignored (malformed, oversized) or cut \
                 (truncated) instead of recording them as sent.",
            ),
            &["header", "reason"],
        )?;
        if let Some(registry) = registry {
            registry.register(Box::new(counter.clone()))?;
        }
        Ok(Self { counter })
    }

    /// A counter on no registry, for parts used alone.
    pub(crate) fn unregistered() -> Self {
        Self::new(None).unwrap_or_else(|_| unreachable!("static, valid metric options"))
    }

    /// Counts one value. Rare by nature: the series is resolved here.
    pub(crate) fn count(&self, field: Field, reason: Reason) {
        self.counter
            .with_label_values(&[field.label(), reason.label()])
            .inc();
    }
}
