//! Two services chained: `shop` calls `inventory` through the reqwest
//! middleware and through awc's, both exporting to a real OTLP receiver.
//! One trace holds shop's server span, its client span and inventory's
//! server span, each parented on the one before; `tracestate` goes through
//! unchanged; a caller that did not sample stays unsampled downstream.
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use metrics_middleware::client::{AwcTracing, ReqwestTracing};
use metrics_middleware::telemetry::TelemetryConfig;
use metrics_middleware::Observability;
use serde_json::{json, Value};
use test_support::otlp::{OtlpReceiver, ReceivedSpan, SpanKind};
use test_support::{agent, free_port};

fn observability(name: &str, receiver: &OtlpReceiver) -> Observability {
    let endpoint = receiver.http_endpoint();
    let config = TelemetryConfig::from_lookup(|variable| {
        Some(match variable {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => endpoint.clone(),
            "OTEL_BSP_SCHEDULE_DELAY" => "100".to_owned(),
            _ => return None,
        })
    })
    .expect("valid settings");
    Observability::builder()
        .service(name, "1.0.0")
        .telemetry_config(config)
        .without_logging()
        .without_metrics_server()
        .build()
        .expect("observability")
}

/// Inventory answers with the trace headers it was sent.
async fn stock(req: HttpRequest) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    HttpResponse::Ok().json(json!({
        "traceparent": header("traceparent"),
        "tracestate": header("tracestate"),
        "x-cloud-trace-context": header("x-cloud-trace-context"),
    }))
}

/// Serves the app `factory` makes on a free port: the port and the handle.
macro_rules! serve {
    ($factory:expr) => {{
        let port = free_port();
        let server = HttpServer::new($factory)
            .workers(1)
            .bind(("127.0.0.1", port))
            .expect("bind")
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (port, handle)
    }};
}

fn by_kind<'a>(spans: &'a [ReceivedSpan], trace: &str, kind: SpanKind) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.trace_id() == trace && s.kind() == kind)
        .collect()
}

#[actix_web::test]
async fn one_trace_across_two_services_through_reqwest_and_awc() {
    let receiver = OtlpReceiver::start();
    let inventory = observability("inventory", &receiver);
    let shop = observability("shop", &receiver);

    let inventory_middleware = inventory.middleware();
    let (inventory_port, inventory_handle) = serve!(move || {
        App::new()
            .route("/stock/{id}", web::get().to(stock))
            .wrap(inventory_middleware.clone())
    });
    let stock_url = format!("http://127.0.0.1:{inventory_port}/stock/7");

    let reqwest_client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ReqwestTracing::new(shop.client_tracer()))
        .build();
    let shop_middleware = shop.middleware();
    let tracer = shop.client_tracer();
    let (shop_port, shop_handle) = serve!(move || {
        let (reqwest_client, url) = (reqwest_client.clone(), stock_url.clone());
        let (tracer, awc_url) = (tracer.clone(), stock_url.clone());
        App::new()
            .route(
                "/via-reqwest",
                web::get().to(move || {
                    let (client, url) = (reqwest_client.clone(), url.clone());
                    async move {
                        let answer: Value = client
                            .get(&url)
                            .send()
                            .await
                            .map_err(actix_web::error::ErrorBadGateway)?
                            .json()
                            .await
                            .map_err(actix_web::error::ErrorBadGateway)?;
                        Ok::<_, actix_web::Error>(HttpResponse::Ok().json(answer))
                    }
                }),
            )
            .route(
                "/via-awc",
                web::get().to(move || {
                    let (tracer, url) = (tracer.clone(), awc_url.clone());
                    async move {
                        let client = awc::Client::builder()
                            .wrap(AwcTracing::new(tracer))
                            .finish();
                        let answer: Value = client
                            .get(&url)
                            .send()
                            .await
                            .map_err(actix_web::error::ErrorBadGateway)?
                            .json()
                            .await
                            .map_err(actix_web::error::ErrorBadGateway)?;
                        Ok::<_, actix_web::Error>(HttpResponse::Ok().json(answer))
                    }
                }),
            )
            .wrap(shop_middleware.clone())
    });

    let caller_trace = [
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "0af7651916cd43dd8448eb211c80319c",
    ];
    let unsampled_trace = "a3ce929d0e0e47364bf92f3577b34da6";
    let answers = web::block(move || {
        let agent = agent();
        let call = |path: &str, traceparent: String| {
            let mut response = agent
                .get(format!("http://127.0.0.1:{shop_port}{path}"))
                .header("traceparent", traceparent)
                .header("tracestate", "vendor=abc,other=1")
                .call()
                .expect("call the shop");
            assert_eq!(response.status(), 200);
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().expect("body"))
                    .expect("JSON");
            body
        };
        vec![
            call(
                "/via-reqwest",
                format!("00-{}-00f067aa0ba902b7-03", caller_trace[0]),
            ),
            call(
                "/via-awc",
                format!("00-{}-00f067aa0ba902b7-01", caller_trace[1]),
            ),
            // Not sampled, with level 2's random flag.
            call(
                "/via-reqwest",
                format!("00-{unsampled_trace}-00f067aa0ba902b7-02"),
            ),
            call(
                "/via-awc",
                format!("00-{unsampled_trace}-00f067aa0ba902b7-00"),
            ),
        ]
    })
    .await
    .expect("calls");

    let spans = receiver.wait_for_spans("six spans", Duration::from_secs(10), |s| s.len() >= 6);
    for (trace, answer, flags) in [
        (caller_trace[0], &answers[0], "03"),
        (caller_trace[1], &answers[1], "01"),
    ] {
        let servers = by_kind(&spans, trace, SpanKind::Server);
        let clients = by_kind(&spans, trace, SpanKind::Client);
        assert_eq!((servers.len(), clients.len()), (2, 1), "{spans:#?}");
        let shop_span = servers
            .iter()
            .find(|s| s.name() == "GET /via-reqwest" || s.name() == "GET /via-awc")
            .expect("shop's server span");
        let inventory_span = servers
            .iter()
            .find(|s| s.name() == "GET /stock/{id}")
            .expect("inventory's server span");
        let client = clients[0];
        assert_eq!(shop_span.parent_span_id(), "00f067aa0ba902b7");
        assert_eq!(client.parent_span_id(), shop_span.span_id());
        assert_eq!(inventory_span.parent_span_id(), client.span_id());
        assert_eq!(client.name(), "GET");
        assert_eq!(
            client.attribute("http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(
            client.attribute("server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            client.attribute("server.port"),
            Some(inventory_port.to_string())
        );
        assert_eq!(
            client.attribute("url.full"),
            Some(format!("http://127.0.0.1:{inventory_port}/stock/7"))
        );
        assert_eq!(
            client.attribute("http.response.status_code").as_deref(),
            Some("200")
        );
        // What inventory was sent: the client span as parent, the flags
        // (level 2's random flag too) and the caller's tracestate whole.
        assert_eq!(
            answer["traceparent"],
            format!("00-{trace}-{}-{flags}", client.span_id())
        );
        assert_eq!(answer["tracestate"], "vendor=abc,other=1");
        assert!(
            answer["x-cloud-trace-context"]
                .as_str()
                .is_some_and(|v| v.starts_with(&format!("{trace}/")) && v.ends_with(";o=1")),
            "{answer}"
        );
    }
    // The unsampled caller: nothing exported, and "not sampled" sent on.
    assert!(
        spans.iter().all(|s| s.trace_id() != unsampled_trace),
        "{spans:#?}"
    );
    for (answer, flags) in answers[2..].iter().zip(["-02", "-00"]) {
        let traceparent = answer["traceparent"].as_str().expect("traceparent sent");
        assert!(
            traceparent.starts_with(&format!("00-{unsampled_trace}-"))
                && traceparent.ends_with(flags)
                && !traceparent.contains("00f067aa0ba902b7"),
            "a new parent id, the caller's flags: {answer}"
        );
        assert_eq!(answer["tracestate"], "vendor=abc,other=1");
    }

    shop_handle.stop(true).await;
    inventory_handle.stop(true).await;
    shop.shutdown().expect("shop shutdown");
    inventory.shutdown().expect("inventory shutdown");
}
