//! Requests that neither signal records: one list of rules for metrics,
//! spans and the access log alike.
use std::fmt;
use std::sync::Arc;

use actix_web::dev::ServiceRequest;

use super::routes::Route;

/// A rule that keeps matching requests out of the metrics, the traces and
/// the access log.
///
/// ```
/// use metrics_middleware::Exclude;
///
/// let rules = [
///     Exclude::path("/healthz"),                 // Kubernetes probes
///     Exclude::path_prefix("/static/"),          // files
///     Exclude::route("/ws/{room}"),              // by route template
///     Exclude::when(|req| req.method() == "OPTIONS"),
/// ];
/// # drop(rules);
/// ```
#[derive(Clone)]
pub struct Exclude(Rule);

#[derive(Clone)]
enum Rule {
    Path(Box<str>),
    PathPrefix(Box<str>),
    Route(Box<str>),
    When(Arc<dyn Fn(&ServiceRequest) -> bool + Send + Sync>),
}

impl Exclude {
    /// Requests to exactly this path.
    pub fn path(path: impl Into<String>) -> Self {
        Self(Rule::Path(path.into().into_boxed_str()))
    }

    /// Requests whose path starts with `prefix`.
    pub fn path_prefix(prefix: impl Into<String>) -> Self {
        Self(Rule::PathPrefix(prefix.into().into_boxed_str()))
    }

    /// Requests that match this route template, as written in the app
    /// (`/ws/{room}`, `/users/{id}`).
    pub fn route(template: impl Into<String>) -> Self {
        Self(Rule::Route(template.into().into_boxed_str()))
    }

    /// Requests for which `predicate` returns true. It runs for every
    /// request, before anything else: keep it cheap.
    pub fn when(predicate: impl Fn(&ServiceRequest) -> bool + Send + Sync + 'static) -> Self {
        Self(Rule::When(Arc::new(predicate)))
    }
}

impl fmt::Debug for Exclude {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Rule::Path(path) => write!(f, "Exclude::path({path:?})"),
            Rule::PathPrefix(prefix) => write!(f, "Exclude::path_prefix({prefix:?})"),
            Rule::Route(route) => write!(f, "Exclude::route({route:?})"),
            Rule::When(_) => f.write_str("Exclude::when(..)"),
        }
    }
}

/// The rules of one middleware.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exclusions {
    rules: Vec<Exclude>,
}

impl Exclusions {
    pub(crate) fn push(&mut self, rule: Exclude) {
        self.rules.push(rule);
    }

    /// Whether `req`, which matched `route`, is excluded.
    pub(crate) fn matches(&self, req: &ServiceRequest, route: Option<&Route>) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let path = req.path();
        self.rules.iter().any(|rule| match &rule.0 {
            Rule::Path(excluded) => path == &**excluded,
            Rule::PathPrefix(prefix) => path.starts_with(&**prefix),
            Rule::Route(template) => route.map(|r| r.template.as_str()) == Some(&**template),
            Rule::When(predicate) => predicate(req),
        })
    }
}
