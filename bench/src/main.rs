//! The hello app of flask-app-rs in the variants the benchmarks compare, one
//! worker thread each. Run with: `bench/run.sh` (which pins it to one core).
use std::net::SocketAddr;

use actix_web::{web, App, HttpServer};
use clap::{Parser, ValueEnum};
use metrics_middleware::prometheus::Opts;
use metrics_middleware::{HttpMetrics, MetricsServer, Naming};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Variant {
    /// The hello routes and nothing else.
    Bare,
    /// The bare app with the metrics middleware alone (flask-app-rs's metric
    /// names): what the middleware costs, apart from the service's own work.
    Metrics,
    /// actix-web-prom 0.10, for comparison.
    ActixWebProm,
    /// flask-app-rs's metrics, a span for every request and its log line,
    /// with the usual crates: tracing-actix-web's root span,
    /// tracing-opentelemetry, the SDK's batch processor and OTLP exporter,
    /// tracing-subscriber's JSON lines. (Our own variants are the
    /// flask-app-rs binary itself, started as users start it.)
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
    /// The OTLP HTTP port of `otlp-sink`, for the standard variant.
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
    // Set up before the Actix system: the exporter starts threads (and the
    // blocking HTTP client a runtime) of its own.
    let provider = match settings.variant {
        Variant::Standard => Some(standard::install(&endpoint)?),
        _ => None,
    };
    let served = actix_web::rt::System::new().block_on(run(&settings));
    if let Some(provider) = provider {
        drop(provider.shutdown());
    }
    served
}

async fn run(settings: &Settings) -> std::io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], settings.port));
    let server = match settings.variant {
        Variant::Bare => HttpServer::new(|| {
            App::new()
                .service(web::resource("/").to(hello))
                .route("/hello/{name}", web::get().to(hello_name))
        })
        .workers(1)
        .bind(addr)?
        .run(),
        Variant::Metrics => {
            let metrics = HttpMetrics::builder()
                .naming(Naming::flask_exporter())
                .exclude_path("/healthz")
                .build()
                .map_err(std::io::Error::other)?;
            HttpServer::new(move || {
                App::new()
                    .service(web::resource("/").to(hello))
                    .route("/hello/{name}", web::get().to(hello_name))
                    .wrap(metrics.clone())
            })
            .workers(1)
            .bind(addr)?
            .run()
        }
        Variant::ActixWebProm => {
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
        Variant::Standard => {
            // flask-app-rs's metric names and hello counter, with the
            // standard tracing stack around them.
            let metrics = HttpMetrics::builder()
                .naming(Naming::flask_exporter())
                .exclude_path("/healthz")
                .build()
                .map_err(std::io::Error::other)?;
            let hello_counter = metrics
                .route_counter(
                    Opts::new("flask_app_hello_requests_total", "Number of hello requests")
                        .const_label("app", "flask-app")
                        .const_label("environment", "staging"),
                )
                .map_err(std::io::Error::other)?;
            let scrape = MetricsServer::builder(metrics.registry().clone())
                .bind(([127, 0, 0, 1], settings.metrics_port))
                .spawn()
                .map_err(std::io::Error::other)?;
            let served = HttpServer::new(move || {
                App::new()
                    .service(
                        web::resource("/")
                            .wrap(hello_counter.clone())
                            .to(standard::hello),
                    )
                    .route("/hello/{name}", web::get().to(hello_name))
                    .wrap(tracing_actix_web::TracingLogger::default())
                    .wrap(metrics.clone())
            })
            .workers(1)
            .bind(addr)?
            .run()
            .await;
            scrape.stop();
            return served;
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
