//! A local OTLP receiver: the official `opentelemetry-proto` definitions
//! served by tonic (gRPC, `TraceService/Export`) and decoded by prost from
//! HTTP/protobuf posts to `/v1/traces`; no hand-written decoding.
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
pub use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// One span as received, with its resource and how it came.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `"grpc"` or `"http"`.
    pub transport: &'static str,
    /// Whether the request came gzipped.
    pub compressed: bool,
    /// The resource's attributes, rendered as text.
    pub resource: BTreeMap<String, String>,
    /// The instrumentation scope's name.
    pub scope: String,
    /// The span as decoded.
    pub span: Span,
}

impl ReceivedSpan {
    /// The span's name.
    pub fn name(&self) -> &str {
        &self.span.name
    }

    /// The trace id in lower-case hex.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id in lower-case hex.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent's span id in lower-case hex (empty for a root).
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// The span kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.span
            .status
            .as_ref()
            .and_then(|s| StatusCode::try_from(s.code).ok())
            .unwrap_or(StatusCode::Unset)
    }

    /// Every attribute, rendered as text (integers in decimal).
    pub fn attributes(&self) -> BTreeMap<String, String> {
        render(&self.span.attributes)
    }

    /// One attribute, rendered as text.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| value_text(kv.value.as_ref()))
    }
}

/// What a receiver keeps of what it receives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Every span, decoded (tests).
    Spans,
    /// How many spans, decoded (drills, where every span must be counted).
    SpanCount,
    /// How many bytes, not decoded (benchmarks, where millions of spans
    /// arrive beside the load generator).
    ByteCount,
}

#[derive(Clone)]
struct Received {
    keep: Keep,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    count: Arc<AtomicU64>,
}

/// A running receiver; it stops when dropped.
pub struct OtlpReceiver {
    grpc: SocketAddr,
    http: SocketAddr,
    received: Received,
    http_server: actix_web::dev::ServerHandle,
    grpc_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl OtlpReceiver {
    /// Starts both transports on free loopback ports, keeping every span.
    pub fn start() -> Self {
        Self::start_on(0, 0, Keep::Spans)
    }

    /// Starts both transports on the given loopback ports (0 for any),
    /// keeping only a count of the bytes posted (not decoded, over either
    /// transport, so that the sink stays light beside a benchmark).
    pub fn start_counting(grpc_port: u16, http_port: u16) -> Self {
        Self::start_on(grpc_port, http_port, Keep::ByteCount)
    }

    /// Starts both transports on the given loopback ports (0 for any),
    /// decoding every request and keeping the number of spans received.
    pub fn start_counting_spans(grpc_port: u16, http_port: u16) -> Self {
        Self::start_on(grpc_port, http_port, Keep::SpanCount)
    }

    fn start_on(grpc_port: u16, http_port: u16, keep: Keep) -> Self {
        let received = Received {
            keep,
            spans: Arc::new(Mutex::new(Vec::new())),
            count: Arc::new(AtomicU64::new(0)),
        };

        let grpc_listener =
            TcpListener::bind(("127.0.0.1", grpc_port)).expect("bind the gRPC port");
        let grpc = grpc_listener.local_addr().expect("gRPC address");
        grpc_listener.set_nonblocking(true).expect("non-blocking");
        let (grpc_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let collector = Collector(received.clone());
        std::thread::Builder::new()
            .name("otlp-grpc".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(grpc_listener).expect("tokio listener");
                    // No Nagle delay on answers, as gRPC servers do.
                    let incoming = tonic::transport::server::TcpIncoming::from(listener)
                        .with_nodelay(Some(true));
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    // HTTP/2 windows as large as a collector's grow to (Go's
                    // gRPC server sizes them by bandwidth-delay, up to 16 MB):
                    // with h2's 64 KB default, a batch waits for window updates
                    // from a receiver that shares its core with the load.
                    let server = tonic::transport::Server::builder()
                        .initial_stream_window_size(4 << 20)
                        .initial_connection_window_size(16 << 20);
                    let served = if keep != Keep::ByteCount {
                        let service = TraceServiceServer::new(collector)
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
                        server
                            .serve_with_incoming_shutdown(service, incoming, shutdown)
                            .await
                    } else {
                        let service = counting::CountingTraceService(collector.0.count.clone());
                        server
                            .serve_with_incoming_shutdown(service, incoming, shutdown)
                            .await
                    };
                    served.expect("gRPC receiver");
                });
            })
            .expect("start the gRPC receiver");

        let http_listener =
            TcpListener::bind(("127.0.0.1", http_port)).expect("bind the HTTP port");
        let http = http_listener.local_addr().expect("HTTP address");
        let for_http = received.clone();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("otlp-http".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        let received = for_http.clone();
                        App::new()
                            .app_data(web::PayloadConfig::new(64 << 20))
                            .route(
                                "/v1/traces",
                                web::post().to(
                                    move |req: actix_web::HttpRequest, body: web::Bytes| {
                                        let received = received.clone();
                                        async move {
                                            let compressed = req
                                                .headers()
                                                .get("content-encoding")
                                                .is_some_and(|v| v == "gzip");
                                            let body = if compressed {
                                                match gunzip(&body) {
                                                    Ok(body) => web::Bytes::from(body),
                                                    Err(err) => {
                                                        return HttpResponse::BadRequest()
                                                            .body(format!("not gzip: {err}"))
                                                    }
                                                }
                                            } else {
                                                body
                                            };
                                            if received.keep == Keep::ByteCount {
                                                // Benchmarks: count bytes, not spans, so
                                                // that the sink stays light.
                                                received.count.fetch_add(
                                                    body.len() as u64,
                                                    Ordering::Relaxed,
                                                );
                                                return HttpResponse::Ok()
                                                    .content_type("application/x-protobuf")
                                                    .finish();
                                            }
                                            match ExportTraceServiceRequest::decode(body) {
                                                Ok(request) => {
                                                    collect(&received, "http", compressed, request);
                                                    HttpResponse::Ok()
                                                        .content_type("application/x-protobuf")
                                                        .body(
                                                            ExportTraceServiceResponse::default()
                                                                .encode_to_vec(),
                                                        )
                                                }
                                                Err(err) => HttpResponse::BadRequest()
                                                    .body(format!("not an export request: {err}")),
                                            }
                                        }
                                    },
                                ),
                            )
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(http_listener)
                    .expect("listen")
                    .run();
                    let _ = handle_tx.send(server.handle());
                    let _ = server.await;
                });
            })
            .expect("start the HTTP receiver");
        let http_server = handle_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("HTTP receiver started");

        Self {
            grpc,
            http,
            received,
            http_server,
            grpc_stop: Some(grpc_stop),
        }
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT` with
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT` with
    /// `http/protobuf` (the exporter appends `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Every span received so far (none when counting only).
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .spans
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// What a counting receiver counted so far over both transports: bytes
    /// ([`start_counting`](Self::start_counting)) or spans
    /// ([`start_counting_spans`](Self::start_counting_spans)); 0 for a
    /// receiver that keeps spans.
    pub fn count(&self) -> u64 {
        self.received.count.load(Ordering::Relaxed)
    }

    /// Waits until `predicate` holds for the spans received, or panics after
    /// `timeout` with `what` and what was received.
    pub fn wait_for_spans(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        crate::wait_for(what, timeout, || {
            let spans = self.spans();
            if predicate(&spans) {
                Ok(spans)
            } else {
                Err(format!(
                    "{} span(s): {:?}",
                    spans.len(),
                    spans.iter().map(ReceivedSpan::name).collect::<Vec<_>>()
                ))
            }
        })
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.grpc_stop.take() {
            let _ = stop.send(());
        }
        // Stopping returns a future; the server's own thread completes it.
        drop(self.http_server.stop(false));
    }
}

struct Collector(Received);

/// The benchmarks' gRPC receiver: like the HTTP one, it counts the bytes of
/// each export request without decoding them (decoding ~150,000 spans a
/// second beside the load generator would make the sink the bottleneck).
mod counting {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use prost::bytes::Buf;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::codegen::{http, BoxFuture, Service};
    use tonic::server::{Grpc, NamedService, UnaryService};
    use tonic::{Request, Response, Status};

    #[derive(Clone)]
    pub(super) struct CountingTraceService(pub(super) Arc<AtomicU64>);

    impl NamedService for CountingTraceService {
        const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    }

    impl Service<http::Request<tonic::body::Body>> for CountingTraceService {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            let count = self.0.clone();
            Box::pin(async move {
                if request.uri().path()
                    != "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                {
                    return Ok(Status::unimplemented("only Export").into_http());
                }
                let mut grpc = Grpc::new(LengthCodec)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
                Ok(grpc.unary(Export(count), request).await)
            })
        }
    }

    struct Export(Arc<AtomicU64>);

    impl UnaryService<u64> for Export {
        type Response = ();
        type Future = std::future::Ready<Result<Response<()>, Status>>;

        fn call(&mut self, request: Request<u64>) -> Self::Future {
            self.0.fetch_add(request.into_inner(), Ordering::Relaxed);
            std::future::ready(Ok(Response::new(())))
        }
    }

    /// Decodes a message into its length; encodes the empty answer (an
    /// `ExportTraceServiceResponse` with no field set is zero bytes).
    #[derive(Clone, Copy)]
    struct LengthCodec;

    impl Codec for LengthCodec {
        type Encode = ();
        type Decode = u64;
        type Encoder = LengthCodec;
        type Decoder = LengthCodec;

        fn encoder(&mut self) -> Self::Encoder {
            LengthCodec
        }

        fn decoder(&mut self) -> Self::Decoder {
            LengthCodec
        }
    }

    impl Encoder for LengthCodec {
        type Item = ();
        type Error = Status;

        fn encode(&mut self, _: (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
            Ok(())
        }
    }

    impl Decoder for LengthCodec {
        type Item = u64;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<u64>, Status> {
            let length = src.remaining();
            src.advance(length);
            Ok(Some(length as u64))
        }
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let compressed = request
            .metadata()
            .get("grpc-encoding")
            .is_some_and(|v| v == "gzip");
        collect(&self.0, "grpc", compressed, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn collect(
    into: &Received,
    transport: &'static str,
    compressed: bool,
    request: ExportTraceServiceRequest,
) {
    if into.keep == Keep::SpanCount {
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        into.count.fetch_add(spans as u64, Ordering::Relaxed);
        return;
    }
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| render(&r.attributes))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                received.push(ReceivedSpan {
                    transport,
                    compressed,
                    resource: resource.clone(),
                    scope: scope.clone(),
                    span,
                });
            }
        }
    }
    into.count
        .fetch_add(received.len() as u64, Ordering::Relaxed);
    if let Ok(mut spans) = into.spans.lock() {
        spans.extend(received);
    }
}

fn render(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
        .collect()
}

fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}
