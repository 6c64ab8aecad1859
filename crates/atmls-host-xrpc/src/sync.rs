//! `com.atproto.sync.*` (proofs, CARs, latest commit, blobs) and
//! `com.atproto.identity.resolveHandle`.

use atmls_host::HostError as CoreError;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::json;

use super::Host;
use super::server::with_host;
use atmls_xrpc::XrpcError;
use atmls_xrpc::{HandlerResult, Router};
use atmls_xrpc::{XrpcRequest, XrpcResponse};

const CAR: &str = "application/vnd.ipld.car";

pub(super) fn mount(host: &Host, router: Router) -> Router {
    router
        .query("com.atproto.sync.getRecord", with_host(host, record_proof))
        .query("com.atproto.sync.getRepo", with_host(host, repo_car))
        .query(
            "com.atproto.sync.getLatestCommit",
            with_host(host, latest_commit),
        )
        .query("com.atproto.sync.getBlob", with_host(host, blob))
        .query(
            "com.atproto.identity.resolveHandle",
            with_host(host, resolve_handle),
        )
}

fn param(req: &XrpcRequest, name: &str) -> Result<String, XrpcError> {
    req.param_str(name)
        .map(str::to_owned)
        .ok_or_else(|| XrpcError::invalid_request(format!("missing parameter {name}")))
}

async fn record_proof(host: Host, req: XrpcRequest) -> HandlerResult {
    let (did, collection, rkey) = (
        param(&req, "did")?,
        param(&req, "collection")?,
        param(&req, "rkey")?,
    );
    let car = host
        .run(move |pds, _| pds.record_proof(&did, &collection, &rkey))
        .await?;
    Ok(XrpcResponse::bytes(CAR, car))
}

async fn repo_car(host: Host, req: XrpcRequest) -> HandlerResult {
    let did = param(&req, "did")?;
    let car = host.run(move |pds, _| pds.repo_car(&did)).await?;
    Ok(XrpcResponse::bytes(CAR, car))
}

async fn latest_commit(host: Host, req: XrpcRequest) -> HandlerResult {
    let did = param(&req, "did")?;
    let commit = host.run(move |pds, _| pds.latest_commit(&did)).await?;
    XrpcResponse::json_from(&commit)
}

async fn blob(host: Host, req: XrpcRequest) -> HandlerResult {
    let (did, cid) = (param(&req, "did")?, param(&req, "cid")?);
    let blob = host.run(move |pds, _| pds.blob(&did, &cid)).await?;
    // Blobs are user content: never let a browser sniff or render them as this origin.
    Ok(XrpcResponse::bytes(&blob.mime_type, blob.bytes)
        .with_header(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        )
        .with_header(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ))
}

async fn resolve_handle(host: Host, req: XrpcRequest) -> HandlerResult {
    let handle = param(&req, "handle")?;
    let did = host
        .run(move |pds, _| match pds.account_by_identifier(&handle) {
            Ok(a) if !handle.starts_with("did:") => Ok(a.did),
            _ => Err(CoreError::HandleNotFound(handle)),
        })
        .await?;
    Ok(XrpcResponse::json(json!({ "did": did })))
}
