//! An OTLP receiver (gRPC and HTTP/protobuf) for the traced benchmarks:
//! `otlp-sink GRPC_PORT HTTP_PORT`. It counts the bytes posted to it without
//! decoding them, to stay light beside the load generator, and prints the
//! count every second, so a run shows that the spans did arrive.
use std::time::Duration;

use test_support::otlp::OtlpReceiver;

fn main() {
    let mut ports = std::env::args().skip(1).map(|p| p.parse::<u16>());
    let (Some(Ok(grpc)), Some(Ok(http))) = (ports.next(), ports.next()) else {
        eprintln!("usage: otlp-sink GRPC_PORT HTTP_PORT");
        std::process::exit(2);
    };
    let receiver = OtlpReceiver::start_counting(grpc, http);
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let count = receiver.count();
        if count != last {
            println!("{count} bytes");
            last = count;
        }
    }
}
