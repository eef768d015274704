//! A server span as the middleware records it: ids, two times and the HTTP
//! attributes in typed fields, the repeated strings shared by reference
//! count. It goes to the export thread as it is, where the OTLP encoder
//! writes it straight into the request, with no `SpanData`, no `KeyValue`
//! list and no SDK span object built on the request path. Exporters that
//! take the SDK's `SpanData` get a conversion ([`ServerSpan::to_span_data`]),
//! made on the export thread.
use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::propagation::W3cTraceState;

/// The attribute keys of the server span.
pub(crate) mod keys {
    pub(crate) const METHOD: &str = "http.request.method";
    pub(crate) const PATH: &str = "url.path";
    pub(crate) const PROTOCOL: &str = "network.protocol.version";
    pub(crate) const SCHEME: &str = "url.scheme";
    pub(crate) const SERVER_ADDRESS: &str = "server.address";
    pub(crate) const CLIENT_ADDRESS: &str = "client.address";
    pub(crate) const USER_AGENT: &str = "user_agent.original";
    pub(crate) const ROUTE: &str = "http.route";
}

/// The instrumentation scope of server spans.
pub(crate) const SCOPE_NAME: &str = "metrics-middleware";

/// The scope of server spans, as the SDK names it.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// A finished server span.
#[derive(Debug, Clone)]
pub(crate) struct ServerSpan {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) flags: TraceFlags,
    /// The caller's span, and whether it was remote (always, for a server
    /// span that has a parent).
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) trace_state: W3cTraceState,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// `{method} {route}`, or the method alone when no route matched.
    pub(crate) name: Cow<'static, str>,
    pub(crate) attributes: HttpAttributes,
}

/// A string attribute of the server span, kept as the protobuf bytes of
/// the `Span.attributes` field it becomes (tag, `KeyValue` with its key and
/// `AnyValue`): made once per distinct value by a worker's caches, copied
/// whole by the encoder. Cheap to clone.
#[derive(Clone)]
pub(crate) struct StrAttr {
    key: &'static str,
    encoded: EncodedAttr,
    /// Where the value starts in `encoded` (it ends it).
    value_start: u32,
}

/// An attribute's bytes: made for a value seen at run time (shared), or
/// once per process for a value from a fixed set (static: a copy of it is a
/// copy of a pointer, with no reference count to change).
#[derive(Clone)]
enum EncodedAttr {
    Shared(std::sync::Arc<[u8]>),
    Static(&'static [u8]),
}

impl std::ops::Deref for EncodedAttr {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Shared(bytes) => bytes,
            Self::Static(bytes) => bytes,
        }
    }
}

/// The attributes whose values come from fixed sets, made once.
struct FixedAttrs {
    methods: Vec<StrAttr>,
    protocols: Vec<StrAttr>,
    schemes: Vec<StrAttr>,
}

/// The request methods [`method_label`](crate::metrics::labels::method_label) names.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];
/// The protocol versions of `network.protocol.version`.
pub(crate) const PROTOCOLS: [&str; 5] = ["0.9", "1.0", "1.1", "2", "3"];
/// The schemes of `url.scheme`.
pub(crate) const SCHEMES: [&str; 2] = ["http", "https"];

fn fixed_attrs() -> &'static FixedAttrs {
    static FIXED: std::sync::OnceLock<FixedAttrs> = std::sync::OnceLock::new();
    FIXED.get_or_init(|| {
        // Leaked once per process: 17 small values that live as long as it.
        let make = |key: &'static str, values: &[&str]| {
            values
                .iter()
                .map(|value| {
                    let shared = StrAttr::new(key, value);
                    StrAttr {
                        key,
                        encoded: EncodedAttr::Static(Box::leak(shared.encoded.to_vec().into())),
                        value_start: shared.value_start,
                    }
                })
                .collect()
        };
        FixedAttrs {
            methods: make(keys::METHOD, &METHODS),
            protocols: make(keys::PROTOCOL, &PROTOCOLS),
            schemes: make(keys::SCHEME, &SCHEMES),
        }
    })
}

impl StrAttr {
    /// `http.request.method` for a method label.
    pub(crate) fn method(label: &str) -> Self {
        let index = METHODS
            .iter()
            .position(|m| *m == label)
            .unwrap_or(METHODS.len() - 1);
        fixed_attrs().methods[index].clone()
    }

    /// `network.protocol.version`, one of [`PROTOCOLS`].
    pub(crate) fn protocol(index: usize) -> Self {
        fixed_attrs().protocols[index.min(PROTOCOLS.len() - 1)].clone()
    }

    /// `url.scheme`: `https` if `secure`.
    pub(crate) fn scheme(secure: bool) -> Self {
        fixed_attrs().schemes[usize::from(secure)].clone()
    }

    /// `key` = `value`, encoded.
    pub(crate) fn new(key: &'static str, value: &str) -> Self {
        let varint_len = |n: usize| (70 - (n as u64 | 1).leading_zeros() as usize) / 7;
        let any_len = 1 + varint_len(value.len()) + value.len();
        let kv_len = 1 + varint_len(key.len()) + key.len() + 1 + varint_len(any_len) + any_len;
        let mut encoded = Vec::with_capacity(1 + varint_len(kv_len) + kv_len);
        let varint = |out: &mut Vec<u8>, mut n: usize| {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        };
        // Span.attributes = 9 { key = 1; value = 2 { string_value = 1 } }
        encoded.push(9 << 3 | 2);
        varint(&mut encoded, kv_len);
        encoded.push(1 << 3 | 2);
        varint(&mut encoded, key.len());
        encoded.extend_from_slice(key.as_bytes());
        encoded.push(2 << 3 | 2);
        varint(&mut encoded, any_len);
        encoded.push(1 << 3 | 2);
        varint(&mut encoded, value.len());
        let value_start = encoded.len() as u32;
        encoded.extend_from_slice(value.as_bytes());
        Self {
            key,
            encoded: EncodedAttr::Shared(encoded.into()),
            value_start,
        }
    }

    /// The value.
    pub(crate) fn value(&self) -> &str {
        // Written from a `&str` in `new`.
        std::str::from_utf8(&self.encoded[self.value_start as usize..]).unwrap_or_default()
    }

    /// The encoded `Span.attributes` field.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    fn key_value(&self) -> KeyValue {
        KeyValue::new(self.key, self.value().to_owned())
    }
}

impl std::fmt::Debug for StrAttr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?}", self.key, self.value())
    }
}

/// The stable HTTP server conventions, and what hooks added.
#[derive(Debug, Clone)]
pub(crate) struct HttpAttributes {
    /// `http.request.method`: a standard method or `_OTHER`.
    pub(crate) method: &'static str,
    /// The same, encoded.
    pub(crate) method_attr: StrAttr,
    /// `url.path`, bounded.
    pub(crate) path: StrAttr,
    /// `network.protocol.version`.
    pub(crate) protocol: StrAttr,
    /// `url.scheme`.
    pub(crate) scheme: StrAttr,
    /// `server.address` and `server.port`.
    pub(crate) server_address: Option<StrAttr>,
    pub(crate) server_port: Option<u16>,
    /// `client.address`.
    pub(crate) client_address: Option<StrAttr>,
    /// `user_agent.original`, bounded.
    pub(crate) user_agent: Option<StrAttr>,
    /// `http.response.status_code`; 0 until the response is known.
    pub(crate) status_code: u16,
    /// `http.route`, when a route matched.
    pub(crate) route: Option<StrAttr>,
    /// `error.type` for a failure that is not a status (the client went
    /// away, the body failed); a 5xx status is its own `error.type`.
    pub(crate) error: Option<&'static str>,
    /// Attributes added by the application's hooks.
    pub(crate) extra: Vec<KeyValue>,
}

impl HttpAttributes {
    /// The `error.type` value: the status code of a 5xx, else the failure.
    pub(crate) fn error_type(&self) -> Option<Cow<'static, str>> {
        if (500..600).contains(&self.status_code) {
            Some(Cow::Owned(self.status_code.to_string()))
        } else {
            self.error.map(Cow::Borrowed)
        }
    }

    /// Every attribute as OpenTelemetry's key-values, in a fixed order.
    pub(crate) fn to_key_values(&self) -> Vec<KeyValue> {
        let mut out = Vec::with_capacity(11 + self.extra.len());
        out.push(self.method_attr.key_value());
        out.push(self.path.key_value());
        out.push(self.protocol.key_value());
        out.push(self.scheme.key_value());
        if let Some(address) = &self.server_address {
            out.push(address.key_value());
        }
        if let Some(port) = self.server_port {
            out.push(KeyValue::new("server.port", i64::from(port)));
        }
        if let Some(client) = &self.client_address {
            out.push(client.key_value());
        }
        if let Some(agent) = &self.user_agent {
            out.push(agent.key_value());
        }
        if self.status_code != 0 {
            out.push(KeyValue::new(
                "http.response.status_code",
                i64::from(self.status_code),
            ));
        }
        if let Some(route) = &self.route {
            out.push(route.key_value());
        }
        if let Some(error) = self.error_type() {
            out.push(KeyValue::new("error.type", Value::String(error.into())));
        }
        out.extend(self.extra.iter().cloned());
        out
    }
}

impl ServerSpan {
    /// The span's status: an error for a 5xx (4xx are the client's errors,
    /// not the server span's, per the conventions) or a failed response.
    pub(crate) fn status(&self) -> Status {
        let code = self.attributes.status_code;
        if (500..600).contains(&code) {
            let reason = actix_web::http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("server error");
            Status::error(reason)
        } else if let Some(error) = self.attributes.error {
            Status::error(error)
        } else {
            Status::Unset
        }
    }

    /// The span as the SDK's `SpanData`, for exporters that take it.
    pub(crate) fn to_span_data(&self, scope: &InstrumentationScope) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                self.span_id,
                self.flags,
                false,
                self.trace_state.to_otel(),
            ),
            parent_span_id: self.parent_span_id.unwrap_or(SpanId::INVALID),
            parent_span_is_remote: self.parent_span_id.is_some(),
            span_kind: SpanKind::Server,
            name: self.name.clone(),
            start_time: self.start,
            end_time: self.end,
            attributes: self.attributes.to_key_values(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: self.status(),
            instrumentation_scope: scope.clone(),
        }
    }
}

/// A span waiting for export: a server span recorded by the middleware, or
/// a span the SDK ended (the application's own, the `tracing` bridge's,
/// the HTTP clients').
#[derive(Debug)]
pub(crate) enum QueuedSpan {
    Server(Box<ServerSpan>),
    Sdk(Box<SpanData>),
}

impl QueuedSpan {
    /// The span as `SpanData` (a conversion for server spans).
    pub(crate) fn into_span_data(self, scope: &InstrumentationScope) -> SpanData {
        match self {
            Self::Server(span) => span.to_span_data(scope),
            Self::Sdk(span) => *span,
        }
    }
}
