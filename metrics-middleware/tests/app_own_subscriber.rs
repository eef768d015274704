//! An app that already sets up its own `tracing` subscriber (a `fmt` layer
//! of its choosing). Installing this crate's logging on top fails with an
//! error that says what to do; composing this crate's layers into the app's
//! subscriber works: `log` and `tracing` events reach both the app's layer
//! and ours (with the request's trace), and `#[instrument]` spans are
//! exported as children of the server span when the request is sampled,
//! and not at all when it is not.
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use metrics_middleware::logging::{LogFormat, Logging};
use metrics_middleware::Observability;
use test_support::otlp::OtlpReceiver;
use test_support::{agent, free_port, LogCapture};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

mod common;
use common::telemetry_to;

#[tracing::instrument]
async fn find_user(id: u64) -> String {
    tracing::info!(user.id = id, "looking up a user");
    actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    log::info!("found user {id}");
    format!("user {id}")
}

#[actix_web::test]
async fn our_layers_join_the_apps_subscriber() {
    let receiver = OtlpReceiver::start();
    let (ours, theirs) = (LogCapture::default(), LogCapture::default());
    let for_ours = ours.clone();
    let observability = Observability::builder()
        .service("users", "1.2.3")
        .telemetry_config(telemetry_to(&receiver, "http/protobuf"))
        .logging(
            Logging::builder()
                .format(LogFormat::Json)
                .writer(move || for_ours.clone()),
        )
        .without_metrics_server()
        .build()
        .expect("observability built");

    // The app's own subscriber, with this crate's two layers added.
    let for_theirs = theirs.clone();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || for_theirs.clone()),
        )
        .with(observability.log_layer())
        .with(observability.span_layer())
        .init();

    // Installing this crate's logging now would replace the app's: refused,
    // with what to do instead.
    let refused = Observability::builder()
        .telemetry_config(telemetry_to(&receiver, "http/protobuf"))
        .without_metrics_server()
        .install()
        .expect_err("a subscriber is set already");
    assert!(refused.to_string().contains("log_layer"), "{refused}");

    let middleware = observability.middleware();
    let port = free_port();
    let server = HttpServer::new(move || {
        App::new()
            .route(
                "/users/{id}",
                web::get().to(|id: web::Path<u64>| find_user(id.into_inner())),
            )
            .wrap(middleware.clone())
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .expect("bind")
    .run();
    let handle = server.handle();
    let served = actix_web::rt::spawn(server);
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    web::block(move || {
        let agent = agent();
        let url = format!("http://127.0.0.1:{port}/users");
        let (status, _) = test_support::get(&agent, &format!("{url}/1")).expect("GET");
        assert_eq!(status, 200);
        let response = agent
            .get(format!("{url}/2"))
            .header("traceparent", format!("00-{unsampled}-b7ad6b7169203331-00"))
            .call()
            .expect("GET");
        assert_eq!(response.status(), 200);
    })
    .await
    .expect("requests");

    receiver.wait_for_spans("server and child span", Duration::from_secs(10), |s| {
        s.len() >= 2
    });
    handle.stop(true).await;
    served.await.expect("server task").expect("server");
    observability.shutdown().expect("shutdown");
    // Spans of the unsampled request would arrive with the sampled ones.
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server_span = spans
        .iter()
        .find(|s| s.name() == "GET /users/{id}")
        .expect("server span");
    let child = spans
        .iter()
        .find(|s| s.name() == "find_user")
        .expect("the #[instrument] span");
    assert_eq!(child.trace_id(), server_span.trace_id());
    assert_eq!(child.parent_span_id(), server_span.span_id());
    assert_eq!(child.attribute("id").as_deref(), Some("1"));

    // Our lines: both events of both requests, each in its request's trace.
    let looking = ours.with_message("looking up a user");
    assert_eq!(looking.len(), 2, "{}", ours.text());
    assert_eq!(looking[0]["trace_id"], server_span.trace_id());
    assert_eq!(looking[0]["span_id"], child.span_id());
    assert_eq!(looking[0]["user.id"], 1);
    assert_eq!(looking[1]["trace_id"], unsampled);
    assert_eq!(looking[1]["trace_sampled"], false);
    let found = ours.with_message("found user 1");
    assert_eq!(found.len(), 1, "{}", ours.text());
    assert_eq!(found[0]["trace_id"], server_span.trace_id());
    // The app's own layer got them too.
    let their_text = theirs.text();
    assert!(
        their_text.contains("looking up a user") && their_text.contains("found user 2"),
        "{their_text}"
    );
}
