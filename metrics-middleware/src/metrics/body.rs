//! The response body wrapper that records a request when its body is done,
//! and the request payload wrapper that counts chunked request bodies.
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use futures_core::Stream;
use pin_project_lite::pin_project;

use super::instruments::{InFlightGuard, Series};
use super::labels::RouteLabel;
use super::middleware::{Shared, Worker};

/// How the request body is sized.
pub(crate) enum RequestBytes {
    /// From `Content-Length` (0 without a body).
    Known(u64),
    /// Counted while the handler reads a chunked body.
    Counted(Rc<Cell<u64>>),
}

impl RequestBytes {
    fn get(&self) -> u64 {
        match self {
            Self::Known(n) => *n,
            Self::Counted(counted) => counted.get(),
        }
    }
}

/// What is known of a request from its start until its response head.
pub(crate) struct Pending {
    pub(crate) worker: Rc<Worker>,
    pub(crate) start: Instant,
    pub(crate) method: &'static str,
    pub(crate) request_bytes: RequestBytes,
    pub(crate) in_flight: InFlightGuard,
}

impl Pending {
    /// Called with the response status; `None` if that status is excluded
    /// (the in-flight gauge goes down at once).
    pub(crate) fn respond(
        self,
        status: StatusCode,
        route: impl FnOnce(&Shared) -> RouteLabel,
    ) -> Option<Completion> {
        let shared = &self.worker.shared;
        if shared.excluded_statuses.contains(&status) {
            return None;
        }
        let series = self.worker.series(self.method, &route(shared), status);
        Some(Completion {
            series,
            start: self.start,
            request_bytes: self.request_bytes,
            _in_flight: self.in_flight,
        })
    }
}

/// A request whose response has started; recorded when its body is done.
pub(crate) struct Completion {
    series: Rc<Series>,
    start: Instant,
    request_bytes: RequestBytes,
    /// Dropped with the completion, after recording.
    _in_flight: InFlightGuard,
}

impl Completion {
    pub(crate) fn finish(self, response_bytes: u64) {
        let duration_seconds = self.start.elapsed().as_secs_f64();
        self.series
            .record(duration_seconds, self.request_bytes.get(), response_bytes);
    }
}

pin_project! {
    /// A response body that counts its bytes and records the request's
    /// metrics when it is dropped: after the last byte was written, or when
    /// the client went away. So the duration covers streaming the whole body.
    pub struct RecordingBody<B> {
        #[pin]
        body: B,
        bytes: u64,
        completion: Option<Completion>,
    }

    impl<B> PinnedDrop for RecordingBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(completion) = this.completion.take() {
                completion.finish(*this.bytes);
            }
        }
    }
}

impl<B> RecordingBody<B> {
    pub(crate) fn new(body: B, completion: Option<Completion>) -> Self {
        Self {
            body,
            bytes: 0,
            completion,
        }
    }
}

impl<B: MessageBody> MessageBody for RecordingBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let chunk = ready!(this.body.poll_next(cx));
        if let Some(Ok(bytes)) = &chunk {
            *this.bytes += bytes.len() as u64;
        }
        Poll::Ready(chunk)
    }
}

pin_project! {
    /// A request payload that counts the bytes the handler reads.
    pub(crate) struct CountingPayload {
        #[pin]
        inner: Payload,
        counted: Rc<Cell<u64>>,
    }
}

impl CountingPayload {
    pub(crate) fn wrap(inner: Payload) -> (Payload, Rc<Cell<u64>>) {
        let counted = Rc::new(Cell::new(0));
        let stream = Self {
            inner,
            counted: Rc::clone(&counted),
        };
        (
            Payload::Stream {
                payload: Box::pin(stream),
            },
            counted,
        )
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
