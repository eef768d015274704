//! The W3C `tracestate` header: a list of `key=value` members that vendors
//! pass along, validated as the Trace Context Recommendation (level 2 key
//! grammar) says and bounded before anything is kept.
//!
//! - Several `tracestate` fields are one list, joined in order.
//! - Optional whitespace around members and empty members are allowed.
//! - Keys: 1 to 256 characters of `a-z 0-9 _ - * / @`, starting with a
//!   letter or digit. Values: 1 to 256 printable ASCII characters other
//!   than `,` and `=`, not ending in a space.
//! - At most 32 members. A list with an invalid member or more than 32
//!   members is discarded whole; a repeated key keeps its first value.
//! - Bounds: a combined header longer than [`MAX_INPUT_LEN`] is discarded
//!   unread, so a hostile value costs a length check; a valid list longer than
//!   [`MAX_LEN`] characters (what is propagated) loses whole members, those
//!   over 128 characters first, then from the right, as the specification
//!   asks. Nothing is allocated until a list is known to be valid, and then
//!   one string of at most [`MAX_LEN`] bytes.
use std::fmt;
use std::sync::Arc;

use super::traceparent::trim_ows;

/// The most members a list may have.
pub const MAX_MEMBERS: usize = 32;
/// The longest list propagated, in characters (the specification's 512).
pub const MAX_LEN: usize = 512;
/// The longest combined header read at all. Longer ones are discarded
/// without being parsed: room for a list of [`MAX_LEN`] characters written
/// with generous whitespace, and no more.
pub const MAX_INPUT_LEN: usize = 4 * MAX_LEN;
/// Members longer than this are the first removed when a list is too long.
const LARGE_MEMBER: usize = 128;
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;

/// A valid `tracestate` list in its canonical form: members joined by `,`
/// without whitespace, at most [`MAX_MEMBERS`] of them and at most
/// [`MAX_LEN`] characters. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct W3cTraceState(Option<Arc<str>>);

/// Why a `tracestate` was discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStateError {
    kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Oversized,
    TooManyMembers,
    Malformed,
}

impl TraceStateError {
    /// Whether the header was discarded for its length rather than its
    /// content.
    pub fn is_oversized(&self) -> bool {
        self.kind == ErrorKind::Oversized
    }
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ErrorKind::Oversized => "tracestate longer than 2048 characters",
            ErrorKind::TooManyMembers => "tracestate with more than 32 members",
            ErrorKind::Malformed => "tracestate member that is not key=value as specified",
        })
    }
}

impl std::error::Error for TraceStateError {}

impl W3cTraceState {
    /// The empty list.
    pub const EMPTY: Self = Self(None);

    /// Parses the values of every `tracestate` field of a request, in order.
    ///
    /// # Errors
    ///
    /// [`TraceStateError`] if the combined value is longer than
    /// [`MAX_INPUT_LEN`], has more than [`MAX_MEMBERS`] members, or a member
    /// that breaks the grammar; the whole list is then to be discarded.
    pub fn parse_fields<'a, I>(fields: I) -> Result<Self, TraceStateError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let fields = fields.into_iter();
        let mut total = 0_usize;
        for field in fields.clone() {
            total = total.saturating_add(field.len() + 1);
            if total > MAX_INPUT_LEN + 1 {
                return Err(TraceStateError {
                    kind: ErrorKind::Oversized,
                });
            }
        }
        let mut members = Members::default();
        for field in fields {
            for member in field.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                let (key, value) = split_member(member).ok_or(TraceStateError {
                    kind: ErrorKind::Malformed,
                })?;
                members.push_back(key, value)?;
            }
        }
        Ok(members.into_state())
    }

    /// Parses one header value.
    ///
    /// # Errors
    ///
    /// As [`parse_fields`](Self::parse_fields).
    pub fn parse(value: &str) -> Result<Self, TraceStateError> {
        Self::parse_fields([value.as_bytes()])
    }

    /// The canonical header value (empty for the empty list).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }

    /// Whether the list has no member.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The members, left to right.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_str()
            .split(',')
            .filter(|m| !m.is_empty())
            .filter_map(|m| m.split_once('='))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The list with `key=value` at its front and any earlier member of that
    /// key removed, as a vendor updates its own entry; the right-most members
    /// go if the list grows past its bounds.
    ///
    /// # Errors
    ///
    /// [`TraceStateError`] if the key or value breaks the grammar.
    pub fn with_entry(&self, key: &str, value: &str) -> Result<Self, TraceStateError> {
        let malformed = TraceStateError {
            kind: ErrorKind::Malformed,
        };
        if !valid_key(key.as_bytes()) || !valid_value(value.as_bytes()) {
            return Err(malformed);
        }
        let mut members = Members::default();
        members.push_back(key.as_bytes(), value.as_bytes())?;
        for (k, v) in self.members().filter(|(k, _)| *k != key) {
            if members.len == MAX_MEMBERS {
                break;
            }
            members.push_back(k.as_bytes(), v.as_bytes())?;
        }
        Ok(members.into_state())
    }

    /// The same list as OpenTelemetry's `TraceState`, for spans made by the
    /// SDK. That type checks keys by an older grammar (one `@`, a short
    /// vendor part); members it refuses are left out of it.
    pub fn to_otel(&self) -> opentelemetry::trace::TraceState {
        use opentelemetry::trace::TraceState;
        // Its error type is not exported: each member is tried alone.
        let accepted = self
            .members()
            .filter(|member| TraceState::from_key_value(std::iter::once(*member)).is_ok());
        TraceState::from_key_value(accepted).unwrap_or_default()
    }

    /// OpenTelemetry's `TraceState`, checked by this module's rules.
    pub fn from_otel(state: &opentelemetry::trace::TraceState) -> Self {
        let header = state.header();
        Self::parse(&header).unwrap_or_default()
    }
}

impl fmt::Debug for W3cTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "W3cTraceState({:?})", self.as_str())
    }
}

impl fmt::Display for W3cTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Up to [`MAX_MEMBERS`] validated members, borrowed from the input.
#[derive(Default)]
struct Members<'a> {
    items: [(&'a [u8], &'a [u8]); MAX_MEMBERS],
    len: usize,
}

impl<'a> Members<'a> {
    /// Appends a validated member; a repeated key keeps its first value.
    fn push_back(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), TraceStateError> {
        if self.items[..self.len].iter().any(|(k, _)| *k == key) {
            return Ok(());
        }
        if self.len == MAX_MEMBERS {
            return Err(TraceStateError {
                kind: ErrorKind::TooManyMembers,
            });
        }
        self.items[self.len] = (key, value);
        self.len += 1;
        Ok(())
    }

    /// The canonical list, shortened to [`MAX_LEN`] by the specification's
    /// truncation rules.
    fn into_state(mut self) -> W3cTraceState {
        let member_len = |(k, v): &(&[u8], &[u8])| k.len() + 1 + v.len();
        let list_len = |items: &[(&[u8], &[u8])]| {
            items.iter().map(member_len).sum::<usize>() + items.len().saturating_sub(1)
        };
        while list_len(&self.items[..self.len]) > MAX_LEN {
            let remove = self.items[..self.len]
                .iter()
                .rposition(|m| member_len(m) > LARGE_MEMBER)
                .unwrap_or(self.len - 1);
            self.items.copy_within(remove + 1..self.len, remove);
            self.len -= 1;
        }
        if self.len == 0 {
            return W3cTraceState::EMPTY;
        }
        let mut out = String::with_capacity(list_len(&self.items[..self.len]));
        for (i, (key, value)) in self.items[..self.len].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Validated as printable ASCII.
            out.extend(key.iter().map(|&b| char::from(b)));
            out.push('=');
            out.extend(value.iter().map(|&b| char::from(b)));
        }
        W3cTraceState(Some(Arc::from(out)))
    }
}

/// `key=value` with both parts valid.
fn split_member(member: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = member.iter().position(|&b| b == b'=')?;
    let (key, value) = (&member[..eq], &member[eq + 1..]);
    (valid_key(key) && valid_value(value)).then_some((key, value))
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, keychar being
/// `lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn valid_key(key: &[u8]) -> bool {
    let keychar =
        |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@');
    match key.split_first() {
        Some((first, rest)) => {
            key.len() <= MAX_KEY_LEN
                && matches!(first, b'a'..=b'z' | b'0'..=b'9')
                && rest.iter().all(keychar)
        }
        None => false,
    }
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII but `,` and `=`, not
/// ending in a space.
fn valid_value(value: &[u8]) -> bool {
    let chr = |b: &u8| matches!(b, 0x20..=0x7e) && *b != b',' && *b != b'=';
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.last() != Some(&b' ')
        && value.iter().all(chr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fields: &[&str]) -> Result<W3cTraceState, TraceStateError> {
        W3cTraceState::parse_fields(fields.iter().map(|f| f.as_bytes()))
    }

    fn valid(fields: &[&str]) -> String {
        parse(fields)
            .unwrap_or_else(|e| panic!("{fields:?}: {e}"))
            .as_str()
            .to_owned()
    }

    #[test]
    fn fields_are_joined_in_order_without_whitespace_or_empty_members() {
        assert_eq!(
            valid(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
            "foo=1,bar=2,rojo=1,congo=2,baz=3"
        );
        assert_eq!(
            valid(&["foo=1 \t , \t bar=2, \t baz=3"]),
            "foo=1,bar=2,baz=3"
        );
        assert_eq!(
            valid(&["foo=1\t \t,\t \tbar=2,\t \tbaz=3"]),
            "foo=1,bar=2,baz=3"
        );
        for padded in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(valid(&[padded]), "foo=1", "{padded:?}");
        }
        assert_eq!(valid(&["", "foo=1"]), "foo=1");
        assert_eq!(valid(&["foo=1", ""]), "foo=1");
        assert_eq!(valid(&[",,foo=1, ,"]), "foo=1");
        assert!(parse(&[""]).expect("empty is valid").is_empty());
        assert!(parse(&[]).expect("none is valid").is_empty());
    }

    #[test]
    fn every_allowed_character_is_kept() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20_u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        let state = parse(&[&format!("{key}={value}")]).expect("valid");
        assert_eq!(state.get(key), Some(value.as_str()));
        let vendor_key = format!("{key}@a-z0-9_-*/");
        let state = parse(&[&format!("{vendor_key}={value}")]).expect("valid");
        assert_eq!(state.get(&vendor_key), Some(value.as_str()));
    }

    #[test]
    fn keys_follow_the_level_2_grammar() {
        for key in ["foo@", "foo@@bar", "foo@bar@baz", "t@vvvvvvvvvvvvvvv", "0a"] {
            assert_eq!(
                parse(&[&format!("{key}=1,bar=2")]).expect(key).get(key),
                Some("1")
            );
        }
        let longest = "z".repeat(256);
        assert_eq!(
            parse(&["foo=1", &format!("{longest}=1")])
                .expect("256 characters")
                .get(&longest),
            Some("1")
        );
        for bad in [
            "@foo=1,bar=2",
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "_foo=1",
            "=1",
            &format!("{}=1", "z".repeat(257)),
        ] {
            assert!(parse(&["foo=1", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_values_discard_the_whole_list() {
        for bad in [
            "foo=bar=baz",
            "foo=,bar=3",
            "foo",
            "foo=a\tb",
            "foo=caf\u{e9}",
        ] {
            let err = parse(&[bad]).expect_err(bad);
            assert!(!err.is_oversized());
        }
        assert_eq!(valid(&["foo= leading"]), "foo= leading");
        let longest = "v".repeat(256);
        assert_eq!(valid(&[&format!("k={longest}")]).len(), 258);
        assert!(parse(&[&format!("k={longest}v")]).is_err());
    }

    #[test]
    fn thirty_two_members_pass_and_thirty_three_are_discarded() {
        let members = |n: usize| {
            (1..=n)
                .map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let state = parse(&[&members(32)]).expect("32 members");
        assert_eq!(state.members().count(), 32);
        assert_eq!(state.get("bar01"), Some("01"));
        assert!(parse(&[&members(33)]).is_err());
        // Repeats do not count twice: the first value stays.
        assert_eq!(valid(&["foo=1,foo=2", "foo=3"]), "foo=1");
    }

    #[test]
    fn a_hostile_header_is_discarded_unread() {
        let huge = "a=b,".repeat(25_000);
        assert!(parse(&[&huge]).expect_err("100 kB").is_oversized());
        let spaces = format!("foo=1,{}bar=2", " ".repeat(MAX_INPUT_LEN));
        assert!(parse(&[&spaces]).expect_err("padding").is_oversized());
        let many_fields: Vec<&str> = std::iter::repeat_n("x=1", 1_000).collect();
        assert!(parse(&many_fields).expect_err("fields").is_oversized());
    }

    #[test]
    fn long_lists_lose_large_members_first_then_from_the_right() {
        let large = format!("big={}", "x".repeat(200));
        let small: Vec<String> = (0..30)
            .map(|i| format!("k{i:02}={}", "y".repeat(10)))
            .collect();
        // 30 members of 14 characters (449 with commas) plus a large one.
        let list = format!("{},{large}", small[..15].join(","));
        let list = format!("{list},{}", small[15..].join(","));
        let state = valid(&[&list]);
        assert!(state.len() <= MAX_LEN);
        assert!(!state.contains("big="), "the large member goes first");
        assert_eq!(state.split(',').count(), 30);

        let many: Vec<String> = (0..32)
            .map(|i| format!("k{i:02}={}", "y".repeat(20)))
            .collect();
        let state = valid(&[&many.join(",")]);
        assert!(state.len() <= MAX_LEN, "{}", state.len());
        assert!(state.starts_with("k00="));
        assert!(!state.contains("k31="), "right-most members go");
    }

    #[test]
    fn a_vendor_entry_goes_to_the_front_once() {
        let state = W3cTraceState::parse("rojo=1,congo=2").expect("valid");
        let updated = state.with_entry("congo", "3").expect("valid entry");
        assert_eq!(updated.as_str(), "congo=3,rojo=1");
        let fresh = W3cTraceState::EMPTY.with_entry("ours", "x").expect("valid");
        assert_eq!(fresh.as_str(), "ours=x");
        assert!(state.with_entry("Bad", "1").is_err());
        let full = W3cTraceState::parse(
            &(0..32)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(","),
        )
        .expect("32");
        let updated = full.with_entry("new", "1").expect("valid");
        assert_eq!(updated.members().count(), 32);
        assert!(updated.get("k31").is_none() && updated.get("new").is_some());
    }

    #[test]
    fn conversion_to_opentelemetry_keeps_what_its_older_grammar_accepts() {
        let state = W3cTraceState::parse("foo@@bar=1,bar=2,congo=t61").expect("valid");
        let otel = state.to_otel();
        assert_eq!(otel.header(), "bar=2,congo=t61");
        assert_eq!(W3cTraceState::from_otel(&otel).as_str(), "bar=2,congo=t61");
    }
}
