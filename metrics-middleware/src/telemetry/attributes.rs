//! The server span's semantic-convention attributes, built cheaply.
//!
//! Each worker keeps what repeats from request to request: the `Host` and
//! `User-Agent` values and the client address of the last request (one entry
//! each, compared byte for byte), and the span name and `http.route` value of
//! each route template. A repeat costs a reference count instead of a new
//! `String`. Measured with callgrind on the hello route: the attributes went
//! from about 4,700 instructions per request (through actix's
//! `ConnectionInfo`, which copies every value into new strings) to the
//! figure in the README's benchmarks.
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Version;
use opentelemetry::{KeyValue, StringValue};

use crate::metrics::FxBuildHasher;

/// The most route templates whose names are kept; past it (an app with
/// more routes than that), names are built per request.
const MAX_ROUTES: usize = 512;

/// Attributes set when a span starts: this many at most, so that the span's
/// attribute vector is allocated once.
pub(crate) const START_ATTRIBUTES: usize = 12;

/// One worker's remembered values; see the module docs.
#[derive(Default)]
pub(crate) struct AttributeCache {
    host: RefCell<Option<(HeaderValue, StringValue, Option<i64>)>>,
    user_agent: RefCell<Option<(HeaderValue, StringValue, ())>>,
    client: RefCell<Option<(IpAddr, StringValue)>>,
    routes: RefCell<HashMap<Box<str>, RouteNames, FxBuildHasher>>,
}

/// A route's `http.route` value and its span name per method.
struct RouteNames {
    route: StringValue,
    names: Vec<(&'static str, &'static str)>,
}

impl AttributeCache {
    /// The attributes known when the request arrives.
    pub(crate) fn request(
        &self,
        req: &ServiceRequest,
        method: &'static str,
        into: &mut Vec<KeyValue>,
    ) {
        let headers = req.headers();
        into.push(KeyValue::new("http.request.method", method));
        into.push(KeyValue::new("url.path", req.path().to_owned()));
        into.push(KeyValue::new(
            "network.protocol.version",
            match req.version() {
                Version::HTTP_09 => "0.9",
                Version::HTTP_10 => "1.0",
                Version::HTTP_2 => "2",
                Version::HTTP_3 => "3",
                _ => "1.1",
            },
        ));

        // Behind a proxy or Google's load balancer, the X-Forwarded-*
        // headers say what the client saw; `Forwarded` is rare enough to
        // leave to actix's own parser.
        if headers.contains_key(header::FORWARDED) {
            let info = req.connection_info();
            into.push(KeyValue::new("url.scheme", info.scheme().to_owned()));
            let (address, port) = split_host(info.host());
            into.push(KeyValue::new("server.address", address.to_owned()));
            if let Some(port) = port {
                into.push(KeyValue::new("server.port", port));
            }
            if let Some(client) = info.realip_remote_addr() {
                into.push(KeyValue::new("client.address", client_address(client)));
            }
        } else {
            let scheme = match first_value(headers, &X_FORWARDED_PROTO) {
                Some("https") => "https",
                Some("http") => "http",
                Some(other) => return self.finish(req, other.to_owned(), into),
                None if req.app_config().secure() => "https",
                None => "http",
            };
            self.finish(req, scheme, into);
        }
    }

    fn finish(
        &self,
        req: &ServiceRequest,
        scheme: impl Into<StringValue>,
        into: &mut Vec<KeyValue>,
    ) {
        let headers = req.headers();
        into.push(KeyValue::new("url.scheme", scheme.into()));
        let host = headers
            .get(&X_FORWARDED_HOST)
            .or_else(|| headers.get(header::HOST));
        let (address, port) = match host {
            Some(host) => remembered(&self.host, host, |text| {
                let (address, port) = split_host(text);
                (StringValue::from(Arc::<str>::from(address)), port)
            }),
            // HTTP/2's `:authority`, else the server's configured name, as
            // actix's `ConnectionInfo` does.
            None => {
                let authority = req.uri().authority().map(|a| a.as_str());
                let (address, port) =
                    split_host(authority.unwrap_or_else(|| req.app_config().host()));
                (StringValue::from(address.to_owned()), port)
            }
        };
        into.push(KeyValue::new("server.address", address));
        if let Some(port) = port {
            into.push(KeyValue::new("server.port", port));
        }
        match first_value(headers, &X_FORWARDED_FOR) {
            Some(client) => into.push(KeyValue::new("client.address", client_address(client))),
            None => {
                if let Some(peer) = req.peer_addr() {
                    into.push(KeyValue::new("client.address", self.client(peer.ip())));
                }
            }
        }
        if let Some(agent) = headers.get(header::USER_AGENT) {
            let (agent, ()) = remembered(&self.user_agent, agent, |text| {
                (StringValue::from(Arc::<str>::from(text)), ())
            });
            into.push(KeyValue::new("user_agent.original", agent));
        }
    }

    fn client(&self, ip: IpAddr) -> StringValue {
        let mut last = self.client.borrow_mut();
        match &*last {
            Some((known, text)) if *known == ip => text.clone(),
            _ => {
                let text = StringValue::from(Arc::<str>::from(ip.to_string()));
                *last = Some((ip, text.clone()));
                text
            }
        }
    }

    /// The span name `{method} {route}` and the `http.route` value.
    pub(crate) fn route(&self, method: &'static str, route: String) -> (SpanName, StringValue) {
        let mut routes = self.routes.borrow_mut();
        if let Some(names) = routes.get_mut(route.as_str()) {
            let value = names.route.clone();
            if let Some((_, name)) = names.names.iter().find(|(m, _)| *m == method) {
                return (SpanName::Static(name), value);
            }
            // Methods are the fixed set of `method_label`, so each route
            // gains at most a dozen names.
            let name: &'static str = Box::leak(format!("{method} {route}").into_boxed_str());
            names.names.push((method, name));
            return (SpanName::Static(name), value);
        }
        if routes.len() >= MAX_ROUTES {
            return (
                SpanName::Owned(format!("{method} {route}")),
                StringValue::from(route),
            );
        }
        // Route templates come from the application's code, not from
        // clients, and are capped above: leaking each name once is bounded
        // and spares a `String` per request, since span names must be
        // `'static` to be shared.
        let name: &'static str = Box::leak(format!("{method} {route}").into_boxed_str());
        let value = StringValue::from(Arc::<str>::from(route.as_str()));
        routes.insert(
            route.into_boxed_str(),
            RouteNames {
                route: value.clone(),
                names: vec![(method, name)],
            },
        );
        (SpanName::Static(name), value)
    }
}

/// A span name, shared when the route is known.
pub(crate) enum SpanName {
    Static(&'static str),
    Owned(String),
}

impl From<SpanName> for std::borrow::Cow<'static, str> {
    fn from(name: SpanName) -> Self {
        match name {
            SpanName::Static(name) => name.into(),
            SpanName::Owned(name) => name.into(),
        }
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The first of a comma-separated header's values (the original client's,
/// for `X-Forwarded-*`).
fn first_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// The value for `header`, from the one-entry `cache` when the header is the
/// same as last time.
fn remembered<T: Clone>(
    cache: &RefCell<Option<(HeaderValue, StringValue, T)>>,
    header: &HeaderValue,
    make: impl FnOnce(&str) -> (StringValue, T),
) -> (StringValue, T) {
    let mut cache = cache.borrow_mut();
    if let Some((known, value, extra)) = &*cache {
        if known == header {
            return (value.clone(), extra.clone());
        }
    }
    let text = String::from_utf8_lossy(header.as_bytes());
    let (value, extra) = make(&text);
    *cache = Some((header.clone(), value.clone(), extra.clone()));
    (value, extra)
}

/// An address from a header or `ConnectionInfo`: `ip`, `ip:port`,
/// `[v6]:port` or a bare IPv6 address, to the address alone.
fn client_address(text: &str) -> String {
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return socket.ip().to_string();
    }
    text.trim_matches(['[', ']']).to_owned()
}

/// `host:port`, `[v6]:port`, `host` or `[v6]` into the address (without
/// brackets) and the port.
fn split_host(host: &str) -> (&str, Option<i64>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((address, port)) => (address, port.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        };
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has colons but no port.
        Some((address, port)) if !address.contains(':') => (address, port.parse().ok()),
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_split_into_address_and_port() {
        assert_eq!(split_host("example.com:8080"), ("example.com", Some(8080)));
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:9000"), ("::1", Some(9000)));
        assert_eq!(split_host("[::1]"), ("::1", None));
        assert_eq!(split_host("2001:db8::1"), ("2001:db8::1", None));
    }

    #[test]
    fn client_addresses_lose_their_port_but_not_their_ipv6_colons() {
        assert_eq!(client_address("203.0.113.7"), "203.0.113.7");
        assert_eq!(client_address("203.0.113.7:51000"), "203.0.113.7");
        assert_eq!(client_address("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(client_address("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn route_names_are_made_once_per_route_and_method() {
        let cache = AttributeCache::default();
        let (first, route) = cache.route("GET", "/users/{id}".to_owned());
        let (again, _) = cache.route("GET", "/users/{id}".to_owned());
        let (post, _) = cache.route("POST", "/users/{id}".to_owned());
        let name = |n: SpanName| std::borrow::Cow::from(n).into_owned();
        assert_eq!(route.as_str(), "/users/{id}");
        match (&first, &again) {
            (SpanName::Static(a), SpanName::Static(b)) => assert!(std::ptr::eq(*a, *b)),
            _ => panic!("names are shared"),
        }
        assert_eq!(name(first), "GET /users/{id}");
        assert_eq!(name(post), "POST /users/{id}");
    }
}
