//! The response body wrapper: counts the bytes handed to the connection,
//! keeps the trace context current while a streamed body produces them, and
//! finishes the observation when the body is dropped (after its last byte,
//! or when the client went away).
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use pin_project_lite::pin_project;

use super::observation::{Observation, Outcome};

pin_project! {
    /// A response body under observation.
    pub struct ObservedBody<B> {
        #[pin]
        body: B,
        bytes: u64,
        // The size the body announced, if it did.
        expected: Option<u64>,
        outcome: Outcome,
        observation: Option<Box<Observation>>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut observation) = this.observation.take() {
                // A HEAD response sends no body, whatever the handler made.
                let bytes = if observation.is_head() { 0 } else { *this.bytes };
                observation.finish(bytes, *this.outcome);
            }
        }
    }
}

impl<B: MessageBody> ObservedBody<B> {
    pub(crate) fn new(body: B, observation: Option<Box<Observation>>) -> Self {
        // A body with nothing to send is complete from the start: the
        // connection may never poll it.
        let (outcome, expected) = match body.size() {
            BodySize::None | BodySize::Sized(0) => (Outcome::Complete, Some(0)),
            BodySize::Sized(n) => (Outcome::Incomplete, Some(n)),
            BodySize::Stream => (Outcome::Incomplete, None),
        };
        Self {
            body,
            bytes: 0,
            expected,
            outcome,
            observation,
        }
    }
}

impl<B: MessageBody> MessageBody for ObservedBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        task: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        // A streamed body runs application code (a stream, a channel's
        // producer side): its log lines belong to the request's trace. A
        // body of known size is bytes already made.
        let streaming = this.expected.is_none();
        let cx = this
            .observation
            .as_deref()
            .filter(|_| streaming)
            .and_then(Observation::context);
        let chunk = match cx {
            Some(cx) => {
                let _current = cx.clone().attach();
                this.body.poll_next(task)
            }
            None => this.body.poll_next(task),
        };
        match &chunk {
            Poll::Ready(Some(Ok(bytes))) => {
                *this.bytes += bytes.len() as u64;
                // A sized body may not be polled again once its bytes are out.
                if *this.expected == Some(*this.bytes) && *this.outcome == Outcome::Incomplete {
                    *this.outcome = Outcome::Complete;
                }
            }
            Poll::Ready(Some(Err(_))) => *this.outcome = Outcome::BodyError,
            Poll::Ready(None) => {
                if *this.outcome == Outcome::Incomplete {
                    *this.outcome = Outcome::Complete;
                }
            }
            Poll::Pending => {}
        }
        chunk
    }
}
