//! The whole tracing path over the wire: `Telemetry` built from `OTEL_*`
//! settings, the real opentelemetry-otlp exporter (gRPC and HTTP/protobuf)
//! behind our processor, and a receiver built from the official
//! opentelemetry-proto definitions.
use std::time::Duration;

use actix_web::test::{call_and_read_body, call_service, init_service, TestRequest};
use actix_web::{web, App, HttpResponse};
use metrics_middleware::prometheus::Registry;
use metrics_middleware::telemetry::{Telemetry, TelemetryConfig, TraceContext};
use metrics_middleware::text_format::render;
use opentelemetry::trace::{TraceContextExt, Tracer};
use opentelemetry_sdk::trace::SdkTracer;
use test_support::otlp::{OtlpReceiver, ReceivedSpan, SpanKind, StatusCode};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// Google's header: a trace id in hex, a span id in decimal, `o=1` sampled.
const CLOUD_TRACE: &str = "105445aa7843bc8bf206b12000100000/1234567890123456789;o=1";

fn telemetry(vars: &[(&str, String)], registry: &Registry) -> Telemetry {
    let config = TelemetryConfig::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    })
    .expect("valid settings");
    Telemetry::builder()
        .config(config)
        .default_service_name("otlp-test")
        .service_version("9.9.9")
        .without_gcp_detection()
        .registry(registry.clone())
        .build()
        .expect("telemetry")
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/hello/{name}", web::get().to(|| async { "Hello" }))
        .route("/fail", web::get().to(HttpResponse::InternalServerError))
        .route(
            "/work",
            web::get().to(
                |trace: TraceContext, tracer: web::Data<SdkTracer>| async move {
                    // A handler's own child span, parented on the request's.
                    let mut child = tracer.start_with_context("load user", trace.context());
                    opentelemetry::trace::Span::end(&mut child);
                    trace.trace_id().unwrap_or_default()
                },
            ),
        );
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

#[actix_web::test]
async fn spans_reach_an_otlp_grpc_receiver_with_conventions_resource_and_parents() {
    let receiver = OtlpReceiver::start();
    let registry = Registry::new();
    let telemetry = telemetry(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test".into(),
            ),
            ("OTEL_TRACES_SAMPLER", "always_on".into()),
        ],
        &registry,
    );
    let app = init_service(App::new().wrap(telemetry.middleware()).configure(routes)).await;

    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/hello/ada")
            .insert_header(("user-agent", "otlp-test/1"))
            .to_request(),
    )
    .await;
    drop(call_service(&app, TestRequest::get().uri("/fail").to_request()).await);
    drop(call_service(&app, TestRequest::get().uri("/nowhere").to_request()).await);
    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/hello/w3c")
            .insert_header(("traceparent", TRACEPARENT))
            .to_request(),
    )
    .await;
    call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/hello/google")
            .insert_header(("x-cloud-trace-context", CLOUD_TRACE))
            .to_request(),
    )
    .await;
    telemetry
        .shutdown(Duration::from_secs(10))
        .expect("flushed and stopped");

    let spans =
        receiver.wait_for_spans("5 server spans", Duration::from_secs(10), |s| s.len() >= 5);
    assert_eq!(spans.len(), 5, "{spans:#?}");
    assert!(spans.iter().all(|s| s.transport == "grpc"));
    assert!(spans.iter().all(|s| s.kind() == SpanKind::Server));

    let hello = spans
        .iter()
        .find(|s| s.attribute("url.path").as_deref() == Some("/hello/ada"))
        .expect("the hello span");
    assert_eq!(hello.name(), "GET /hello/{name}");
    let attributes = hello.attributes();
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/hello/{name}"),
        ("http.response.status_code", "200"),
        ("url.scheme", "http"),
        ("user_agent.original", "otlp-test/1"),
        ("network.protocol.version", "1.1"),
    ] {
        assert_eq!(
            attributes.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    assert!(attributes.contains_key("server.address"), "{attributes:?}");
    assert_eq!(hello.status(), StatusCode::Unset);
    assert!(hello.parent_span_id().is_empty(), "a root span");
    assert_eq!(hello.scope, "metrics-middleware");
    assert_eq!(
        hello.resource.get("service.name").map(String::as_str),
        Some("otlp-test")
    );
    assert_eq!(
        hello.resource.get("service.version").map(String::as_str),
        Some("9.9.9")
    );
    assert_eq!(
        hello
            .resource
            .get("deployment.environment")
            .map(String::as_str),
        Some("test")
    );

    // 5xx is an error with error.type; 4xx is not (server-span convention).
    let fail = by_name(&spans, "GET /fail");
    assert_eq!(fail.status(), StatusCode::Error);
    assert_eq!(fail.attribute("error.type").as_deref(), Some("500"));
    let missing = spans
        .iter()
        .find(|s| s.attribute("http.response.status_code").as_deref() == Some("404"))
        .expect("the 404 span");
    assert_eq!(missing.status(), StatusCode::Unset);
    assert_eq!(missing.attribute("error.type"), None);
    assert_eq!(
        missing.name(),
        "GET",
        "no route, so no template in the name"
    );

    let w3c = spans
        .iter()
        .find(|s| s.attribute("url.path").as_deref() == Some("/hello/w3c"))
        .expect("the traceparent span");
    assert_eq!(w3c.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(w3c.parent_span_id(), "00f067aa0ba902b7");

    let google = spans
        .iter()
        .find(|s| s.attribute("url.path").as_deref() == Some("/hello/google"))
        .expect("the X-Cloud-Trace-Context span");
    assert_eq!(google.trace_id(), "105445aa7843bc8bf206b12000100000");
    assert_eq!(
        google.parent_span_id(),
        format!("{:016x}", 1_234_567_890_123_456_789_u64)
    );

    let scrape = render(&registry);
    assert!(scrape.contains("otel_spans_exported_total 5"), "{scrape}");
}

#[actix_web::test]
async fn spans_reach_an_otlp_http_receiver_and_handlers_add_child_spans() {
    let receiver = OtlpReceiver::start();
    let registry = Registry::new();
    let telemetry = telemetry(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ],
        &registry,
    );
    let app = init_service(
        App::new()
            .app_data(web::Data::new(telemetry.tracer().clone()))
            .wrap(telemetry.middleware())
            .configure(routes),
    )
    .await;
    let trace_id = call_and_read_body(&app, TestRequest::get().uri("/work").to_request()).await;
    telemetry
        .shutdown(Duration::from_secs(10))
        .expect("flushed");

    let spans = receiver.wait_for_spans("2 spans", Duration::from_secs(10), |s| s.len() >= 2);
    assert!(spans.iter().all(|s| s.transport == "http"));
    let server = by_name(&spans, "GET /work");
    let child = by_name(&spans, "load user");
    assert_eq!(server.trace_id(), String::from_utf8_lossy(&trace_id));
    assert_eq!(child.trace_id(), server.trace_id());
    assert_eq!(child.parent_span_id(), server.span_id());
    assert_eq!(child.kind(), SpanKind::Internal);
}

#[actix_web::test]
async fn an_unsampled_request_still_carries_the_callers_trace_id() {
    let receiver = OtlpReceiver::start();
    let registry = Registry::new();
    let telemetry = telemetry(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint()),
            // Parent-based by default: the caller said "not sampled".
        ],
        &registry,
    );
    let app = init_service(App::new().wrap(telemetry.middleware()).route(
        "/id",
        web::get().to(|trace: TraceContext| async move {
            let cx = trace.context();
            format!(
                "{} {}",
                trace.trace_id().unwrap_or_default(),
                cx.span().span_context().is_sampled()
            )
        }),
    ))
    .await;
    let body = call_and_read_body(
        &app,
        TestRequest::get()
            .uri("/id")
            .insert_header((
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ))
            .to_request(),
    )
    .await;
    assert_eq!(body, "4bf92f3577b34da6a3ce929d0e0e4736 false");
    telemetry
        .shutdown(Duration::from_secs(10))
        .expect("flushed");
    assert!(receiver.spans().is_empty(), "nothing exported");
}

#[actix_web::test]
async fn gzip_compression_works_over_both_transports() {
    let receiver = OtlpReceiver::start();
    for (protocol, endpoint) in [
        ("grpc", receiver.grpc_endpoint()),
        ("http/protobuf", receiver.http_endpoint()),
    ] {
        let registry = Registry::new();
        let telemetry = telemetry(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into()),
                ("OTEL_TRACES_SAMPLER", "always_on".into()),
            ],
            &registry,
        );
        let app = init_service(App::new().wrap(telemetry.middleware()).configure(routes)).await;
        for _ in 0..3 {
            call_and_read_body(&app, TestRequest::get().uri("/hello/gz").to_request()).await;
        }
        telemetry
            .shutdown(Duration::from_secs(10))
            .expect("flushed");
    }
    let spans = receiver.wait_for_spans("6 spans", Duration::from_secs(10), |s| s.len() >= 6);
    assert_eq!(spans.len(), 6);
    assert!(spans.iter().all(|s| s.compressed), "every export gzipped");
    assert_eq!(spans.iter().filter(|s| s.transport == "grpc").count(), 3);
    assert!(spans.iter().all(|s| s.name() == "GET /hello/{name}"));
}
