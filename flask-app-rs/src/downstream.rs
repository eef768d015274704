//! `GET /downstream`: one call to the service configured in `DOWNSTREAM_URL`
//! (never to a URL taken from the request), in the request's trace, so that
//! two instances chained make one trace of server, client and server spans.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use metrics_middleware::client::{ClientTracer, ReqwestTracing};
use reqwest_middleware::ClientWithMiddleware;

/// The most of the downstream answer passed back.
const MAX_ANSWER: usize = 64 * 1024;

/// The configured downstream service and the client that calls it.
#[derive(Debug, Clone)]
pub struct Downstream {
    url: reqwest::Url,
    client: ClientWithMiddleware,
}

impl Downstream {
    /// Calls to `url` with client spans from `tracer`, each given `timeout`.
    ///
    /// # Errors
    ///
    /// A message if the HTTP client cannot be made.
    pub fn new(url: reqwest::Url, tracer: ClientTracer, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot make the HTTP client: {e}"))?;
        Ok(Self {
            url,
            client: reqwest_middleware::ClientBuilder::new(client)
                .with(ReqwestTracing::new(tracer))
                .build(),
        })
    }

    /// The answer of the downstream service, passed on with its status (at
    /// most 64 KiB of it); 502 if it could not be reached.
    pub(crate) async fn call(&self) -> HttpResponse {
        let answer = match self.client.get(self.url.clone()).send().await {
            Ok(answer) => answer,
            Err(err) => {
                log::warn!("downstream call to {} failed: {err}", self.url);
                return HttpResponse::BadGateway().body("downstream unreachable");
            }
        };
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        match read_bounded(answer).await {
            Ok(body) => crate::echoed(HttpResponse::build(status), body),
            Err(err) => {
                log::warn!("downstream answer from {} failed: {err}", self.url);
                HttpResponse::BadGateway().body("downstream answer incomplete")
            }
        }
    }
}

async fn read_bounded(mut answer: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await? {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    Ok(body)
}

/// Parses `DOWNSTREAM_URL`: an `http` or `https` URL.
///
/// # Errors
///
/// A message saying what is accepted.
pub fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".to_owned()),
    }
}
