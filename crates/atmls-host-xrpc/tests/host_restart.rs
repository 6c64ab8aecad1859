//! Restarting the host over the same data directory keeps accounts, records, sessions
//! and the DID directory.

mod host_util;

use std::sync::Arc;

use atmls_host::ManualClock;
use host_util::{TestHost, key_package};
use serde_json::json;

#[tokio::test]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());

    let t = TestHost::start_in(dir.path(), clock.clone()).await;
    let a = t.account("alice.test").await;
    let written = t
        .procedure(
            "com.atproto.repo.createRecord",
            &json!({ "repo": a.did, "collection": "chat.mls.keyPackage", "record": key_package(7) }),
            Some(&a.access),
        )
        .await
        .ok();
    let head = t.head(&a.did).await;
    let doc = t.did_doc(&a.did).await;
    t.stop().await;

    let t = TestHost::start_in(dir.path(), clock.clone()).await;
    // The same head, record, DID document; the old session's tokens still work.
    assert_eq!(t.head(&a.did).await, head);
    assert_eq!(t.did_doc(&a.did).await, doc);
    let uri = written["uri"].as_str().unwrap();
    let rkey = uri.rsplit('/').next().unwrap();
    let got = t
        .query(
            "com.atproto.repo.getRecord",
            &[
                ("repo", "alice.test"),
                ("collection", "chat.mls.keyPackage"),
                ("rkey", rkey),
            ],
            None,
        )
        .await
        .ok();
    assert_eq!(got["cid"], written["cid"]);
    let info = t
        .query("com.atproto.server.getSession", &[], Some(&a.access))
        .await
        .ok();
    assert_eq!(info["did"], a.did.as_str());
    let refreshed = t
        .procedure(
            "com.atproto.server.refreshSession",
            &serde_json::Value::Null,
            Some(&a.refresh),
        )
        .await
        .ok();
    // The password still logs in, and the repo is still writable with the stored key.
    t.procedure(
        "com.atproto.server.createSession",
        &json!({ "identifier": "alice.test", "password": "correct horse" }),
        None,
    )
    .await
    .ok();
    t.procedure(
        "com.atproto.repo.createRecord",
        &json!({ "repo": a.did, "collection": "com.example.note", "record": { "n": 1 } }),
        Some(refreshed["accessJwt"].as_str().unwrap()),
    )
    .await
    .ok();
    let key = t.repo_key(&a.did).await;
    let r = t
        .query("com.atproto.sync.getRepo", &[("did", &a.did)], None)
        .await;
    let car = atmls_repo::car::read(&r.body).unwrap();
    atmls_repo::proof::signed_commit(&car, &a.did.parse().unwrap(), &key).unwrap();
    t.stop().await;

    // The rotated-away refresh token stays dead after another restart.
    let t = TestHost::start_in(dir.path(), clock).await;
    t.procedure(
        "com.atproto.server.refreshSession",
        &serde_json::Value::Null,
        Some(&a.refresh),
    )
    .await
    .assert_error(401, "InvalidToken");
    t.stop().await;
}
