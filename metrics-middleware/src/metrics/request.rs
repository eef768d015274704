//! One request's metrics, from its start to the end of its response body,
//! as the middleware drives them.
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_core::Stream;
use pin_project_lite::pin_project;

use super::instruments::{InFlightGuard, Series};
use super::labels::RouteLabel;
use super::middleware::Shared;
use super::series_cache::SeriesCache;
use crate::middleware::routes::Route;

/// A request being measured.
pub(crate) struct RequestMetrics {
    in_flight: Option<InFlightGuard>,
    /// Counted as the body is read; `None` for a request without one.
    request_bytes: Option<Rc<Cell<u64>>>,
    series: Option<Rc<Series>>,
}

impl RequestMetrics {
    /// The request has arrived: it is in flight, and the bytes of its body
    /// are counted as the application reads them (a declared
    /// `Content-Length` is not trusted).
    pub(crate) fn start(shared: &Shared, method: &'static str, req: &mut ServiceRequest) -> Self {
        let request_bytes = (!matches!(req.parts().1, Payload::None)).then(|| {
            let counted = Rc::new(Cell::new(0));
            let payload = CountingPayload {
                inner: req.take_payload(),
                counted: Rc::clone(&counted),
            };
            req.set_payload(Payload::Stream {
                payload: Box::pin(payload),
            });
            counted
        });
        Self {
            in_flight: Some(shared.instruments.start(method)),
            request_bytes,
            series: None,
        }
    }

    /// The response has started with `status`: the series are resolved,
    /// unless that status is excluded (then the request leaves the in-flight
    /// gauge at once and is not recorded).
    /// `raw_path` is the request's path, kept only when unmatched requests
    /// are labelled by it (`mask_unmatched(false)`).
    pub(crate) fn respond(
        &mut self,
        shared: &Shared,
        cache: &SeriesCache,
        method: &'static str,
        route: Option<&Route>,
        raw_path: Option<&str>,
        status: StatusCode,
    ) {
        if shared.excluded_statuses.contains(&status) {
            self.in_flight = None;
            return;
        }
        let (label, slot) = match (route, raw_path) {
            (Some(route), _) => (
                RouteLabel::Template(route.template.as_str()),
                route.id.map(|id| id + 1),
            ),
            // Raw paths are unbounded: never cached.
            (None, Some(path)) if !shared.mask_unmatched => (RouteLabel::RawPath(path), None),
            (None, _) => (RouteLabel::Unmatched, Some(0)),
        };
        let label = shared.route_label(&label);
        self.series = Some(cache.get(
            &shared.instruments,
            &shared.exemplars,
            slot,
            method,
            label,
            status,
        ));
    }

    /// The bytes of the request body read so far.
    pub(crate) fn request_bytes(&self) -> u64 {
        self.request_bytes
            .as_ref()
            .map_or(0, |counted| counted.get())
    }

    /// Records the request: `duration_seconds` is `None` for a connection
    /// upgraded to another protocol (a websocket session), whose length is
    /// no request latency.
    /// `sampled` are the trace and span ids of an exported span, for the
    /// duration's exemplar.
    pub(crate) fn finish(
        self,
        duration_seconds: Option<f64>,
        response_bytes: u64,
        sampled: Option<([u8; 16], [u8; 8])>,
    ) {
        if let Some(series) = &self.series {
            series.record(
                duration_seconds,
                self.request_bytes(),
                response_bytes,
                sampled,
            );
        }
    }
}

pin_project! {
    /// A request payload that counts the bytes the handler reads.
    struct CountingPayload {
        #[pin]
        inner: Payload,
        counted: Rc<Cell<u64>>,
    }
}

impl Stream for CountingPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let chunk = ready!(this.inner.poll_next(cx));
        if let Some(Ok(bytes)) = &chunk {
            this.counted.set(this.counted.get() + bytes.len() as u64);
        }
        Poll::Ready(chunk)
    }
}
