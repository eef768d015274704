//! Extension points for the server span, after tower-http's: a trait per
//! callback, an impl for closures, and a `Default*` type that adds nothing.
//!
//! The stable HTTP conventions are always recorded; hooks add what only the
//! application knows (a tenant, a user id, a cache outcome) or rename the
//! span. They run only for sampled requests, so an unsampled request pays
//! nothing for them. A handler can hand a value to [`OnResponse`] through
//! the response's extensions.
//!
//! ```
//! use actix_web::dev::ServiceRequest;
//! use actix_web::HttpRequest;
//! use metrics_middleware::middleware::{ResponseParts, SpanAttributes};
//!
//! // At the start: from the request.
//! let on_request = |req: &ServiceRequest, span: &mut SpanAttributes<'_>| {
//!     if let Some(tenant) = req.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
//!         span.set("tenant.id", tenant.to_owned());
//!     }
//! };
//! // At the end: from the response (and what the handler put in its extensions).
//! struct CacheHit(bool);
//! let on_response = |_: &HttpRequest, res: &ResponseParts<'_>, span: &mut SpanAttributes<'_>| {
//!     if let Some(CacheHit(hit)) = res.extensions().get::<CacheHit>() {
//!         span.set("cache.hit", *hit);
//!     }
//! };
//! # let _ = (on_request, on_response);
//! ```
use std::borrow::Cow;
use std::cell::Ref;

use actix_web::dev::{Extensions, ResponseHead, ServiceRequest};
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use opentelemetry::{Key, KeyValue, Value};

use crate::telemetry::record::ServerSpan;

/// The most attributes hooks may add to one span; more are dropped.
pub const MAX_HOOK_ATTRIBUTES: usize = 32;

/// The server span, as hooks see it: add attributes, rename it.
pub struct SpanAttributes<'a> {
    span: &'a mut ServerSpan,
}

impl<'a> SpanAttributes<'a> {
    pub(crate) fn new(span: &'a mut ServerSpan) -> Self {
        Self { span }
    }

    /// Adds an attribute (at most [`MAX_HOOK_ATTRIBUTES`] per span).
    pub fn set(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        let extra = &mut self.span.attributes.extra;
        if extra.len() < MAX_HOOK_ATTRIBUTES {
            extra.push(KeyValue::new(key, value));
        }
    }

    /// Renames the span (`{method} {route}` by default). Keep names of low
    /// cardinality: never a raw path or an id.
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        self.span.name = name.into();
    }

    /// The span's trace id, in hexadecimal.
    pub fn trace_id(&self) -> String {
        self.span.trace_id.to_string()
    }
}

impl std::fmt::Debug for SpanAttributes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanAttributes")
            .field("name", &self.span.name)
            .finish_non_exhaustive()
    }
}

/// What [`OnResponse`] sees of a response: its head and its extensions.
pub struct ResponseParts<'a> {
    head: &'a ResponseHead,
    extensions: Ref<'a, Extensions>,
}

impl<'a> ResponseParts<'a> {
    pub(crate) fn new(head: &'a ResponseHead, extensions: Ref<'a, Extensions>) -> Self {
        Self { head, extensions }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The response's extensions, where a handler can leave values for the
    /// hook (`HttpResponse::extensions_mut`).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

impl std::fmt::Debug for ResponseParts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseParts")
            .field("status", &self.head.status)
            .finish_non_exhaustive()
    }
}

/// Called when a sampled request starts, after the conventions' attributes.
pub trait OnRequest: Send + Sync + 'static {
    /// Adds to the span of `request`.
    fn on_request(&self, request: &ServiceRequest, span: &mut SpanAttributes<'_>);
}

/// Called when the response of a sampled request starts.
pub trait OnResponse: Send + Sync + 'static {
    /// Adds to the span of `request`, from `response`.
    fn on_response(
        &self,
        request: &HttpRequest,
        response: &ResponseParts<'_>,
        span: &mut SpanAttributes<'_>,
    );
}

impl<F> OnRequest for F
where
    F: Fn(&ServiceRequest, &mut SpanAttributes<'_>) + Send + Sync + 'static,
{
    fn on_request(&self, request: &ServiceRequest, span: &mut SpanAttributes<'_>) {
        self(request, span);
    }
}

impl<F> OnResponse for F
where
    F: Fn(&HttpRequest, &ResponseParts<'_>, &mut SpanAttributes<'_>) + Send + Sync + 'static,
{
    fn on_response(
        &self,
        request: &HttpRequest,
        response: &ResponseParts<'_>,
        span: &mut SpanAttributes<'_>,
    ) {
        self(request, response, span);
    }
}

/// Adds nothing to the conventions' attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultOnRequest;

impl OnRequest for DefaultOnRequest {
    fn on_request(&self, _: &ServiceRequest, _: &mut SpanAttributes<'_>) {}
}

/// Adds nothing to the conventions' attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultOnResponse;

impl OnResponse for DefaultOnResponse {
    fn on_response(&self, _: &HttpRequest, _: &ResponseParts<'_>, _: &mut SpanAttributes<'_>) {}
}
