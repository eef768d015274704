use std::future::{ready, Ready};

use actix_web::dev::{forward_ready, Service, ServiceRequest, Transform};
use prometheus::IntCounter;

/// Counts the requests that reach the resource or scope it wraps. Made by
/// [`HttpMetrics::route_counter`](super::HttpMetrics::route_counter).
#[derive(Debug, Clone)]
pub struct RouteCounter {
    counter: IntCounter,
}

impl RouteCounter {
    pub(crate) fn new(counter: IntCounter) -> Self {
        Self { counter }
    }

    /// The counter, to read or to increment by hand.
    pub fn counter(&self) -> &IntCounter {
        &self.counter
    }
}

impl<S> Transform<S, ServiceRequest> for RouteCounter
where
    S: Service<ServiceRequest>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Transform = RouteCounterService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RouteCounterService {
            service,
            counter: self.counter.clone(),
        }))
    }
}

/// The middleware service made by [`RouteCounter`].
#[derive(Debug)]
pub struct RouteCounterService<S> {
    service: S,
    counter: IntCounter,
}

impl<S> Service<ServiceRequest> for RouteCounterService<S>
where
    S: Service<ServiceRequest>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        self.counter.inc();
        self.service.call(req)
    }
}
