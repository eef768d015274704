//! A streaming and WebSocket app under `#[tokio::main]`'s runtime (not
//! actix's `System`), wired with the README's quickstart lines: the scrape
//! server runs on a thread of its own, log lines from inside a streamed body
//! and from a WebSocket session task carry the request's trace, and the
//! long-lived WebSocket request is counted but kept out of the latency
//! histogram.
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt as _;
use metrics_middleware::logging::{LogFormat, Logging};
use metrics_middleware::telemetry::TraceContext;
use metrics_middleware::Observability;
use serde_json::Value;
use test_support::otlp::OtlpReceiver;
use test_support::{agent, free_port, LogCapture};

mod common;
use common::{span, telemetry_to};

/// Three lines, each made (and logged) when the connection asks for it.
async fn numbers() -> HttpResponse {
    let chunks = futures_util::stream::iter(1..=3).then(|n| async move {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        log::info!("sending chunk {n}");
        Ok::<_, std::convert::Infallible>(Bytes::from(format!("{n}\n")))
    });
    HttpResponse::Ok().streaming(chunks)
}

/// Echoes text messages from a session task that outlives the handler.
async fn echo(
    req: HttpRequest,
    body: web::Payload,
    room: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, mut messages) = actix_ws::handle(&req, body)?;
    let room = room.into_inner();
    actix_web::rt::spawn(TraceContext::current().instrument(async move {
        while let Some(Ok(message)) = messages.recv().await {
            match message {
                actix_ws::Message::Text(text) => {
                    log::info!("echo in {room}");
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                actix_ws::Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = session.close(None).await;
    }));
    Ok(response)
}

#[test]
fn under_tokio_main_streams_and_websockets_keep_their_trace() {
    let receiver = OtlpReceiver::start();
    let logs = LogCapture::default();
    let (port, metrics_port) = (free_port(), free_port());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let for_logs = logs.clone();
    let observability = runtime.block_on(async {
        // What `#[tokio::main] async fn main` runs.
        let observability = Observability::builder()
            .service("live", "0.3.0")
            .telemetry_config(telemetry_to(&receiver, "http/protobuf"))
            .logging(
                Logging::builder()
                    .format(LogFormat::Json)
                    .writer(move || for_logs.clone()),
            )
            .metrics_address(([127, 0, 0, 1], metrics_port))
            .install()
            .expect("observability installed");
        let middleware = observability.middleware();
        let server = HttpServer::new(move || {
            App::new()
                .route("/numbers", web::get().to(numbers))
                .route("/ws/{room}", web::get().to(echo))
                .wrap(middleware.clone())
        })
        .workers(1)
        .bind(("127.0.0.1", port))
        .expect("bind")
        .run();
        let handle = server.handle();
        let served = tokio::spawn(server);

        let (body, echoed, scrape) = tokio::task::spawn_blocking(move || {
            let agent = agent();
            let (_, body) =
                test_support::get(&agent, &format!("http://127.0.0.1:{port}/numbers"))
                    .expect("GET /numbers");
            let echoed = test_support::websocket::echo(
                ([127, 0, 0, 1], port).into(),
                "/ws/lobby",
                &[],
                "hello",
            );
            // The session ends when the client's close frame is answered.
            std::thread::sleep(Duration::from_millis(200));
            let (_, scrape) =
                test_support::get(&agent, &format!("http://127.0.0.1:{metrics_port}/metrics"))
                    .expect("scrape");
            (body, echoed, scrape)
        })
        .await
        .expect("client");
        assert_eq!(body, "1\n2\n3\n");
        assert_eq!(echoed, "hello");

        assert!(
            scrape.contains(
                "http_requests_total{method=\"GET\",route=\"/ws/{room}\",status=\"101\"} 1"
            ),
            "{scrape}"
        );
        assert!(
            scrape.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/numbers\""),
            "{scrape}"
        );
        // A WebSocket session is not a latency: never observed.
        assert!(
            !scrape.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/ws/{room}\",status=\"101\"} 1"),
            "{scrape}"
        );
        handle.stop(true).await;
        served.await.expect("server task").expect("server");
        observability
    });

    let spans = receiver.wait_for_spans("both server spans", Duration::from_secs(10), |s| {
        s.len() >= 2
    });
    let stream = span(&spans, "GET /numbers");
    let socket = span(&spans, "GET /ws/{room}");
    assert_eq!(
        socket.attribute("http.response.status_code").as_deref(),
        Some("101")
    );
    observability.shutdown().expect("shutdown");
    drop(runtime);

    let trace_of = |line: &Value| line["trace_id"].as_str().unwrap_or_default().to_owned();
    let chunks: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("sending chunk"))
        })
        .collect();
    assert_eq!(chunks.len(), 3, "{}", logs.text());
    for line in &chunks {
        assert_eq!(trace_of(line), stream.trace_id(), "{line}");
        assert_eq!(line["span_id"], stream.span_id(), "{line}");
    }
    let echoes = logs.with_message("echo in lobby");
    assert_eq!(echoes.len(), 1, "{}", logs.text());
    assert_eq!(trace_of(&echoes[0]), socket.trace_id());
}
