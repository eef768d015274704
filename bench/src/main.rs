//! The hello app of flask-app-rs in the variants the benchmarks compare, one
//! worker thread each. Run with: `bench/run.sh` (which pins it to one core).
use std::net::SocketAddr;

use actix_web::{web, App, HttpServer};
use clap::{Parser, ValueEnum};
use flask_app_rs::{AppState, Chaos};
use metrics_middleware::MetricsServer;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Variant {
    /// The hello routes and nothing else.
    Bare,
    /// flask-app-rs's metrics (the Flask preset and the hello counter) on
    /// the same hello routes.
    Metrics,
    /// actix-web-prom 0.10, for comparison.
    ActixWebProm,
}

#[derive(Debug, Parser)]
struct Settings {
    #[arg(long, value_enum)]
    variant: Variant,
    #[arg(long, default_value_t = 18080)]
    port: u16,
    #[arg(long, default_value_t = 19090)]
    metrics_port: u16,
}

async fn hello() -> &'static str {
    "Hello World!"
}

async fn hello_name(name: web::Path<String>) -> String {
    format!("Hello {name}!")
}

fn main() -> std::io::Result<()> {
    let settings: Settings = metrics_middleware::cli::parse_or_exit();
    actix_web::rt::System::new().block_on(run(settings))
}

async fn run(settings: Settings) -> std::io::Result<()> {
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
            // flask-app-rs's own metric setup, so that the benchmark measures
            // what the service records, whatever it comes to record.
            let state = AppState::new(Chaos::new(0).expect("0 is a valid share"))
                .map_err(std::io::Error::other)?;
            let (metrics, hello_counter) = (state.metrics().clone(), state.hello_counter().clone());
            let scrape = MetricsServer::builder(metrics.registry().clone())
                .bind(([127, 0, 0, 1], settings.metrics_port))
                .run()
                .map_err(std::io::Error::other)?;
            actix_web::rt::spawn(scrape);
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
    };
    server.await
}
