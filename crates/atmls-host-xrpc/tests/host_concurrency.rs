//! Many clients writing one repo at once: every acknowledged write is in the repo
//! afterwards, and the final head is a validly signed commit over all of them.

mod host_util;

use std::collections::BTreeSet;
use std::sync::Arc;

use atmls_lexicon::syntax::Did;
use atmls_repo::{Mst, car, proof};
use host_util::{TestHost, WAIT};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing() {
    const CLIENTS: usize = 8;
    const EACH: usize = 12;
    let t = Arc::new(TestHost::start().await);
    let a = t.account("busy.test").await;

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let t = t.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..EACH {
                // Mix creates with explicit keys, generated keys and applyWrites batches.
                let r = if i % 3 == 2 {
                    t.procedure(
                        "com.atproto.repo.applyWrites",
                        &json!({ "repo": a.did, "writes": [{
                            "$type": "com.atproto.repo.applyWrites#create",
                            "collection": "com.example.item", "rkey": format!("c{c}-i{i}"),
                            "value": { "c": c, "i": i } }] }),
                        Some(&a.access),
                    )
                    .await
                } else {
                    let mut body = json!({ "repo": a.did, "collection": "com.example.item",
                                           "record": { "c": c, "i": i } });
                    if i % 3 == 1 {
                        body["rkey"] = json!(format!("c{c}-i{i}"));
                    }
                    t.procedure("com.atproto.repo.createRecord", &body, Some(&a.access))
                        .await
                };
                let v = r.ok();
                let uri = v["uri"]
                    .as_str()
                    .or_else(|| v["results"][0]["uri"].as_str())
                    .expect("uri")
                    .to_owned();
                acked.push(uri);
            }
            acked
        }));
    }
    let mut acked = BTreeSet::new();
    for task in tasks {
        let uris = tokio::time::timeout(WAIT * 3, task)
            .await
            .expect("in time")
            .expect("task");
        acked.extend(uris);
    }
    assert_eq!(acked.len(), CLIENTS * EACH);

    let listed: BTreeSet<String> = t
        .all_records(&a.did, "com.example.item")
        .await
        .iter()
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, acked, "every acknowledged record is listed");

    let did: Did = a.did.parse().unwrap();
    let key = t.repo_key(&a.did).await;
    let r = t
        .query("com.atproto.sync.getRepo", &[("did", &a.did)], None)
        .await;
    let car = car::read(&r.body).unwrap();
    let (cid, commit) = proof::signed_commit(&car, &did, &key).unwrap();
    assert_eq!(cid.to_string(), t.head(&a.did).await);
    assert_eq!(
        Mst::load(commit.data()).entries(&car.blocks).unwrap().len(),
        CLIENTS * EACH
    );
}
