//! The client side of a WebSocket echo (RFC 6455), over a plain TCP stream:
//! the opening handshake, one masked text frame out, one frame back.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Opens `ws://addr{path}` with `headers`, sends `text`, and returns the
/// text of the first frame that comes back, then closes the connection.
///
/// # Panics
///
/// When the server does not switch protocols or the answer is not a text
/// frame.
pub fn echo(addr: SocketAddr, path: &str, headers: &[(&str, &str)], text: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the handshake");

    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    assert!(status.starts_with("HTTP/1.1 101"), "no upgrade: {status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        if line == "\r\n" {
            break;
        }
    }

    send_frame(&mut stream, 0x1, text.as_bytes());
    let mut head = [0_u8; 2];
    reader.read_exact(&mut head).expect("frame header");
    assert_eq!(head[0] & 0x0f, 0x1, "not a text frame: {head:?}");
    let len = match head[1] & 0x7f {
        126 => {
            let mut len = [0_u8; 2];
            reader.read_exact(&mut len).expect("length");
            usize::from(u16::from_be_bytes(len))
        }
        127 => panic!("an echo this long is not expected"),
        len => usize::from(len),
    };
    let mut payload = vec![0_u8; len];
    reader.read_exact(&mut payload).expect("payload");
    send_frame(&mut stream, 0x8, &[0x03, 0xe8]); // close, 1000
    String::from_utf8(payload).expect("UTF-8 text")
}

/// A client frame: final, masked (clients must mask), short payload.
fn send_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8]) {
    assert!(payload.len() < 126, "short frames only");
    let mask = [0x37_u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("send a frame");
}
