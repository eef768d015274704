//! The request attributes (server span and access line) of requests with
//! hostile Host, X-Forwarded-*, Forwarded and User-Agent headers, paths and
//! peers: never a panic; every value bounded and checked (an IP address for
//! `client.address`, a known scheme); the access line is one JSON object.
#![no_main]
use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::test::TestRequest;
use libfuzzer_sys::fuzz_target;
use metrics_middleware::fuzzing::{access_line, request_attributes};

const NAMES: [&str; 8] = [
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "user-agent",
    "traceparent",
    "x-other",
];

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    // The first line: the peer (16 bytes of address, 2 of port), then the path.
    let (peer, path) = first.split_at(first.len().min(18));
    let mut request = TestRequest::default();
    if peer.len() == 18 {
        let mut octets = [0_u8; 16];
        octets.copy_from_slice(&peer[..16]);
        let ip = IpAddr::from(octets);
        let port = u16::from_be_bytes([peer[16], peer[17]]);
        request = request.peer_addr(SocketAddr::new(ip.to_canonical(), port));
    }
    let path = String::from_utf8_lossy(path);
    let path = format!("/{}", path.trim_start_matches('/'));
    if path.parse::<actix_web::http::Uri>().is_ok() {
        request = request.uri(&path);
    }
    for line in lines {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let name = HeaderName::from_static(NAMES[usize::from(pick) % NAMES.len()]);
            request = request.append_header((name, value));
        }
    }
    let req = request.to_srv_request();
    for (key, value) in request_attributes(&req) {
        let max = match key.as_str() {
            "url.path" => 1024 + 3,
            "user_agent.original" => 512 + 3,
            "server.address" => 261,
            _ => 1024,
        };
        assert!(value.len() <= max, "{key} = {} bytes", value.len());
        match key.as_str() {
            "client.address" => {
                value
                    .parse::<IpAddr>()
                    .unwrap_or_else(|_| panic!("not an IP: {value:?}"));
            }
            "url.scheme" => assert!(value == "http" || value == "https", "{value:?}"),
            _ => {}
        }
    }
    let line = access_line(&req);
    assert_eq!(line.last(), Some(&b'\n'));
    assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
    let json: serde_json::Value = serde_json::from_slice(&line).expect("a JSON line");
    assert!(json["httpRequest"].is_object(), "{json}");
});
