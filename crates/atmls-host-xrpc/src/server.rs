//! `com.atproto.server.*`: describeServer, accounts, sessions and service auth.

use std::future::Future;

use atmls_host::CreateAccountInput;
use serde::Deserialize;
use serde_json::json;

use super::{Host, bearer, xrpc_error};
use atmls_xrpc::{HandlerResult, Router};
use atmls_xrpc::{XrpcRequest, XrpcResponse};

/// Binds a handler taking the host to a route closure.
pub(super) fn with_host<F, Fut>(
    host: &Host,
    f: F,
) -> impl Fn(XrpcRequest) -> Fut + Send + Sync + 'static
where
    F: Fn(Host, XrpcRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    let host = host.clone();
    move |req| f(host.clone(), req)
}

pub(super) fn mount(host: &Host, router: Router) -> Router {
    router
        .query(
            "com.atproto.server.describeServer",
            with_host(host, describe_server),
        )
        .procedure(
            "com.atproto.server.createAccount",
            with_host(host, create_account),
        )
        .procedure(
            "com.atproto.server.createSession",
            with_host(host, create_session),
        )
        .procedure(
            "com.atproto.server.refreshSession",
            with_host(host, refresh_session),
        )
        .query("com.atproto.server.getSession", with_host(host, session))
        .procedure(
            "com.atproto.server.deleteSession",
            with_host(host, delete_session),
        )
        .query(
            "com.atproto.server.getServiceAuth",
            with_host(host, service_auth),
        )
}

async fn describe_server(host: Host, _req: XrpcRequest) -> HandlerResult {
    let config = host.core().config();
    Ok(XrpcResponse::json(json!({
        "did": config.service_did,
        "availableUserDomains": config.handle_domains,
        "inviteCodeRequired": false,
        "phoneVerificationRequired": false,
    })))
}

/// Password hashing is bounded three ways, each checked before any hashing: per source
/// address (the core's throttle, here), per account (inside `create_session`), and in
/// concurrency (the host's password-work admission).
async fn create_account(host: Host, req: XrpcRequest) -> HandlerResult {
    let input: CreateAccountInput = req.input_as()?;
    let source = Some(req.remote_addr().ip());
    let now = host.now();
    host.core()
        .throttle()
        .account_attempt(source, now)
        .map_err(xrpc_error)?;
    let _turn = host.inner.password_work.admit().await?;
    let session = host
        .run_at(now, move |pds, now| pds.create_account(&input, now))
        .await?;
    XrpcResponse::json_from(&session)
}

#[derive(Deserialize)]
struct Login {
    identifier: String,
    password: String,
}

async fn create_session(host: Host, req: XrpcRequest) -> HandlerResult {
    let login: Login = req.input_as()?;
    let source = Some(req.remote_addr().ip());
    let now = host.now();
    host.core()
        .throttle()
        .login_attempt(source, now)
        .map_err(xrpc_error)?;
    let _turn = host.inner.password_work.admit().await?;
    let session = host
        .run_at(now, move |pds, now| {
            pds.create_session(&login.identifier, &login.password, source, now)
        })
        .await?;
    XrpcResponse::json_from(&session)
}

async fn refresh_session(host: Host, req: XrpcRequest) -> HandlerResult {
    let token = bearer(&req)?;
    let session = host
        .run(move |pds, now| pds.refresh_session(&token, now))
        .await?;
    XrpcResponse::json_from(&session)
}

async fn session(host: Host, req: XrpcRequest) -> HandlerResult {
    let info = host
        .run_as(&req, |pds, caller, _| pds.session_info(caller))
        .await?;
    XrpcResponse::json_from(&info)
}

async fn delete_session(host: Host, req: XrpcRequest) -> HandlerResult {
    let token = bearer(&req)?;
    host.run(move |pds, now| pds.delete_session(&token, now))
        .await?;
    Ok(XrpcResponse::empty())
}

async fn service_auth(host: Host, req: XrpcRequest) -> HandlerResult {
    let aud = req.param_str("aud").unwrap_or_default().to_owned();
    let lxm = req.param_str("lxm").map(str::to_owned);
    let exp = req.param_i64("exp");
    let token = host
        .run_as(&req, move |pds, caller, now| {
            pds.service_auth(caller, &aud, lxm.as_deref(), exp, now)
        })
        .await?;
    Ok(XrpcResponse::json(json!({ "token": token })))
}
