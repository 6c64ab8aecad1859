//! Paths outside `/xrpc/`: the development PLC directory (`GET /:did`, `GET /:did/log…`,
//! `GET /:did/data`, `POST /:did`) and `GET /.well-known/atproto-did`, which answers the
//! DID of the local account whose handle is the request's `Host`.

use atmls_identity::plc::directory::DirectoryService;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};

use super::Host;
use atmls_xrpc::XrpcError;
use atmls_xrpc::{HandlerResult, Router};
use atmls_xrpc::{HttpRequest, XrpcResponse};

pub(super) fn mount(host: &Host, router: Router) -> Router {
    let service =
        DirectoryService::new(host.directory().clone()).with_clock(host.inner.clock.clone());
    let host = host.clone();
    router.fallback(move |req| {
        let host = host.clone();
        let service = service.clone();
        async move { route(host, service, req).await }
    })
}

async fn route(host: Host, service: DirectoryService, req: HttpRequest) -> HandlerResult {
    let path = req.path();
    if path == "/.well-known/atproto-did" {
        return well_known(host, &req).await;
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first.starts_with("did:") || first.starts_with("did%3A") || first.starts_with("did%3a") {
        return plc(service, req).await;
    }
    Err(XrpcError::not_found("NotFound", "no such path"))
}

async fn well_known(host: Host, req: &HttpRequest) -> HandlerResult {
    if req.method() != Method::GET {
        return Err(XrpcError::method_not_allowed("only GET is allowed here"));
    }
    let handle = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase())
        .unwrap_or_default();
    let did = host
        .run(move |pds, _| pds.account_by_identifier(&handle).map(|a| a.did))
        .await
        .map_err(|_| XrpcError::not_found("NotFound", "no account with this handle"))?;
    Ok(XrpcResponse::bytes("text/plain; charset=utf-8", did))
}

async fn plc(service: DirectoryService, req: HttpRequest) -> HandlerResult {
    let mut uri = req.path().to_owned();
    if !req.query_string().is_empty() {
        uri.push('?');
        uri.push_str(req.query_string());
    }
    let request = Request::builder()
        .method(req.method().clone())
        .uri(&uri)
        .body(Full::new(req.body().clone()))
        .map_err(|_| XrpcError::invalid_request("malformed path"))?;
    let response = service.handle(request).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let bytes: Bytes = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(XrpcResponse::bytes(&content_type, bytes).with_status(status))
}
