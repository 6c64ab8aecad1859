//! The route table: which handler serves which NSID, and the lexicons that validate them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::sync::Arc;

use atmls_lexicon::schema::Def;
use atmls_lexicon::syntax::Nsid;
use atmls_lexicon::validate::Catalog;
use futures_util::future::BoxFuture;

use crate::error::{RouterError, XrpcError};
use crate::request::{HttpRequest, XrpcRequest, XrpcResponse};
use crate::subscription::EventSink;

/// What a query, procedure or proxy handler returns.
pub type HandlerResult = Result<XrpcResponse, XrpcError>;

/// Serves a query or a procedure. Implemented by every
/// `Fn(XrpcRequest) -> impl Future<Output = HandlerResult>` (e.g. `|req| async move { … }`)
/// that is `Send + Sync + 'static`, and by hand for stateful services.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: XrpcRequest) -> BoxFuture<'static, HandlerResult>;
}

impl<F, Fut> Handler for F
where
    F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, req: XrpcRequest) -> BoxFuture<'static, HandlerResult> {
        Box::pin(self(req))
    }
}

/// Serves a subscription: called once the WebSocket is open, it pushes frames into the
/// [`EventSink`] until it returns. `Ok(())` closes the stream normally; `Err(e)` sends the
/// error frame `{op: -1}{error, message}` and closes. Implemented by every
/// `Fn(XrpcRequest, EventSink) -> impl Future<Output = Result<(), XrpcError>>`.
pub trait SubscriptionHandler: Send + Sync + 'static {
    /// Runs one subscription.
    fn call(&self, req: XrpcRequest, sink: EventSink) -> BoxFuture<'static, Result<(), XrpcError>>;
}

impl<F, Fut> SubscriptionHandler for F
where
    F: Fn(XrpcRequest, EventSink) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), XrpcError>> + Send + 'static,
{
    fn call(&self, req: XrpcRequest, sink: EventSink) -> BoxFuture<'static, Result<(), XrpcError>> {
        Box::pin(self(req, sink))
    }
}

/// Serves paths outside `/xrpc/`, `/_health` and `/metrics`. Implemented by every
/// `Fn(HttpRequest) -> impl Future<Output = HandlerResult>`.
pub trait FallbackHandler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: HttpRequest) -> BoxFuture<'static, HandlerResult>;
}

impl<F, Fut> FallbackHandler for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, req: HttpRequest) -> BoxFuture<'static, HandlerResult> {
        Box::pin(self(req))
    }
}

/// The kind of an XRPC route, as its lexicon defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteKind {
    /// HTTP GET.
    Query,
    /// HTTP POST.
    Procedure,
    /// WebSocket upgrade on GET.
    Subscription,
}

impl RouteKind {
    /// `query`, `procedure` or `subscription`.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Query => "query",
            RouteKind::Procedure => "procedure",
            RouteKind::Subscription => "subscription",
        }
    }
}

#[derive(Clone)]
pub(crate) enum Endpoint {
    Call(Arc<dyn Handler>),
    Subscribe(Arc<dyn SubscriptionHandler>),
}

#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) kind: RouteKind,
    pub(crate) endpoint: Endpoint,
    pub(crate) body_limit: Option<u64>,
}

/// The XRPC route table, built once and then served.
///
/// Each route is an NSID whose lexicon must be in the catalog, with the same kind (query,
/// procedure, subscription); this is checked when the server starts
/// ([`Router::check`]). Parameters and JSON bodies are validated against the lexicon
/// before the handler runs.
///
/// ```
/// use atmls_lexicon::validate::Catalog;
/// use atmls_xrpc::{Router, XrpcResponse};
/// use serde_json::json;
///
/// let router = Router::new(Catalog::new())
///     .query("com.example.ping", |_req| async { Ok(XrpcResponse::json(json!({}))) });
/// // No lexicon for com.example.ping in an empty catalog:
/// assert!(router.check().is_err());
/// ```
#[derive(Clone)]
pub struct Router {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) routes: HashMap<Nsid, Route>,
    pub(crate) paths: HashMap<String, Arc<dyn FallbackHandler>>,
    pub(crate) fallback: Option<Arc<dyn FallbackHandler>>,
    pub(crate) proxy: Option<Arc<dyn Handler>>,
    pub(crate) probes: Vec<Arc<dyn crate::Probe>>,
    errors: Vec<RouterError>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut routes: Vec<_> = self.routes.keys().map(Nsid::as_str).collect();
        routes.sort_unstable();
        f.debug_struct("Router")
            .field("lexicons", &self.catalog.len())
            .field("routes", &routes)
            .field("paths", &self.paths.len())
            .field("fallback", &self.fallback.is_some())
            .field("proxy", &self.proxy.is_some())
            .finish()
    }
}

impl Router {
    /// An empty router validating against `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self::with_catalog(Arc::new(catalog))
    }

    /// An empty router sharing a catalog.
    pub fn with_catalog(catalog: Arc<Catalog>) -> Self {
        Router {
            catalog,
            routes: HashMap::new(),
            paths: HashMap::new(),
            fallback: None,
            proxy: None,
            probes: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Adds a dependency to `GET /_health` (503 while its check fails) and its figures to
    /// `GET /metrics`.
    pub fn probe(mut self, probe: Arc<dyn crate::Probe>) -> Self {
        self.probes.push(probe);
        self
    }

    /// The catalog requests are validated against.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Serves query `nsid` (HTTP GET) with an async closure, e.g.
    /// `|req| async move { … }` (the argument's type is inferred).
    pub fn query<F, Fut>(self, nsid: &str, handler: F) -> Self
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.mount(nsid, RouteKind::Query, Arc::new(handler))
    }

    /// Serves procedure `nsid` (HTTP POST) with an async closure.
    pub fn procedure<F, Fut>(self, nsid: &str, handler: F) -> Self
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.mount(nsid, RouteKind::Procedure, Arc::new(handler))
    }

    /// Serves a query or procedure with a [`Handler`] object (e.g. a service struct
    /// shared by several routes). `kind` must not be [`RouteKind::Subscription`]; see
    /// [`Router::mount_subscription`].
    pub fn mount(self, nsid: &str, kind: RouteKind, handler: Arc<dyn Handler>) -> Self {
        self.add(nsid, kind, Endpoint::Call(handler))
    }

    /// Serves subscription `nsid` (WebSocket upgrade on GET) with an async closure
    /// taking the request and its [`EventSink`].
    pub fn subscription<F, Fut>(self, nsid: &str, handler: F) -> Self
    where
        F: Fn(XrpcRequest, EventSink) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), XrpcError>> + Send + 'static,
    {
        self.mount_subscription(nsid, Arc::new(handler))
    }

    /// Serves subscription `nsid` with a [`SubscriptionHandler`] object.
    pub fn mount_subscription(self, nsid: &str, handler: Arc<dyn SubscriptionHandler>) -> Self {
        self.add(nsid, RouteKind::Subscription, Endpoint::Subscribe(handler))
    }

    /// Serves every other path (outside `/xrpc/`, `/_health`, `/metrics`); without one
    /// they answer 404 `NotFound`.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.fallback = Some(Arc::new(handler));
        self
    }

    /// Serves one exact path outside `/xrpc/` (e.g. `/.well-known/did.json`), before the
    /// [`Router::fallback`] is asked. Mounting a path twice is a [`RouterError::Duplicate`]
    /// reported by [`Router::check`].
    pub fn path<F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        match self.paths.entry(path.to_owned()) {
            Entry::Occupied(_) => self.errors.push(RouterError::Duplicate(path.to_owned())),
            Entry::Vacant(e) => {
                e.insert(Arc::new(handler));
            }
        }
        self
    }

    /// Serves every `/xrpc/` request carrying an `atproto-proxy` header, whether or not
    /// its NSID is mounted here, with no lexicon validation (the target service
    /// validates). Without one such requests are routed as usual.
    pub fn proxy<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(XrpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.proxy = Some(Arc::new(handler));
        self
    }

    /// Sets the request body limit of one route (e.g. larger for blob uploads), instead of
    /// [`ServerConfig::max_body_bytes`](crate::ServerConfig::max_body_bytes). Call it after
    /// mounting the route.
    pub fn body_limit(mut self, nsid: &str, bytes: u64) -> Self {
        match Nsid::new(nsid).ok().and_then(|n| self.routes.get_mut(&n)) {
            Some(route) => route.body_limit = Some(bytes),
            None => self.errors.push(RouterError::NotMounted(nsid.to_owned())),
        }
        self
    }

    /// Adds every route, the fallback and the proxy of `other` (e.g. the DS's routes to
    /// the host's). Its catalog is not merged: build one catalog for both.
    pub fn merge(mut self, other: Router) -> Self {
        for (nsid, route) in other.routes {
            match self.routes.entry(nsid) {
                Entry::Occupied(e) => self
                    .errors
                    .push(RouterError::Duplicate(e.key().to_string())),
                Entry::Vacant(e) => {
                    e.insert(route);
                }
            }
        }
        for (path, handler) in other.paths {
            match self.paths.entry(path) {
                Entry::Occupied(e) => self.errors.push(RouterError::Duplicate(e.key().clone())),
                Entry::Vacant(e) => {
                    e.insert(handler);
                }
            }
        }
        self.errors.extend(other.errors);
        self.probes.extend(other.probes);
        self.fallback = self.fallback.or(other.fallback);
        self.proxy = self.proxy.or(other.proxy);
        self
    }

    /// The mounted NSIDs and their kinds, sorted.
    pub fn routes(&self) -> Vec<(&Nsid, RouteKind)> {
        let mut out: Vec<_> = self.routes.iter().map(|(n, r)| (n, r.kind)).collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Checks that every route has a valid NSID, is mounted once, and matches a lexicon
    /// of its kind in the catalog.
    pub fn check(&self) -> Result<(), RouterError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        for (nsid, kind) in self.routes() {
            let defined = match self.catalog.doc(nsid).and_then(|d| d.main()) {
                None => return Err(RouterError::MissingLexicon(nsid.to_string())),
                Some(Def::Query(_)) => RouteKind::Query,
                Some(Def::Procedure(_)) => RouteKind::Procedure,
                Some(Def::Subscription(_)) => RouteKind::Subscription,
                Some(other) => {
                    return Err(RouterError::WrongKind {
                        nsid: nsid.to_string(),
                        mounted: kind.as_str(),
                        defined: other.type_name(),
                    });
                }
            };
            if defined != kind {
                return Err(RouterError::WrongKind {
                    nsid: nsid.to_string(),
                    mounted: kind.as_str(),
                    defined: defined.as_str(),
                });
            }
        }
        Ok(())
    }

    fn add(mut self, nsid: &str, kind: RouteKind, endpoint: Endpoint) -> Self {
        if matches!(endpoint, Endpoint::Call(_)) && kind == RouteKind::Subscription {
            self.errors.push(RouterError::WrongKind {
                nsid: nsid.to_owned(),
                mounted: "query or procedure handler",
                defined: "subscription",
            });
            return self;
        }
        match Nsid::new(nsid) {
            Err(e) => self.errors.push(RouterError::InvalidNsid {
                nsid: nsid.to_owned(),
                reason: e.to_string(),
            }),
            Ok(n) if self.routes.contains_key(&n) => {
                self.errors.push(RouterError::Duplicate(nsid.to_owned()));
            }
            Ok(n) => {
                self.routes.insert(
                    n,
                    Route {
                        kind,
                        endpoint,
                        body_limit: None,
                    },
                );
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmls_lexicon::schema::LexiconDoc;
    use serde_json::json;

    fn catalog() -> Catalog {
        let doc = LexiconDoc::from_value(&json!({
            "lexicon": 1, "id": "com.example.q",
            "defs": { "main": { "type": "query" } }
        }))
        .unwrap();
        Catalog::from_docs([doc]).unwrap()
    }

    async fn ok(_req: XrpcRequest) -> HandlerResult {
        Ok(XrpcResponse::empty())
    }

    struct Service;

    impl Handler for Service {
        fn call(&self, _req: XrpcRequest) -> BoxFuture<'static, HandlerResult> {
            Box::pin(async { Ok(XrpcResponse::empty()) })
        }
    }

    #[test]
    fn handler_objects_mount() {
        let svc: Arc<dyn Handler> = Arc::new(Service);
        let router = Router::new(catalog()).mount("com.example.q", RouteKind::Query, svc.clone());
        assert!(router.check().is_ok());
        let wrong = Router::new(catalog()).mount("com.example.q", RouteKind::Subscription, svc);
        assert!(matches!(wrong.check(), Err(RouterError::WrongKind { .. })));
    }

    #[test]
    fn check_finds_route_errors() {
        assert!(
            Router::new(catalog())
                .query("com.example.q", ok)
                .check()
                .is_ok()
        );
        let wrong = Router::new(catalog())
            .procedure("com.example.q", ok)
            .check();
        assert!(matches!(wrong, Err(RouterError::WrongKind { .. })));
        let dup = Router::new(catalog())
            .query("com.example.q", ok)
            .query("com.example.q", ok)
            .check();
        assert!(matches!(dup, Err(RouterError::Duplicate(_))));
        let bad = Router::new(catalog()).query("not an nsid", ok).check();
        assert!(matches!(bad, Err(RouterError::InvalidNsid { .. })));
        let missing = Router::new(catalog()).query("com.example.zzz", ok).check();
        assert!(matches!(missing, Err(RouterError::MissingLexicon(_))));
    }
}
