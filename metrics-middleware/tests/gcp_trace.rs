//! The `gcp_trace` exporter against a stand-in of Cloud Trace.
//!
//! opentelemetry-stackdriver dials `https://cloudtrace.googleapis.com:443`
//! with the system's root certificates and cannot be pointed elsewhere. So
//! the outer test runs the inner one in a private network and mount
//! namespace (`unshare --net --mount`, as root): only loopback exists there,
//! `/etc/hosts` is a file of ours naming `cloudtrace.googleapis.com`
//! 127.0.0.1, and `SSL_CERT_FILE` is a test CA. Nothing can leave the
//! machine. The stand-in speaks gRPC over HTTP/2 and TLS and decodes
//! `BatchWriteSpans` with the crate's own protobuf types.
#![cfg(feature = "gcp_trace")]
#![allow(deprecated)] // opentelemetry-stackdriver as a whole.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use metrics_middleware::prometheus::Registry;
use metrics_middleware::telemetry::exporters::gcp_trace::CloudTraceExporter;
use metrics_middleware::telemetry::BoundedBatchProcessor;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_stackdriver::proto::devtools::cloudtrace::v2::BatchWriteSpansRequest;
use opentelemetry_stackdriver::Authorizer;
use prost013::Message as _;

const INNER: &str = "inner_cloud_trace_stand_in_receives_the_spans";

#[test]
fn spans_reach_a_cloud_trace_stand_in_in_a_private_network() {
    let whoami = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout).trim(),
        "0",
        "this test makes a network namespace and must run as root"
    );
    test_support::require_tool("openssl");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    make_certificates(dir.path());
    std::fs::write(
        path("hosts"),
        "127.0.0.1 localhost cloudtrace.googleapis.com\n",
    )
    .expect("hosts file");

    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-c"])
        .arg(
            "ip link set lo up && mount --bind \"$1\" /etc/hosts && \
             exec \"$2\" --exact \"$3\" --include-ignored --nocapture",
        )
        .args([
            "sh".as_ref(),
            path("hosts").as_os_str(),
            exe.as_os_str(),
            INNER.as_ref(),
        ])
        .env("SSL_CERT_FILE", path("ca.pem"))
        .env("STAND_IN_CERT", path("server.pem"))
        .env("STAND_IN_KEY", path("server.key"))
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "inner test failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}

/// A CA, and a certificate for `cloudtrace.googleapis.com` signed by it.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=cloudtrace.googleapis.com",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:cloudtrace.googleapis.com\n",
    )
    .expect("extension file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

/// Credentials for tests: a fixed token and project.
struct TestAuthorizer;

impl Authorizer for TestAuthorizer {
    type Error = std::io::Error;

    fn project_id(&self) -> &str {
        "test-project"
    }

    async fn authorize<T: Send + Sync>(
        &self,
        request: &mut tonic013::Request<T>,
        _scopes: &[&str],
    ) -> Result<(), Self::Error> {
        request.metadata_mut().insert(
            "authorization",
            tonic013::metadata::MetadataValue::from_static("Bearer test-token"),
        );
        Ok(())
    }
}

/// What the stand-in received: the path, the authorization header, the
/// decoded request.
type Received = (String, String, BatchWriteSpansRequest);

#[test]
#[ignore = "runs inside the namespace made by spans_reach_a_cloud_trace_stand_in_in_a_private_network"]
fn inner_cloud_trace_stand_in_receives_the_spans() {
    let registry = Registry::new();
    let exporter = CloudTraceExporter::with_authorizer(|| async { Ok(TestAuthorizer) })
        .reconnect_interval(Duration::from_millis(100));
    let processor = BoundedBatchProcessor::builder()
        // Only flushes export, so that each step below is deterministic.
        .scheduled_delay(Duration::from_secs(600))
        .export_timeout(Duration::from_secs(10))
        .registry(registry.clone())
        .build(exporter)
        .expect("processor");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name("flask-app-rs")
                .build(),
        )
        .build();
    let tracer = provider.tracer("test");

    // Cloud Trace unreachable: the spans are lost and counted, nothing fails.
    tracer.in_span("before the backend", |_| {});
    provider.force_flush().expect_err("nothing listens yet");
    let scrape = metrics_middleware::text_format::render(&registry);
    assert!(
        scrape.contains(r#"otel_spans_dropped_total{reason="export_failed"} 1"#),
        "{scrape}"
    );

    let received = start_stand_in();
    std::thread::sleep(Duration::from_millis(200)); // past the reconnect interval
    let mut span = tracer
        .span_builder("GET /hello/{name}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.route", "/hello/{name}"),
            KeyValue::new("http.response.status_code", 503),
        ])
        .start(&tracer);
    span.set_status(Status::error("Service Unavailable"));
    let (trace_id, span_id) = (
        span.span_context().trace_id().to_string(),
        span.span_context().span_id().to_string(),
    );
    span.end();
    provider.force_flush().expect("exported");

    let (path, authorization, request) = received
        .recv_timeout(Duration::from_secs(10))
        .expect("the stand-in received a request");
    assert_eq!(
        path,
        "/google.devtools.cloudtrace.v2.TraceService/BatchWriteSpans"
    );
    assert_eq!(authorization, "Bearer test-token");
    assert_eq!(request.name, "projects/test-project");
    assert_eq!(request.spans.len(), 1, "{request:?}");
    let sent = &request.spans[0];
    assert_eq!(
        sent.name,
        format!("projects/test-project/traces/{trace_id}/spans/{span_id}")
    );
    assert_eq!(sent.span_id, span_id);
    assert_eq!(
        sent.display_name.as_ref().map(|n| n.value.as_str()),
        Some("GET /hello/{name}")
    );
    let attributes = &sent.attributes.as_ref().expect("attributes").attribute_map;
    // The crate renames HTTP attributes to Cloud Trace's `/http/*` labels.
    let text = |key: &str| attributes.get(key).map(|v| format!("{:?}", v.value));
    assert!(
        text("/http/route").is_some_and(|v| v.contains("\"/hello/{name}\"")),
        "{attributes:?}"
    );
    assert_eq!(
        text("/http/status_code").as_deref(),
        Some("Some(IntValue(503))")
    );
    assert!(
        text("service.name").is_some_and(|v| v.contains("\"flask-app-rs\"")),
        "the resource's service.name: {attributes:?}"
    );
    assert_eq!(
        sent.status.as_ref().map(|s| s.code),
        Some(2),
        "UNKNOWN for an error"
    );
    let scrape = metrics_middleware::text_format::render(&registry);
    assert!(scrape.contains("otel_spans_exported_total 1"), "{scrape}");
    provider.shutdown().expect("shut down");
}

/// Serves `BatchWriteSpans` on 127.0.0.1:443 with TLS and HTTP/2.
fn start_stand_in() -> mpsc::Receiver<Received> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let cert = std::env::var("STAND_IN_CERT").expect("STAND_IN_CERT");
    let key = std::env::var("STAND_IN_KEY").expect("STAND_IN_KEY");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .expect("certificate file")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(&key).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = StdListener::bind("127.0.0.1:443").expect("bind 443 in the namespace");
    listener.set_nonblocking(true).expect("non-blocking");

    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut connection) = h2::server::handshake(tls).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = connection.accept().await {
                        let sender = sender.clone();
                        tokio::spawn(answer(request, respond, sender));
                    }
                });
            }
        });
    });
    received
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    sender: mpsc::Sender<Received>,
) {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    // A gRPC message: a compression flag, a 4-byte length, the protobuf.
    let decoded = (bytes.len() >= 5 && bytes[0] == 0)
        .then(|| BatchWriteSpansRequest::decode(&bytes[5..]).ok())
        .flatten();
    let response = http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .expect("response");
    let Ok(mut stream) = respond.send_response(response, false) else {
        return;
    };
    // google.protobuf.Empty: a zero-length message.
    let _ = stream.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
    if let Some(decoded) = decoded {
        let _ = sender.send((path, authorization, decoded));
    }
}

#[test]
fn without_credentials_or_network_start_up_still_succeeds() {
    // Credentials and the connection are sought at the first export, so a
    // process off Google Cloud (as here) starts and serves; its spans are
    // counted as dropped instead.
    let config = metrics_middleware::telemetry::TelemetryConfig::from_lookup(|name| {
        (name == "OTEL_TRACES_EXPORTER").then(|| "gcp_trace".to_owned())
    })
    .expect("valid");
    let telemetry = metrics_middleware::telemetry::Telemetry::builder()
        .config(config)
        .without_gcp_detection()
        .build()
        .expect("a start-up without Cloud Trace is not a failure");
    assert_eq!(
        telemetry.exporter(),
        metrics_middleware::telemetry::TracesExporter::GcpTrace
    );
    telemetry
        .shutdown(Duration::from_secs(5))
        .expect("nothing queued");
}
