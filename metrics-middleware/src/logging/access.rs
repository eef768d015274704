//! One access log line per request, with Cloud Logging's `httpRequest`
//! field and the request's trace, written by the middleware when the
//! response is done: what actix's `Logger` middleware writes, in the form
//! the Logs Explorer shows as a request (method, URL, status, sizes,
//! latency, user agent, remote IP, protocol), under its trace.
//!
//! The URL is the path alone (query strings often carry secrets), cut to
//! 1 kB; the user agent is cut to 512 bytes; the remote IP is the first
//! `X-Forwarded-For` address when it is one (behind Google's load balancer),
//! else the peer's. Lines go to target `metrics_middleware::access_log` at
//! INFO, so `RUST_LOG` turns them off like any other
//! (`RUST_LOG=info,metrics_middleware::access_log=off`).
use std::fmt::{self, Write as _};
use std::time::Duration;

use std::net::SocketAddr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderValue;
use actix_web::http::{StatusCode, Uri, Version};
use tracing::Level;

use super::layer::LineSink;
use super::line::{with_line_buffer, HttpRequestFields, LineFormat, LineTrace, Text};
use crate::telemetry::attributes::{first_element, parse_ip};
use crate::telemetry::headers::RequestHeaders;
use crate::telemetry::limits::{MAX_FORWARDED_FOR_SCAN, MAX_PATH_LEN, MAX_USER_AGENT_LEN};

/// The target of access lines.
pub const ACCESS_LOG_TARGET: &str = "metrics_middleware::access_log";

/// The access log; see the module docs. Made by
/// [`LogSink::access_log`](super::LogSink::access_log).
#[derive(Clone)]
pub struct AccessLog {
    sink: LineSink,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

/// What an access line needs of a request, taken when it arrives (by
/// reference count: no copy of the values).
pub(crate) struct AccessRequest {
    uri: Uri,
    user_agent: Option<HeaderValue>,
    forwarded_for: Option<HeaderValue>,
    peer: Option<SocketAddr>,
    version: Version,
}

impl AccessRequest {
    pub(crate) fn new(req: &ServiceRequest, headers: &RequestHeaders<'_>) -> Self {
        Self {
            uri: req.uri().clone(),
            user_agent: headers.user_agent.cloned(),
            forwarded_for: headers.forwarded_for.cloned(),
            peer: req.peer_addr(),
            version: req.version(),
        }
    }
}

/// What the middleware knows of a finished request.
pub(crate) struct AccessEntry<'a> {
    pub(crate) request: &'a AccessRequest,
    pub(crate) method: &'static str,
    pub(crate) status: StatusCode,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
    pub(crate) latency: Duration,
    pub(crate) context: Option<&'a opentelemetry::Context>,
}

impl AccessLog {
    pub(crate) fn new(sink: LineSink) -> Self {
        Self { sink }
    }

    pub(crate) fn write(&self, entry: &AccessEntry<'_>) {
        with_line_buffer(|line| {
            format_line(&self.sink.format, line, entry);
            self.sink.writer.write_line(line, false);
        });
    }
}

/// Writes the access line of `entry` into `out`.
pub(crate) fn format_line(format: &LineFormat, out: &mut Vec<u8>, entry: &AccessEntry<'_>) {
    {
        let request = entry.request;
        let path = request.uri.path();
        let path = &path[..floor_char_boundary(path, MAX_PATH_LEN)];
        let user_agent = request
            .user_agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|agent| &agent[..floor_char_boundary(agent, MAX_USER_AGENT_LEN)]);
        let remote_ip = request
            .forwarded_for
            .as_ref()
            .and_then(|v| parse_ip(first_element(v.as_bytes(), MAX_FORWARDED_FOR_SCAN)))
            .or_else(|| request.peer.map(|peer| peer.ip()));
        let protocol = match request.version {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        };
        let trace = entry.context.and_then(LineTrace::of);
        let status = entry.status.as_u16();
        format.write(
            out,
            Level::INFO,
            Text::Static(ACCESS_LOG_TARGET),
            trace.as_ref(),
            |out| {
                out.write_str(entry.method)?;
                out.write_char(' ')?;
                out.write_str(path)?;
                out.write_char(' ')?;
                out.write_str(itoa::Buffer::new().format(status))
            },
            |fields| {
                fields.http_request(&HttpRequestFields {
                    method: entry.method,
                    url: path,
                    request_size: entry.request_bytes,
                    status,
                    response_size: entry.response_bytes,
                    latency: entry.latency,
                    user_agent,
                    remote_ip,
                    protocol,
                });
            },
        );
    }
}

/// The largest index at most `max` that is a character boundary of `text`.
fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}
