//! `com.atproto.repo.*`: record writes (own repo only), reads, describeRepo, uploadBlob.

use atmls_host::{
    ApplyWritesInput, CreateRecordInput, DeleteRecordInput, ListParams, PutRecordInput,
};
use serde_json::json;

use super::Host;
use super::server::with_host;
use atmls_xrpc::XrpcError;
use atmls_xrpc::{HandlerResult, Router};
use atmls_xrpc::{XrpcRequest, XrpcResponse};

pub(super) fn mount(host: &Host, router: Router) -> Router {
    let blob_limit = host.core().config().max_blob_bytes;
    router
        .procedure(
            "com.atproto.repo.createRecord",
            with_host(host, create_record),
        )
        .procedure("com.atproto.repo.putRecord", with_host(host, put_record))
        .procedure(
            "com.atproto.repo.deleteRecord",
            with_host(host, delete_record),
        )
        .procedure(
            "com.atproto.repo.applyWrites",
            with_host(host, apply_writes),
        )
        .query("com.atproto.repo.getRecord", with_host(host, record))
        .query(
            "com.atproto.repo.listRecords",
            with_host(host, list_records),
        )
        .query(
            "com.atproto.repo.describeRepo",
            with_host(host, describe_repo),
        )
        .procedure("com.atproto.repo.uploadBlob", with_host(host, upload_blob))
        .body_limit("com.atproto.repo.uploadBlob", blob_limit)
}

fn param(req: &XrpcRequest, name: &str) -> Result<String, XrpcError> {
    req.param_str(name)
        .map(str::to_owned)
        .ok_or_else(|| XrpcError::invalid_request(format!("missing parameter {name}")))
}

async fn create_record(host: Host, req: XrpcRequest) -> HandlerResult {
    let input: CreateRecordInput = req.input_as()?;
    let out = host
        .run_as(&req, move |pds, caller, _| pds.create_record(caller, input))
        .await?;
    XrpcResponse::json_from(&out)
}

async fn put_record(host: Host, req: XrpcRequest) -> HandlerResult {
    let input: PutRecordInput = req.input_as()?;
    let out = host
        .run_as(&req, move |pds, caller, _| pds.put_record(caller, input))
        .await?;
    XrpcResponse::json_from(&out)
}

async fn delete_record(host: Host, req: XrpcRequest) -> HandlerResult {
    let input: DeleteRecordInput = req.input_as()?;
    let commit = host
        .run_as(&req, move |pds, caller, _| pds.delete_record(caller, input))
        .await?;
    Ok(XrpcResponse::json(match commit {
        Some(c) => json!({ "commit": c }),
        None => json!({}),
    }))
}

async fn apply_writes(host: Host, req: XrpcRequest) -> HandlerResult {
    let input: ApplyWritesInput = req.input_as()?;
    let out = host
        .run_as(&req, move |pds, caller, _| pds.apply_writes(caller, input))
        .await?;
    Ok(XrpcResponse::json(out))
}

async fn record(host: Host, req: XrpcRequest) -> HandlerResult {
    let (repo, collection, rkey) = (
        param(&req, "repo")?,
        param(&req, "collection")?,
        param(&req, "rkey")?,
    );
    let cid = req.param_str("cid").map(str::to_owned);
    let out = host
        .run(move |pds, _| pds.record(&repo, &collection, &rkey, cid.as_deref()))
        .await?;
    XrpcResponse::json_from(&out)
}

async fn list_records(host: Host, req: XrpcRequest) -> HandlerResult {
    let (repo, collection) = (param(&req, "repo")?, param(&req, "collection")?);
    let mut params = ListParams::new().with_reverse(req.param_bool("reverse").unwrap_or(false));
    if let Some(limit) = req.param_i64("limit") {
        params = params.with_limit(limit);
    }
    if let Some(cursor) = req.param_str("cursor") {
        params = params.with_cursor(cursor);
    }
    let out = host
        .run(move |pds, _| pds.list_records(&repo, &collection, &params))
        .await?;
    XrpcResponse::json_from(&out)
}

async fn describe_repo(host: Host, req: XrpcRequest) -> HandlerResult {
    let repo = param(&req, "repo")?;
    let out = host.run(move |pds, _| pds.describe_repo(&repo)).await?;
    Ok(XrpcResponse::json(out))
}

async fn upload_blob(host: Host, req: XrpcRequest) -> HandlerResult {
    let body = req.body().clone();
    let mime = req.content_type().map(str::to_owned);
    let out = host
        .run_as(&req, move |pds, caller, now| {
            pds.upload_blob(caller, &body, mime.as_deref(), now)
        })
        .await?;
    Ok(XrpcResponse::json(out))
}
