//! OTLP over gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`): one unary
//! `TraceService/Export` call per batch, through tonic's generic client with
//! a codec that sends the bytes of this crate's encoder as they are, the
//! same request the HTTP exporter posts.
//!
//! Why not opentelemetry-otlp's tonic exporter: it converts every span into
//! opentelemetry-proto's structs before prost encodes them (about 25,000
//! instructions per span under callgrind), and at 120,000 requests a second
//! its export thread could not keep up: more than half the spans were
//! dropped.
use actix_web::web::Bytes;
use bytes::{Buf, BufMut};
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use super::otlp_proto::{EncodedResource, ExportRequest};
use crate::telemetry::config::{OtlpCompression, TelemetryConfig};
use crate::telemetry::processor::queue::Batch;
use crate::telemetry::processor::{BatchExporter, ExportFailure};

/// The method's path.
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends spans to an OTLP/gRPC endpoint such as `http://collector:4317`.
pub(crate) struct OtlpGrpcExporter {
    client: Grpc<Channel>,
    endpoint: String,
    metadata: MetadataMap,
    resource: EncodedResource,
}

impl std::fmt::Debug for OtlpGrpcExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpGrpcExporter")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OtlpGrpcExporter {
    /// The endpoint, headers, timeout and compression of `config`. To be
    /// called inside a Tokio runtime: the channel's connection task is
    /// spawned there (it connects on the first export).
    ///
    /// # Errors
    ///
    /// A message naming the endpoint or header that cannot be used.
    pub(crate) fn new(config: &TelemetryConfig) -> Result<Self, String> {
        let url = &config.otlp_traces_endpoint;
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("invalid endpoint {url:?}: {e}"))?
            .timeout(config.otlp_timeout)
            .connect_timeout(config.otlp_timeout);
        let endpoint = tls(endpoint, url)?;
        let mut client = Grpc::new(endpoint.connect_lazy());
        if config.otlp_compression == OtlpCompression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let mut metadata = MetadataMap::new();
        for (name, value) in &config.otlp_headers {
            let key =
                MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|e| {
                    format!("invalid header name {name:?} in OTEL_EXPORTER_OTLP_HEADERS: {e}")
                })?;
            let value = AsciiMetadataValue::try_from(value.as_str()).map_err(|e| {
                format!("invalid value for header {name} in OTEL_EXPORTER_OTLP_HEADERS: {e}")
            })?;
            metadata.insert(key, value);
        }
        Ok(Self {
            client,
            endpoint: url.clone(),
            metadata,
            resource: EncodedResource::default(),
        })
    }
}

#[cfg(feature = "otlp-tls")]
fn tls(endpoint: Endpoint, url: &str) -> Result<Endpoint, String> {
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    endpoint
        .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
        .map_err(|e| format!("cannot set up TLS for {url:?}: {e}"))
}

#[cfg(not(feature = "otlp-tls"))]
fn tls(endpoint: Endpoint, url: &str) -> Result<Endpoint, String> {
    if url.starts_with("https://") {
        return Err(format!(
            "the endpoint {url} (OTEL_EXPORTER_OTLP_ENDPOINT) needs TLS, which this build \
             lacks (cargo feature `otlp-tls`)"
        ));
    }
    Ok(endpoint)
}

impl BatchExporter for OtlpGrpcExporter {
    const TAKES_ENCODED: bool = true;

    async fn export(&self, batch: Batch) -> Result<(), ExportFailure> {
        let body = ExportRequest::new(&self.resource, batch.encoded.bytes, &batch.spans);
        drop(batch.spans);
        let failure = |status: Status| {
            ExportFailure::new(format!(
                "gRPC export to {} failed: {} {}",
                self.endpoint,
                status.code(),
                status.message()
            ))
        };
        let mut client = self.client.clone();
        client
            .ready()
            .await
            .map_err(|e| ExportFailure::new(format!("gRPC export to {}: {e}", self.endpoint)))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let path = http::uri::PathAndQuery::from_static(EXPORT);
        client
            .unary::<ExportRequest, Bytes, _>(request, path, RawCodec)
            .await
            .map_err(failure)?;
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

/// Messages as bytes: the request is encoded already, the answer is not
/// read beyond its status.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ExportRequest;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = ExportRequest;
    type Error = Status;

    fn encode(&mut self, item: ExportRequest, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        for piece in item.pieces() {
            dst.put_slice(piece);
        }
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
