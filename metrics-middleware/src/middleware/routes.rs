//! The route template of a request, found once, when it arrives.
//!
//! Actix knows a request's route template after routing, and only while it
//! holds the request; an error returned by an inner middleware (an
//! authentication failure, a timeout) arrives without the request, so a
//! template looked up then is lost. Looking it up when the request arrives
//! (by path, in the app's resource map, as `HttpRequest::match_pattern`
//! does before routing) keeps it for every outcome, and lets exclusion rules
//! name routes.
//!
//! Each worker remembers what each path it has seen resolves to, so that a
//! repeated path costs a hash lookup: paths up to [`MAX_CACHED_PATH_LEN`]
//! bytes, at most [`MAX_CACHED_PATHS`] of them (the cache starts over when
//! full, so clients sending new paths cannot grow it). Templates themselves
//! come from the application's code: each is kept once with its span names.
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use opentelemetry::StringValue;

use crate::metrics::FxBuildHasher;
use crate::telemetry::record::{keys, StrAttr};

/// Paths longer than this are resolved every time.
pub(crate) const MAX_CACHED_PATH_LEN: usize = 128;
/// Paths remembered per worker before the cache starts over.
pub(crate) const MAX_CACHED_PATHS: usize = 1024;
/// Templates whose span names are kept per worker; an application with
/// more routes than that makes names per request past it.
const MAX_TEMPLATES: usize = 4096;

/// A route template and the span names made from it.
#[derive(Debug)]
pub(crate) struct Route {
    /// The template, as written in the app: `/users/{id}`.
    pub(crate) template: StringValue,
    /// The span's `http.route` attribute, encoded.
    pub(crate) attr: StrAttr,
    /// `{method} {template}` per method, made once each (methods are the
    /// bounded set of `method_label`).
    names: RefCell<Vec<(&'static str, &'static str)>>,
    /// Whether names are kept (false past [`MAX_TEMPLATES`]).
    keeps_names: bool,
    /// The route's number in its worker, for tables indexed by route;
    /// `None` past [`MAX_TEMPLATES`].
    pub(crate) id: Option<usize>,
}

impl Route {
    /// The span name `{method} {template}`.
    pub(crate) fn span_name(&self, method: &'static str) -> Cow<'static, str> {
        let mut names = self.names.borrow_mut();
        // Methods are `&'static` labels: compared by address first.
        if let Some((_, name)) = names
            .iter()
            .find(|(m, _)| std::ptr::eq(*m, method) || *m == method)
        {
            return Cow::Borrowed(name);
        }
        let name = format!("{method} {}", self.template.as_str());
        if !self.keeps_names {
            return Cow::Owned(name);
        }
        // Templates come from the application's code and are capped: leaking
        // each name once is bounded and spares a `String` per request, since
        // span names are shared as `&'static str`.
        let name: &'static str = Box::leak(name.into_boxed_str());
        names.push((method, name));
        Cow::Borrowed(name)
    }
}

/// One worker's routes; see the module docs.
#[derive(Default)]
pub(crate) struct Routes {
    by_path: RefCell<HashMap<Box<str>, Option<Rc<Route>>, FxBuildHasher>>,
    by_template: RefCell<HashMap<Box<str>, Rc<Route>, FxBuildHasher>>,
}

impl Routes {
    /// The route `req` matches, `None` if it matches none.
    pub(crate) fn of(&self, req: &ServiceRequest) -> Option<Rc<Route>> {
        let path = req.path();
        let cacheable = path.len() <= MAX_CACHED_PATH_LEN;
        if cacheable {
            if let Some(known) = self.by_path.borrow().get(path) {
                return known.clone();
            }
        }
        let route = req
            .request()
            .match_pattern()
            .map(|template| self.intern(template));
        if cacheable {
            let mut by_path = self.by_path.borrow_mut();
            if by_path.len() >= MAX_CACHED_PATHS {
                by_path.clear();
            }
            by_path.insert(path.into(), route.clone());
        }
        route
    }

    fn intern(&self, template: String) -> Rc<Route> {
        let mut by_template = self.by_template.borrow_mut();
        if let Some(route) = by_template.get(template.as_str()) {
            return Rc::clone(route);
        }
        let keeps_names = by_template.len() < MAX_TEMPLATES;
        let route = Rc::new(Route {
            attr: StrAttr::new(keys::ROUTE, &template),
            template: StringValue::from(Arc::<str>::from(template.as_str())),
            names: RefCell::default(),
            keeps_names,
            id: keeps_names.then_some(by_template.len()),
        });
        if keeps_names {
            by_template.insert(template.into_boxed_str(), Rc::clone(&route));
        }
        route
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[actix_web::test]
    async fn new_paths_cannot_grow_the_cache() {
        let routes = Routes::default();
        for i in 0..(3 * MAX_CACHED_PATHS) {
            let req = TestRequest::get()
                .uri(&format!("/scan/{i}"))
                .to_srv_request();
            assert!(routes.of(&req).is_none());
        }
        assert!(routes.by_path.borrow().len() <= MAX_CACHED_PATHS);
        let long = format!("/{}", "x".repeat(MAX_CACHED_PATH_LEN));
        routes.of(&TestRequest::get().uri(&long).to_srv_request());
        assert!(!routes.by_path.borrow().contains_key(long.as_str()));
    }

    #[test]
    fn span_names_are_made_once_per_method() {
        let routes = Routes::default();
        let route = routes.intern("/users/{id}".to_owned());
        assert!(Rc::ptr_eq(&route, &routes.intern("/users/{id}".to_owned())));
        let name = route.span_name("GET");
        let again = route.span_name("GET");
        match (&name, &again) {
            (Cow::Borrowed(a), Cow::Borrowed(b)) => assert!(std::ptr::eq(*a, *b)),
            _ => panic!("names are shared"),
        }
        assert_eq!(route.span_name("POST"), "POST /users/{id}");
    }
}
