//! One log line, written straight into a byte buffer: Cloud Logging's JSON
//! (its special fields first, the event's own fields after, typed), or
//! readable text. Shared by the `tracing` layer, the `log` bridge and the
//! access log, so that every line of a process looks the same.
//!
//! JSON lines: `severity`, `time` (RFC 3339, microseconds), `message`,
//! `target`; inside a trace `logging.googleapis.com/trace`
//! (`projects/PROJECT/traces/TRACE_ID`), `logging.googleapis.com/spanId` and
//! `logging.googleapis.com/trace_sampled`; then `httpRequest` for access
//! lines; then the event's fields, numbers and booleans as JSON numbers and
//! booleans. An event field named like one of the line's own keys is
//! written as `fields.NAME`, so no key appears twice.
//!
//! Without a Google Cloud project, the trace cannot be named as Cloud
//! Logging links it (`projects/PROJECT/traces/ID`), so it is written as
//! plain `trace_id`, `span_id` and `trace_sampled` fields instead.
use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::Level;

use super::LogFormat;
use crate::telemetry::propagation::traceparent::write_hex;

/// The keys a JSON line writes itself.
const RESERVED: [&str; 6] = [
    "severity",
    "time",
    "message",
    "target",
    "httpRequest",
    "trace_id",
];

/// How lines are written: the format, and the prefix that names traces.
#[derive(Debug, Clone)]
pub(crate) struct LineFormat {
    pub(crate) format: LogFormat,
    /// `projects/PROJECT/traces/`, when the project is known.
    pub(crate) trace_prefix: Option<Box<str>>,
}

/// The trace a line belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineTrace {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) sampled: bool,
}

impl LineTrace {
    /// The trace of the OpenTelemetry context current on this thread.
    pub(crate) fn current() -> Option<Self> {
        opentelemetry::Context::map_current(Self::of)
    }

    /// The trace of `cx`'s span, if it has a valid one.
    pub(crate) fn of(cx: &opentelemetry::Context) -> Option<Self> {
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| Self {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            sampled: context.is_sampled(),
        })
    }
}

impl LineFormat {
    /// Writes one line: `message` writes the message text (escaped on the
    /// way for JSON), `fields` the event's other fields.
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        level: Level,
        target: Text<'_>,
        trace: Option<&LineTrace>,
        message: impl FnOnce(&mut MessageOut<'_>) -> fmt::Result,
        fields: impl FnOnce(&mut FieldWriter<'_>),
    ) {
        match self.format {
            LogFormat::Json => {
                out.extend_from_slice(b"{\"severity\":\"");
                out.extend_from_slice(severity(level).as_bytes());
                out.extend_from_slice(b"\",\"time\":\"");
                write_time(out);
                out.extend_from_slice(b"\",\"message\":\"");
                let _ = message(&mut MessageOut { out, json: true });
                out.extend_from_slice(b"\",\"target\":\"");
                match target {
                    Text::Static(text) => escape_static(out, text),
                    Text::Borrowed(text) => json_escape(out, text),
                }
                out.push(b'"');
                if let Some(trace) = trace {
                    self.write_json_trace(out, trace);
                }
                fields(&mut FieldWriter {
                    out,
                    format: LogFormat::Json,
                });
                out.extend_from_slice(b"}\n");
            }
            LogFormat::Text => {
                write_time(out);
                let _ = write!(Bytes(out), " {:>5} {}: ", level.as_str(), target.as_str());
                let _ = message(&mut MessageOut { out, json: false });
                fields(&mut FieldWriter {
                    out,
                    format: LogFormat::Text,
                });
                if let Some(trace) = trace {
                    out.extend_from_slice(b" trace_id=");
                    out.extend_from_slice(&trace_hex(&trace.trace_id));
                }
                out.push(b'\n');
            }
        }
    }

    /// The trace's fields. Written afresh for each line (~150 instructions,
    /// fixed-size copies only): a per-thread cache of the last trace's
    /// fields cost more than it saved when a request writes one line.
    fn write_json_trace(&self, out: &mut Vec<u8>, trace: &LineTrace) {
        match &self.trace_prefix {
            Some(prefix) => {
                out.extend_from_slice(b",\"logging.googleapis.com/trace\":\"");
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(&trace_hex(&trace.trace_id));
                out.extend_from_slice(b"\",\"logging.googleapis.com/spanId\":\"");
                out.extend_from_slice(&span_hex(&trace.span_id));
                out.extend_from_slice(b"\",\"logging.googleapis.com/trace_sampled\":");
            }
            None => {
                out.extend_from_slice(b",\"trace_id\":\"");
                out.extend_from_slice(&trace_hex(&trace.trace_id));
                out.extend_from_slice(b"\",\"span_id\":\"");
                out.extend_from_slice(&span_hex(&trace.span_id));
                out.extend_from_slice(b"\",\"trace_sampled\":");
            }
        }
        out.extend_from_slice(if trace.sampled { b"true" } else { b"false" });
    }
}

/// Writes an event's fields after the line's own: `,"name":value` in JSON,
/// ` name=value` in text.
pub(crate) struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    format: LogFormat,
}

impl FieldWriter<'_> {
    fn name(&mut self, name: &str) {
        match self.format {
            LogFormat::Json => {
                self.out.extend_from_slice(b",\"");
                if RESERVED.contains(&name) || name.starts_with("logging.googleapis.com/") {
                    self.out.extend_from_slice(b"fields.");
                }
                json_escape(self.out, name);
                self.out.extend_from_slice(b"\":");
            }
            LogFormat::Text => {
                self.out.push(b' ');
                self.out.extend_from_slice(name.as_bytes());
                self.out.push(b'=');
            }
        }
    }

    /// A text value.
    pub(crate) fn text(
        &mut self,
        name: &str,
        value: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result,
    ) {
        self.name(name);
        let json = self.format == LogFormat::Json;
        if json {
            self.out.push(b'"');
        }
        let _ = value(&mut MessageOut {
            out: self.out,
            json,
        });
        if json {
            self.out.push(b'"');
        }
    }

    /// A value written as is: a number, a boolean, a JSON object.
    pub(crate) fn raw(&mut self, name: &str, value: impl fmt::Display) {
        self.name(name);
        let _ = write!(Bytes(self.out), "{value}");
    }

    /// An integer.
    pub(crate) fn integer(&mut self, name: &str, value: impl itoa::Integer) {
        self.name(name);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// Cloud Logging's `httpRequest` object for an access line (in text:
    /// the request line's parts).
    pub(crate) fn http_request(&mut self, request: &HttpRequestFields<'_>) {
        let out = &mut *self.out;
        let mut number = itoa::Buffer::new();
        match self.format {
            LogFormat::Json => {
                out.extend_from_slice(b",\"httpRequest\":{\"requestMethod\":\"");
                json_escape(out, request.method);
                out.extend_from_slice(b"\",\"requestUrl\":\"");
                json_escape(out, request.url);
                // int64 fields are strings in Cloud Logging's JSON.
                out.extend_from_slice(b"\",\"requestSize\":\"");
                out.extend_from_slice(number.format(request.request_size).as_bytes());
                out.extend_from_slice(b"\",\"status\":");
                out.extend_from_slice(number.format(request.status).as_bytes());
                out.extend_from_slice(b",\"responseSize\":\"");
                out.extend_from_slice(number.format(request.response_size).as_bytes());
                out.extend_from_slice(b"\",\"latency\":\"");
                write_seconds(out, request.latency);
                out.extend_from_slice(b"s\"");
                if let Some(agent) = request.user_agent {
                    out.extend_from_slice(b",\"userAgent\":\"");
                    json_escape(out, agent);
                    out.push(b'"');
                }
                if let Some(ip) = request.remote_ip {
                    out.extend_from_slice(b",\"remoteIp\":\"");
                    write_ip(out, ip);
                    out.push(b'"');
                }
                out.extend_from_slice(b",\"protocol\":\"");
                out.extend_from_slice(request.protocol.as_bytes());
                out.extend_from_slice(b"\"}");
            }
            LogFormat::Text => {
                out.extend_from_slice(b" status=");
                out.extend_from_slice(number.format(request.status).as_bytes());
                out.extend_from_slice(b" latency=");
                write_seconds(out, request.latency);
                out.extend_from_slice(b"s request_size=");
                out.extend_from_slice(number.format(request.request_size).as_bytes());
                out.extend_from_slice(b" response_size=");
                out.extend_from_slice(number.format(request.response_size).as_bytes());
                if let Some(ip) = request.remote_ip {
                    out.extend_from_slice(b" remote_ip=");
                    write_ip(out, ip);
                }
            }
        }
    }
}

/// Seconds with nine decimals: `0.000123456`.
fn write_seconds(out: &mut Vec<u8>, duration: std::time::Duration) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(number.format(duration.as_secs()).as_bytes());
    let mut nanos = duration.subsec_nanos();
    let mut digits = *b".000000000";
    for slot in digits[1..].iter_mut().rev() {
        *slot = b'0' + (nanos % 10) as u8;
        nanos /= 10;
    }
    out.extend_from_slice(&digits);
}

/// An IP address as text; IPv4 without `core::fmt`.
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut number = itoa::Buffer::new();
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(number.format(*octet).as_bytes());
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(Bytes(out), "{v6}");
        }
    }
}

/// What an access line says of its request.
pub(crate) struct HttpRequestFields<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) request_size: u64,
    pub(crate) status: u16,
    pub(crate) response_size: u64,
    pub(crate) latency: std::time::Duration,
    pub(crate) user_agent: Option<&'a str>,
    pub(crate) remote_ip: Option<std::net::IpAddr>,
    pub(crate) protocol: &'a str,
}

/// Writes a `tracing` event's fields (all but `message` and `log.*`) with
/// their types: numbers and booleans as such, the rest as text.
pub(crate) struct EventFields<'w, 'a> {
    pub(crate) out: &'w mut FieldWriter<'a>,
}

impl Visit for EventFields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if skip(field) {
            return;
        }
        if value.is_finite() {
            self.out.raw(field.name(), value);
        } else {
            self.out.text(field.name(), |w| write!(w, "{value}"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !skip(field) {
            self.out.integer(field.name(), value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !skip(field) {
            self.out.integer(field.name(), value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if !skip(field) {
            self.out.integer(field.name(), value);
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if !skip(field) {
            self.out.integer(field.name(), value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !skip(field) {
            self.out.raw(field.name(), value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !skip(field) {
            self.out.text(field.name(), |w| w.write_str(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !skip(field) {
            self.out.text(field.name(), |w| write!(w, "{value:?}"));
        }
    }
}

fn skip(field: &Field) -> bool {
    field.name() == "message" || field.name().starts_with("log.")
}

/// Writes an event's `message` field.
pub(crate) struct MessageField<'w> {
    pub(crate) out: &'w mut dyn fmt::Write,
    pub(crate) result: fmt::Result,
}

impl Visit for MessageField<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" && self.result.is_ok() {
            self.result = self.out.write_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && self.result.is_ok() {
            self.result = write!(self.out, "{value:?}");
        }
    }
}

thread_local! {
    /// The current second as `YYYY-MM-DDTHH:MM:SS`, formatted once a second.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 UTC with microseconds: `2026-11-26T10:49:28.780871Z`.
fn write_time(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    SECOND.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let text = humantime::format_rfc3339_seconds(now).to_string();
            cache.1 = text.trim_end_matches('Z').to_owned();
            cache.0 = second;
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
    // Two digits at a time from a table: three steps instead of six.
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let micros = since_epoch.subsec_micros() as usize;
    let mut digits = *b".000000Z";
    for (i, pair) in [micros / 10_000, micros / 100 % 100, micros % 100]
        .into_iter()
        .enumerate()
    {
        digits[1 + 2 * i..3 + 2 * i].copy_from_slice(&PAIRS[2 * pair..2 * pair + 2]);
    }
    out.extend_from_slice(&digits);
}

/// A trace id in lower-case hex, as lines write it (a fixed size, so the
/// copy into the line is inlined).
pub(crate) fn trace_hex(id: &[u8; 16]) -> [u8; 32] {
    let mut text = [0_u8; 32];
    write_hex(&mut text, id);
    text
}

/// A span id in lower-case hex.
pub(crate) fn span_hex(id: &[u8; 8]) -> [u8; 16] {
    let mut text = [0_u8; 16];
    write_hex(&mut text, id);
    text
}

/// Cloud Logging's `LogSeverity` names.
fn severity(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// `fmt::Write` into a byte buffer, as is.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// `fmt::Write` into a byte buffer as the inside of a JSON string.
/// Text a line writes, static or not: static text (a target, a message
/// without arguments) is checked for characters to escape once per thread.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Text<'a> {
    Static(&'static str),
    Borrowed(&'a str),
}

impl<'a> Text<'a> {
    fn as_str(&self) -> &'a str {
        match *self {
            Self::Static(text) => text,
            Self::Borrowed(text) => text,
        }
    }
}

/// Where a line's message goes: escaped on the way for JSON.
pub(crate) struct MessageOut<'a> {
    out: &'a mut Vec<u8>,
    json: bool,
}

impl MessageOut<'_> {
    /// Writes static text, such as a message without arguments.
    pub(crate) fn write_static(&mut self, text: &'static str) -> fmt::Result {
        if self.json {
            escape_static(self.out, text);
        } else {
            self.out.extend_from_slice(text.as_bytes());
        }
        Ok(())
    }
}

impl fmt::Write for MessageOut<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.json {
            json_escape(self.out, text);
        } else {
            self.out.extend_from_slice(text.as_bytes());
        }
        Ok(())
    }
}

thread_local! {
    /// Static strings this thread found to need no escaping, by address and
    /// length: the bytes of a `&'static str` never change, so a line that
    /// writes the same target or message as an earlier one skips the check.
    static CLEAN: [Cell<(usize, usize)>; 16] = const { [const { Cell::new((0, 0)) }; 16] };
}

/// Appends static `text` as the inside of a JSON string.
fn escape_static(out: &mut Vec<u8>, text: &'static str) {
    let key = (text.as_ptr() as usize, text.len());
    let slot = ((key.0 >> 3) ^ key.1) % 16;
    let known = CLEAN.with(|clean| {
        let entry = &clean[slot];
        if entry.get() == key {
            return true;
        }
        let is_clean = !needs_escape(text.as_bytes());
        if is_clean {
            entry.set(key);
        }
        is_clean
    });
    if known {
        out.extend_from_slice(text.as_bytes());
    } else {
        json_escape(out, text);
    }
}

/// Appends `text` as the inside of a JSON string.
fn json_escape(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Most text has nothing to escape: one check, one copy.
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(DIGITS[usize::from(byte >> 4)]);
            out.push(DIGITS[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether `bytes` has a control character, `"` or `\\`: eight bytes at a
/// time (the classic "has a zero byte" trick, applied to `b < 0x20` and to
/// equality with each of the two characters).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each zero byte is set (bytes above a zero one may be
    // flagged too: only "any" matters here).
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0_u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte below 0x20 (with its high bit clear): `word - 0x20` borrows.
        let control = word.wrapping_sub(0x20 * ONES) & !word;
        let quote = zero_bytes(word ^ (u64::from(b'"') * ONES));
        let backslash = zero_bytes(word ^ (u64::from(b'\\') * ONES));
        if (control | quote | backslash) & HIGHS != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

thread_local! {
    /// Each thread's line buffer, reused from line to line.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `write` with this thread's line buffer (emptied), or with a new one
/// if the buffer is in use (a value's `Debug` that itself logs).
pub(crate) fn with_line_buffer(write: impl FnOnce(&mut Vec<u8>)) {
    LINE.with(|line| match line.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            write(&mut buffer);
            // A giant line once should not keep its memory for good.
            if buffer.capacity() > 64 * 1024 {
                *buffer = Vec::new();
            }
        }
        Err(_) => write(&mut Vec::new()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_text_is_escaped_the_same_on_every_line() {
        for _ in 0..3 {
            for (text, escaped) in [
                ("plain target", "plain target"),
                ("say \"hi\"", "say \\\"hi\\\""),
                ("tab\there", "tab\\there"),
            ] {
                let mut out = Vec::new();
                escape_static(&mut out, text);
                assert_eq!(String::from_utf8(out).expect("utf-8"), escaped);
            }
        }
    }

    #[test]
    fn the_time_is_rfc3339_with_microseconds_of_now() {
        let before = SystemTime::now();
        let mut out = Vec::new();
        write_time(&mut out);
        let after = SystemTime::now();
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.len(), "2026-11-26T10:49:28.780871Z".len(), "{text}");
        let time = humantime::parse_rfc3339(&text).expect("RFC 3339");
        let floor = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .expect("after epoch")
                .as_micros()
        };
        assert!(
            (floor(before)..=floor(after)).contains(&floor(time)),
            "{text}"
        );
    }

    #[test]
    fn ids_are_lower_case_hex() {
        let id: [u8; 16] = std::array::from_fn(|i| (i as u8) * 17);
        assert_eq!(&trace_hex(&id), b"00112233445566778899aabbccddeeff");
        assert_eq!(
            &span_hex(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff]),
            b"deadbeef000102ff"
        );
    }

    #[test]
    fn the_word_at_a_time_check_finds_what_the_byte_check_finds() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..64 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly printable, sometimes special or high.
                        match state % 16 {
                            0 => (state >> 8) as u8 % 0x20,
                            1 => b'"',
                            2 => b'\\',
                            3 => 0x80 | (state >> 8) as u8,
                            _ => 0x20 + (state >> 8) as u8 % 0x5f,
                        }
                    })
                    .collect();
                assert_eq!(needs_escape(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
        assert!(!needs_escape(
            "caf\u{e9} \u{1f600} plain text, no escapes".as_bytes()
        ));
    }
}
