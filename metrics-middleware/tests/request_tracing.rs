//! Server spans seen from outside: an Actix app wrapped in RequestTracing,
//! spans going through our processor to a collecting SDK exporter.
use std::sync::{Arc, Mutex};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{call_and_read_body, call_service, init_service, TestRequest};
use actix_web::{web, App, HttpResponse};
use metrics_middleware::telemetry::{
    ParentBasedRoot, Sampler, Telemetry, TelemetryConfig, TraceContext,
};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().expect("lock").extend(batch);
        Ok(())
    }
}

fn provider(sampler: Sampler) -> (Telemetry, Collect) {
    let collect = Collect::default();
    let telemetry = Telemetry::builder()
        .config(TelemetryConfig::from_lookup(|_| None).expect("defaults"))
        .without_gcp_detection()
        .sampler(sampler)
        .span_exporter(collect.clone())
        .build()
        .expect("telemetry");
    (telemetry, collect)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn app_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/{id}", web::get().to(|| async { "a user" }))
        .route("/fail", web::get().to(HttpResponse::InternalServerError))
        .route(
            "/trace-id",
            web::get()
                .to(|trace: TraceContext| async move { trace.trace_id().unwrap_or_default() }),
        );
}

/// The routes above, wrapped in `RequestTracing` with `provider`'s tracer.
async fn traced_app(
    telemetry: &Telemetry,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    init_service(
        App::new()
            .configure(app_routes)
            .wrap(telemetry.middleware()),
    )
    .await
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[actix_web::test]
async fn one_server_span_per_request_with_the_http_conventions() {
    let (provider, collect) = provider(Sampler::AlwaysOn);
    let app = traced_app(&provider).await;
    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/users/7?x=1")
            .insert_header(("user-agent", "curl/8"))
            .to_request(),
    )
    .await;
    drop(call_service(&app, TestRequest::get().uri("/fail").to_request()).await);
    drop(call_service(&app, TestRequest::get().uri("/missing").to_request()).await);
    let trace_id = call_and_read_body(&app, TestRequest::get().uri("/trace-id").to_request()).await;
    provider.provider().force_flush().expect("flushed");

    let spans = collect.0.lock().expect("lock").clone();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let user = spans
        .iter()
        .find(|s| s.name == "GET /users/{id}")
        .expect("named by route");
    assert_eq!(user.span_kind, SpanKind::Server);
    for (key, value) in [
        ("http.request.method", Value::from("GET")),
        ("http.route", Value::from("/users/{id}")),
        ("url.path", Value::from("/users/7")),
        ("url.scheme", Value::from("http")),
        ("http.response.status_code", Value::I64(200)),
        ("user_agent.original", Value::from("curl/8")),
        ("network.protocol.version", Value::from("1.1")),
    ] {
        assert_eq!(attribute(user, key), Some(&value), "{key}: {user:#?}");
    }
    assert!(attribute(user, "server.address").is_some(), "{user:#?}");
    assert_eq!(user.status, Status::Unset);

    let fail = spans
        .iter()
        .find(|s| s.name == "GET /fail")
        .expect("fail span");
    assert!(
        matches!(fail.status, Status::Error { .. }),
        "5xx is an error: {fail:#?}"
    );
    assert_eq!(attribute(fail, "error.type"), Some(&Value::from("500")));

    // Unmatched: named by the method alone, and a 4xx is not the server's error.
    let missing = spans
        .iter()
        .find(|s| s.name == "GET")
        .expect("unmatched span");
    assert_eq!(
        attribute(missing, "http.response.status_code"),
        Some(&Value::I64(404))
    );
    assert_eq!(missing.status, Status::Unset);
    assert!(
        attribute(missing, "error.type").is_none() && attribute(missing, "http.route").is_none()
    );

    let handler_span = spans
        .iter()
        .find(|s| s.name == "GET /trace-id")
        .expect("span");
    assert_eq!(
        trace_id,
        handler_span.span_context.trace_id().to_string(),
        "the handler sees its span"
    );
}

#[actix_web::test]
async fn spans_join_the_callers_trace() {
    let (provider, collect) = provider(Sampler::ParentBased(ParentBasedRoot::AlwaysOn));
    let app = traced_app(&provider).await;
    let from_w3c = call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/trace-id")
            .insert_header(("traceparent", TRACEPARENT))
            .to_request(),
    )
    .await;
    let from_google = call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/trace-id")
            .insert_header((
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/1234567890;o=1",
            ))
            .to_request(),
    )
    .await;
    let malformed = call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/trace-id")
            .insert_header(("traceparent", "00-zz-01"))
            .to_request(),
    )
    .await;
    // A caller that decided not to sample: parent-based sampling follows it.
    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/users/1")
            .insert_header((
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ))
            .to_request(),
    )
    .await;
    provider.provider().force_flush().expect("flushed");

    assert_eq!(from_w3c, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(from_google, "105445aa7843bc8bf206b12000100000");
    assert_eq!(malformed.len(), 32, "a malformed header starts a new trace");
    assert_ne!(malformed, from_w3c);
    let spans = collect.0.lock().expect("lock").clone();
    assert_eq!(
        spans.len(),
        3,
        "the unsampled request is not exported: {spans:#?}"
    );
    let w3c = spans
        .iter()
        .find(|s| s.span_context.trace_id().to_string() == from_w3c)
        .expect("w3c span");
    assert_eq!(w3c.parent_span_id.to_string(), "00f067aa0ba902b7");
    let google = spans
        .iter()
        .find(|s| s.span_context.trace_id().to_string() == from_google)
        .expect("span");
    assert_eq!(
        u64::from_be_bytes(google.parent_span_id.to_bytes()),
        1_234_567_890
    );
}

#[actix_web::test]
async fn unsampled_requests_export_nothing_and_still_serve() {
    let (provider, collect) = provider(Sampler::AlwaysOff);
    let app = traced_app(&provider).await;
    for _ in 0..20 {
        let body = call_and_read_body(&app, TestRequest::get().uri("/users/3").to_request()).await;
        assert_eq!(body, "a user");
    }
    provider.provider().force_flush().expect("flushed");
    assert!(collect.0.lock().expect("lock").is_empty());
}

#[actix_web::test]
async fn behind_a_load_balancer_the_forwarded_headers_name_client_and_server() {
    let (provider, collect) = provider(Sampler::AlwaysOn);
    let app = traced_app(&provider).await;
    for _ in 0..2 {
        // Twice: the second answer comes from the worker's remembered values.
        call_and_read_body(
            &app,
            TestRequest::get()
                .uri("/users/7")
                .insert_header(("x-forwarded-for", "203.0.113.9, 10.0.0.1"))
                .insert_header(("x-forwarded-proto", "https"))
                .insert_header(("x-forwarded-host", "shop.example:8443"))
                .insert_header(("host", "10.0.0.5:8080"))
                .to_request(),
        )
        .await;
    }
    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/users/8")
            .insert_header(("host", "[2001:db8::5]:8080"))
            .peer_addr("[2001:db8::9]:50000".parse().expect("address"))
            .to_request(),
    )
    .await;
    provider.provider().force_flush().expect("flushed");
    let spans = collect.0.lock().expect("lock").clone();
    assert_eq!(spans.len(), 3);
    for span in &spans[..2] {
        let text = |key| attribute(span, key).map(|v| v.as_str().into_owned());
        assert_eq!(text("client.address").as_deref(), Some("203.0.113.9"));
        assert_eq!(text("url.scheme").as_deref(), Some("https"));
        assert_eq!(text("server.address").as_deref(), Some("shop.example"));
        assert_eq!(attribute(span, "server.port"), Some(&Value::I64(8443)));
    }
    let direct = &spans[2];
    let text = |key| attribute(direct, key).map(|v| v.as_str().into_owned());
    assert_eq!(text("client.address").as_deref(), Some("2001:db8::9"));
    assert_eq!(text("url.scheme").as_deref(), Some("http"));
    assert_eq!(text("server.address").as_deref(), Some("2001:db8::5"));
    assert_eq!(attribute(direct, "server.port"), Some(&Value::I64(8080)));
}

#[actix_web::test]
async fn excluded_paths_make_no_span() {
    let (provider, collect) = provider(Sampler::AlwaysOn);
    let app = init_service(
        App::new()
            .configure(app_routes)
            .wrap(provider.middleware().exclude_path("/users/1")),
    )
    .await;
    let body = call_and_read_body(&app, TestRequest::get().uri("/users/1").to_request()).await;
    assert_eq!(body, "a user");
    call_and_read_body(&app, TestRequest::get().uri("/users/2").to_request()).await;
    provider.provider().force_flush().expect("flushed");
    let spans = collect.0.lock().expect("lock").clone();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(
        attribute(&spans[0], "url.path").map(|v| v.as_str().into_owned()),
        Some("/users/2".to_owned())
    );
}

#[actix_web::test]
async fn a_hostile_tracestate_is_dropped_and_a_valid_one_kept_whole() {
    let (provider, collect) = provider(Sampler::ParentBased(ParentBasedRoot::AlwaysOn));
    let app = traced_app(&provider).await;
    // 100 kB, 25,000 members: discarded unread, the trace itself continues.
    let hostile = "a=b,".repeat(25_000);
    let trace_id = call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/trace-id")
            .insert_header(("traceparent", TRACEPARENT))
            .insert_header(("tracestate", hostile.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/users/1")
            .insert_header(("traceparent", TRACEPARENT))
            .insert_header(("tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"))
            .to_request(),
    )
    .await;
    provider.provider().force_flush().expect("flushed");
    let spans = collect.0.lock().expect("lock").clone();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let hostile_span = spans
        .iter()
        .find(|s| s.name == "GET /trace-id")
        .expect("span");
    assert_eq!(hostile_span.span_context.trace_state().header(), "");
    let valid = spans
        .iter()
        .find(|s| s.name == "GET /users/{id}")
        .expect("span");
    assert_eq!(
        valid.span_context.trace_state().header(),
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
}
