//! An OTLP receiver (gRPC and HTTP/protobuf) for the benchmarks and drills:
//! `otlp-sink [--spans] GRPC_PORT HTTP_PORT`. It counts the bytes posted to
//! it without decoding them, to stay light beside the load generator, or
//! with `--spans` decodes them and counts spans (for drills that check every
//! span arrived), and prints the count every second.
use std::time::Duration;

use test_support::otlp::OtlpReceiver;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let spans = args.first().is_some_and(|a| a == "--spans");
    if spans {
        args.remove(0);
    }
    let mut ports = args.iter().map(|p| p.parse::<u16>());
    let (Some(Ok(grpc)), Some(Ok(http)), None) = (ports.next(), ports.next(), ports.next()) else {
        eprintln!("usage: otlp-sink [--spans] GRPC_PORT HTTP_PORT");
        std::process::exit(2);
    };
    let (receiver, unit) = if spans {
        (OtlpReceiver::start_counting_spans(grpc, http), "spans")
    } else {
        (OtlpReceiver::start_counting(grpc, http), "bytes")
    };
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let count = receiver.count();
        if count != last {
            println!("{count} {unit}");
            last = count;
        }
    }
}
