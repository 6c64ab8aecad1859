//! Issue 14, hole 7: the embedded host's password paths (Argon2, expensive by design)
//! had no throttle. Failed logins are limited per account, login attempts and account
//! creations per source address, all before any hashing, with a typed 429
//! `RateLimitExceeded`; other accounts and other sources are not affected.

mod host_util;

use std::net::IpAddr;

use bytes::Bytes;
use host_util::{Resp, TestHost, send_from};
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// Another source on the loopback interface (all of 127.0.0.0/8 is local on Linux).
fn honest_source() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

async fn procedure_from(t: &TestHost, from: Option<IpAddr>, nsid: &str, body: &Value) -> Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/xrpc/{nsid}"))
        .header("host", t.addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    send_from(from, t.addr, req).await
}

async fn login(t: &TestHost, from: Option<IpAddr>, identifier: &str, password: &str) -> Resp {
    procedure_from(
        t,
        from,
        "com.atproto.server.createSession",
        &json!({ "identifier": identifier, "password": password }),
    )
    .await
}

/// Ten wrong passwords for one account, then even the right one waits: 429 before any
/// hashing. Another account logs in as usual.
#[tokio::test]
async fn failed_logins_are_limited_per_account() {
    let t = TestHost::start().await;
    let victim = t.account("victim.test").await;
    let _other = t.account("other.test").await;
    for _ in 0..10 {
        login(&t, None, "victim.test", "guess")
            .await
            .assert_error(401, "AuthenticationRequired");
    }
    // By handle, by DID, by any spelling: one account, one limit.
    for identifier in ["victim.test", victim.did.as_str(), "VICTIM.test"] {
        let message = login(&t, None, identifier, "guess")
            .await
            .assert_error(429, "RateLimitExceeded");
        assert!(message.contains("retry in"), "{message}");
    }
    login(&t, None, "victim.test", "correct horse")
        .await
        .assert_error(429, "RateLimitExceeded");
    assert_eq!(
        login(&t, None, "other.test", "correct horse").await.status,
        StatusCode::OK
    );
    t.stop().await;
}

/// One source trying many identifiers (unknown ones cost a dummy hash too) is refused
/// after its burst; an honest user at another address logs in meanwhile.
#[tokio::test]
async fn login_attempts_are_limited_per_source() {
    let t = TestHost::start().await;
    let _honest = t.account("honest.test").await;
    let mut refused = 0;
    for i in 0..40 {
        let r = login(&t, None, &format!("nobody{i}.test"), "guess").await;
        match r.status.as_u16() {
            401 => assert_eq!(refused, 0, "no 401 after the first 429"),
            429 => {
                r.assert_error(429, "RateLimitExceeded");
                refused += 1;
            }
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    assert_eq!(refused, 10, "30 attempts, then refused");
    let r = login(&t, Some(honest_source()), "honest.test", "correct horse").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    t.stop().await;
}

/// Account creation: ten per source at once, then 429; another source still creates.
#[tokio::test]
async fn account_creation_is_limited_per_source() {
    let t = TestHost::start().await;
    let create = |from: Option<IpAddr>, handle: String| {
        let t = &t;
        async move {
            procedure_from(
                t,
                from,
                "com.atproto.server.createAccount",
                &json!({ "handle": handle, "password": "correct horse" }),
            )
            .await
        }
    };
    for i in 0..10 {
        let r = create(None, format!("bulk{i}.test")).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    create(None, "bulk10.test".into())
        .await
        .assert_error(429, "RateLimitExceeded");
    let r = create(Some(honest_source()), "someone.test".into()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    t.stop().await;
}
