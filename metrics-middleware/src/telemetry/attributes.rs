//! The server span's semantic-convention attributes, validated, bounded and
//! built cheaply.
//!
//! Each worker keeps what repeats from request to request: the last `Host`,
//! `User-Agent`, client address and path (one entry each, compared byte for
//! byte). A repeat costs a reference count instead of a new `String`.
//!
//! Client-supplied values are checked before they are kept (see
//! [`limits`](super::limits)): `X-Forwarded-For` must start with an IP
//! address, `X-Forwarded-Proto` must be `http` or `https`, a host must be a
//! host name or address with an optional port; the path and `User-Agent`
//! are cut to their bounds. What fails is ignored and counted.
use std::cell::RefCell;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderValue;
use actix_web::http::Version;

use super::headers::RequestHeaders;
use super::limits::{
    Field, Reason, Rejections, MAX_FORWARDED_FOR_SCAN, MAX_HOST_LEN, MAX_PATH_LEN,
    MAX_USER_AGENT_LEN,
};
use super::record::{keys, HttpAttributes, StrAttr};

/// One worker's remembered values; see the module docs.
#[derive(Default)]
pub(crate) struct AttributeCache {
    host: Remembered<Option<(StrAttr, Option<u16>)>>,
    user_agent: Remembered<StrAttr>,
    client: RefCell<Option<(IpAddr, StrAttr)>>,
    path: RefCell<Option<StrAttr>>,
}

/// The last header value seen and what was made of it.
struct Remembered<T>(RefCell<Option<(HeaderValue, T)>>);

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Self(RefCell::new(None))
    }
}

impl<T: Clone> Remembered<T> {
    /// What `make` makes of `value`, from the last call when the value is
    /// the same.
    fn get(&self, value: &HeaderValue, make: impl FnOnce(&[u8]) -> T) -> T {
        let mut last = self.0.borrow_mut();
        if let Some((known, made)) = &*last {
            if known == value {
                return made.clone();
            }
        }
        let made = make(value.as_bytes());
        *last = Some((value.clone(), made.clone()));
        made
    }
}

impl AttributeCache {
    /// The attributes known when the request arrives.
    pub(crate) fn request(
        &self,
        req: &ServiceRequest,
        headers: &RequestHeaders<'_>,
        method: &'static str,
        rejections: &Rejections,
    ) -> HttpAttributes {
        // Indices into `record::PROTOCOLS`.
        let protocol = match req.version() {
            Version::HTTP_09 => 0,
            Version::HTTP_10 => 1,
            Version::HTTP_2 => 3,
            Version::HTTP_3 => 4,
            _ => 2,
        };
        let mut attributes = HttpAttributes {
            method,
            method_attr: StrAttr::method(method),
            path: self.path(req.path(), rejections),
            protocol: StrAttr::protocol(protocol),
            scheme: StrAttr::scheme(req.app_config().secure()),
            server_address: None,
            server_port: None,
            client_address: None,
            user_agent: None,
            status_code: 0,
            route: None,
            error: None,
            extra: Vec::new(),
        };
        if let Some(agent) = headers.user_agent {
            attributes.user_agent = Some(self.user_agent.get(agent, |bytes| {
                if bytes.len() > MAX_USER_AGENT_LEN {
                    rejections.count(Field::UserAgent, Reason::Truncated);
                }
                StrAttr::new(keys::USER_AGENT, &bounded_text(bytes, MAX_USER_AGENT_LEN))
            }));
        }
        // `Forwarded` (RFC 7239) is rare enough to leave to actix's parser;
        // what it yields is checked the same way.
        if headers.forwarded {
            self.forwarded(req, &mut attributes, rejections);
        } else {
            self.x_forwarded(req, headers, &mut attributes, rejections);
        }
        attributes
    }

    fn x_forwarded(
        &self,
        req: &ServiceRequest,
        headers: &RequestHeaders<'_>,
        attributes: &mut HttpAttributes,
        rejections: &Rejections,
    ) {
        if let Some(proto) = headers.forwarded_proto {
            match scheme(first_element(proto.as_bytes(), 16)) {
                Some(secure) => attributes.scheme = StrAttr::scheme(secure),
                None => rejections.count(Field::ForwardedProto, Reason::Malformed),
            }
        }
        let mut host = None;
        if let Some(forwarded_host) = headers.forwarded_host {
            host = self.host(forwarded_host, Field::ForwardedHost, rejections);
        }
        if host.is_none() {
            if let Some(value) = headers.host {
                host = self.host(value, Field::Host, rejections);
            }
        }
        let (address, port) = match host {
            Some(host) => host,
            // HTTP/2's `:authority`, else the server's configured name, as
            // actix's `ConnectionInfo` does; both come from the server side.
            None => {
                let authority = req.uri().authority().map(|a| a.as_str());
                let name = authority.unwrap_or_else(|| req.app_config().host());
                match parse_host(name.as_bytes()) {
                    Some((address, port)) => (StrAttr::new(keys::SERVER_ADDRESS, address), port),
                    None => return self.client(req, headers, attributes, rejections),
                }
            }
        };
        attributes.server_address = Some(address);
        attributes.server_port = port;
        self.client(req, headers, attributes, rejections);
    }

    fn client(
        &self,
        req: &ServiceRequest,
        headers: &RequestHeaders<'_>,
        attributes: &mut HttpAttributes,
        rejections: &Rejections,
    ) {
        if let Some(forwarded_for) = headers.forwarded_for {
            let first = first_element(forwarded_for.as_bytes(), MAX_FORWARDED_FOR_SCAN);
            match parse_ip(first) {
                Some(ip) => {
                    attributes.client_address = Some(self.ip(ip));
                    return;
                }
                None => rejections.count(Field::ForwardedFor, Reason::Malformed),
            }
        }
        if let Some(peer) = req.peer_addr() {
            attributes.client_address = Some(self.ip(peer.ip()));
        }
    }

    fn forwarded(
        &self,
        req: &ServiceRequest,
        attributes: &mut HttpAttributes,
        rejections: &Rejections,
    ) {
        let info = req.connection_info();
        match scheme(info.scheme().as_bytes()) {
            Some(secure) => attributes.scheme = StrAttr::scheme(secure),
            None => rejections.count(Field::Forwarded, Reason::Malformed),
        }
        match parse_host(info.host().as_bytes()) {
            Some((address, port)) => {
                attributes.server_address = Some(StrAttr::new(keys::SERVER_ADDRESS, address));
                attributes.server_port = port;
            }
            None => rejections.count(Field::Forwarded, Reason::Malformed),
        }
        match info.realip_remote_addr().map(|a| parse_ip(a.as_bytes())) {
            Some(Some(ip)) => attributes.client_address = Some(self.ip(ip)),
            Some(None) => rejections.count(Field::Forwarded, Reason::Malformed),
            None => {}
        }
    }

    fn host(
        &self,
        value: &HeaderValue,
        field: Field,
        rejections: &Rejections,
    ) -> Option<(StrAttr, Option<u16>)> {
        self.host.get(value, |bytes| {
            if bytes.len() > MAX_HOST_LEN {
                rejections.count(field, Reason::Oversized);
                return None;
            }
            let parsed = parse_host(first_element(bytes, MAX_HOST_LEN))
                .map(|(address, port)| (StrAttr::new(keys::SERVER_ADDRESS, address), port));
            if parsed.is_none() {
                rejections.count(field, Reason::Malformed);
            }
            parsed
        })
    }

    fn ip(&self, ip: IpAddr) -> StrAttr {
        let mut last = self.client.borrow_mut();
        match &*last {
            Some((known, attr)) if *known == ip => attr.clone(),
            _ => {
                let attr = StrAttr::new(keys::CLIENT_ADDRESS, &ip.to_string());
                *last = Some((ip, attr.clone()));
                attr
            }
        }
    }

    fn path(&self, path: &str, rejections: &Rejections) -> StrAttr {
        let mut last = self.path.borrow_mut();
        if let Some(known) = &*last {
            if known.value() == path {
                return known.clone();
            }
        }
        if path.len() > MAX_PATH_LEN {
            rejections.count(Field::Path, Reason::Truncated);
            // Not remembered: an over-long path is an outlier.
            return StrAttr::new(keys::PATH, &bounded_text(path.as_bytes(), MAX_PATH_LEN));
        }
        let attr = StrAttr::new(keys::PATH, path);
        *last = Some(attr.clone());
        attr
    }
}

/// The first comma-separated element of a header value (the original
/// client's, for `X-Forwarded-*`), trimmed, looked for within `scan` bytes.
pub(crate) fn first_element(value: &[u8], scan: usize) -> &[u8] {
    let window = &value[..value.len().min(scan)];
    let first = match window.iter().position(|&b| b == b',') {
        Some(comma) => &window[..comma],
        // No comma within the window: the whole value, if it fits.
        None if value.len() <= scan => window,
        None => &[],
    };
    first.trim_ascii()
}

/// `http` or `https`, whatever the case.
/// Whether a scheme is `https` (`Some(true)`) or `http`; `None` for any other.
fn scheme(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"https") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"http") {
        Some(false)
    } else {
        None
    }
}

/// An IP address, with or without a port or brackets.
pub(crate) fn parse_ip(value: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(value).ok()?;
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` (or a bare IPv6 address) into
/// the address (without brackets) and the port; `None` unless the host is a
/// registered name or an address as RFC 3986 writes them.
fn parse_host(value: &[u8]) -> Option<(&str, Option<u16>)> {
    if value.is_empty() || value.len() > MAX_HOST_LEN {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let port = |digits: &str| -> Option<Option<u16>> {
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u16>().ok().map(Some)
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        address.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => port(after.strip_prefix(':')?)?,
        };
        return Some((address, port));
    }
    if text.bytes().filter(|&b| b == b':').count() > 1 {
        // A bare IPv6 address: no port can be told apart.
        text.parse::<Ipv6Addr>().ok()?;
        return Some((text, None));
    }
    let (name, port) = match text.split_once(':') {
        Some((name, digits)) => (name, port(digits)?),
        None => (text, None),
    };
    let name_char =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%');
    (!name.is_empty() && name.bytes().all(name_char)).then_some((name, port))
}

/// Text of at most `max` bytes, cut at a character boundary; bytes that are
/// not UTF-8 become U+FFFD.
fn bounded_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_split_into_address_and_port_and_junk_is_refused() {
        assert_eq!(
            parse_host(b"example.com:8080"),
            Some(("example.com", Some(8080)))
        );
        assert_eq!(parse_host(b"example.com"), Some(("example.com", None)));
        assert_eq!(parse_host(b"[::1]:9000"), Some(("::1", Some(9000))));
        assert_eq!(parse_host(b"[::1]"), Some(("::1", None)));
        assert_eq!(parse_host(b"2001:db8::1"), Some(("2001:db8::1", None)));
        assert_eq!(parse_host(b"10.0.0.5:8080"), Some(("10.0.0.5", Some(8080))));
        for bad in [
            &b""[..],
            b":80",
            b"example.com:",
            b"example.com:99999",
            b"example.com:8o",
            b"exa mple.com",
            b"<script>",
            b"[not-v6]:80",
            b"[::1]x",
            b"a:b:c",
        ] {
            assert_eq!(parse_host(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_host("x".repeat(MAX_HOST_LEN + 1).as_bytes()), None);
    }

    #[test]
    fn client_addresses_must_be_addresses() {
        assert_eq!(parse_ip(b"203.0.113.7"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip(b"203.0.113.7:51000"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip(b"[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip(b"2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip(b"not-an-ip"), None);
        assert_eq!(parse_ip(b"unknown"), None);
    }

    #[test]
    fn only_the_first_forwarded_element_is_read_and_only_so_far() {
        assert_eq!(
            first_element(b" 203.0.113.9 , 10.0.0.1", 64),
            b"203.0.113.9"
        );
        assert_eq!(first_element(b"203.0.113.9", 64), b"203.0.113.9");
        let long = format!("{},10.0.0.1", "1".repeat(100));
        assert_eq!(first_element(long.as_bytes(), 64), b"");
        assert_eq!(scheme(first_element(b"HTTPS, http", 16)), Some(true));
        assert_eq!(scheme("x".repeat(10_000).as_bytes()), None);
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(300);
        let cut = bounded_text(text.as_bytes(), 511);
        assert_eq!(cut.len(), 510);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
