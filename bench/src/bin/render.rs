//! How long a `/metrics` scrape takes to render with about 10,000 series:
//! our text encoder against `prometheus::TextEncoder`. Run with:
//! `cargo run --release -p bench --bin render`
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::{call_service, init_service, TestRequest};
use actix_web::{web, App, HttpResponse};
use metrics_middleware::prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use metrics_middleware::{text_format, HttpMetrics, Naming};

const RUNS: usize = 200;

/// 10,000 counter series, one label each.
fn counters() -> Registry {
    let registry = Registry::new();
    let vec = IntCounterVec::new(Opts::new("items_total", "Items."), &["item"]).expect("valid");
    for i in 0..10_000 {
        vec.with_label_values(&[format!("item-{i}").as_str()])
            .inc_by(i);
    }
    registry.register(Box::new(vec)).expect("register");
    registry
}

/// The middleware's metrics (Flask preset, process metrics) after traffic on
/// 50 routes, 2 methods and 3 statuses, recorded through the middleware:
/// mostly histogram lines, as a busy service's scrape is.
fn http_metrics() -> Registry {
    let metrics = HttpMetrics::builder()
        .naming(Naming::flask_exporter())
        .build()
        .expect("valid");
    let registry = metrics.registry().clone();
    actix_web::rt::System::new().block_on(async move {
        let app = init_service(App::new().wrap(metrics).configure(|cfg| {
            for route in 0..50 {
                cfg.route(
                    &format!("/r{route}/{{id}}"),
                    web::route().to(|query: web::Query<Vec<(String, u16)>>| async move {
                        let status = query.first().map_or(200, |(_, s)| *s);
                        HttpResponse::build(StatusCode::from_u16(status).expect("status")).finish()
                    }),
                );
            }
        }))
        .await;
        for route in 0..50 {
            for method in ["GET", "POST"] {
                for status in [200, 404, 500] {
                    let req = TestRequest::default()
                        .method(method.parse().expect("method"))
                        .uri(&format!("/r{route}/7?s={status}"))
                        .to_request();
                    call_service(&app, req).await;
                }
            }
        }
    });
    registry
}

fn sample_lines(registry: &Registry) -> usize {
    text_format::render(registry)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

fn time(what: &str, lines: usize, mut render: impl FnMut() -> usize) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(render());
            start.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<48} {lines:>6} series  median {:>6.2} ms  p90 {:>6.2} ms",
        ms(times[RUNS / 2]),
        ms(times[RUNS * 9 / 10])
    );
}

fn main() {
    for (name, registry) in [
        ("10,000 counters", counters()),
        ("HTTP metrics, 300 label sets", http_metrics()),
    ] {
        let lines = sample_lines(&registry);
        time(&format!("{name}: ours"), lines, || {
            text_format::render(&registry).len()
        });
        time(&format!("{name}: gather() alone"), lines, || {
            registry.gather().len()
        });
        let families = registry.gather();
        time(&format!("{name}: encode alone"), lines, || {
            let mut out = String::new();
            text_format::encode(&families, &mut out);
            out.len()
        });
        time(&format!("{name}: prometheus::TextEncoder"), lines, || {
            let mut buf = Vec::new();
            TextEncoder::new()
                .encode(&registry.gather(), &mut buf)
                .expect("encode");
            buf.len()
        });
    }
}
