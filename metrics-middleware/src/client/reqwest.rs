//! reqwest, through reqwest-middleware.
use http::Extensions;
use opentelemetry::propagation::Injector;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};

use super::{CallOutcome, CallTarget, ClientTracer};

/// reqwest-middleware's middleware: a client span for each call, in the
/// current trace, and the trace headers on the request; see the
/// [module docs](super).
#[derive(Debug, Clone)]
pub struct ReqwestTracing {
    tracer: ClientTracer,
}

impl ReqwestTracing {
    /// Calls traced by `tracer`.
    pub fn new(tracer: ClientTracer) -> Self {
        Self { tracer }
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestTracing {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let url = req.url().clone();
        let method = req.method().clone();
        let target = CallTarget {
            method: method.as_str(),
            host: url.host_str(),
            port: url.port_or_known_default(),
            url: url.as_str(),
        };
        let call = self
            .tracer
            .start(&target, &mut HeadersInjector(req.headers_mut()));
        let result = next.run(req, extensions).await;
        match &result {
            Ok(response) => call.end(CallOutcome::Status(response.status().as_u16())),
            Err(reqwest_middleware::Error::Reqwest(err)) => call.end(CallOutcome::Failed {
                kind: failure_kind(err),
                message: &err.to_string(),
            }),
            Err(err) => call.end(CallOutcome::Failed {
                kind: "_OTHER",
                message: &err.to_string(),
            }),
        }
        result
    }
}

/// A low-cardinality name for `error.type`.
fn failure_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_redirect() {
        "redirect"
    } else if err.is_body() {
        "body"
    } else if err.is_decode() {
        "decode"
    } else if err.is_request() {
        "request"
    } else {
        "_OTHER"
    }
}

/// Writes headers into reqwest's (http 1.x) header map.
struct HeadersInjector<'a>(&'a mut HeaderMap);

impl Injector for HeadersInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}
