//! Accounts and sessions through a real server: create, login, refresh rotation,
//! deleteSession, wrong password, expired and bad tokens, handles.

mod host_util;

use host_util::TestHost;
use serde_json::json;

#[tokio::test]
async fn account_lifecycle() {
    let t = TestHost::start().await;

    let desc = t
        .query("com.atproto.server.describeServer", &[], None)
        .await
        .ok();
    assert_eq!(desc["availableUserDomains"], json!([".test"]));
    assert!(
        desc["did"]
            .as_str()
            .unwrap()
            .starts_with("did:web:127.0.0.1")
    );

    let alice = t.account("alice.test").await;
    assert!(alice.did.starts_with("did:plc:"));
    assert_eq!(alice.handle, "alice.test");
    // The DID is in the dev directory, pointing at this host.
    let doc = t.did_doc(&alice.did).await;
    assert_eq!(doc.pds_endpoint().unwrap(), t.url);
    assert_eq!(doc.handle().unwrap().as_str(), "alice.test");
    // The repo exists and is empty.
    t.head(&alice.did).await;

    // Login by handle, by DID, by email.
    for identifier in ["alice.test", alice.did.as_str(), "alice.test@example.com"] {
        let s = t
            .procedure(
                "com.atproto.server.createSession",
                &json!({ "identifier": identifier, "password": "correct horse" }),
                None,
            )
            .await
            .ok();
        assert_eq!(s["did"], alice.did.as_str());
        assert!(s["didDoc"].is_object());
    }
    // Wrong password and unknown account answer the same.
    for (identifier, password) in [("alice.test", "wrong"), ("nobody.test", "correct horse")] {
        t.procedure(
            "com.atproto.server.createSession",
            &json!({ "identifier": identifier, "password": password }),
            None,
        )
        .await
        .assert_error(401, "AuthenticationRequired");
    }

    let info = t
        .query("com.atproto.server.getSession", &[], Some(&alice.access))
        .await
        .ok();
    assert_eq!(info["handle"], "alice.test");
    assert_eq!(info["email"], "alice.test@example.com");

    // Refresh rotates: new tokens; the old refresh token is dead.
    let refreshed = t
        .procedure(
            "com.atproto.server.refreshSession",
            &serde_json::Value::Null,
            Some(&alice.refresh),
        )
        .await
        .ok();
    let new_refresh = refreshed["refreshJwt"].as_str().unwrap().to_owned();
    let new_access = refreshed["accessJwt"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, alice.refresh);
    t.procedure(
        "com.atproto.server.refreshSession",
        &serde_json::Value::Null,
        Some(&alice.refresh),
    )
    .await
    .assert_error(401, "InvalidToken");
    // An access token is not a refresh token, and the other way round.
    t.procedure(
        "com.atproto.server.refreshSession",
        &serde_json::Value::Null,
        Some(&new_access),
    )
    .await
    .assert_error(401, "InvalidToken");
    t.query("com.atproto.server.getSession", &[], Some(&new_refresh))
        .await
        .assert_error(401, "InvalidToken");
    t.query("com.atproto.server.getSession", &[], Some(&new_access))
        .await
        .ok();

    // deleteSession revokes the session: its access and refresh tokens stop working.
    t.procedure(
        "com.atproto.server.deleteSession",
        &serde_json::Value::Null,
        Some(&new_refresh),
    )
    .await
    .ok();
    t.query("com.atproto.server.getSession", &[], Some(&new_access))
        .await
        .assert_error(401, "InvalidToken");
    t.procedure(
        "com.atproto.server.refreshSession",
        &serde_json::Value::Null,
        Some(&new_refresh),
    )
    .await
    .assert_error(401, "InvalidToken");
    t.stop().await;
}

#[tokio::test]
async fn expired_and_bad_tokens() {
    let t = TestHost::start().await;
    let bob = t.account("bob.test").await;

    t.query("com.atproto.server.getSession", &[], None)
        .await
        .assert_error(401, "AuthenticationRequired");
    for junk in ["garbage", "a.b.c", &bob.access[..bob.access.len() - 2]] {
        t.query("com.atproto.server.getSession", &[], Some(junk))
            .await
            .assert_error(401, "InvalidToken");
    }
    // A token minted by getServiceAuth (ES256K, typ JWT) is no session token.
    let service = t
        .query(
            "com.atproto.server.getServiceAuth",
            &[
                ("aud", "did:web:ds.example.com"),
                ("lxm", "chat.mls.ds.createMailbox"),
            ],
            Some(&bob.access),
        )
        .await
        .ok();
    t.query(
        "com.atproto.server.getSession",
        &[],
        Some(service["token"].as_str().unwrap()),
    )
    .await
    .assert_error(401, "InvalidToken");

    // Two hours and a bit later the access token has expired; the refresh token still works.
    t.clock
        .advance(std::time::Duration::from_millis((2 * 60 * 60 + 1) * 1000));
    t.query("com.atproto.server.getSession", &[], Some(&bob.access))
        .await
        .assert_error(401, "ExpiredToken");
    let fresh = t
        .procedure(
            "com.atproto.server.refreshSession",
            &serde_json::Value::Null,
            Some(&bob.refresh),
        )
        .await
        .ok();
    t.query(
        "com.atproto.server.getSession",
        &[],
        Some(fresh["accessJwt"].as_str().unwrap()),
    )
    .await
    .ok();
    // 91 days later the refresh token has expired too.
    t.clock
        .advance(std::time::Duration::from_millis(91 * 24 * 60 * 60 * 1000));
    t.procedure(
        "com.atproto.server.refreshSession",
        &serde_json::Value::Null,
        Some(fresh["refreshJwt"].as_str().unwrap()),
    )
    .await
    .assert_error(401, "ExpiredToken");
    t.stop().await;
}

#[tokio::test]
async fn handles_and_account_input() {
    let t = TestHost::start().await;
    let carol = t.account("carol.test").await;
    let create = |handle: &str, password: &str| json!({ "handle": handle, "password": password });
    for (body, status, name) in [
        (create("carol.test", "pw"), 400, "HandleNotAvailable"),
        (create("CAROL.test", "pw"), 400, "HandleNotAvailable"),
        (create("dave.example.com", "pw"), 400, "UnsupportedDomain"),
        (create("a.b.test", "pw"), 400, "UnsupportedDomain"),
        // Not a handle at all: refused by the lexicon's `format: handle`, as officially.
        (create("not a handle", "pw"), 400, "InvalidRequest"),
        (json!({ "handle": "erin.test" }), 400, "InvalidPassword"),
        (create("erin.test", ""), 400, "InvalidPassword"),
        (json!({ "password": "pw" }), 400, "InvalidRequest"),
    ] {
        t.procedure("com.atproto.server.createAccount", &body, None)
            .await
            .assert_error(status, name);
    }
    let resolved = t
        .query(
            "com.atproto.identity.resolveHandle",
            &[("handle", "carol.test")],
            None,
        )
        .await
        .ok();
    assert_eq!(resolved["did"], carol.did.as_str());
    t.query(
        "com.atproto.identity.resolveHandle",
        &[("handle", "nobody.test")],
        None,
    )
    .await
    .assert_error(400, "HandleNotFound");

    // /.well-known/atproto-did answers by Host header.
    let r = t
        .request(
            hyper::Method::GET,
            "/.well-known/atproto-did",
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = host_util::send(
        t.addr,
        hyper::Request::get("/.well-known/atproto-did")
            .header("host", "carol.test")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], carol.did.as_bytes());
    t.stop().await;
}
