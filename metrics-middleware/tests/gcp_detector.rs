//! The GKE/GCE detector against a local stand-in of the metadata server, and
//! off Google Cloud: no answer, no server, no name, an impostor.
use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use metrics_middleware::telemetry::GcpDetector;

/// What GKE's metadata server answers to `?recursive=true`, trimmed.
const GKE_METADATA: &str = r#"{
  "instance": {
    "attributes": {"cluster-name": "demo-cluster", "cluster-location": "europe-west1"},
    "hostname": "gke-demo-pool-1234.c.demo-project.internal",
    "id": 4520031799277581759,
    "zone": "projects/123456789/zones/europe-west1-b"
  },
  "project": {"numericProjectId": 123456789, "projectId": "demo-project"}
}"#;

/// Serves `body` at `/computeMetadata/v1/` to requests that say
/// `Metadata-Flavor: Google`, with or without that header on the answer.
fn metadata_server(body: &'static str, flavor_header: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new().route(
                    "/computeMetadata/v1/",
                    web::get().to(move |req: HttpRequest, query: web::Query<HashMap<String, String>>| async move {
                        let asked_right = req
                            .headers()
                            .get("Metadata-Flavor")
                            .is_some_and(|v| v == "Google");
                        if !asked_right || query.get("recursive").map(String::as_str) != Some("true") {
                            return HttpResponse::Forbidden().finish();
                        }
                        let mut response = HttpResponse::Ok();
                        if flavor_header {
                            response.insert_header(("Metadata-Flavor", "Google"));
                        }
                        response.content_type("application/json").body(body)
                    }),
                )
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listen")
            .run()
            .await
        })
    });
    addr
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn on_gke_it_finds_what_the_original_detector_found() {
    let host = metadata_server(GKE_METADATA, true);
    let detected: HashMap<String, String> = GcpDetector::default()
        .metadata_host(host)
        .timeout(Duration::from_secs(5))
        .detect_with(env(&[
            ("NAMESPACE", "shop"),
            ("POD_NAME", "flask-app-tutorial-7d9c-x2x"),
            ("HOSTNAME", "ignored-when-POD_NAME-is-set"),
            ("CONTAINER_NAME", "flask-app-rs"),
        ]))
        .into_iter()
        .collect();
    let expected: HashMap<String, String> = [
        ("cloud.provider", "gcp"),
        ("cloud.platform", "gcp_kubernetes_engine"),
        ("cloud.account.id", "demo-project"),
        ("cloud.availability_zone", "europe-west1-b"),
        ("cloud.zone", "europe-west1-b"),
        ("cloud.region", "europe-west1"),
        ("host.id", "4520031799277581759"),
        ("k8s.cluster.name", "demo-cluster"),
        ("k8s.namespace.name", "shop"),
        ("k8s.pod.name", "flask-app-tutorial-7d9c-x2x"),
        ("container.name", "flask-app-rs"),
        ("gcp.resource_type", "gke_container"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(detected, expected);
}

#[test]
fn gce_metadata_host_is_honoured_and_hostname_stands_in_for_pod_name() {
    let host = metadata_server(GKE_METADATA, true);
    // Only this test sets the variable; the others pass their host directly.
    std::env::set_var("GCE_METADATA_HOST", &host);
    let detected = GcpDetector::from_env()
        .timeout(Duration::from_secs(5))
        .detect_with(env(&[("HOSTNAME", "pod-from-hostname")]));
    assert!(
        detected.contains(&("k8s.pod.name".to_owned(), "pod-from-hostname".to_owned())),
        "{detected:?}"
    );
    assert!(
        detected.contains(&("cloud.account.id".to_owned(), "demo-project".to_owned())),
        "{detected:?}"
    );
}

#[test]
fn off_google_cloud_it_finds_nothing_within_the_timeout() {
    let timeout = Duration::from_millis(300);
    // A server that accepts and never answers: the deadline must hold.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    // A free port: connection refused at once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .to_string();
    let impostor = metadata_server(GKE_METADATA, false);
    for host in [
        silent_addr.as_str(),
        closed.as_str(),
        "metadata.invalid",
        impostor.as_str(),
    ] {
        let started = Instant::now();
        let detected = GcpDetector::default()
            .metadata_host(host)
            .timeout(timeout)
            .detect_with(env(&[]));
        let took = started.elapsed();
        assert!(detected.is_empty(), "{host}: {detected:?}");
        assert!(
            took < timeout + Duration::from_millis(200),
            "{host}: took {took:?}"
        );
    }
    drop(silent);
}
