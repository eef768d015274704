//! Label values taken from a request, bounded so that clients cannot create
//! series at will.
use actix_web::http::Method;

/// The label value for a request method: the standard methods by name and
/// every other method as `_OTHER`, as OpenTelemetry's HTTP conventions do, since
/// a method is any token a client cares to send.
pub(crate) fn method_label(method: &Method) -> &'static str {
    method_name_label(method.as_str())
}

/// [`method_label`] of a method by name (an outgoing call's, for one).
pub(crate) fn method_name_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// The route label of one request, decided when its response starts.
#[derive(Debug)]
pub(crate) enum RouteLabel<'a> {
    /// The matched route template, such as `/users/{id}`.
    Template(&'a str),
    /// No route matched: the configured mask value.
    Unmatched,
    /// No route matched and masking is off: the raw path.
    RawPath(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_others_collapse() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&made_up), "_OTHER");
    }
}
