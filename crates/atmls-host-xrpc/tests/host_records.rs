//! Record CRUD with swaps, listRecords paging, validation, blobs, and bad input that
//! must get its typed error and change nothing (the repo head stays put).

mod host_util;

use host_util::{TestHost, key_package, rkey_of};
use hyper::Method;
use serde_json::{Value, json};

const KP: &str = "chat.mls.keyPackage";

#[tokio::test]
async fn crud_with_swaps() {
    let t = TestHost::start().await;
    let a = t.account("alice.test").await;
    let tok = Some(a.access.as_str());

    let created = t
        .procedure(
            "com.atproto.repo.createRecord",
            &json!({ "repo": a.did, "collection": KP, "record": key_package(1) }),
            tok,
        )
        .await
        .ok();
    assert_eq!(created["validationStatus"], "valid");
    let uri = created["uri"].as_str().unwrap();
    let rkey = rkey_of(uri);
    let cid1 = created["cid"].as_str().unwrap().to_owned();
    let commit1 = created["commit"]["cid"].as_str().unwrap().to_owned();
    assert_eq!(t.head(&a.did).await, commit1);

    let got = t
        .query(
            "com.atproto.repo.getRecord",
            &[("repo", "alice.test"), ("collection", KP), ("rkey", &rkey)],
            None,
        )
        .await
        .ok();
    assert_eq!(got["cid"], cid1.as_str());
    assert_eq!(got["value"]["deviceId"], "device-1");

    // Unknown collection: stored, validation status unknown; validate=true refuses it.
    let note = t
        .procedure(
            "com.atproto.repo.createRecord",
            &json!({ "repo": a.did, "collection": "com.example.note", "rkey": "self",
                     "record": { "text": "hi" } }),
            tok,
        )
        .await
        .ok();
    assert_eq!(note["validationStatus"], "unknown");
    let head = t.head(&a.did).await;
    t.procedure(
        "com.atproto.repo.createRecord",
        &json!({ "repo": a.did, "collection": "com.example.note", "validate": true,
                 "record": { "text": "hi" } }),
        tok,
    )
    .await
    .assert_error(400, "InvalidRequest");
    // Create of an existing key refused.
    t.procedure(
        "com.atproto.repo.createRecord",
        &json!({ "repo": a.did, "collection": "com.example.note", "rkey": "self",
                 "record": { "text": "again" } }),
        tok,
    )
    .await
    .assert_error(400, "InvalidRequest");
    assert_eq!(t.head(&a.did).await, head);

    // putRecord with a stale swapRecord / swapCommit: InvalidSwap, nothing changes.
    let head = t.head(&a.did).await;
    for extra in [
        json!({ "swapRecord": note["cid"] }),
        json!({ "swapCommit": commit1 }),
        json!({ "swapRecord": null }),
    ] {
        let mut body = json!({ "repo": a.did, "collection": KP, "rkey": rkey,
                               "record": key_package(2) });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        t.procedure("com.atproto.repo.putRecord", &body, tok)
            .await
            .assert_error(400, "InvalidSwap");
    }
    assert_eq!(t.head(&a.did).await, head);

    // The right swaps succeed.
    let put = t
        .procedure(
            "com.atproto.repo.putRecord",
            &json!({ "repo": a.did, "collection": KP, "rkey": rkey, "record": key_package(2),
                     "swapRecord": cid1, "swapCommit": head }),
            tok,
        )
        .await
        .ok();
    let cid2 = put["cid"].as_str().unwrap().to_owned();
    assert_ne!(cid2, cid1);
    // getRecord with an old cid: not found.
    t.query(
        "com.atproto.repo.getRecord",
        &[
            ("repo", &a.did),
            ("collection", KP),
            ("rkey", &rkey),
            ("cid", &cid1),
        ],
        None,
    )
    .await
    .assert_error(404, "RecordNotFound");

    // deleteRecord with a stale swap, then for real; deleting again is a no-op.
    t.procedure(
        "com.atproto.repo.deleteRecord",
        &json!({ "repo": a.did, "collection": KP, "rkey": rkey, "swapRecord": cid1 }),
        tok,
    )
    .await
    .assert_error(400, "InvalidSwap");
    let del = t
        .procedure(
            "com.atproto.repo.deleteRecord",
            &json!({ "repo": a.did, "collection": KP, "rkey": rkey, "swapRecord": cid2 }),
            tok,
        )
        .await
        .ok();
    assert!(del["commit"]["cid"].is_string());
    let head = t.head(&a.did).await;
    let again = t
        .procedure(
            "com.atproto.repo.deleteRecord",
            &json!({ "repo": a.did, "collection": KP, "rkey": rkey }),
            tok,
        )
        .await
        .ok();
    assert!(again.get("commit").is_none());
    assert_eq!(t.head(&a.did).await, head);
    t.query(
        "com.atproto.repo.getRecord",
        &[("repo", &a.did), ("collection", KP), ("rkey", &rkey)],
        None,
    )
    .await
    .assert_error(404, "RecordNotFound");

    // applyWrites: all in one commit, or none.
    let writes = t
        .procedure(
            "com.atproto.repo.applyWrites",
            &json!({ "repo": a.did, "writes": [
                { "$type": "com.atproto.repo.applyWrites#create", "collection": KP,
                  "rkey": "3jzfcijpj2z2a", "value": key_package(3) },
                { "$type": "com.atproto.repo.applyWrites#update",
                  "collection": "com.example.note", "rkey": "self", "value": { "text": "v2" } },
            ]}),
            tok,
        )
        .await
        .ok();
    let results = writes["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0]["$type"],
        "com.atproto.repo.applyWrites#createResult"
    );
    assert_eq!(
        results[1]["$type"],
        "com.atproto.repo.applyWrites#updateResult"
    );
    let head = t.head(&a.did).await;
    assert_eq!(writes["commit"]["cid"], head.as_str());
    // One bad write (an update of a missing record) fails the whole batch.
    t.procedure(
        "com.atproto.repo.applyWrites",
        &json!({ "repo": a.did, "writes": [
            { "$type": "com.atproto.repo.applyWrites#delete",
              "collection": "com.example.note", "rkey": "self" },
            { "$type": "com.atproto.repo.applyWrites#update",
              "collection": "com.example.note", "rkey": "missing", "value": { "text": "x" } },
        ]}),
        tok,
    )
    .await
    .assert_error(404, "RecordNotFound");
    assert_eq!(t.head(&a.did).await, head);

    let described = t
        .query(
            "com.atproto.repo.describeRepo",
            &[("repo", "alice.test")],
            None,
        )
        .await
        .ok();
    assert_eq!(described["collections"], json!([KP, "com.example.note"]));
    assert_eq!(described["did"], a.did.as_str());
    t.stop().await;
}

#[tokio::test]
async fn list_records_paging() {
    let t = TestHost::start().await;
    let a = t.account("paging.test").await;
    let rkeys = t.create_key_packages(&a, 7).await;
    let mut sorted = rkeys.clone();
    sorted.sort();
    assert_eq!(rkeys, sorted, "TIDs increase");

    let page = |params: Vec<(&'static str, String)>| {
        let t = &t;
        let did = a.did.clone();
        async move {
            let mut p: Vec<(&str, &str)> = vec![("repo", &did), ("collection", KP)];
            p.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
            t.query("com.atproto.repo.listRecords", &p, None).await.ok()
        }
    };
    let keys = |v: &Value| -> Vec<String> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| rkey_of(r["uri"].as_str().unwrap()))
            .collect()
    };

    // Default order: newest first, pages of `limit`, cursor = last key.
    let p1 = page(vec![("limit", "3".into())]).await;
    assert_eq!(
        keys(&p1),
        [rkeys[6].clone(), rkeys[5].clone(), rkeys[4].clone()]
    );
    let c = p1["cursor"].as_str().unwrap().to_owned();
    let p2 = page(vec![("limit", "3".into()), ("cursor", c)]).await;
    assert_eq!(
        keys(&p2),
        [rkeys[3].clone(), rkeys[2].clone(), rkeys[1].clone()]
    );
    let c = p2["cursor"].as_str().unwrap().to_owned();
    let p3 = page(vec![("limit", "3".into()), ("cursor", c)]).await;
    assert_eq!(keys(&p3), [rkeys[0].clone()]);
    assert!(p3.get("cursor").is_none());

    // reverse=true: oldest first.
    let r1 = page(vec![("limit", "4".into()), ("reverse", "true".into())]).await;
    assert_eq!(keys(&r1), rkeys[..4]);
    let c = r1["cursor"].as_str().unwrap().to_owned();
    let r2 = page(vec![
        ("limit", "4".into()),
        ("reverse", "true".into()),
        ("cursor", c),
    ])
    .await;
    assert_eq!(keys(&r2), rkeys[4..]);
    assert!(r2.get("cursor").is_none());
    assert_eq!(t.all_records(&a.did, KP).await.len(), 7);

    // Out-of-range limits and bad cursors are typed errors.
    for bad in [
        vec![("limit", "0")],
        vec![("limit", "101")],
        vec![("cursor", "no/slash")],
    ] {
        let mut p: Vec<(&str, &str)> = vec![("repo", &a.did), ("collection", KP)];
        p.extend(bad);
        t.query("com.atproto.repo.listRecords", &p, None)
            .await
            .assert_error(400, "InvalidRequest");
    }
    t.stop().await;
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let t = TestHost::start().await;
    let a = t.account("alice.test").await;
    let b = t.account("bob.test").await;
    let head_a = t.head(&a.did).await;
    let head_b = t.head(&b.did).await;
    let auth = format!("Bearer {}", a.access);

    // Malformed JSON.
    t.request(
        Method::POST,
        "/xrpc/com.atproto.repo.createRecord",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        "{\"repo\": ",
    )
    .await
    .assert_error(400, "InvalidRequest");
    // A record failing its lexicon (each invalid example).
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/lexicon-examples/chat.mls.keyPackage");
    let mut refused = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("invalid-")
        {
            continue;
        }
        let record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        t.procedure(
            "com.atproto.repo.createRecord",
            &json!({ "repo": a.did, "collection": KP, "record": record }),
            Some(&a.access),
        )
        .await
        .assert_error(400, "InvalidRequest");
        refused += 1;
    }
    assert!(refused >= 5);
    // Wrong $type, non-object record, float, bad rkey for a tid-keyed collection.
    for (collection, rkey, record) in [
        (KP, None, json!({ "$type": "com.example.other" })),
        ("com.example.note", None, json!({ "n": 1.5 })),
        (KP, Some("self"), key_package(1)),
        ("com.example.note", Some(".."), json!({})),
    ] {
        let mut body = json!({ "repo": a.did, "collection": collection, "record": record });
        if let Some(rkey) = rkey {
            body["rkey"] = json!(rkey);
        }
        t.procedure("com.atproto.repo.createRecord", &body, Some(&a.access))
            .await
            .assert_error(400, "InvalidRequest");
    }
    // Oversized body.
    let big = "x".repeat(6 * 1024 * 1024);
    t.procedure(
        "com.atproto.repo.createRecord",
        &json!({ "repo": a.did, "collection": "com.example.note", "record": { "t": big } }),
        Some(&a.access),
    )
    .await
    .assert_error(413, "PayloadTooLarge");
    // Bad and missing tokens.
    let note = json!({ "repo": a.did, "collection": "com.example.note", "record": {} });
    t.procedure("com.atproto.repo.createRecord", &note, Some("nonsense"))
        .await
        .assert_error(401, "InvalidToken");
    t.procedure("com.atproto.repo.createRecord", &note, None)
        .await
        .assert_error(401, "AuthenticationRequired");
    // Another user's repo, by DID and by handle, with each write method.
    for repo in [b.did.as_str(), "bob.test"] {
        for (nsid, body) in [
            (
                "com.atproto.repo.createRecord",
                json!({ "repo": repo, "collection": "com.example.note", "record": {} }),
            ),
            (
                "com.atproto.repo.putRecord",
                json!({ "repo": repo, "collection": "com.example.note", "rkey": "x", "record": {} }),
            ),
            (
                "com.atproto.repo.deleteRecord",
                json!({ "repo": repo, "collection": "com.example.note", "rkey": "x" }),
            ),
            (
                "com.atproto.repo.applyWrites",
                json!({ "repo": repo, "writes": [] }),
            ),
        ] {
            t.procedure(nsid, &body, Some(&a.access))
                .await
                .assert_error(403, "Forbidden");
        }
    }
    // A repo that does not exist.
    t.procedure(
        "com.atproto.repo.createRecord",
        &json!({ "repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "collection": "com.example.note",
                 "record": {} }),
        Some(&a.access),
    )
    .await
    .assert_error(404, "RepoNotFound");

    assert_eq!(t.head(&a.did).await, head_a);
    assert_eq!(t.head(&b.did).await, head_b);
    assert!(t.all_records(&a.did, "com.example.note").await.is_empty());
    assert!(t.all_records(&a.did, KP).await.is_empty());
    t.stop().await;
}

#[tokio::test]
async fn blobs() {
    let t = TestHost::start().await;
    let a = t.account("blobby.test").await;
    let auth = format!("Bearer {}", a.access);
    let r = t
        .request(
            Method::POST,
            "/xrpc/com.atproto.repo.uploadBlob",
            &[("authorization", &auth), ("content-type", "image/png")],
            &b"\x89PNG not really"[..],
        )
        .await
        .ok();
    let cid = r["blob"]["ref"]["$link"].as_str().unwrap().to_owned();
    assert!(cid.starts_with("bafkrei"), "raw codec CID: {cid}");
    assert_eq!(r["blob"]["mimeType"], "image/png");
    assert_eq!(r["blob"]["size"], 15);
    let got = t
        .query(
            "com.atproto.sync.getBlob",
            &[("did", &a.did), ("cid", &cid)],
            None,
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "image/png");
    assert_eq!(&got.body[..], b"\x89PNG not really");
    // A record may reference it.
    t.procedure(
        "com.atproto.repo.createRecord",
        &json!({ "repo": a.did, "collection": "com.example.pic", "record": { "img": r["blob"] } }),
        Some(&a.access),
    )
    .await
    .ok();
    t.query(
        "com.atproto.sync.getBlob",
        &[
            ("did", &a.did),
            (
                "cid",
                "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
            ),
        ],
        None,
    )
    .await
    .assert_error(404, "BlobNotFound");
    // Over the 5 MiB blob limit.
    t.request(
        Method::POST,
        "/xrpc/com.atproto.repo.uploadBlob",
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        vec![0u8; 5 * 1024 * 1024 + 1],
    )
    .await
    .assert_error(413, "PayloadTooLarge");
    t.stop().await;
}
