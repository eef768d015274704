//! Errors that clients cause and actix-http logs at ERROR: a malformed
//! request, a head too large, a connection dropped mid-request. None is the
//! service's fault, and at ERROR any client could fill the logs (and page
//! whoever alerts on them) at will. They are counted instead, and summed up
//! in one INFO line at most every 10 seconds, with the last one's text.
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{Level, Metadata};

/// The shortest time between two summary lines.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What actix-http's HTTP/1 code logs at ERROR for a client's doing.
const CLIENT_CAUSED: [&str; 3] = [
    "stream error",
    "MAX_BUFFER_SIZE unprocessed data reached",
    "write zero",
];

/// Counts client errors and says when a summary line is due.
#[derive(Debug, Default)]
pub(crate) struct ClientErrors {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Errors since the last summary.
    unreported: u64,
    last_report: Option<Instant>,
}

impl ClientErrors {
    /// Whether an event may be a client error (then its message decides).
    pub(crate) fn may_be(metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::ERROR && metadata.target().starts_with("actix_http::h1")
    }

    /// Whether `message` is one of the client-caused errors.
    pub(crate) fn is_client_error(message: &str) -> bool {
        CLIENT_CAUSED
            .iter()
            .any(|prefix| message.starts_with(prefix))
    }

    /// Notes one; returns the summary line's text when one is due (the
    /// first error, then at most one every 10 s).
    pub(crate) fn note(&self, message: &str, now: Instant) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.unreported += 1;
        let due = state
            .last_report
            .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
        if !due {
            return None;
        }
        let count = std::mem::take(&mut state.unreported);
        state.last_report = Some(now);
        let mut last = message.to_owned();
        if last.len() > 200 {
            let mut end = 200;
            while !last.is_char_boundary(end) {
                end -= 1;
            }
            last.truncate(end);
        }
        Some(format!(
            "{count} request(s) failed on the client's side (malformed, too large or \
             cut off; not logged one by one, at most one such line every 10 s); the \
             last: {last}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_said_then_one_line_per_window_with_the_count() {
        let errors = ClientErrors::default();
        let start = Instant::now();
        let first = errors
            .note("stream error: parse error", start)
            .expect("first");
        assert!(first.starts_with("1 request(s)"), "{first}");
        for i in 1..500 {
            assert_eq!(
                errors.note("stream error: x", start + Duration::from_millis(i)),
                None
            );
        }
        let next = errors
            .note("stream error: last one", start + Duration::from_secs(11))
            .expect("a window later");
        assert!(
            next.starts_with("500 request(s)") && next.ends_with("last one"),
            "{next}"
        );
        assert!(ClientErrors::is_client_error("stream error: Parse(Header)"));
        assert!(!ClientErrors::is_client_error(
            "Internal server error: boom"
        ));
    }
}
