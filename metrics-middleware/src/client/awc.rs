//! awc, through its own middleware (`awc::ClientBuilder::wrap`).
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use actix_http::RequestHeadType;
use actix_web::dev::{forward_ready, Service};
use actix_web::http::header::HeaderMap;
use awc::error::SendRequestError;
use awc::{ConnectRequest, ConnectResponse};
use pin_project_lite::pin_project;

use super::{CallOutcome, CallTarget, ClientCall, ClientTracer};
use crate::telemetry::propagation::HeaderInjector;

/// awc's middleware: a client span for each call, in the current trace, and
/// the trace headers on the request; see the [module docs](super).
///
/// ```no_run
/// # fn client(observability: &metrics_middleware::Observability) -> awc::Client {
/// use metrics_middleware::client::AwcTracing;
///
/// awc::Client::builder()
///     .wrap(AwcTracing::new(observability.client_tracer()))
///     .finish()
/// # }
/// ```
///
/// WebSocket connections (awc's tunnels) pass through untraced.
#[derive(Debug, Clone)]
pub struct AwcTracing {
    tracer: ClientTracer,
}

impl AwcTracing {
    /// Calls traced by `tracer`.
    pub fn new(tracer: ClientTracer) -> Self {
        Self { tracer }
    }
}

impl<S> awc::middleware::Transform<S, ConnectRequest> for AwcTracing
where
    S: Service<ConnectRequest, Response = ConnectResponse, Error = SendRequestError>,
{
    type Transform = AwcTracingService<S>;

    fn new_transform(self, service: S) -> Self::Transform {
        AwcTracingService {
            service,
            tracer: Rc::new(self.tracer),
        }
    }
}

/// The service [`AwcTracing`] wraps awc's connector in.
#[derive(Debug)]
pub struct AwcTracingService<S> {
    service: S,
    tracer: Rc<ClientTracer>,
}

impl<S> Service<ConnectRequest> for AwcTracingService<S>
where
    S: Service<ConnectRequest, Response = ConnectResponse, Error = SendRequestError>,
{
    type Response = ConnectResponse;
    type Error = SendRequestError;
    type Future = TracedCall<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ConnectRequest) -> Self::Future {
        let ConnectRequest::Client(mut head, body, addr) = req else {
            return TracedCall {
                inner: self.service.call(req),
                call: None,
            };
        };
        let call = match &mut head {
            RequestHeadType::Owned(head) => {
                let url = head.uri.to_string();
                let target = target(&head.method, &head.uri, &url);
                self.tracer
                    .start(&target, &mut HeaderInjector(&mut head.headers))
            }
            RequestHeadType::Rc(head, extra) => {
                let url = head.uri.to_string();
                let target = target(&head.method, &head.uri, &url);
                let extra = extra.get_or_insert_with(HeaderMap::new);
                self.tracer.start(&target, &mut HeaderInjector(extra))
            }
        };
        TracedCall {
            inner: self.service.call(ConnectRequest::Client(head, body, addr)),
            call: Some(call),
        }
    }
}

fn target<'a>(
    method: &'a actix_web::http::Method,
    uri: &'a actix_web::http::Uri,
    url: &'a str,
) -> CallTarget<'a> {
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    CallTarget {
        method: method.as_str(),
        host: uri.host(),
        port: uri.port_u16().or(default_port),
        url,
    }
}

pin_project! {
    /// An awc call under way; its client span ends with it.
    pub struct TracedCall<F> {
        #[pin]
        inner: F,
        call: Option<ClientCall>,
    }
}

impl<F> Future for TracedCall<F>
where
    F: Future<Output = Result<ConnectResponse, SendRequestError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(task));
        if let Some(call) = this.call.take() {
            match &result {
                Ok(ConnectResponse::Client(response)) => {
                    call.end(CallOutcome::Status(response.status().as_u16()));
                }
                Ok(ConnectResponse::Tunnel(head, _)) => {
                    call.end(CallOutcome::Status(head.status.as_u16()));
                }
                Err(err) => call.end(CallOutcome::Failed {
                    kind: failure_kind(err),
                    message: &err.to_string(),
                }),
            }
        }
        Poll::Ready(result)
    }
}

/// A low-cardinality name for `error.type`.
fn failure_kind(err: &SendRequestError) -> &'static str {
    match err {
        SendRequestError::Url(_) => "invalid_url",
        SendRequestError::Connect(_) => "connect",
        SendRequestError::Send(_) => "send",
        SendRequestError::Response(_) => "response",
        SendRequestError::Http(_) => "http",
        SendRequestError::H2(_) => "h2",
        SendRequestError::Timeout => "timeout",
        SendRequestError::Body(_) => "body",
        _ => "_OTHER",
    }
}
