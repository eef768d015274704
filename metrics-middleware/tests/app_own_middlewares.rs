//! An app with middlewares of its own: an authentication middleware that
//! redirects to `/login` (an early return that never reaches a handler) and
//! answers 401 with an error, a timeout middleware that gives up with a
//! 408 error, and routes kept out by prefix and by route template. Wired
//! with the README's quickstart lines: the observability middleware is the
//! last `wrap`, so it sees what the others return.
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{error, web, App, HttpResponse, HttpServer};
use metrics_middleware::{Exclude, Observability};
use test_support::otlp::{OtlpReceiver, ReceivedSpan};
use test_support::{agent, free_port};

mod common;
use common::{span, telemetry_to};

/// Sends visitors without a session to the login page; refuses a login
/// without credentials with an error (not a response).
async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let has_session = req
        .headers()
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|cookies| cookies.split("; ").any(|c| c.starts_with("session=")));
    if req.path().starts_with("/account") && !has_session {
        let redirect = HttpResponse::Found()
            .insert_header(("location", "/login"))
            .finish();
        return Ok(req.into_response(redirect).map_into_right_body());
    }
    if req.path() == "/login" && req.headers().get("authorization").is_none() {
        return Err(error::ErrorUnauthorized("credentials needed"));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Gives up on a request after 100 ms with a 408 error.
async fn time_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match actix_web::rt::time::timeout(Duration::from_millis(100), next.call(req)).await {
        Ok(response) => response,
        Err(_) => Err(error::ErrorRequestTimeout("too slow")),
    }
}

async fn slow() -> &'static str {
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    "finally"
}

#[actix_web::test]
async fn early_returns_and_inner_errors_are_counted_traced_and_keep_their_route() {
    let receiver = OtlpReceiver::start();
    let metrics_port = free_port();
    let observability = Observability::builder()
        .service("shop", "2.0.0")
        .exclude(Exclude::path_prefix("/static/"))
        .exclude(Exclude::route("/internal/{job}"))
        .telemetry_config(telemetry_to(&receiver, "grpc"))
        .without_logging()
        .metrics_address(([127, 0, 0, 1], metrics_port))
        .install()
        .expect("observability installed");
    let middleware = observability.middleware();
    let port = free_port();
    let server = HttpServer::new(move || {
        App::new()
            .route("/account/{id}", web::get().to(|| async { "your account" }))
            .route("/login", web::post().to(|| async { "welcome" }))
            .route("/slow", web::get().to(slow))
            .route("/static/{file:.*}", web::get().to(|| async { "a file" }))
            .route("/internal/{job}", web::post().to(|| async { "started" }))
            .wrap(from_fn(time_limit))
            .wrap(from_fn(authenticate))
            .wrap(middleware.clone()) // last: outermost
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .expect("bind")
    .run();
    let handle = server.handle();
    let served = actix_web::rt::spawn(server);

    let base = format!("http://127.0.0.1:{port}");
    let statuses = web::block(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        let status = |response: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
            response.expect("answer").status().as_u16()
        };
        vec![
            status(agent.get(format!("{base}/account/7")).call()),
            status(
                agent
                    .get(format!("{base}/account/7"))
                    .header("cookie", "session=abc")
                    .call(),
            ),
            status(agent.post(format!("{base}/login")).send_empty()),
            status(agent.get(format!("{base}/slow")).call()),
            status(agent.get(format!("{base}/static/css/site.css")).call()),
            status(agent.post(format!("{base}/internal/reindex")).send_empty()),
        ]
    })
    .await
    .expect("requests");
    assert_eq!(statuses, [302, 200, 401, 408, 200, 200]);

    let spans = receiver.wait_for_spans("four server spans", Duration::from_secs(10), |s| {
        s.len() >= 4
    });
    assert_eq!(
        spans.len(),
        4,
        "the excluded requests make no span: {spans:#?}"
    );
    // The redirect never reached a handler, yet has its route.
    let account: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name() == "GET /account/{id}")
        .collect();
    let statuses: Vec<String> = account
        .iter()
        .filter_map(|s| s.attribute("http.response.status_code"))
        .collect();
    assert!(statuses.contains(&"302".to_owned()) && statuses.contains(&"200".to_owned()));
    // Errors from inner middlewares keep the route they matched.
    let login = span(&spans, "POST /login");
    assert_eq!(login.attribute("http.route").as_deref(), Some("/login"));
    assert_eq!(
        login.attribute("http.response.status_code").as_deref(),
        Some("401")
    );
    let timed_out = span(&spans, "GET /slow");
    assert_eq!(
        timed_out.attribute("http.response.status_code").as_deref(),
        Some("408")
    );

    let (_, scrape) = test_support::get(
        &agent(),
        &format!("http://127.0.0.1:{metrics_port}/metrics"),
    )
    .expect("scrape");
    for series in [
        "http_requests_total{method=\"GET\",route=\"/account/{id}\",status=\"302\"} 1",
        "http_requests_total{method=\"GET\",route=\"/account/{id}\",status=\"200\"} 1",
        "http_requests_total{method=\"POST\",route=\"/login\",status=\"401\"} 1",
        "http_requests_total{method=\"GET\",route=\"/slow\",status=\"408\"} 1",
    ] {
        assert!(scrape.contains(series), "{series} in:\n{scrape}");
    }
    assert!(!scrape.contains("<unmatched>"), "{scrape}");
    assert!(
        !scrape.contains("/static/") && !scrape.contains("/internal/"),
        "{scrape}"
    );

    handle.stop(true).await;
    served.await.expect("server task").expect("server");
    observability.shutdown().expect("shutdown");
}
