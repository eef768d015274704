//! Entry points for the fuzz targets of `fuzz/` (cargo feature `fuzzing`):
//! the request-attribute extraction, the access line and the log line
//! writer, reached from outside the crate. Not an API: no stability.
#![allow(missing_docs)]

use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;

use crate::logging::access::{format_line, AccessEntry, AccessRequest};
use crate::logging::line::{LineFormat, MessageOut, Text};
use crate::logging::LogFormat;
use crate::metrics::labels::method_label;
use crate::telemetry::attributes::AttributeCache;
use crate::telemetry::headers::RequestHeaders;
use crate::telemetry::limits::Rejections;

/// The server span's attributes for `req`, as key and text value.
pub fn request_attributes(req: &ServiceRequest) -> Vec<(String, String)> {
    let found = RequestHeaders::scan(req.headers());
    AttributeCache::default()
        .request(
            req,
            &found,
            method_label(req.method()),
            &Rejections::unregistered(),
        )
        .to_key_values()
        .into_iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

/// The JSON access line of `req` (answered 200, empty).
pub fn access_line(req: &ServiceRequest) -> Vec<u8> {
    let found = RequestHeaders::scan(req.headers());
    let request = AccessRequest::new(req, &found);
    let entry = AccessEntry {
        request: &request,
        method: method_label(req.method()),
        status: StatusCode::OK,
        request_bytes: 0,
        response_bytes: 0,
        latency: Duration::from_micros(1500),
        context: None,
    };
    let mut out = Vec::new();
    format_line(&json_lines(), &mut out, &entry);
    out
}

/// One log line, JSON or text, of `message` from `target` with `fields`.
pub fn log_line(json: bool, message: &str, target: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let format = LineFormat {
        format: if json {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
        trace_prefix: None,
    };
    let mut out = Vec::new();
    format.write(
        &mut out,
        tracing::Level::INFO,
        Text::Borrowed(target),
        None,
        |out: &mut MessageOut<'_>| std::fmt::Write::write_str(out, message),
        |writer| {
            for (name, value) in fields {
                writer.text(name, |w| w.write_str(value));
            }
        },
    );
    out
}

fn json_lines() -> LineFormat {
    LineFormat {
        format: LogFormat::Json,
        trace_prefix: None,
    }
}
