//! OTLP over HTTP/protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, the
//! specification's default): one `POST` of an `ExportTraceServiceRequest`
//! per batch, encoded by [`otlp_proto`](super::otlp_proto) rather than by
//! opentelemetry-otlp (see there for why, with the measurement).
use actix_web::web::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};

use super::otlp_proto::{EncodedResource, ExportRequest};
use crate::telemetry::config::{OtlpCompression, TelemetryConfig};
use crate::telemetry::processor::queue::Batch;
use crate::telemetry::processor::{BatchExporter, ExportFailure};

/// Sends spans to an OTLP/HTTP endpoint such as `http://collector:4318/v1/traces`.
pub(crate) struct OtlpHttpExporter {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    gzip: bool,
    resource: EncodedResource,
}

impl OtlpHttpExporter {
    /// The endpoint, headers and timeout of `config`
    /// (`OTEL_EXPORTER_OTLP_*`).
    ///
    /// # Errors
    ///
    /// A message naming the endpoint or header that cannot be used.
    pub(crate) fn new(config: &TelemetryConfig) -> Result<Self, String> {
        let endpoint = reqwest::Url::parse(&config.otlp_traces_endpoint).map_err(|e| {
            format!(
                "invalid endpoint {:?} (OTEL_EXPORTER_OTLP_ENDPOINT): {e}",
                config.otlp_traces_endpoint
            )
        })?;
        if endpoint.scheme() == "https" && !cfg!(feature = "otlp-tls") {
            return Err(format!(
                "the endpoint {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT) needs TLS, which this \
                 build lacks (cargo feature `otlp-tls`)"
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let gzip = config.otlp_compression == OtlpCompression::Gzip;
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (name, value) in &config.otlp_headers {
            let name = HeaderName::try_from(name.as_str()).map_err(|e| {
                format!("invalid header name {name:?} in OTEL_EXPORTER_OTLP_HEADERS: {e}")
            })?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| {
                format!("invalid value for header {name} in OTEL_EXPORTER_OTLP_HEADERS: {e}")
            })?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(config.otlp_timeout)
            .build()
            .map_err(|e| format!("cannot make the HTTP client: {e}"))?;
        Ok(Self {
            client,
            endpoint,
            headers,
            gzip,
            resource: EncodedResource::default(),
        })
    }
}

impl std::fmt::Debug for OtlpHttpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpExporter")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl BatchExporter for OtlpHttpExporter {
    const TAKES_ENCODED: bool = true;

    async fn export(&self, batch: Batch) -> Result<(), ExportFailure> {
        let request = ExportRequest::new(&self.resource, batch.encoded.bytes, &batch.spans);
        drop(batch.spans);
        let body = if self.gzip {
            reqwest::Body::from(gzip(&request)?)
        } else {
            reqwest::Body::wrap(request.into_body())
        };
        let response = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| ExportFailure::new(format!("POST {}: {e}", self.endpoint)))?;
        let status = response.status();
        // OTLP/HTTP: a 429 or 503 may say how long to wait, in seconds.
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        // Read the answer to the end, so that the connection is kept.
        let answer = response.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            let detail = answer
                .map(|body| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
                .unwrap_or_default();
            let mut failure = ExportFailure::new(format!(
                "POST {} answered {status}: {detail}",
                self.endpoint
            ));
            failure.retry_after = retry_after;
            Err(failure)
        }
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

/// `body`, gzipped at the fastest level: export runs beside the service,
/// and bandwidth to a collector is rarely what runs out.
fn gzip(request: &ExportRequest) -> Result<Bytes, ExportFailure> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(request.len() / 4),
        flate2::Compression::fast(),
    );
    request
        .pieces()
        .into_iter()
        .try_for_each(|piece| encoder.write_all(piece))
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .map_err(|e| ExportFailure::new(format!("cannot gzip the request: {e}")))
}
