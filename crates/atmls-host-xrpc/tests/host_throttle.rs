//! Issue 14, hole 7: the embedded host's password paths (Argon2, expensive by design)
//! had no throttle. Failed logins are limited per account, login attempts and account
//! creations per source address, all before any hashing, with a typed 429
//! `RateLimitExceeded`; other accounts and other sources are not affected.

mod host_util;

use std::net::IpAddr;
use std::sync::Arc;

use atmls_host::{ManualClock, ThrottleConfig};

use atmls_testkit::http::send_from;
use bytes::Bytes;
use host_util::{Resp, TestHost};
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// Another source on the loopback interface (all of 127.0.0.0/8 is local on Linux).
fn honest_source() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

/// A host whose per-source limits apply to loopback sources too (by default loopback is
/// exempt: the development stack, or a reverse proxy in front of the host).
async fn host() -> TestHost {
    TestHost::start_configured(
        None,
        Arc::new(ManualClock::starting_now()),
        |s| s,
        |b| {
            b.host(|mut h| {
                h.core.throttle = ThrottleConfig::default().with_exempt_loopback(false);
                h
            })
        },
    )
    .await
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
    let t = host().await;
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
    let t = host().await;
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
    let t = host().await;
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

/// A kept-alive connection from `from` that has been served one request (so the server
/// has accepted it and holds it open).
async fn held_connection(
    t: &TestHost,
    from: IpAddr,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(t.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/xrpc/com.atproto.server.describeServer")
        .header("host", t.addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(host_util::WAIT, sender.send_request(req))
        .await
        .expect("answered in time")
        .expect("served");
    assert_eq!(response.status(), StatusCode::OK);
    sender
}

/// Whether a new connection from `from` is served (`false`: closed without an answer).
async fn served(t: &TestHost, from: IpAddr) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(t.addr).await.unwrap();
    let request = format!(
        "GET /xrpc/com.atproto.server.describeServer HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        t.addr
    );
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(host_util::WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("closed or answered in time");
    read.is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

/// One source holds at most its share of connections: past it, a new connection is
/// closed unanswered, while other sources are served; a slot comes back when one of the
/// source's connections ends.
#[tokio::test]
async fn connections_are_limited_per_source() {
    let t = TestHost::start_with(None, Arc::new(ManualClock::starting_now()), |c| {
        c.with_max_connections_per_source(2)
    })
    .await;
    let greedy = IpAddr::from([127, 0, 0, 1]);
    let first = held_connection(&t, greedy).await;
    let _second = held_connection(&t, greedy).await;
    assert!(!served(&t, greedy).await, "a third connection is refused");
    assert!(
        served(&t, honest_source()).await,
        "another source is served"
    );
    drop(first);
    // The server notices the close asynchronously: bounded retries, no sleeps asserted.
    let mut again = false;
    for _ in 0..200 {
        if served(&t, greedy).await {
            again = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(again, "the slot came back");
    t.stop().await;
}
