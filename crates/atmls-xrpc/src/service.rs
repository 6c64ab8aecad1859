//! One HTTP request: routing, validation, the handler call, limits and the response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use atmls_lexicon::schema::{Body, Def};
use atmls_lexicon::syntax::Nsid;
use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::body::{query_pairs, read_limited};
use crate::config::ServerConfig;
use crate::error::XrpcError;
use crate::lifecycle::Lifecycle;
use crate::logging::RefusalLog;
use crate::metrics::{Metrics, UNROUTED};
use crate::request::{HttpRequest, ResponseBody, XrpcRequest, XrpcResponse};
use crate::router::{Endpoint, RouteKind, Router};
use crate::subscription::socket;

const JSON: &str = "application/json; charset=utf-8";

/// Everything a request needs, shared by all connections.
pub(crate) struct State {
    pub(crate) router: Router,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) subscription_slots: Arc<Semaphore>,
    pub(crate) refusal_log: RefusalLog,
}

/// The hyper service function: never fails, never panics out.
pub(crate) async fn handle(
    state: Arc<State>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let _in_flight = state.metrics.in_flight();
    let method = req.method().clone();
    let proxied = state.router.proxy.is_some() && req.headers().contains_key("atproto-proxy");
    let label = route_label(&state.router, req.uri().path(), proxied);
    if let Some(response) = crate::cors::preflight(&method, req.headers()) {
        state
            .metrics
            .record(label, response.status().as_u16(), started.elapsed());
        return Ok(response);
    }
    let limit = state.config.request_timeout;
    let work = AssertUnwindSafe(dispatch(&state, remote, req)).catch_unwind();
    let mut response = match tokio::time::timeout(limit, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => {
            tracing::error!(%method, nsid = label, "handler panicked");
            error_response(&XrpcError::internal("internal server error"))
        }
        Err(_) => error_response(&XrpcError::timeout(limit)),
    };
    crate::cors::allow_any_origin(&mut response);
    let status = response.status().as_u16();
    let took = started.elapsed();
    state.metrics.record(label, status, took);
    if let Some(class) = response.extensions().get::<ErrorClass>() {
        state.metrics.record_error(label, class.name, class.limit);
        if status >= 500 {
            // Server faults, every one: the message of a 5xx is the server's own text
            // (no request data), and the cause was logged where it happened.
            tracing::error!(%method, nsid = label, status, error = class.name, message = %class.message, "request failed");
        } else {
            state.refusal_log.note(label, class.name, class.limit);
        }
    }
    tracing::debug!(
        %method,
        nsid = label,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}

/// The metrics label of a path: a mounted NSID or a fixed name (`_proxy` for requests
/// given to the proxy handler), never client text.
fn route_label<'r>(router: &'r Router, path: &str, proxied: bool) -> &'r str {
    match path {
        "/_health" => "_health",
        "/metrics" => "_metrics",
        _ => match path.strip_prefix("/xrpc/") {
            Some(_) if proxied => "_proxy",
            Some(nsid) => Nsid::new(nsid)
                .ok()
                .and_then(|n| router.routes.get_key_value(&n))
                .map_or(UNROUTED, |(n, _)| n.as_str()),
            None if router.paths.contains_key(path) => "_path",
            None if router.fallback.is_some() => "_fallback",
            None => UNROUTED,
        },
    }
}

/// `GET /_health`: the version, and each probe's state (`"ok"` or `"unavailable"`); 503
/// while a probe fails.
async fn health(state: &Arc<State>) -> Response<Full<Bytes>> {
    let mut body = serde_json::Map::new();
    body.insert("version".into(), json!(state.config.version));
    let mut status = StatusCode::OK;
    for probe in &state.router.probes {
        let s = probe.check().await;
        if !s.ok {
            status = StatusCode::SERVICE_UNAVAILABLE;
        }
        body.insert(
            s.name.into(),
            json!(if s.ok { "ok" } else { "unavailable" }),
        );
    }
    json_response(status, &serde_json::Value::Object(body))
}

async fn dispatch(
    state: &Arc<State>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if state.lifecycle.is_draining() {
        let mut response = error_response(&XrpcError::unavailable("the server is shutting down"));
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let path = req.uri().path().to_owned();
    let result = match path.as_str() {
        "/_health" => match only_get(&req) {
            Ok(()) => Ok(health(state).await),
            Err(e) => Err(e),
        },
        "/metrics" => only_get(&req).map(|()| {
            let mut text = state.metrics.render();
            if !state.router.probes.is_empty() {
                // The probes' figures go before the closing `# EOF`.
                let eof = text.rfind("# EOF").unwrap_or(text.len());
                text.truncate(eof);
                for probe in &state.router.probes {
                    text.push_str(&probe.metrics());
                }
                text.push_str("# EOF\n");
            }
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }),
        _ => match path.strip_prefix("/xrpc/") {
            Some(nsid) => xrpc(state, remote, nsid, req).await,
            None => fallback(state, remote, path.clone(), req).await,
        },
    };
    result.unwrap_or_else(|e| {
        let mut response = error_response(&e);
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    })
}

fn only_get(req: &Request<Incoming>) -> Result<(), XrpcError> {
    match *req.method() {
        Method::GET => Ok(()),
        _ => Err(XrpcError::method_not_allowed("only GET is allowed here")),
    }
}

async fn fallback(
    state: &Arc<State>,
    remote: SocketAddr,
    path: String,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, XrpcError> {
    let handler = state
        .router
        .paths
        .get(&path)
        .or(state.router.fallback.as_ref());
    let Some(handler) = handler.cloned() else {
        return Err(XrpcError::not_found("NotFound", "no such path"));
    };
    let (parts, body) = req.into_parts();
    let body = read_limited(&parts.headers, body, state.config.max_body_bytes).await?;
    let req = HttpRequest {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        remote_addr: remote,
    };
    Ok(into_response(handler.call(req).await?))
}

async fn xrpc(
    state: &Arc<State>,
    remote: SocketAddr,
    nsid: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, XrpcError> {
    let router = &state.router;
    if router.proxy.is_some() && req.headers().contains_key("atproto-proxy") {
        return proxy(state, remote, nsid, req).await;
    }
    let Ok(nsid) = Nsid::new(nsid) else {
        return Err(XrpcError::method_not_implemented(&truncate(nsid, 100)));
    };
    let Some(route) = router.routes.get(&nsid).cloned() else {
        return Err(XrpcError::method_not_implemented(nsid.as_str()));
    };
    let upgrade = socket::wants_upgrade(req.headers());
    match (route.kind, req.method()) {
        (RouteKind::Query, &Method::GET) | (RouteKind::Procedure, &Method::POST) => {}
        (RouteKind::Subscription, &Method::GET) if upgrade => {}
        (RouteKind::Subscription, &Method::GET) => {
            return Err(XrpcError::method_not_allowed(format!(
                "{nsid} is a subscription: connect with a WebSocket upgrade"
            )));
        }
        (kind, method) => {
            let expected = if kind == RouteKind::Procedure {
                "POST"
            } else {
                "GET"
            };
            return Err(XrpcError::method_not_allowed(format!(
                "{nsid} is a {}: use {expected}, not {method}",
                kind.as_str()
            )));
        }
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let params = params(router, &nsid, &query)?;
    match (&route.endpoint, route.kind) {
        (Endpoint::Subscribe(handler), _) => {
            subscribe(state, remote, nsid, params, query, req, handler)
        }
        (Endpoint::Call(handler), RouteKind::Procedure) => {
            let (parts, body) = req.into_parts();
            let limit = route.body_limit.unwrap_or(state.config.max_body_bytes);
            let body = read_limited(&parts.headers, body, limit).await?;
            let input = input(router, &nsid, &parts.headers, &body)?;
            let xreq = XrpcRequest::from_parts(
                nsid,
                parts.method,
                params,
                query,
                body,
                input,
                parts.headers,
                remote,
            );
            call(state, handler.as_ref(), xreq).await
        }
        (Endpoint::Call(handler), _) => {
            let (parts, _body) = req.into_parts();
            let xreq = XrpcRequest::from_parts(
                nsid,
                parts.method,
                params,
                query,
                Bytes::new(),
                None,
                parts.headers,
                remote,
            );
            call(state, handler.as_ref(), xreq).await
        }
    }
}

fn params(router: &Router, nsid: &Nsid, query: &str) -> Result<Map<String, Value>, XrpcError> {
    let pairs = query_pairs(query)?;
    let catalog = &router.catalog;
    let params = catalog
        .params_from_query(nsid, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    catalog
        .validate_params(nsid, &params)
        .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    Ok(params)
}

/// Checks the body against the lexicon's `input`: its content type, and for JSON its
/// syntax and schema.
fn input(
    router: &Router,
    nsid: &Nsid,
    headers: &hyper::HeaderMap,
    body: &Bytes,
) -> Result<Option<Value>, XrpcError> {
    let declared: Option<&Body> = match router.catalog.doc(nsid).and_then(|d| d.main()) {
        Some(Def::Procedure(p)) => p.input.as_ref(),
        _ => None,
    };
    let Some(declared) = declared else {
        if body.is_empty() {
            return Ok(None);
        }
        return Err(XrpcError::invalid_request(format!(
            "{nsid} takes no request body"
        )));
    };
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let expected = declared.encoding.to_ascii_lowercase();
    if !mime_matches(&expected, content_type.as_deref()) {
        return Err(XrpcError::invalid_request(format!(
            "wrong Content-Type {:?}: expected {expected}",
            content_type.unwrap_or_default()
        )));
    }
    if expected != "application/json" {
        return Ok(None);
    }
    if body.is_empty() {
        return Err(XrpcError::invalid_request(
            "a JSON request body is required",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| XrpcError::invalid_request(format!("malformed JSON body: {e}")))?;
    router
        .catalog
        .validate_input(nsid, &value)
        .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    Ok(Some(value))
}

fn mime_matches(expected: &str, actual: Option<&str>) -> bool {
    if expected == "*/*" {
        return true;
    }
    let Some(actual) = actual else {
        return false;
    };
    match expected.strip_suffix("/*") {
        Some(kind) => actual.split('/').next() == Some(kind),
        None => actual == expected,
    }
}

async fn call(
    state: &Arc<State>,
    handler: &dyn crate::router::Handler,
    req: XrpcRequest,
) -> Result<Response<Full<Bytes>>, XrpcError> {
    let nsid = req.nsid().clone();
    let response = handler.call(req).await?;
    if state.config.validate_output
        && let ResponseBody::Json(value) = &response.body
        && let Err(e) = state.router.catalog.validate_output(&nsid, value)
    {
        tracing::error!(nsid = %nsid, error = %e, "response fails its lexicon");
        return Err(XrpcError::internal(format!(
            "the response failed output validation: {e}"
        )));
    }
    Ok(into_response(response))
}

async fn proxy(
    state: &Arc<State>,
    remote: SocketAddr,
    nsid: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, XrpcError> {
    let Ok(nsid) = Nsid::new(nsid) else {
        return Err(XrpcError::method_not_implemented(&truncate(nsid, 100)));
    };
    let Some(handler) = state.router.proxy.clone() else {
        return Err(XrpcError::method_not_implemented(nsid.as_str()));
    };
    let query = req.uri().query().unwrap_or_default().to_owned();
    let params = query_pairs(&query)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let (parts, body) = req.into_parts();
    let limit = state
        .router
        .routes
        .get(&nsid)
        .and_then(|r| r.body_limit)
        .unwrap_or(state.config.max_body_bytes);
    let body = read_limited(&parts.headers, body, limit).await?;
    let xreq = XrpcRequest::from_parts(
        nsid,
        parts.method,
        params,
        query,
        body,
        None,
        parts.headers,
        remote,
    );
    Ok(into_response(handler.call(xreq).await?))
}

fn subscribe(
    state: &Arc<State>,
    remote: SocketAddr,
    nsid: Nsid,
    params: Map<String, Value>,
    query: String,
    mut req: Request<Incoming>,
    handler: &Arc<dyn crate::router::SubscriptionHandler>,
) -> Result<Response<Full<Bytes>>, XrpcError> {
    let accept = socket::accept_key(req.headers())?;
    let slot = state
        .subscription_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| XrpcError::unavailable("too many open subscriptions"))?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();
    let xreq = XrpcRequest::from_parts(
        nsid,
        parts.method,
        params,
        query,
        Bytes::new(),
        None,
        parts.headers,
        remote,
    );
    let task = state.lifecycle.track();
    tokio::spawn(socket::run(
        on_upgrade,
        xreq,
        handler.clone(),
        state.clone(),
        (task, slot),
    ));
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

fn into_response(r: XrpcResponse) -> Response<Full<Bytes>> {
    let (content_type, bytes) = match r.body {
        ResponseBody::Json(v) => (
            Some(HeaderValue::from_static(JSON)),
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
        ),
        ResponseBody::Bytes {
            content_type,
            bytes,
        } => (Some(content_type), bytes),
        ResponseBody::Empty => (None, Bytes::new()),
    };
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = r.status;
    *response.headers_mut() = r.headers;
    if let Some(ct) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    response
}

/// The typed JSON error response.
pub(crate) fn error_response(e: &XrpcError) -> Response<Full<Bytes>> {
    let mut response = json_response(e.status(), &e.to_json());
    response.extensions_mut().insert(ErrorClass {
        name: e.label(),
        limit: e.limit(),
        message: if e.status().is_server_error() {
            e.message().to_owned()
        } else {
            String::new()
        },
    });
    response
}

/// What [`handle`] counts and logs of an error response, carried as a response extension
/// from wherever the error was turned into a response.
#[derive(Debug, Clone)]
struct ErrorClass {
    name: &'static str,
    limit: Option<&'static str>,
    /// The message, for server errors only (a refusal's message may quote the request).
    message: String,
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
