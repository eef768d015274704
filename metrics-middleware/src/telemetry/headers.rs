//! The request headers telemetry reads, found in one pass over the header
//! map: a lookup costs a hash of the name and a probe (about 80
//! instructions each, measured), and a traced request reads up to nine
//! headers, while most requests carry fewer than ten in all.
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::propagation::{TRACEPARENT, TRACESTATE, X_CLOUD_TRACE_CONTEXT};

/// Whether `name` is one of the headers a trace comes in.
fn is_trace_header(name: &HeaderName) -> bool {
    let text = name.as_str();
    match text.len() {
        10 => text == "tracestate",
        11 => text == "traceparent",
        21 => text == "x-cloud-trace-context",
        _ => false,
    }
}

/// The first value of each header telemetry reads.
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestHeaders<'a> {
    /// Every header below was looked for (not only the trace headers).
    pub(crate) complete: bool,
    pub(crate) traceparent: Option<&'a HeaderValue>,
    /// More than one `traceparent` field.
    pub(crate) traceparent_repeated: bool,
    /// Whether there is any `tracestate` field (read with `get_all`).
    pub(crate) tracestate: bool,
    pub(crate) cloud_trace_context: Option<&'a HeaderValue>,
    pub(crate) user_agent: Option<&'a HeaderValue>,
    pub(crate) host: Option<&'a HeaderValue>,
    pub(crate) forwarded: bool,
    pub(crate) forwarded_for: Option<&'a HeaderValue>,
    pub(crate) forwarded_host: Option<&'a HeaderValue>,
    pub(crate) forwarded_proto: Option<&'a HeaderValue>,
}

impl<'a> RequestHeaders<'a> {
    /// The trace headers alone. By lookup, but for a request with few
    /// headers (a health check, a client next door), whose names are looked
    /// at first: most have no trace header at all, and a look at a few names
    /// costs less than the two lookups that would find nothing.
    pub(crate) fn trace_only(headers: &'a HeaderMap) -> Self {
        if headers.len_keys() <= 6 && !headers.keys().any(is_trace_header) {
            return Self::default();
        }
        let mut traceparents = headers.get_all(&TRACEPARENT);
        let traceparent = traceparents.next();
        Self {
            traceparent,
            traceparent_repeated: traceparents.next().is_some(),
            tracestate: traceparent.is_some() && headers.contains_key(&TRACESTATE),
            cloud_trace_context: headers.get(&X_CLOUD_TRACE_CONTEXT),
            ..Self::default()
        }
    }

    /// Whether a trace header was found (valid or not).
    pub(crate) fn has_trace_header(&self) -> bool {
        self.traceparent.is_some() || self.cloud_trace_context.is_some()
    }

    /// One pass over `headers`. Names are told apart by length first, and
    /// standard names (`host`, `user-agent`, `forwarded`) by their enum tag,
    /// so that a header telemetry does not read costs a few instructions.
    pub(crate) fn scan(headers: &'a HeaderMap) -> Self {
        let mut found = Self {
            complete: true,
            ..Self::default()
        };
        for (name, value) in headers {
            let first = |slot: &mut Option<&'a HeaderValue>| {
                if slot.is_none() {
                    *slot = Some(value);
                }
            };
            let text = name.as_str();
            match text.len() {
                4 if *name == header::HOST => first(&mut found.host),
                9 if *name == header::FORWARDED => found.forwarded = true,
                10 if *name == header::USER_AGENT => first(&mut found.user_agent),
                10 if text == "tracestate" => found.tracestate = true,
                11 if text == "traceparent" => {
                    found.traceparent_repeated |= found.traceparent.is_some();
                    first(&mut found.traceparent);
                }
                15 if text == "x-forwarded-for" => first(&mut found.forwarded_for),
                16 if text == "x-forwarded-host" => first(&mut found.forwarded_host),
                17 if text == "x-forwarded-proto" => first(&mut found.forwarded_proto),
                21 if text == "x-cloud-trace-context" => first(&mut found.cloud_trace_context),
                _ => {}
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_are_found_among_few_or_many() {
        for others in [0, 3, 12] {
            let mut headers = HeaderMap::new();
            for i in 0..others {
                headers.insert(
                    HeaderName::try_from(format!("x-other-{i}")).expect("name"),
                    HeaderValue::from_static("v"),
                );
            }
            assert!(RequestHeaders::trace_only(&headers).traceparent.is_none());
            headers.insert(TRACEPARENT.clone(), HeaderValue::from_static("tp"));
            headers.insert(
                X_CLOUD_TRACE_CONTEXT.clone(),
                HeaderValue::from_static("ct"),
            );
            let found = RequestHeaders::trace_only(&headers);
            assert_eq!(
                found.traceparent.map(HeaderValue::as_bytes),
                Some(&b"tp"[..])
            );
            assert_eq!(
                found.cloud_trace_context.map(HeaderValue::as_bytes),
                Some(&b"ct"[..])
            );
            assert!(!found.tracestate);
        }
    }

    #[test]
    fn the_first_value_of_each_header_is_found() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("traceparent", "a"),
            ("traceparent", "b"),
            ("user-agent", "curl"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("accept", "*/*"),
            ("tracestate", "x=1"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let found = RequestHeaders::scan(&headers);
        assert_eq!(
            found.traceparent.map(HeaderValue::as_bytes),
            Some(&b"a"[..])
        );
        assert!(found.traceparent_repeated && found.tracestate);
        assert_eq!(
            found.user_agent.map(HeaderValue::as_bytes),
            Some(&b"curl"[..])
        );
        assert_eq!(
            found.forwarded_for.map(HeaderValue::as_bytes),
            Some(&b"1.2.3.4"[..])
        );
        assert!(found.host.is_none() && !found.forwarded);
    }
}
