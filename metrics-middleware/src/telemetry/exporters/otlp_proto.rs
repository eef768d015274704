//! `ExportTraceServiceRequest` protobuf, written in one pass from the
//! queued spans: server spans from their typed fields, SDK spans from
//! `SpanData`.
//!
//! The writer works backwards: each field is written before (that is, to
//! the left of) what was written already, so a nested message's length is
//! known the moment its content is done, and its length prefix goes in
//! front of it. That spares the second pass that computes sizes, and the
//! code that mirrors every writer with a size function. Fields go in
//! reverse order, so the bytes come out in ascending field order, as
//! prost writes them.
//!
//! Why not opentelemetry-otlp's own encoding: it first converts every span
//! into opentelemetry-proto's message structs (each key and value copied
//! into a new `String`, spans grouped through a `HashMap`), then encodes
//! those: about 25,000 instructions per span under callgrind. The tests
//! below check the bytes against opentelemetry-proto's conversion, decoded
//! by prost.
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::web::Bytes;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;

use crate::telemetry::record::{QueuedSpan, ServerSpan, StrAttr, SCOPE_NAME};

/// `SpanFlags`: the parent's remoteness is known (0x100) and true (0x200).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A buffer written from its end towards its start.
pub(crate) struct ReverseWriter {
    buf: Vec<u8>,
    /// The written bytes are `buf[start..]`.
    start: usize,
}

/// Bytes a varint of `value` takes.
fn varint_len(value: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (70 - (value | 1).leading_zeros() as usize) / 7
}

impl ReverseWriter {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let buf = vec![0; capacity.max(64)];
        Self {
            start: buf.len(),
            buf,
        }
    }

    /// Bytes written so far.
    fn written(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Room for `additional` more bytes in front.
    #[inline]
    fn reserve(&mut self, additional: usize) {
        if self.start < additional {
            self.grow(additional);
        }
    }

    #[cold]
    fn grow(&mut self, additional: usize) {
        let written = self.written();
        let capacity = (self.buf.len() * 2).max(written + additional + 64);
        let mut grown = vec![0; capacity];
        grown[capacity - written..].copy_from_slice(&self.buf[self.start..]);
        self.buf = grown;
        self.start = capacity - written;
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.reserve(1);
        self.start -= 1;
        self.buf[self.start] = byte;
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.start -= bytes.len();
        let target = &mut self.buf[self.start..self.start + bytes.len()];
        // Most pieces are a few bytes: a call to `memcpy` costs more than
        // copying them here.
        if bytes.len() <= 16 {
            for (to, from) in target.iter_mut().zip(bytes) {
                *to = *from;
            }
        } else {
            target.copy_from_slice(bytes);
        }
    }

    #[inline]
    fn varint(&mut self, mut value: u64) {
        let len = varint_len(value);
        self.reserve(len);
        self.start -= len;
        let target = &mut self.buf[self.start..self.start + len];
        for byte in target.iter_mut() {
            *byte = (value as u8) | 0x80;
            value >>= 7;
        }
        target[len - 1] &= 0x7f;
    }

    #[inline]
    fn key(&mut self, tag: u32, wire_type: u8) {
        let key = tag << 3 | u32::from(wire_type);
        if key < 0x80 {
            self.put_byte(key as u8);
        } else {
            self.varint(u64::from(key));
        }
    }

    /// A nested message whose content `write` puts in front.
    #[inline]
    fn message(&mut self, tag: u32, write: impl FnOnce(&mut Self)) {
        let end = self.written();
        write(self);
        let len = self.written() - end;
        self.varint(len as u64);
        self.key(tag, LEN);
    }

    /// A length-delimited field, written even when empty (inside a `oneof`).
    #[inline]
    fn bytes_always(&mut self, tag: u32, bytes: &[u8]) {
        self.put(bytes);
        self.varint(bytes.len() as u64);
        self.key(tag, LEN);
    }

    /// A proto3 string or bytes field: absent when empty.
    fn bytes(&mut self, tag: u32, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.bytes_always(tag, bytes);
        }
    }

    fn string(&mut self, tag: u32, text: &str) {
        self.bytes(tag, text.as_bytes());
    }

    /// A proto3 varint field: absent when zero.
    fn varint_field(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.varint(value);
            self.key(tag, VARINT);
        }
    }

    fn fixed64(&mut self, tag: u32, value: u64) {
        self.put(&value.to_le_bytes());
        self.key(tag, FIXED64);
    }

    fn fixed32(&mut self, tag: u32, value: u32) {
        self.put(&value.to_le_bytes());
        self.key(tag, FIXED32);
    }

    /// The bytes written, without copying them.
    pub(crate) fn finish(self) -> Bytes {
        let start = self.start;
        Bytes::from(self.buf).slice(start..)
    }
}

/// The encoded `Resource` message of the process, made once.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedResource {
    message: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub(crate) fn new(resource: &opentelemetry_sdk::Resource) -> Self {
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
            .collect();
        let mut writer = ReverseWriter::with_capacity(256);
        write_attributes(&mut writer, 1, &attributes);
        Self {
            message: writer.finish().to_vec(),
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// Encodes one request from records (server spans encoded here).
#[cfg(test)]
pub(crate) fn encode_request(resource: &EncodedResource, spans: &[QueuedSpan]) -> Bytes {
    let mut encoded = Vec::new();
    for span in spans {
        if let QueuedSpan::Server(span) = span {
            assert!(encode_server_span(&mut encoded, span));
        }
    }
    ExportRequest::new(resource, encoded, spans).to_bytes()
}

/// An `ExportTraceServiceRequest` in two pieces: the envelope (resource,
/// scopes, the SDK's spans), then the server spans as the workers encoded
/// them, which end the message. The second piece is sent as it is: copying
/// a batch's spans into one buffer cost more (under callgrind) than
/// encoding them.
#[derive(Debug, Clone)]
pub(crate) struct ExportRequest {
    head: Bytes,
    server_spans: Bytes,
}

impl ExportRequest {
    /// The request for a batch: the resource once; server spans, `encoded`
    /// by the workers, under this crate's scope; the SDK's spans grouped by
    /// theirs, in the order each scope first appears.
    pub(crate) fn new(resource: &EncodedResource, encoded: Vec<u8>, spans: &[QueuedSpan]) -> Self {
        let sdk_spans = spans.len()
            - spans
                .iter()
                .filter(|s| matches!(s, QueuedSpan::Server(_)))
                .count();
        let mut w = ReverseWriter::with_capacity(resource.message.len() + 128 + sdk_spans * 400);
        // Written backwards, from the end of the envelope: the header of
        // this crate's `ScopeSpans`, whose spans follow the envelope.
        if !encoded.is_empty() {
            // ScopeSpans: spans = 2 (the workers'), scope = 1
            let end = w.written();
            w.message(1, |w| {
                w.string(2, env!("CARGO_PKG_VERSION"));
                w.string(1, SCOPE_NAME);
            });
            let scope_len = w.written() - end;
            w.varint((scope_len + encoded.len()) as u64);
            w.key(2, LEN);
        }
        // ResourceSpans: scope_spans = 2 (the SDK's, before ours),
        // schema_url = 3, resource = 1. Any field order is valid protobuf.
        for group in group_by_scope(spans).iter().rev() {
            w.message(2, |w| write_scope_spans(w, group, spans));
        }
        w.string(3, &resource.schema_url);
        w.message(1, |w| w.put(&resource.message));
        // ExportTraceServiceRequest.resource_spans = 1
        w.varint((w.written() + encoded.len()) as u64);
        w.key(1, LEN);
        Self {
            head: w.finish(),
            server_spans: Bytes::from(encoded),
        }
    }

    /// Bytes in the request.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.server_spans.len()
    }

    /// The two pieces, in order.
    pub(crate) fn pieces(&self) -> [&Bytes; 2] {
        [&self.head, &self.server_spans]
    }

    /// The request in one piece (copied).
    #[cfg(test)]
    pub(crate) fn to_bytes(&self) -> Bytes {
        let mut bytes = Vec::with_capacity(self.len());
        bytes.extend_from_slice(&self.head);
        bytes.extend_from_slice(&self.server_spans);
        Bytes::from(bytes)
    }

    /// The pieces as an HTTP body of known length, without copying them.
    pub(crate) fn into_body(self) -> RequestBody {
        RequestBody {
            pieces: [Some(self.head), Some(self.server_spans)],
        }
    }
}

/// An [`ExportRequest`] as an `http_body::Body`.
pub(crate) struct RequestBody {
    pieces: [Option<Bytes>; 2],
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self
            .pieces
            .iter_mut()
            .find_map(|piece| piece.take().filter(|bytes| !bytes.is_empty()));
        std::task::Poll::Ready(next.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.iter().flatten().all(Bytes::is_empty)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.pieces.iter().flatten().map(|b| b.len() as u64).sum())
    }
}

/// The spans of one scope, by index into the batch.
struct ScopeGroup<'a> {
    /// `None` for this crate's server spans.
    scope: Option<&'a InstrumentationScope>,
    members: Vec<usize>,
}

fn group_by_scope(spans: &[QueuedSpan]) -> Vec<ScopeGroup<'_>> {
    // Few scopes per process: a linear search beats hashing.
    let mut groups: Vec<ScopeGroup<'_>> = Vec::with_capacity(2);
    for (i, span) in spans.iter().enumerate() {
        let scope = match span {
            // Encoded beside the groups.
            QueuedSpan::Server(_) => continue,
            QueuedSpan::Sdk(data) => Some(&data.instrumentation_scope),
        };
        match groups.iter_mut().find(|g| g.scope == scope) {
            Some(group) => group.members.push(i),
            None => groups.push(ScopeGroup {
                scope,
                members: vec![i],
            }),
        }
    }
    groups
}

fn write_scope_spans(w: &mut ReverseWriter, group: &ScopeGroup<'_>, spans: &[QueuedSpan]) {
    // ScopeSpans: schema_url = 3, spans = 2, scope = 1
    w.string(
        3,
        group.scope.and_then(|s| s.schema_url()).unwrap_or_default(),
    );
    for &i in group.members.iter().rev() {
        if let QueuedSpan::Sdk(span) = &spans[i] {
            w.message(2, |w| write_sdk_span(w, span));
        }
    }
    w.message(1, |w| match group.scope {
        Some(scope) => {
            for kv in scope.attributes().collect::<Vec<_>>().iter().rev() {
                w.message(3, |w| write_key_value(w, kv));
            }
            w.string(2, scope.version().unwrap_or_default());
            w.string(1, scope.name());
        }
        None => {
            w.string(2, env!("CARGO_PKG_VERSION"));
            w.string(1, SCOPE_NAME);
        }
    });
}

/// Appends `span` as a `ScopeSpans.spans` field (tag 2), written forward
/// from its typed fields and its pre-encoded attributes. The span's length
/// goes in a three-byte varint patched at the end (a varint may carry
/// leading zero groups, which every protobuf parser accepts), sparing a
/// pass that sizes the span first. False, with nothing appended, if the
/// span would exceed the two megabytes such a length holds (hooks' values
/// are the only unbounded part).
pub(crate) fn encode_server_span(out: &mut Vec<u8>, span: &ServerSpan) -> bool {
    const MAX_LEN: usize = 1 << 21;
    let at = out.len();
    out.push(2 << 3 | LEN);
    let len_at = out.len();
    out.extend_from_slice(&[0x80, 0x80, 0x00]);
    let start = out.len();
    let a = &span.attributes;
    let keys = &*SERVER_KEYS;
    // Span: fields in ascending order.
    forward_bytes(out, 1, &span.trace_id.to_bytes());
    forward_bytes(out, 2, &span.span_id.to_bytes());
    let state = span.trace_state.as_str();
    if !state.is_empty() {
        forward_bytes(out, 3, state.as_bytes());
    }
    if let Some(parent) = span.parent_span_id {
        forward_bytes(out, 4, &parent.to_bytes());
    }
    forward_bytes(out, 5, span.name.as_bytes());
    out.extend_from_slice(&[6 << 3 | VARINT, kind(&SpanKind::Server) as u8]);
    out.push(7 << 3 | FIXED64);
    out.extend_from_slice(&unix_nanos(span.start).to_le_bytes());
    out.push(8 << 3 | FIXED64);
    out.extend_from_slice(&unix_nanos(span.end).to_le_bytes());
    // Attributes = 9, in the order `HttpAttributes::to_key_values` lists them.
    out.extend_from_slice(a.method_attr.encoded());
    out.extend_from_slice(a.path.encoded());
    out.extend_from_slice(a.protocol.encoded());
    out.extend_from_slice(a.scheme.encoded());
    if let Some(address) = &a.server_address {
        out.extend_from_slice(address.encoded());
    }
    if let Some(port) = a.server_port {
        forward_int_attribute(out, &keys.server_port, i64::from(port));
    }
    if let Some(client) = &a.client_address {
        out.extend_from_slice(client.encoded());
    }
    if let Some(agent) = &a.user_agent {
        out.extend_from_slice(agent.encoded());
    }
    if a.status_code != 0 {
        forward_int_attribute(out, &keys.status_code, i64::from(a.status_code));
    }
    if let Some(route) = &a.route {
        out.extend_from_slice(route.encoded());
    }
    if let Some(error) = a.error_type() {
        out.extend_from_slice(StrAttr::new("error.type", &error).encoded());
    }
    if !a.extra.is_empty() {
        let mut writer = ReverseWriter::with_capacity(64 * a.extra.len());
        write_attributes(&mut writer, 9, &a.extra);
        out.extend_from_slice(&writer.finish());
    }
    // Status = 15 { message = 2; code = 3 }
    let status = span.status();
    let (message, code) = match &status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description.as_ref(), 2),
    };
    let message_len = if message.is_empty() {
        0
    } else {
        1 + varint_len(message.len() as u64) + message.len()
    };
    let status_len = message_len + if code == 0 { 0 } else { 2 };
    out.push(15 << 3 | LEN);
    forward_varint(out, status_len as u64);
    if !message.is_empty() {
        forward_bytes(out, 2, message.as_bytes());
    }
    if code != 0 {
        out.extend_from_slice(&[3 << 3 | VARINT, code]);
    }
    // Flags = 16: its key (133) takes two varint bytes.
    out.extend_from_slice(&[(16 << 3 | FIXED32) | 0x80, 0x01]);
    out.extend_from_slice(
        &span_flags(span.parent_span_id.is_some(), span.flags.to_u8()).to_le_bytes(),
    );
    let len = out.len() - start;
    if len >= MAX_LEN {
        out.truncate(at);
        return false;
    }
    out[len_at] = (len as u8 & 0x7f) | 0x80;
    out[len_at + 1] = ((len >> 7) as u8 & 0x7f) | 0x80;
    out[len_at + 2] = (len >> 14) as u8;
    true
}

fn forward_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field, written forward.
fn forward_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag << 3 | LEN);
    forward_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `Span.attributes` field with an integer value, written forward.
fn forward_int_attribute(out: &mut Vec<u8>, key: &AttributeKey, value: i64) {
    // AnyValue { int_value = 3 }: at most 11 bytes, and its length one.
    let any_len = 1 + varint_len(value as u64);
    let kv_len = key.encoded.len() + 1 + any_len;
    // Put together on the stack and copied once: pushing byte by byte
    // checks the vector's capacity each time.
    if key.encoded.len() + 14 > 48 {
        // Not for the keys of this crate, all short.
        out.push(9 << 3 | LEN);
        forward_varint(out, kv_len as u64);
        out.extend_from_slice(&key.encoded);
        out.extend_from_slice(&[any_len as u8, 3 << 3 | VARINT]);
        forward_varint(out, value as u64);
        return;
    }
    let mut field = [0_u8; 48];
    let key_end = 2 + key.encoded.len();
    field[0] = 9 << 3 | LEN;
    field[1] = kv_len as u8;
    field[2..key_end].copy_from_slice(&key.encoded);
    field[key_end] = any_len as u8;
    field[key_end + 1] = 3 << 3 | VARINT;
    let mut varint = [0_u8; 10];
    let value = varint_bytes(value as u64, &mut varint);
    field[key_end + 2..key_end + 2 + value.len()].copy_from_slice(value);
    out.extend_from_slice(&field[..key_end + 2 + value.len()]);
}

/// `value` as a varint, in `buf`.
fn varint_bytes(mut value: u64, buf: &mut [u8; 10]) -> &[u8] {
    let mut len = 0;
    while value >= 0x80 {
        buf[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    buf[len] = value as u8;
    &buf[..=len]
}

/// A span the SDK ended.
fn write_sdk_span(w: &mut ReverseWriter, span: &SpanData) {
    let context = &span.span_context;
    w.fixed32(
        16,
        span_flags(span.parent_span_is_remote, context.trace_flags().to_u8()),
    );
    w.message(15, |w| write_status(w, &span.status));
    w.varint_field(14, u64::from(span.links.dropped_count));
    for link in span.links.iter().rev() {
        w.message(13, |w| {
            w.fixed32(
                6,
                span_flags(
                    link.span_context.is_remote(),
                    link.span_context.trace_flags().to_u8(),
                ),
            );
            w.varint_field(5, u64::from(link.dropped_attributes_count));
            write_attributes(w, 4, &link.attributes);
            w.string(3, &link.span_context.trace_state().header());
            w.bytes(2, &link.span_context.span_id().to_bytes());
            w.bytes(1, &link.span_context.trace_id().to_bytes());
        });
    }
    w.varint_field(12, u64::from(span.events.dropped_count));
    for event in span.events.iter().rev() {
        w.message(11, |w| {
            w.varint_field(4, u64::from(event.dropped_attributes_count));
            write_attributes(w, 3, &event.attributes);
            w.string(2, &event.name);
            w.fixed64(1, unix_nanos(event.timestamp));
        });
    }
    w.varint_field(10, u64::from(span.dropped_attributes_count));
    write_attributes(w, 9, &span.attributes);
    w.fixed64(8, unix_nanos(span.end_time));
    w.fixed64(7, unix_nanos(span.start_time));
    w.varint_field(6, kind(&span.span_kind));
    w.string(5, &span.name);
    if span.parent_span_id != SpanId::INVALID {
        w.bytes(4, &span.parent_span_id.to_bytes());
    }
    w.string(3, &context.trace_state().header());
    w.bytes(2, &context.span_id().to_bytes());
    w.bytes(1, &context.trace_id().to_bytes());
}

fn write_status(w: &mut ReverseWriter, status: &Status) {
    // Status: code = 3, message = 2
    let (message, code) = match status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description.as_ref(), 2),
    };
    w.varint_field(3, code);
    w.string(2, message);
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn span_flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    let remote = if parent_is_remote { FLAG_IS_REMOTE } else { 0 };
    u32::from(trace_flags) | FLAG_HAS_IS_REMOTE | remote
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// --- attributes: KeyValue { key = 1; AnyValue value = 2 } ---
// AnyValue { string_value = 1; bool_value = 2; int_value = 3;
//            double_value = 4; array_value = 5 }

/// The constant part of a span attribute: `KeyValue.key` and the tag of
/// `KeyValue.value`, encoded once.
struct AttributeKey {
    /// `0x0a, len, key..., 0x12`.
    encoded: Vec<u8>,
}

impl AttributeKey {
    fn new(key: &str) -> Self {
        let mut encoded = vec![0x0a];
        let mut len = key.len() as u64;
        while len >= 0x80 {
            encoded.push((len as u8) | 0x80);
            len >>= 7;
        }
        encoded.push(len as u8);
        encoded.extend_from_slice(key.as_bytes());
        encoded.push(0x12);
        Self { encoded }
    }
}

/// The keys of the server span's attributes that are not kept encoded
/// (the others are: see `record::StrAttr`).
struct ServerKeys {
    server_port: AttributeKey,
    status_code: AttributeKey,
}

static SERVER_KEYS: std::sync::LazyLock<ServerKeys> = std::sync::LazyLock::new(|| ServerKeys {
    server_port: AttributeKey::new("server.port"),
    status_code: AttributeKey::new("http.response.status_code"),
});

fn write_attributes(w: &mut ReverseWriter, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes.iter().rev() {
        w.message(tag, |w| write_key_value(w, kv));
    }
}

fn write_key_value(w: &mut ReverseWriter, kv: &KeyValue) {
    w.message(2, |w| write_any_value(w, &kv.value));
    w.string(1, kv.key.as_str());
}

fn write_any_value(w: &mut ReverseWriter, value: &Value) {
    match value {
        Value::Bool(b) => write_scalar(w, &Scalar::Bool(*b)),
        Value::I64(i) => write_scalar(w, &Scalar::I64(*i)),
        Value::F64(f) => write_scalar(w, &Scalar::F64(*f)),
        Value::String(s) => write_scalar(w, &Scalar::Str(StringValue::as_str(s))),
        Value::Array(array) => w.message(5, |w| {
            for element in array_elements(array).into_iter().rev() {
                w.message(1, |w| write_scalar(w, &element));
            }
        }),
        // A kind of value the API adds later: its text, so that nothing is
        // silently lost.
        other => w.bytes_always(1, other.as_str().as_bytes()),
    }
}

/// One element of an array, as the `AnyValue` it becomes.
enum Scalar<'a> {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(&'a str),
}

fn write_scalar(w: &mut ReverseWriter, scalar: &Scalar<'_>) {
    match scalar {
        Scalar::Bool(b) => {
            w.varint(u64::from(*b));
            w.key(2, VARINT);
        }
        Scalar::I64(i) => {
            w.varint(*i as u64);
            w.key(3, VARINT);
        }
        Scalar::F64(f) => w.fixed64(4, f.to_bits()),
        Scalar::Str(s) => w.bytes_always(1, s.as_bytes()),
    }
}

fn array_elements(array: &Array) -> Vec<Scalar<'_>> {
    match array {
        Array::Bool(values) => values.iter().map(|b| Scalar::Bool(*b)).collect(),
        Array::I64(values) => values.iter().map(|i| Scalar::I64(*i)).collect(),
        Array::F64(values) => values.iter().map(|f| Scalar::F64(*f)).collect(),
        Array::String(values) => values.iter().map(|s| Scalar::Str(s.as_str())).collect(),
        // A variant added to the API later: an empty array rather than a
        // wrong value.
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link, SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;
    use crate::telemetry::propagation::W3cTraceState;
    use crate::telemetry::record::{self, keys, HttpAttributes, StrAttr};

    fn start() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789)
    }

    fn sdk_span(name: &'static str, scope: &InstrumentationScope, parent: SpanId) -> SpanData {
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "cache miss",
            start() + Duration::from_micros(5),
            vec![KeyValue::new("key", "user:7")],
            1,
        ));
        events.dropped_count = 2;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            SpanContext::new(
                TraceId::from(7),
                SpanId::from(9),
                TraceFlags::SAMPLED,
                true,
                TraceState::from_key_value([("vendor", "x")]).expect("state"),
            ),
            vec![KeyValue::new("why", "batch")],
            0,
        ));
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
                SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
                TraceFlags::SAMPLED,
                false,
                TraceState::from_key_value([("congo", "t61rcWkgMzE")]).expect("state"),
            ),
            parent_span_id: parent,
            parent_span_is_remote: parent != SpanId::INVALID,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(name),
            start_time: start(),
            end_time: start() + Duration::from_micros(1_500),
            attributes: vec![
                KeyValue::new("http.route", "/hello/{name}"),
                KeyValue::new("http.response.status_code", 503),
                KeyValue::new("negative", -3),
                KeyValue::new("ratio", 0.25),
                KeyValue::new("flag", true),
                KeyValue::new("empty", ""),
                KeyValue::new(
                    "names",
                    Value::Array(vec![StringValue::from("a"), "b".into()].into()),
                ),
                KeyValue::new("codes", Value::Array(vec![1_i64, -2].into())),
                KeyValue::new("bits", Value::Array(vec![true, false].into())),
                KeyValue::new("floats", Value::Array(vec![1.5_f64].into())),
            ],
            dropped_attributes_count: 3,
            events,
            links,
            status: Status::error("Service Unavailable"),
            instrumentation_scope: scope.clone(),
        }
    }

    fn server_span(status_code: u16, parent: Option<SpanId>) -> ServerSpan {
        ServerSpan {
            trace_id: TraceId::from_hex("105445aa7843bc8bf206b12000100000").expect("hex"),
            span_id: SpanId::from(42),
            flags: TraceFlags::new(0x03),
            parent_span_id: parent,
            trace_state: W3cTraceState::parse("foo@@bar=1,congo=t61").expect("valid"),
            start: start(),
            end: start() + Duration::from_micros(250),
            name: Cow::Borrowed("GET /hello/{name}"),
            attributes: HttpAttributes {
                method: "GET",
                method_attr: StrAttr::new(keys::METHOD, "GET"),
                path: StrAttr::new(keys::PATH, "/hello/ada"),
                protocol: StrAttr::new(keys::PROTOCOL, "1.1"),
                scheme: StrAttr::new(keys::SCHEME, "https"),
                server_address: Some(StrAttr::new(keys::SERVER_ADDRESS, "shop.example")),
                server_port: Some(8443),
                client_address: Some(StrAttr::new(keys::CLIENT_ADDRESS, "203.0.113.9")),
                user_agent: Some(StrAttr::new(keys::USER_AGENT, "curl/8")),
                status_code,
                route: Some(StrAttr::new(keys::ROUTE, "/hello/{name}")),
                error: None,
                extra: vec![KeyValue::new("tenant", "acme"), KeyValue::new("n", 7)],
            },
        }
    }

    /// Decoded, with attribute lists sorted: the resource's order comes
    /// from a hash map.
    fn decoded(bytes: &[u8]) -> ExportTraceServiceRequest {
        let mut request = ExportTraceServiceRequest::decode(bytes).expect("valid protobuf");
        for resource_spans in &mut request.resource_spans {
            if let Some(resource) = &mut resource_spans.resource {
                resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            }
            // The reference groups scopes through a hash map; ours keeps
            // the order of first appearance. Compare scope by scope.
            resource_spans
                .scope_spans
                .sort_by_key(|s| s.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default());
        }
        request
    }

    fn reference(
        resource: &opentelemetry_sdk::Resource,
        spans: Vec<SpanData>,
    ) -> ExportTraceServiceRequest {
        decoded(
            &ExportTraceServiceRequest {
                resource_spans: group_spans_by_resource_and_scope(
                    spans,
                    &ResourceAttributesWithSchema::from(resource),
                ),
            }
            .encode_to_vec(),
        )
    }

    fn resource() -> opentelemetry_sdk::Resource {
        opentelemetry_sdk::Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "flask-app-rs"),
                KeyValue::new("cloud.account.id", "demo"),
                KeyValue::new("k8s.pod.uid", 42),
            ])
            .build()
    }

    #[test]
    fn sdk_spans_decode_to_what_opentelemetry_proto_makes() {
        let scope = InstrumentationScope::builder("handler")
            .with_version("1.0")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.kind", "worker")])
            .build();
        let other_scope = InstrumentationScope::builder("client").build();
        let spans = vec![
            sdk_span("load user", &scope, SpanId::INVALID),
            sdk_span(
                "GET",
                &other_scope,
                SpanId::from_hex("b7ad6b7169203331").expect("hex"),
            ),
            sdk_span("save user", &scope, SpanId::from(1)),
        ];
        let resource = resource();
        let queued: Vec<QueuedSpan> = spans
            .iter()
            .cloned()
            .map(|s| QueuedSpan::Sdk(Box::new(s)))
            .collect();
        let ours = decoded(&encode_request(&EncodedResource::new(&resource), &queued));
        assert_eq!(ours, reference(&resource, spans));
        assert_eq!(ours.resource_spans[0].scope_spans.len(), 2);
    }

    #[test]
    fn server_spans_decode_to_what_their_span_data_would_make() {
        let scope = record::scope();
        let spans = [
            server_span(200, None),
            server_span(503, Some(SpanId::from(7))),
            ServerSpan {
                attributes: HttpAttributes {
                    route: None,
                    status_code: 404,
                    server_address: None,
                    server_port: None,
                    client_address: None,
                    user_agent: None,
                    extra: Vec::new(),
                    error: Some("client_disconnected"),
                    ..server_span(404, None).attributes
                },
                name: Cow::Borrowed("GET"),
                trace_state: W3cTraceState::EMPTY,
                ..server_span(404, None)
            },
        ];
        let resource = resource();
        let queued: Vec<QueuedSpan> = spans
            .iter()
            .cloned()
            .map(|s| QueuedSpan::Server(Box::new(s)))
            .collect();
        let bytes = encode_request(&EncodedResource::new(&resource), &queued);
        let as_data: Vec<SpanData> = spans.iter().map(|s| s.to_span_data(&scope)).collect();
        // OpenTelemetry's `TraceState` cannot hold `foo@@bar`: the reference
        // has the state as the SDK would keep it; ours keeps it whole.
        let mut ours = decoded(&bytes);
        let theirs = reference(&resource, as_data);
        let our_spans = &mut ours.resource_spans[0].scope_spans[0].spans;
        assert_eq!(our_spans[0].trace_state, "foo@@bar=1,congo=t61");
        for span in our_spans.iter_mut() {
            span.trace_state = span.trace_state.replace("foo@@bar=1,", "");
        }
        assert_eq!(ours, theirs);
        let span = &ours.resource_spans[0].scope_spans[0].spans[1];
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert_eq!(span.flags & 0x3ff, 0x303, "remote parent, sampled, random");
    }

    #[test]
    fn mixed_batches_group_server_spans_under_this_crates_scope() {
        let other = InstrumentationScope::builder("handler").build();
        let queued = vec![
            QueuedSpan::Server(Box::new(server_span(200, None))),
            QueuedSpan::Sdk(Box::new(sdk_span("child", &other, SpanId::from(42)))),
            QueuedSpan::Server(Box::new(server_span(201, None))),
        ];
        let request = decoded(&encode_request(&EncodedResource::default(), &queued));
        let groups = &request.resource_spans[0].scope_spans;
        assert_eq!(groups.len(), 2);
        let ours = groups
            .iter()
            .find(|g| g.scope.as_ref().map(|s| s.name.as_str()) == Some(SCOPE_NAME))
            .expect("our scope");
        assert_eq!(ours.spans.len(), 2);
    }

    #[test]
    fn the_writer_grows_and_an_empty_batch_is_a_valid_request() {
        let bytes = encode_request(&EncodedResource::default(), &[]);
        let request = decoded(&bytes);
        assert_eq!(request.resource_spans.len(), 1);
        assert!(request.resource_spans[0].scope_spans.is_empty());

        let mut writer = ReverseWriter::with_capacity(1);
        let long = "x".repeat(10_000);
        writer.message(1, |w| w.string(2, &long));
        let bytes = writer.finish();
        assert_eq!(bytes.len(), 1 + 2 + 1 + 2 + 10_000);
        assert_eq!(&bytes[..3], &[0x0a, 0x93, 0x4e]);
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut writer = ReverseWriter::with_capacity(1);
            writer.varint(value);
            let bytes = writer.finish();
            assert_eq!(bytes.len(), varint_len(value), "{value}");
            let decoded = prost::encoding::decode_varint(&mut &bytes[..]).expect("varint");
            assert_eq!(decoded, value);
        }
    }
}
