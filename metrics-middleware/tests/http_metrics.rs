//! The middleware seen from outside: requests through an Actix app, then the
//! rendered scrape.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::{call_and_read_body, call_service, init_service, read_body, TestRequest};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse};
use futures_util::stream;
use metrics_middleware::prometheus::Opts;
use metrics_middleware::{HttpMetrics, Naming};

fn metrics() -> HttpMetrics {
    HttpMetrics::builder()
        .process_metrics(false)
        .exclude_path("/healthz")
        .build()
        .expect("valid settings")
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

fn series_count(scrape: &str, name: &str) -> usize {
    scrape
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .count()
}

#[actix_web::test]
async fn labels_requests_by_route_template_and_masks_unmatched_paths() {
    let metrics = metrics();
    let app = init_service(
        App::new()
            .wrap(metrics.clone())
            .route("/users/{id}", web::get().to(|| async { "a user" }))
            .service(
                web::scope("/api").route("/items/{item}", web::post().to(HttpResponse::Created)),
            )
            .route("/healthz", web::get().to(HttpResponse::Ok)),
    )
    .await;

    for id in 0..5 {
        call_service(
            &app,
            TestRequest::get().uri(&format!("/users/{id}")).to_request(),
        )
        .await;
    }
    call_service(&app, TestRequest::post().uri("/api/items/x").to_request()).await;
    for n in 0..50 {
        let res = call_service(
            &app,
            TestRequest::get()
                .uri(&format!("/scan/{n}.php"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let brew = actix_web::http::Method::from_bytes(b"BREW").expect("token");
    call_service(
        &app,
        TestRequest::default()
            .method(brew)
            .uri("/users/1")
            .to_request(),
    )
    .await;
    call_service(&app, TestRequest::get().uri("/healthz").to_request()).await;

    let scrape = metrics.render();
    assert_eq!(
        sample(
            &scrape,
            r#"http_requests_total{method="GET",route="/users/{id}",status="200"}"#
        ),
        Some(5.0),
        "{scrape}"
    );
    assert_eq!(
        sample(
            &scrape,
            r#"http_requests_total{method="POST",route="/api/items/{item}",status="201"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            r#"http_requests_total{method="GET",route="<unmatched>",status="404"}"#
        ),
        Some(50.0)
    );
    // A made-up method on a real route: bounded label value, 404 from the
    // resource's default handler.
    assert!(scrape.contains(r#"method="_OTHER""#), "{scrape}");
    assert!(!scrape.contains("/scan/"), "raw paths leaked into labels");
    assert!(!scrape.contains("healthz"), "excluded path was recorded");
    assert_eq!(series_count(&scrape, "http_requests_total"), 4, "{scrape}");
    assert_eq!(
        sample(
            &scrape,
            r#"http_request_duration_seconds_count{method="GET",route="/users/{id}",status="200"}"#
        ),
        Some(5.0)
    );
    assert_eq!(sample(&scrape, "http_requests_in_flight"), Some(0.0));
}

#[actix_web::test]
async fn a_method_the_route_does_not_take_keeps_the_route_template() {
    let metrics = metrics();
    let app = init_service(
        App::new()
            .service(web::resource("/users/{id}").route(web::get().to(|| async { "a user" })))
            .wrap(metrics.clone()),
    )
    .await;
    let res = call_service(&app, TestRequest::delete().uri("/users/7").to_request()).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    drop(res); // the body: the request is recorded when it is done
    let scrape = metrics.render();
    assert_eq!(
        sample(
            &scrape,
            r#"http_requests_total{method="DELETE",route="/users/{id}",status="405"}"#
        ),
        Some(1.0),
        "{scrape}"
    );
    assert!(!scrape.contains("<unmatched>"), "{scrape}");
}

#[actix_web::test]
async fn unmasked_unmatched_paths_are_labelled_by_raw_path() {
    let metrics = HttpMetrics::builder()
        .process_metrics(false)
        .mask_unmatched(false)
        .build()
        .expect("valid");
    let app = init_service(App::new().wrap(metrics.clone())).await;
    call_service(&app, TestRequest::get().uri("/nowhere").to_request()).await;
    let scrape = metrics.render();
    assert!(scrape.contains(r#"route="/nowhere""#), "{scrape}");
}

#[actix_web::test]
async fn records_body_sizes_and_streaming_duration() {
    let metrics = metrics();
    let app = init_service(
        App::new()
            .wrap(metrics.clone())
            .route(
                "/stream",
                web::get().to(|| async {
                    let chunks = stream::unfold(0u8, |n| async move {
                        if n == 3 {
                            return None;
                        }
                        actix_web::rt::time::sleep(Duration::from_millis(40)).await;
                        Some((
                            Ok::<_, actix_web::Error>(Bytes::from(vec![b'x'; 1000])),
                            n + 1,
                        ))
                    });
                    HttpResponse::Ok().streaming(chunks)
                }),
            )
            .route("/echo", web::post().to(|body: Bytes| async move { body })),
    )
    .await;

    let res = call_service(&app, TestRequest::get().uri("/stream").to_request()).await;
    // The response head is out, but the body is not: not recorded yet.
    assert_eq!(
        sample(&metrics.render(), "http_requests_in_flight"),
        Some(1.0)
    );
    assert_eq!(read_body(res).await.len(), 3000);

    call_and_read_body(
        &app,
        TestRequest::post()
            .uri("/echo")
            .set_payload(vec![b'y'; 300])
            .to_request(),
    )
    .await;

    let scrape = metrics.render();
    assert_eq!(sample(&scrape, "http_requests_in_flight"), Some(0.0));
    let stream_time = sample(
        &scrape,
        r#"http_request_duration_seconds_sum{method="GET",route="/stream",status="200"}"#,
    )
    .expect("recorded");
    assert!(
        stream_time >= 0.12,
        "duration must cover the whole body: {stream_time}"
    );
    assert_eq!(
        sample(
            &scrape,
            r#"http_response_size_bytes_sum{method="GET",route="/stream",status="200"}"#
        ),
        Some(3000.0)
    );
    assert_eq!(
        sample(
            &scrape,
            r#"http_request_size_bytes_sum{method="POST",route="/echo"}"#
        ),
        Some(300.0)
    );
    assert_eq!(
        sample(
            &scrape,
            r#"http_response_size_bytes_sum{method="POST",route="/echo",status="200"}"#
        ),
        Some(300.0)
    );
}

/// A chunked request body through a real socket and Actix's HTTP/1 decoder:
/// without `Content-Length`, the middleware counts what the handler reads.
#[test]
fn chunked_request_bodies_are_counted_as_read() {
    use std::io::{Read, Write};

    let metrics = metrics();
    let app_metrics = metrics.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                App::new().wrap(app_metrics.clone()).route(
                    "/upload",
                    web::post().to(|body: Bytes| async move { body.len().to_string() }),
                )
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind loopback");
            let addr = server.addrs()[0];
            let server = server.run();
            addr_tx.send((addr, server.handle())).expect("test alive");
            server.await
        })
    });
    let (addr, handle) = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server started");

    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          4\r\n0123\r\n6\r\n456789\r\n0\r\n\r\n",
    )
    .expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\n10"), "{response}");

    // The metrics are recorded when the response body is dropped, right
    // after it is written; allow the server a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = metrics.render();
        if let Some(size) = sample(
            &scrape,
            r#"http_request_size_bytes_sum{method="POST",route="/upload"}"#,
        ) {
            assert_eq!(size, 10.0, "{scrape}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    actix_web::rt::System::new().block_on(handle.stop(true));
    server_thread
        .join()
        .expect("server thread")
        .expect("server ran");
}

#[actix_web::test]
async fn excluded_statuses_are_not_recorded_and_route_counters_count() {
    let metrics = HttpMetrics::builder()
        .process_metrics(false)
        .exclude_status(StatusCode::NOT_FOUND)
        .build()
        .expect("valid");
    let hello = metrics
        .route_counter(
            Opts::new("hello_requests_total", "Requests to /.")
                .const_label("app", "demo")
                .const_label("environment", "staging"),
        )
        .expect("registered");
    let app = init_service(
        App::new()
            .wrap(metrics.clone())
            .service(
                web::resource("/")
                    .wrap(hello.clone())
                    .to(|| async { "Hello" }),
            )
            .route("/other", web::get().to(|| async { "other" })),
    )
    .await;
    for _ in 0..3 {
        call_service(&app, TestRequest::get().uri("/").to_request()).await;
    }
    call_service(&app, TestRequest::get().uri("/other").to_request()).await;
    call_service(&app, TestRequest::get().uri("/missing").to_request()).await;

    let scrape = metrics.render();
    assert_eq!(
        sample(
            &scrape,
            r#"hello_requests_total{app="demo",environment="staging"}"#
        ),
        Some(3.0)
    );
    assert!(!scrape.contains(r#"status="404""#), "{scrape}");
    assert_eq!(hello.counter().get(), 3);
}

#[actix_web::test]
async fn flask_preset_reproduces_the_original_series() {
    let metrics = HttpMetrics::builder()
        .naming(Naming::flask_exporter())
        .process_metrics(false)
        .build()
        .expect("valid");
    let app = init_service(
        App::new()
            .wrap(metrics.clone())
            .route("/", web::get().to(|| async { "Hello World!" })),
    )
    .await;
    call_service(&app, TestRequest::get().uri("/").to_request()).await;
    let scrape = metrics.render();
    assert_eq!(
        sample(
            &scrape,
            r#"flask_http_request_total{method="GET",status="200"}"#
        ),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        sample(
            &scrape,
            r#"flask_http_request_duration_seconds_bucket{method="GET",path="/",status="200",le="0.075"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            &format!(
                r#"flask_exporter_info{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
}
