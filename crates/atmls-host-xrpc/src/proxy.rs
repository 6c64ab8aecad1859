//! `atproto-proxy`: a call carrying `atproto-proxy: <did>#<service>` is forwarded to that
//! service's endpoint (from the DID document) with a fresh service-auth token minted for
//! the caller (audience the service's DID, `lxm` the method, short expiry), as the
//! official PDS does. The caller must be logged in; unknown DIDs and services answer a
//! typed error. Endpoints are reached through the process's [`atmls_xrpc::Outbound`]:
//! loopback (unless the development allowance is on), private, link-local and metadata
//! addresses are refused after DNS resolution, with the same `UpstreamFailure` a closed
//! port gets.

use atmls_host::{HostError as CoreError, ProxyTarget};
use atmls_identity::DidResolver as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::{Host, bearer, xrpc_error};
use atmls_xrpc::XrpcError;
use atmls_xrpc::{HandlerResult, Router};
use atmls_xrpc::{XrpcRequest, XrpcResponse};

/// Largest response body read back from a proxied service.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The one answer for a proxy target that cannot be used, whatever the reason (refused
/// address, closed port, timeout, unreadable answer): nothing about the operator's
/// network is told apart.
fn unreachable(target: &ProxyTarget) -> XrpcError {
    XrpcError::new(
        StatusCode::BAD_GATEWAY,
        "UpstreamFailure",
        format!("proxied service {} is unreachable", target.did),
    )
}

pub(super) fn mount(host: &Host, router: Router) -> Router {
    let host = host.clone();
    router.proxy(move |req| {
        let host = host.clone();
        async move { forward(host, req).await }
    })
}

async fn forward(host: Host, req: XrpcRequest) -> HandlerResult {
    let header = req.header("atproto-proxy").unwrap_or_default();
    let target = ProxyTarget::parse(header).map_err(xrpc_error)?;
    let token = bearer(&req)?;
    let now = host.now();
    let caller = host
        .run_at(now, move |pds, now| pds.authenticate(&token, now))
        .await?;

    let doc = host
        .inner
        .resolver
        .resolve(&target.did)
        .await
        .map_err(|e| {
            tracing::info!(kind = e.kind(), "proxy DID not resolved");
            xrpc_error(CoreError::ProxyTargetNotFound(format!(
                "could not resolve proxy DID {}",
                target.did
            )))
        })?;
    let endpoint = target.endpoint(&doc).map_err(xrpc_error)?;
    let nsid = req.nsid().clone();
    let service_token = {
        let target = target.clone();
        let nsid = nsid.clone();
        host.run_at(now, move |pds, now| {
            pds.proxy_token(&caller, &target, &nsid, now)
        })
        .await?
    };

    let mut url = format!("{endpoint}/xrpc/{nsid}");
    if !req.query_string().is_empty() {
        url.push('?');
        url.push_str(req.query_string());
    }
    let method = if req.method() == Method::POST {
        Method::POST
    } else {
        Method::GET
    };
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(&url)
        .header(AUTHORIZATION, format!("Bearer {service_token}"));
    for name in [CONTENT_TYPE, ACCEPT] {
        if let Some(v) = req.headers().get(&name) {
            builder = builder.header(name, v.clone());
        }
    }
    let body = if method == Method::POST {
        req.body().clone()
    } else {
        Bytes::new()
    };
    let outgoing = builder
        .body(Full::new(body))
        .map_err(|_| XrpcError::invalid_request(format!("cannot build a request to {url}")))?;
    let response = host.inner.client.request(outgoing).await.map_err(|e| {
        let refused = atmls_net::is_refused(&e);
        tracing::warn!(refused, error = %e, "proxied service unreachable");
        unreachable(&target)
    })?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|_| unreachable(&target))?
        .to_bytes();
    let content_type = content_type
        .to_str()
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok(XrpcResponse::bytes(&content_type, bytes).with_status(status))
}
