//! The hello service of the original Flask demo, rebuilt on
//! `metrics-middleware`. Run with: `cargo run -p flask-app-rs`
//!
//! - `GET /` answers `Hello World!`, logs `Received hello request !` and
//!   counts `flask_app_hello_requests_total{app="flask-app",environment="staging"}`;
//!   with `CHAOS_TARGET_PERCENT` set, that share of requests fails with a
//!   random status in 400..=500.
//! - `GET /hello/{name}` greets by name (a route with a path parameter, to see
//!   route templates in the metrics).
//! - `GET /delay/{ms}` answers after `ms` milliseconds (at most 10 s): slow
//!   requests for latency panels, and for watching a graceful shutdown drain.
//! - `GET /downstream` calls the service of `DOWNSTREAM_URL` (404 when it is
//!   unset, 502 when it cannot be reached) through the traced client, so two
//!   instances chained show one trace across services.
//! - `GET /healthz` for Kubernetes probes; neither measured nor traced.
//! - Metrics on their own port, with the Flask exporter's names.
//! - One server span per request, exported as `OTEL_*` says, and log lines
//!   that carry the request's trace (see `metrics_middleware::telemetry`).
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{
    guard, web, App, FromRequest, Handler, HttpResponse, HttpResponseBuilder, Responder,
};
use metrics_middleware::prometheus::Opts;
use metrics_middleware::{
    BuildError, HttpMetrics, Naming, Observability, ObservabilityBuilder, RouteCounter,
};

mod chaos;
pub mod downstream;
pub mod settings;

pub use chaos::Chaos;
pub use downstream::Downstream;

/// The service's observability: the Flask exporter's metric names, no
/// telemetry for `/healthz` (probes), its name and version.
pub fn observability() -> ObservabilityBuilder {
    Observability::builder()
        .service(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
        .http_metrics(HttpMetrics::builder().naming(Naming::flask_exporter()))
        .exclude_path("/healthz")
}

/// What every worker's app shares.
#[derive(Debug, Clone)]
pub struct AppState {
    observability: Observability,
    hello_counter: RouteCounter,
    chaos: Chaos,
    downstream: Option<Downstream>,
}

impl AppState {
    /// Registers the hello counter on `observability`'s registry.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] if the counter cannot be registered.
    pub fn new(observability: Observability, chaos: Chaos) -> Result<Self, BuildError> {
        let hello_counter = observability.route_counter(
            Opts::new("flask_app_hello_requests_total", "Number of hello requests")
                .const_label("app", "flask-app")
                .const_label("environment", "staging"),
        )?;
        Ok(Self {
            observability,
            hello_counter,
            chaos,
            downstream: None,
        })
    }

    /// `GET /downstream` calls `downstream`.
    #[must_use]
    pub fn with_downstream(mut self, downstream: Downstream) -> Self {
        self.downstream = Some(downstream);
        self
    }

    /// Metrics, traces and logs.
    pub fn observability(&self) -> &Observability {
        &self.observability
    }
}

/// The application, apart from any server, so that tests can call it in-process.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (chaos, counter) = (state.chaos, state.hello_counter.counter().clone());
    let downstream = state.downstream;
    App::new()
        // Counted where the original's decorator counted: in the view, so
        // only requests that reach it (not a `POST /` answered 405).
        .service(get_and_head("/", move || {
            counter.inc();
            hello(chaos)
        }))
        .service(get_and_head("/hello/{name}", hello_name))
        .service(get_and_head("/delay/{ms}", delay))
        .service(get_and_head("/healthz", healthz))
        .service(get_and_head("/downstream", move || {
            let downstream = downstream.clone();
            async move {
                match downstream {
                    Some(downstream) => downstream.call().await,
                    None => HttpResponse::NotFound().body("no DOWNSTREAM_URL configured"),
                }
            }
        }))
        // The last `wrap` is the outermost: it sees every request first.
        .wrap(state.observability.middleware())
}

/// A resource that answers GET and HEAD, as Flask's routes do, and any other
/// method with a 405 naming both in `Allow`.
///
/// The guard is a plain comparison: Actix's method guards record themselves
/// in the request's extensions (an allocation and a map insert, ~450
/// instructions a request) to build `Allow` on a 405, which this resource
/// answers itself.
fn get_and_head<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::route().guard(GetOrHead).to(handler))
        .default_service(web::to(|| async {
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, "GET, HEAD"))
                .finish()
        }))
}

/// Matches GET and HEAD requests.
struct GetOrHead;

impl guard::Guard for GetOrHead {
    fn check(&self, ctx: &guard::GuardContext<'_>) -> bool {
        matches!(ctx.head().method, Method::GET | Method::HEAD)
    }
}

async fn hello(chaos: Chaos) -> HttpResponse {
    log::info!("Received hello request !");
    match chaos.draw() {
        Some(status) => HttpResponse::build(status).body("Chaos!"),
        None => HttpResponse::Ok().body("Hello World!"),
    }
}

async fn hello_name(name: web::Path<String>) -> HttpResponse {
    let mut answer = HttpResponse::Ok();
    answer.insert_header(header::ContentType::plaintext());
    echoed(answer, format!("Hello {name}!"))
}

/// A text answer that carries what a client sent (the path here, the
/// downstream service's answer for `/downstream`): never to be sniffed by a
/// browser into anything but text. Set on these answers alone, not by a
/// middleware over every route: `DefaultHeaders` cost every request several
/// hundred instructions (a future around the handler's, a header map insert).
pub(crate) fn echoed(
    mut builder: HttpResponseBuilder,
    body: impl MessageBody + 'static,
) -> HttpResponse {
    builder
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// The longest `/delay/{ms}` sleeps, so that a client cannot hold a worker's
/// connection for long.
const MAX_DELAY: Duration = Duration::from_secs(10);

async fn delay(ms: web::Path<u64>) -> String {
    let delay = Duration::from_millis(*ms).min(MAX_DELAY);
    actix_web::rt::time::sleep(delay).await;
    format!("Waited {} ms", delay.as_millis())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::test::{call_and_read_body, call_service, init_service, TestRequest};

    use super::*;

    fn state(chaos: u8) -> AppState {
        let config = metrics_middleware::telemetry::TelemetryConfig::from_lookup(|name| {
            (name == "OTEL_TRACES_EXPORTER").then(|| "none".to_owned())
        })
        .expect("valid");
        let observability = observability()
            .telemetry_config(config)
            .without_logging()
            .build()
            .expect("observability");
        AppState::new(observability, Chaos::new(chaos).expect("valid")).expect("metrics")
    }

    #[actix_web::test]
    async fn hello_answers_and_is_counted() {
        let state = state(0);
        let app = init_service(app(state.clone())).await;
        let body = call_and_read_body(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(body, "Hello World!");
        let res = call_service(
            &app,
            TestRequest::get()
                .uri("/hello/%3Cb%3Eada%3C%2Fb%3E")
                .to_request(),
        )
        .await;
        assert_eq!(
            res.headers()
                .get("x-content-type-options")
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
        let body =
            call_and_read_body(&app, TestRequest::get().uri("/hello/ada").to_request()).await;
        assert_eq!(body, "Hello ada!");
        let res = call_service(&app, TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);

        let scrape = state.observability().render();
        assert!(
            scrape.contains(
                "flask_app_hello_requests_total{app=\"flask-app\",environment=\"staging\"} 1\n"
            ),
            "{scrape}"
        );
        assert!(scrape.contains("path=\"/hello/{name}\""), "{scrape}");
        assert!(!scrape.contains("healthz"), "{scrape}");
    }

    #[actix_web::test]
    async fn routes_answer_head_and_other_methods_get_405_with_allow() {
        let state = state(0);
        let app = init_service(app(state.clone())).await;
        let res = call_service(
            &app,
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri("/hello/ada")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = call_service(&app, TestRequest::post().uri("/").to_request()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        let allow = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
        // Only requests that reach the view are counted, as in the original.
        let scrape = state.observability().render();
        assert!(
            !scrape.contains(
                "flask_app_hello_requests_total{app=\"flask-app\",environment=\"staging\"} 1\n"
            ),
            "{scrape}"
        );
    }

    #[actix_web::test]
    async fn full_chaos_fails_every_hello_with_a_4xx_or_5xx() {
        let app = init_service(app(state(100))).await;
        for _ in 0..50 {
            let res = call_service(&app, TestRequest::get().uri("/").to_request()).await;
            assert!(
                (400..=500).contains(&res.status().as_u16()),
                "{}",
                res.status()
            );
        }
    }
}
