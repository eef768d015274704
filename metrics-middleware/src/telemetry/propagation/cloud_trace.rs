//! Google's `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS`, what Google
//! Cloud load balancers and older Google libraries send.
//!
//! `TRACE_ID` is 32 hexadecimal digits (not all zero), `SPAN_ID` a decimal
//! unsigned 64-bit number (not zero, digits only), and `;o=1` means the
//! caller traces the request, `;o=0` or no options that it does not. Anything
//! else makes the header malformed, and a malformed header is ignored.
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

use super::traceparent::{trim_ows, TraceParent};

/// The longest valid value: 32 + 1 + 20 + 4.
const MAX_LEN: usize = 57;

/// Parses one header value; `None` if it is malformed.
pub(super) fn parse(value: &[u8]) -> Option<TraceParent> {
    let value = trim_ows(value);
    if value.len() > MAX_LEN {
        return None;
    }
    let (ids, sampled) = match value.iter().position(|&b| b == b';') {
        Some(i) => (
            &value[..i],
            match &value[i + 1..] {
                b"o=1" => true,
                b"o=0" => false,
                _ => return None,
            },
        ),
        None => (value, false),
    };
    let slash = ids.iter().position(|&b| b == b'/')?;
    let (trace, span) = (&ids[..slash], &ids[slash + 1..]);
    if trace.len() != 32 {
        return None;
    }
    let trace_id = trace
        .iter()
        .try_fold(0_u128, |acc, &b| {
            Some(acc << 4 | u128::from(char::from(b).to_digit(16)?))
        })
        .filter(|id| *id != 0)?;
    if span.is_empty() || span.len() > 20 || !span.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let span_id = span
        .iter()
        .try_fold(0_u64, |acc, &b| {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })
        .filter(|id| *id != 0)?;
    Some(TraceParent {
        trace_id: TraceId::from(trace_id),
        parent_id: SpanId::from(span_id),
        flags: if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
    })
}

/// The header value for a span: its span id in decimal, `o=1` if sampled.
pub(super) fn format(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> String {
    let span = u64::from_be_bytes(span_id.to_bytes());
    format!("{trace_id}/{span};o={}", u8::from(flags.is_sampled()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_header_is_read() {
        let parent = parse(b"105445aa7843bc8bf206b12000100000/1234567890;o=1").expect("valid");
        assert_eq!(
            parent.trace_id.to_string(),
            "105445aa7843bc8bf206b12000100000"
        );
        assert_eq!(
            u64::from_be_bytes(parent.parent_id.to_bytes()),
            1_234_567_890
        );
        assert!(parent.flags.is_sampled());
        let unsampled = parse(b"105445aa7843bc8bf206b12000100000/1;o=0").expect("valid");
        assert!(!unsampled.flags.is_sampled());
        let bare = parse(b"105445aa7843bc8bf206b12000100000/1").expect("valid");
        assert!(!bare.flags.is_sampled());
        let upper = parse(b" 105445AA7843BC8BF206B12000100000/18446744073709551615;o=1 ")
            .expect("hex is case-blind, the largest span id fits");
        assert_eq!(u64::from_be_bytes(upper.parent_id.to_bytes()), u64::MAX);
        assert_eq!(
            format(parent.trace_id, parent.parent_id, parent.flags),
            "105445aa7843bc8bf206b12000100000/1234567890;o=1"
        );
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "105445aa7843bc8bf206b12000100000",
            "105445aa7843bc8bf206b12000100000/",
            "105445aa7843bc8bf206b1200010000/1;o=1",
            "105445aa7843bc8bf206b12000100000x/1;o=1",
            "g05445aa7843bc8bf206b12000100000/1;o=1",
            "00000000000000000000000000000000/1;o=1",
            "105445aa7843bc8bf206b12000100000/0;o=1",
            "105445aa7843bc8bf206b12000100000/-5;o=1",
            "105445aa7843bc8bf206b12000100000/+5;o=1",
            "105445aa7843bc8bf206b12000100000/18446744073709551616;o=1",
            "105445aa7843bc8bf206b12000100000/abc;o=1",
            "105445aa7843bc8bf206b12000100000/1;o=2",
            "105445aa7843bc8bf206b12000100000/1;o=1;x",
            "105445aa7843bc8bf206b12000100000/1;",
            "105445aa7843bc8bf206b12000100000/1/2;o=1",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(parse(&[b'1'; 10_000]).is_none());
    }
}
