//! `atproto-proxy`: calls are forwarded to the service named in the target's DID
//! document, with a service-auth token the service verifies with
//! `atmls_identity::service_auth`; unknown DIDs and services get typed errors.

mod host_util;

use std::convert::Infallible;
use std::sync::Arc;

use atmls_crypto::{Algorithm, SigningKey};
use atmls_host::{Clock as _, LocalResolver, SystemClock};
use atmls_identity::plc::GenesisBuilder;
use atmls_identity::service_auth::{ServiceAuthVerifier, VerifierConfig, unix_secs};
use bytes::Bytes;
use host_util::TestHost;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

/// Serves, on `listener`, a service that answers every call with what it verified.
fn start_service(listener: TcpListener, verifier: Arc<ServiceAuthVerifier>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let verifier = verifier.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    answer(verifier.clone(), req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn answer(
    verifier: Arc<ServiceAuthVerifier>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let lxm = path.trim_start_matches("/xrpc/").to_owned();
    let now = SystemClock.now();
    let (status, out) = match verifier.verify(&token, &lxm, now).await {
        Ok(v) => (
            200,
            json!({
                "iss": v.issuer.as_str(), "lxm": v.lxm, "method": method,
                "query": query, "body": String::from_utf8_lossy(&body),
                "expIn": unix_secs(v.exp).saturating_sub(unix_secs(now)),
            }),
        ),
        Err(e) => (401, json!({ "error": "BadJwt", "message": e.to_string() })),
    };
    let mut resp = Response::new(Full::new(Bytes::from(out.to_string())));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(resp)
}

#[tokio::test]
async fn proxied_calls_carry_verified_service_auth() {
    let t = TestHost::start().await;
    let a = t.account("alice.test").await;

    // The service: its DID (registered in the dev directory) names its endpoint, and its
    // verifier resolves callers through the same directory.
    let directory = t.host.directory().clone();
    let resolver = Arc::new(LocalResolver::new(directory.clone(), None));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rotation = SigningKey::generate(Algorithm::Es256k);
    let genesis = GenesisBuilder::new(
        &rotation.public_key(),
        &SigningKey::generate(Algorithm::Es256k).public_key(),
    )
    .service("test_svc", "TestService", &url)
    .sign(&rotation);
    let did = genesis.did().unwrap();
    directory.submit(&did, genesis, t.clock.now()).unwrap();
    let verifier = Arc::new(ServiceAuthVerifier::new(
        resolver,
        VerifierConfig::new(did.as_did().clone()).with_service_fragment("test_svc"),
    ));
    start_service(listener, verifier);
    let target = format!("{}#test_svc", did.as_str());
    let bearer = format!("Bearer {}", a.access);

    // A query (GET with parameters) and a procedure (POST with a body), both to methods
    // this host does not serve itself.
    let r = t
        .request(
            Method::GET,
            "/xrpc/com.example.svc.lookup?x=1&y=two",
            &[("authorization", &bearer), ("atproto-proxy", &target)],
            Bytes::new(),
        )
        .await
        .ok();
    assert_eq!(r["iss"], a.did.as_str());
    assert_eq!(r["lxm"], "com.example.svc.lookup");
    assert_eq!(r["method"], "GET");
    assert_eq!(r["query"], "x=1&y=two");
    assert!(r["expIn"].as_u64().unwrap() <= 60);
    let r = t
        .request(
            Method::POST,
            "/xrpc/com.example.svc.act",
            &[
                ("authorization", &bearer),
                ("atproto-proxy", &target),
                ("content-type", "application/json"),
            ],
            r#"{"hello":"world"}"#,
        )
        .await
        .ok();
    assert_eq!(r["method"], "POST");
    assert_eq!(r["body"], r#"{"hello":"world"}"#);

    // A bad session is refused before anything is forwarded.
    let r = t
        .request(
            Method::GET,
            "/xrpc/com.example.svc.lookup",
            &[
                ("authorization", "Bearer not-a-session"),
                ("atproto-proxy", &target),
            ],
            Bytes::new(),
        )
        .await;
    r.assert_error(401, "InvalidToken");

    // Typed errors: no session, unknown DID, unknown service, malformed header.
    t.request(
        Method::GET,
        "/xrpc/com.example.svc.lookup",
        &[("atproto-proxy", &target)],
        Bytes::new(),
    )
    .await
    .assert_error(401, "AuthenticationRequired");
    for (header, name) in [
        (
            "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#test_svc",
            "InvalidRequest",
        ),
        (&format!("{}#nope", did.as_str()) as &str, "InvalidRequest"),
        ("did:web:nowhere.invalid#svc", "InvalidRequest"),
        ("not a proxy header", "InvalidRequest"),
    ] {
        t.request(
            Method::GET,
            "/xrpc/com.example.svc.lookup",
            &[("authorization", &bearer), ("atproto-proxy", header)],
            Bytes::new(),
        )
        .await
        .assert_error(400, name);
    }
    t.stop().await;
}
