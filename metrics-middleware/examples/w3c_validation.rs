//! The service the W3C Trace Context validation suite drives
//! (<https://github.com/w3c/trace-context/tree/main/test>): it reads the
//! caller's trace with this crate's middleware, and makes each call the
//! harness asks for through the reqwest client middleware, in the request's
//! trace, so the harness sees what this crate sends on.
//!
//! `POST /test` takes a JSON array of `{"url": ..., "arguments": ...}`; for
//! each element it POSTs `arguments` (as JSON) to `url`, then answers 200.
//! It listens on 127.0.0.1 only (it calls whatever URL it is given: a test
//! tool, not a service to expose), on `PORT` (5000 by default). Spans go
//! nowhere unless `OTEL_TRACES_EXPORTER` says otherwise.
//!
//! ```text
//! cargo run -p metrics-middleware --features reqwest --example w3c_validation &
//! pip install aiohttp
//! git clone https://github.com/w3c/trace-context && cd trace-context/test
//! SPEC_LEVEL=2 STRICT_LEVEL=2 python3 test.py http://127.0.0.1:5000/test
//! ```
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_middleware::client::ReqwestTracing;
use metrics_middleware::telemetry::TelemetryConfig;
use metrics_middleware::Observability;
use reqwest_middleware::ClientWithMiddleware;
use serde_json::Value;

async fn test(
    cases: web::Json<Vec<Value>>,
    client: web::Data<ClientWithMiddleware>,
) -> HttpResponse {
    for case in cases.iter() {
        let Some(url) = case.get("url").and_then(Value::as_str) else {
            return HttpResponse::BadRequest().body("each element needs a \"url\"");
        };
        let arguments = case.get("arguments").cloned().unwrap_or(Value::Null);
        let body = serde_json::to_vec(&arguments).unwrap_or_default();
        // The harness judges the headers it receives; a failed call is its
        // own finding, not this service's error.
        if let Err(err) = client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
        {
            log::warn!("call to {url} failed: {err}");
        }
    }
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|e| format!("invalid PORT={port:?}: {e}"))?,
        Err(_) => 5000,
    };
    let config = TelemetryConfig::from_lookup(|name| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "OTEL_TRACES_EXPORTER").then(|| "none".to_owned()))
    })?;
    let observability = Observability::builder()
        .service("w3c-validation", env!("CARGO_PKG_VERSION"))
        .telemetry_config(config)
        .without_metrics_server()
        .install()?;
    let client = web::Data::new(
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(ReqwestTracing::new(observability.client_tracer()))
            .build(),
    );
    let middleware = observability.middleware();
    log::info!("listening on 127.0.0.1:{port}: POST /test");
    HttpServer::new(move || {
        App::new()
            .app_data(client.clone())
            .route("/test", web::post().to(test))
            .wrap(middleware.clone())
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    observability.shutdown()?;
    Ok(())
}
