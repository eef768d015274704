//! The hello app of flask-app-rs in the variants the benchmarks compare, one
//! worker thread each. Run with: `bench/run.sh` (which pins it to one core).
use std::net::SocketAddr;

use actix_web::{web, App, HttpServer};
use clap::{Parser, ValueEnum};
use flask_app_rs::{AppState, Chaos};
use metrics_middleware::logging::{FlushGuard, LogFormat, Logging};
use metrics_middleware::telemetry::{Telemetry, TelemetryConfig};
use metrics_middleware::MetricsServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Variant {
    /// The hello routes and nothing else.
    Bare,
    /// flask-app-rs's metrics (the Flask preset and the hello counter) on
    /// the same hello routes.
    Metrics,
    /// actix-web-prom 0.10, for comparison.
    ActixWebProm,
    /// flask-app-rs itself: its metrics, a span for every request
    /// (`always_on`) exported by OTLP HTTP/protobuf to `--otlp-port`, and its
    /// one log line per request in Cloud Logging JSON on standard error.
    Traced,
    /// The same metrics, span and log line with the usual crates:
    /// tracing-actix-web's root span, tracing-opentelemetry, the SDK's
    /// batch processor and OTLP exporter, tracing-subscriber's JSON lines.
    Standard,
}

#[derive(Debug, Parser)]
struct Settings {
    #[arg(long, value_enum)]
    variant: Variant,
    #[arg(long, default_value_t = 18080)]
    port: u16,
    #[arg(long, default_value_t = 19090)]
    metrics_port: u16,
    /// The OTLP HTTP port of `otlp-sink`, for the traced variants.
    #[arg(long, default_value_t = 4318)]
    otlp_port: u16,
}

async fn hello() -> &'static str {
    "Hello World!"
}

async fn hello_name(name: web::Path<String>) -> String {
    format!("Hello {name}!")
}

fn main() -> std::io::Result<()> {
    let settings: Settings = metrics_middleware::cli::parse_or_exit();
    let endpoint = format!("http://127.0.0.1:{}", settings.otlp_port);
    // Set up before the Actix system: the exporters start threads (and the
    // blocking HTTP client a runtime) of their own.
    let tracing = match settings.variant {
        Variant::Traced => {
            let (telemetry, flush) = ours(&endpoint)?;
            Some(Tracing::Ours(telemetry, flush))
        }
        Variant::Standard => Some(Tracing::Standard(standard::install(&endpoint)?)),
        _ => None,
    };
    let served = actix_web::rt::System::new().block_on(run(&settings, tracing.as_ref()));
    match tracing {
        Some(Tracing::Ours(telemetry, flush)) => {
            drop(telemetry.shutdown(std::time::Duration::from_secs(5)));
            drop(flush);
        }
        Some(Tracing::Standard(provider)) => drop(provider.shutdown()),
        None => {}
    }
    served
}

enum Tracing {
    Ours(Telemetry, FlushGuard),
    Standard(opentelemetry_sdk::trace::SdkTracerProvider),
}

fn ours(endpoint: &str) -> std::io::Result<(Telemetry, FlushGuard)> {
    let config = TelemetryConfig::from_lookup(|name| match name {
        "OTEL_TRACES_SAMPLER" => Some("always_on".to_owned()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.to_owned()),
        _ => None,
    })
    .map_err(std::io::Error::other)?;
    let telemetry = Telemetry::builder()
        .config(config)
        .default_service_name("flask-app-rs")
        .without_gcp_detection()
        .build()
        .map_err(std::io::Error::other)?;
    let flush = Logging::builder()
        .format(LogFormat::Json)
        .gcp_project_id(Some("bench-project".to_owned()))
        .init()
        .map_err(std::io::Error::other)?;
    Ok((telemetry, flush))
}

async fn run(settings: &Settings, tracing: Option<&Tracing>) -> std::io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], settings.port));
    let state =
        || AppState::new(Chaos::new(0).expect("0 is a valid share")).map_err(std::io::Error::other);
    let scrape = |state: &AppState| {
        let scrape = MetricsServer::builder(state.metrics().registry().clone())
            .bind(([127, 0, 0, 1], settings.metrics_port))
            .run()
            .map_err(std::io::Error::other)?;
        actix_web::rt::spawn(scrape);
        Ok::<_, std::io::Error>(())
    };
    let server = match (settings.variant, tracing) {
        (Variant::Bare, _) => HttpServer::new(|| {
            App::new()
                .service(web::resource("/").to(hello))
                .route("/hello/{name}", web::get().to(hello_name))
        })
        .workers(1)
        .bind(addr)?
        .run(),
        (Variant::Metrics, _) => {
            // flask-app-rs's own metric setup, so that the benchmark measures
            // what the service records, whatever it comes to record.
            let state = state()?;
            scrape(&state)?;
            let (metrics, hello_counter) = (state.metrics().clone(), state.hello_counter().clone());
            HttpServer::new(move || {
                App::new()
                    .wrap(metrics.clone())
                    .service(web::resource("/").wrap(hello_counter.clone()).to(hello))
                    .route("/hello/{name}", web::get().to(hello_name))
            })
            .workers(1)
            .bind(addr)?
            .run()
        }
        (Variant::ActixWebProm, _) => {
            let prometheus = actix_web_prom::PrometheusMetricsBuilder::new("flask")
                .endpoint("/metrics")
                .exclude("/healthz")
                .mask_unmatched_patterns("<unmatched>")
                .build()
                .map_err(std::io::Error::other)?;
            HttpServer::new(move || {
                App::new()
                    .wrap(prometheus.clone())
                    .service(web::resource("/").to(hello))
                    .route("/hello/{name}", web::get().to(hello_name))
            })
            .workers(1)
            .bind(addr)?
            .run()
        }
        (Variant::Traced, Some(Tracing::Ours(telemetry, _))) => {
            // The service itself: flask-app-rs's app, metrics, span, log line.
            let state = state()?.with_telemetry(telemetry.clone());
            scrape(&state)?;
            HttpServer::new(move || flask_app_rs::app(state.clone()))
                .workers(1)
                .bind(addr)?
                .run()
        }
        (Variant::Standard, Some(Tracing::Standard(_))) => {
            let state = state()?;
            scrape(&state)?;
            let (metrics, hello_counter) = (state.metrics().clone(), state.hello_counter().clone());
            HttpServer::new(move || {
                App::new()
                    .wrap(tracing_actix_web::TracingLogger::default())
                    .wrap(metrics.clone())
                    .service(
                        web::resource("/")
                            .wrap(hello_counter.clone())
                            .to(standard::hello),
                    )
                    .route("/hello/{name}", web::get().to(hello_name))
            })
            .workers(1)
            .bind(addr)?
            .run()
        }
        (variant, _) => {
            return Err(std::io::Error::other(format!(
                "{variant:?} needs its tracing set up"
            )))
        }
    };
    server.await
}

/// The usual way: tracing spans turned into OpenTelemetry spans by
/// tracing-opentelemetry, the SDK's batch processor, JSON lines from
/// tracing-subscriber.
mod standard {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;

    pub(crate) async fn hello() -> &'static str {
        tracing::info!("Received hello request !");
        "Hello World!"
    }

    pub(crate) fn install(endpoint: &str) -> std::io::Result<SdkTracerProvider> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(reqwest::blocking::Client::new())
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .build()
            .map_err(std::io::Error::other)?;
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOn)
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_service_name("flask-app-rs")
                    .build(),
            )
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("standard")))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            );
        tracing::subscriber::set_global_default(subscriber).map_err(std::io::Error::other)?;
        Ok(provider)
    }
}
