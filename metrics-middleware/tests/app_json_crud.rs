//! A JSON CRUD service whose storage calls run on actix's blocking pool
//! (`web::block`) and whose handlers spawn an audit task, wired with the
//! README's quickstart lines, served by a real `HttpServer` under
//! `#[actix_web::main]`'s runtime, with spans sent to a real OTLP receiver.
//!
//! What it checks: the trace follows the work into `web::block` and a
//! spawned task; an `#[instrument]` span is a child of the server span when
//! the request is sampled and costs nothing when it is not; one access log
//! line per request with Cloud Logging's `httpRequest`; an excluded path is
//! in no signal.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_middleware::logging::{LogFormat, Logging};
use metrics_middleware::telemetry::{in_current_trace, TraceContext};
use metrics_middleware::Observability;
use serde_json::{json, Value};
use test_support::otlp::{OtlpReceiver, ReceivedSpan};
use test_support::{agent, free_port, LogCapture};

mod common;
use common::telemetry_to;

/// The storage: a map behind a lock, as slow as a database would be.
#[derive(Default)]
struct Store {
    items: Mutex<HashMap<u64, Value>>,
    next: AtomicU64,
}

impl Store {
    fn insert(&self, item: Value) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.items.lock().expect("store lock").insert(id, item);
        id
    }

    fn get(&self, id: u64) -> Option<Value> {
        self.items.lock().expect("store lock").get(&id).cloned()
    }
}

#[tracing::instrument(skip(item), fields(item.fields = item.as_object().map_or(0, |o| o.len())))]
fn validate(item: &Value) -> bool {
    tracing::info!("validating");
    item.get("name").is_some_and(Value::is_string)
}

async fn create(
    store: web::Data<Store>,
    item: web::Json<Value>,
) -> actix_web::Result<HttpResponse> {
    let item = item.into_inner();
    if !validate(&item) {
        return Ok(HttpResponse::UnprocessableEntity().finish());
    }
    let store = store.into_inner();
    let id = web::block(in_current_trace(move || {
        log::info!("inserting an item");
        store.insert(item)
    }))
    .await?;
    // Work that outlives the handler, in the request's trace.
    actix_web::rt::spawn(TraceContext::current().instrument(async move {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        log::info!("audit: item {id} created");
    }));
    Ok(HttpResponse::Created().json(json!({ "id": id })))
}

async fn read(store: web::Data<Store>, id: web::Path<u64>) -> actix_web::Result<HttpResponse> {
    let store = store.into_inner();
    let id = id.into_inner();
    let item = web::block(in_current_trace(move || {
        log::info!("reading an item");
        store.get(id)
    }))
    .await?;
    Ok(match item {
        Some(item) => HttpResponse::Ok().json(item),
        None => HttpResponse::NotFound().finish(),
    })
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name() == name).collect()
}

#[actix_web::test]
async fn the_trace_follows_the_work_and_every_request_is_logged_once() {
    let receiver = OtlpReceiver::start();
    let logs = LogCapture::default();
    let for_logs = logs.clone();
    let (port, metrics_port) = (free_port(), free_port());

    // The README's quickstart, with this test's receiver, ports and log sink.
    let observability = Observability::builder()
        .service("crud", "1.0.0")
        .exclude_path("/healthz")
        .access_log(true)
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
    let store = web::Data::new(Store::default());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(store.clone())
            .route("/items", web::post().to(create))
            .route("/items/{id}", web::get().to(read))
            .route("/healthz", web::get().to(HttpResponse::Ok))
            .wrap(middleware.clone())
    })
    .workers(2)
    .bind(("127.0.0.1", port))
    .expect("bind")
    .run();
    let handle = server.handle();
    let served = actix_web::rt::spawn(server);

    let base = format!("http://127.0.0.1:{port}");
    let unsampled_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let requests = web::block(move || {
        let agent = agent();
        let post = |body: &str, traceparent: Option<&str>| {
            let mut request = agent
                .post(format!("{base}/items"))
                .header("content-type", "application/json")
                .header("user-agent", "crud-test/1.0");
            if let Some(traceparent) = traceparent {
                request = request.header("traceparent", traceparent);
            }
            request.send(body).expect("POST /items").status().as_u16()
        };
        let get = |path: &str| {
            agent
                .get(format!("{base}{path}"))
                .call()
                .expect("GET")
                .status()
                .as_u16()
        };
        vec![
            post(r#"{"name":"first"}"#, None),
            get("/items/1"),
            get("/items/999"),
            get("/healthz"),
            // A caller that did not sample its trace.
            post(
                r#"{"name":"second"}"#,
                Some(&format!("00-{unsampled_trace}-00f067aa0ba902b7-00")),
            ),
        ]
    })
    .await
    .expect("requests");
    assert_eq!(requests, [201, 200, 404, 200, 201]);

    // The server spans, and the instrumented function's span under the
    // sampled POST only.
    let spans = receiver.wait_for_spans("three server spans", Duration::from_secs(10), |s| {
        s.iter()
            .filter(|s| s.kind() == test_support::otlp::SpanKind::Server)
            .count()
            >= 3
    });
    let posts = by_name(&spans, "POST /items");
    assert_eq!(posts.len(), 1, "only the sampled POST: {spans:#?}");
    let post = posts[0];
    assert_eq!(by_name(&spans, "GET /items/{id}").len(), 2, "{spans:#?}");
    assert!(
        spans.iter().all(|s| s.trace_id() != unsampled_trace),
        "nothing of the unsampled trace is exported: {spans:#?}"
    );
    assert!(
        spans.iter().all(|s| !s.name().contains("healthz")),
        "{spans:#?}"
    );
    let validate = by_name(&spans, "validate");
    assert_eq!(
        validate.len(),
        1,
        "one child, of the sampled POST: {spans:#?}"
    );
    assert_eq!(validate[0].trace_id(), post.trace_id());
    assert_eq!(validate[0].parent_span_id(), post.span_id());
    assert_eq!(validate[0].attribute("item.fields").as_deref(), Some("1"));

    // The scrape: counted by route, the excluded path nowhere.
    let (status, scrape) = test_support::get(
        &agent(),
        &format!("http://127.0.0.1:{metrics_port}/metrics"),
    )
    .expect("scrape");
    assert_eq!(status, 200);
    assert!(
        scrape.contains("http_requests_total{method=\"POST\",route=\"/items\",status=\"201\"} 2"),
        "{scrape}"
    );
    assert!(
        scrape
            .contains("http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"404\"} 1"),
        "{scrape}"
    );
    assert!(!scrape.contains("healthz"), "{scrape}");

    handle.stop(true).await;
    served.await.expect("server task").expect("server");
    // Let the audit tasks finish, then write the last lines.
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    observability.shutdown().expect("shutdown");

    // Log lines from `web::block` and from the spawned task carry the
    // request's trace: the sampled POST's, and the unsampled caller's.
    let trace_of = |line: &Value| line["trace_id"].as_str().unwrap_or_default().to_owned();
    let inserts = logs.with_message("inserting an item");
    assert_eq!(inserts.len(), 2, "{}", logs.text());
    assert_eq!(trace_of(&inserts[0]), post.trace_id(), "{}", logs.text());
    assert_eq!(inserts[0]["span_id"], post.span_id());
    assert_eq!(inserts[0]["trace_sampled"], true);
    assert_eq!(trace_of(&inserts[1]), unsampled_trace);
    assert_eq!(inserts[1]["trace_sampled"], false);
    let audits: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("audit:"))
        })
        .collect();
    assert_eq!(audits.len(), 2, "{}", logs.text());
    let audit_traces: Vec<String> = audits.iter().map(trace_of).collect();
    assert!(audit_traces.contains(&post.trace_id()), "{audit_traces:?}");
    assert!(
        audit_traces.contains(&unsampled_trace.to_owned()),
        "{audit_traces:?}"
    );
    let reads = logs.with_message("reading an item");
    assert_eq!(reads.len(), 2);
    for read in &reads {
        let trace = trace_of(read);
        assert!(
            by_name(&spans, "GET /items/{id}")
                .iter()
                .any(|s| s.trace_id() == trace),
            "{read}"
        );
    }
    // The `tracing` event inside the instrumented function, in its span.
    let validating = logs.with_message("validating");
    assert_eq!(validating.len(), 2);
    assert!(validating
        .iter()
        .any(|l| l["span_id"] == validate[0].span_id()));

    // One access line per request, the excluded one aside.
    let access: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l.get("httpRequest").is_some())
        .collect();
    assert_eq!(access.len(), 4, "{}", logs.text());
    let first = &access
        .iter()
        .find(|l| l["httpRequest"]["requestMethod"] == "POST" && trace_of(l) == post.trace_id())
        .unwrap_or_else(|| panic!("the sampled POST's access line: {access:#?}"))["httpRequest"];
    assert_eq!(first["requestUrl"], "/items");
    assert_eq!(first["status"], 201);
    assert_eq!(first["requestSize"], "16");
    assert_eq!(first["userAgent"], "crud-test/1.0");
    assert_eq!(first["remoteIp"], "127.0.0.1");
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert!(
        first["latency"].as_str().is_some_and(|l| l.ends_with('s')),
        "{first}"
    );
    assert!(
        first["responseSize"]
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok()),
        "{first}"
    );
    assert!(access.iter().all(|l| !l["httpRequest"]["requestUrl"]
        .as_str()
        .unwrap_or("")
        .contains("healthz")));
}
