//! The response future: the request's trace context is current while the
//! application runs; when the response starts, the route names the metric
//! series and the span.
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::Error;
use pin_project_lite::pin_project;

use super::body::ObservedBody;
use super::observation::{Observation, Outcome};

pin_project! {
    /// The response future of [`ObservabilityService`](super::ObservabilityService).
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        // Boxed: actix moves the future and the response several times;
        // a pointer is cheaper to copy than the state.
        observation: Option<Box<Observation>>,
    }
}

impl<F> ObservedFuture<F> {
    pub(crate) fn new(inner: F, observation: Observation) -> Self {
        Self {
            inner,
            observation: Some(Box::new(observation)),
        }
    }

    /// An excluded request: passed through, nothing recorded.
    pub(crate) fn unobserved(inner: F) -> Self {
        Self {
            inner,
            observation: None,
        }
    }
}

impl<F, B> Future for ObservedFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<ObservedBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.observation.as_deref().and_then(Observation::context) {
            Some(cx) => {
                let _current = cx.clone().attach();
                ready!(this.inner.poll(task))
            }
            None => ready!(this.inner.poll(task)),
        };
        let Some(mut observation) = this.observation.take() else {
            return Poll::Ready(
                result.map(|res| res.map_body(|_, body| ObservedBody::new(body, None))),
            );
        };
        Poll::Ready(match result {
            Ok(res) => {
                observation.respond(res.status(), Some(&res));
                Ok(res.map_body(|_, body| ObservedBody::new(body, Some(observation))))
            }
            Err(err) => {
                // An error that no handler turned into a response: actix
                // makes one from it, without a body of ours. The route was
                // found when the request arrived.
                let status = err.as_response_error().status_code();
                observation.respond::<B>(status, None);
                observation.finish(0, Outcome::Complete);
                Err(err)
            }
        })
    }
}
