//! The W3C `traceparent` header: `version-traceid-parentid-flags`, parsed
//! as the Trace Context Recommendation says, field lengths and lowercase
//! hexadecimal included, and written as version `00`.
//!
//! Rules (section "Versioning of traceparent" and the processing model):
//! - surrounding spaces and tabs are optional whitespace;
//! - version `00` is exactly 55 characters; `ff` is invalid; a higher version
//!   is parsed by its version-00 prefix, which must be followed by the end of
//!   the value or by `-`;
//! - trace id and parent id are 32 and 16 lowercase hexadecimal digits, not
//!   all zero;
//! - of the flags, the sampled (`01`) and random trace id (`02`, level 2)
//!   bits are kept; unknown bits are dropped, since they must be sent as 0.
//!
//! Only the first 56 bytes of a value are ever looked at, so a long value
//! costs nothing.
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

/// The sampled flag.
pub const FLAG_SAMPLED: u8 = 0x01;
/// The random trace id flag of Trace Context level 2.
pub const FLAG_RANDOM: u8 = 0x02;
/// The flags this implementation knows; the others are sent as 0.
const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;
/// The length of a version-00 value.
pub const LEN: usize = 55;

/// A valid `traceparent`: the caller's trace, its span, its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: TraceId,
    /// The caller's span id (never all zero).
    pub parent_id: SpanId,
    /// The sampled and random bits of the caller's flags.
    pub flags: TraceFlags,
}

impl TraceParent {
    /// Parses one header value; `None` if it is not a valid `traceparent`.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let value = trim_ows(value);
        if value.len() < LEN {
            return None;
        }
        let version = hex_u8(&value[0..2])?;
        // Version 00 is exactly 55 characters; a later version may append
        // fields, each after a dash. Version ff is forbidden.
        let fits = match version {
            0x00 => value.len() == LEN,
            0xff => false,
            _ => value.len() == LEN || value[LEN] == b'-',
        };
        if !fits || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let trace_id = hex_u128(&value[3..35]).filter(|id| *id != 0)?;
        let parent_id = hex_u64(&value[36..52]).filter(|id| *id != 0)?;
        let flags = hex_u8(&value[53..55])?;
        Some(Self {
            trace_id: TraceId::from(trace_id),
            parent_id: SpanId::from(parent_id),
            flags: TraceFlags::new(flags & KNOWN_FLAGS),
        })
    }
}

/// Writes `00-{trace_id}-{span_id}-{flags}` with the unknown flag bits
/// cleared.
pub fn format(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> String {
    let mut out = [0_u8; LEN];
    out[0] = b'0';
    out[1] = b'0';
    out[2] = b'-';
    write_hex(&mut out[3..35], &trace_id.to_bytes());
    out[35] = b'-';
    write_hex(&mut out[36..52], &span_id.to_bytes());
    out[52] = b'-';
    write_hex(&mut out[53..55], &[flags.to_u8() & KNOWN_FLAGS]);
    // Every byte written above is ASCII.
    out.iter().map(|&b| char::from(b)).collect()
}

/// Strips optional whitespace (spaces and tabs) from both ends.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// A lowercase hexadecimal digit's value.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

fn hex_u128(digits: &[u8]) -> Option<u128> {
    digits
        .iter()
        .try_fold(0_u128, |acc, &d| Some(acc << 4 | u128::from(hex_digit(d)?)))
}

fn hex_u64(digits: &[u8]) -> Option<u64> {
    digits
        .iter()
        .try_fold(0_u64, |acc, &d| Some(acc << 4 | u64::from(hex_digit(d)?)))
}

fn hex_u8(digits: &[u8]) -> Option<u8> {
    Some(hex_digit(digits[0])? << 4 | hex_digit(digits[1])?)
}

/// Lowercase hexadecimal of `bytes` into `out` (twice as long), four bytes
/// at a time: every trace and span id of a log line or an outgoing header
/// is written this way, in about a third of the instructions of a table.
pub(crate) fn write_hex(out: &mut [u8], bytes: &[u8]) {
    let mut outs = out.chunks_exact_mut(8);
    let mut ins = bytes.chunks_exact(4);
    for (text, chunk) in (&mut outs).zip(&mut ins) {
        let mut word = [0_u8; 4];
        word.copy_from_slice(chunk);
        text.copy_from_slice(&hex_word(u32::from_be_bytes(word)));
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let rest = outs.into_remainder();
    for (pair, byte) in rest.chunks_exact_mut(2).zip(ins.remainder()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// The eight hex digits of `word`, most significant first.
fn hex_word(word: u32) -> [u8; 8] {
    const NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    // Spread the nibbles one to a byte, keeping their order: halves to the
    // two 32-bit lanes, bytes to the 16-bit lanes, nibbles to the bytes.
    let x = u64::from(word);
    let x = (x & 0xffff_0000) << 16 | x & 0xffff;
    let x = (x & 0x0000_ff00_0000_ff00) << 8 | x & 0x0000_00ff_0000_00ff;
    let x = (x << 4 | x) & NIBBLES;
    // A digit above 9 is a letter: 'a' - '0' - 10 = 39 more. A byte holds
    // at most 15 + 6, so no carry crosses into the next.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_what_the_formatter_writes() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..=16 {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (state >> 56) as u8
                    })
                    .collect();
                let mut out = vec![0_u8; 2 * len];
                write_hex(&mut out, &bytes);
                let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(String::from_utf8(out).expect("ascii"), expected);
            }
        }
    }

    const TRACE: &str = "12345678901234567890123456789012";
    const PARENT: &str = "1234567890123456";

    fn parse(value: &str) -> Option<TraceParent> {
        TraceParent::parse(value.as_bytes())
    }

    fn valid(value: &str) -> TraceParent {
        parse(value).unwrap_or_else(|| panic!("{value:?} is valid"))
    }

    #[test]
    fn a_version_00_value_is_read() {
        let parent = valid(&format!("00-{TRACE}-{PARENT}-01"));
        assert_eq!(parent.trace_id.to_string(), TRACE);
        assert_eq!(parent.parent_id.to_string(), PARENT);
        assert!(parent.flags.is_sampled());
        assert!(!valid(&format!("00-{TRACE}-{PARENT}-00")).flags.is_sampled());
    }

    #[test]
    fn surrounding_spaces_and_tabs_are_optional_whitespace() {
        for value in [
            format!(" 00-{TRACE}-{PARENT}-01"),
            format!("\t00-{TRACE}-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-01 "),
            format!("00-{TRACE}-{PARENT}-01\t"),
            format!("\t 00-{TRACE}-{PARENT}-01 \t"),
        ] {
            assert_eq!(valid(&value).trace_id.to_string(), TRACE, "{value:?}");
        }
    }

    #[test]
    fn wrong_lengths_and_characters_are_invalid() {
        for value in [
            // version
            format!("0-{TRACE}-{PARENT}-01"),
            format!("000-{TRACE}-{PARENT}-01"),
            format!("0000-{TRACE}-{PARENT}-01"),
            format!(".0-{TRACE}-{PARENT}-01"),
            format!("0.-{TRACE}-{PARENT}-01"),
            format!("ff-{TRACE}-{PARENT}-01"),
            format!("0A-{TRACE}-{PARENT}-01"),
            // trace id
            format!("00-1234567890123456789012345678901-{PARENT}-01"),
            format!("00-123456789012345678901234567890123-{PARENT}-01"),
            format!("00-.2345678901234567890123456789012-{PARENT}-01"),
            format!("00-1234567890123456789012345678901.-{PARENT}-01"),
            format!("00-ABCDEF78901234567890123456789012-{PARENT}-01"),
            format!("00-00000000000000000000000000000000-{PARENT}-01"),
            // parent id
            format!("00-{TRACE}-123456789012345-01"),
            format!("00-{TRACE}-12345678901234567-01"),
            format!("00-{TRACE}-.234567890123456-01"),
            format!("00-{TRACE}-123456789012345.-01"),
            format!("00-{TRACE}-0000000000000000-01"),
            // flags
            format!("00-{TRACE}-{PARENT}-1"),
            format!("00-{TRACE}-{PARENT}-001"),
            format!("00-{TRACE}-{PARENT}-.0"),
            format!("00-{TRACE}-{PARENT}-0."),
            // version 00 with anything after it
            format!("00-{TRACE}-{PARENT}-01."),
            format!("00-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
            // other delimiters
            format!("00_{TRACE}-{PARENT}-01"),
            format!("00-{TRACE}_{PARENT}-01"),
            String::new(),
            "00-zz-yy-01".to_owned(),
        ] {
            assert_eq!(parse(&value), None, "{value:?}");
        }
    }

    #[test]
    fn a_future_version_is_read_by_its_known_prefix() {
        assert_eq!(
            valid(&format!("cc-{TRACE}-{PARENT}-01"))
                .trace_id
                .to_string(),
            TRACE
        );
        assert_eq!(
            valid(&format!(
                "cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"
            ))
            .parent_id
            .to_string(),
            PARENT
        );
        assert_eq!(
            parse(&format!(
                "cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like"
            )),
            None
        );
    }

    #[test]
    fn the_random_flag_is_kept_and_unknown_flags_are_dropped() {
        assert_eq!(
            valid(&format!("00-{TRACE}-{PARENT}-03")).flags.to_u8(),
            0x03
        );
        assert_eq!(
            valid(&format!("00-{TRACE}-{PARENT}-02")).flags.to_u8(),
            0x02
        );
        assert_eq!(
            valid(&format!("00-{TRACE}-{PARENT}-ff")).flags.to_u8(),
            0x03
        );
        assert_eq!(
            valid(&format!("00-{TRACE}-{PARENT}-04")).flags.to_u8(),
            0x00
        );
    }

    #[test]
    fn formatting_writes_version_00_with_known_flags_only() {
        let parent = valid(&format!("00-{TRACE}-{PARENT}-01"));
        assert_eq!(
            format(parent.trace_id, parent.parent_id, TraceFlags::new(0xff)),
            format!("00-{TRACE}-{PARENT}-03")
        );
        let written = format(TraceId::from(1), SpanId::from(2), TraceFlags::SAMPLED);
        assert_eq!(
            written,
            "00-00000000000000000000000000000001-0000000000000002-01"
        );
        assert_eq!(valid(&written).parent_id, SpanId::from(2));
    }
}
