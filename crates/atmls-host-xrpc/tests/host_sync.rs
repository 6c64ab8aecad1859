//! `com.atproto.sync.*`: record proofs and whole-repo CARs verify with `atmls-repo`
//! against the `#atproto` key of the DID document served by the dev PLC directory.

mod host_util;

use atmls_lexicon::syntax::Did;
use atmls_repo::{Mst, RepoPath, car, proof};
use host_util::TestHost;

const KP: &str = "chat.mls.keyPackage";

#[tokio::test]
async fn proofs_and_cars_verify() {
    let t = TestHost::start().await;
    let a = t.account("alice.test").await;
    let did: Did = a.did.parse().unwrap();
    let rkeys = t.create_key_packages(&a, 5).await;
    let key = t.repo_key(&a.did).await;

    // Inclusion proof.
    let r = t
        .query(
            "com.atproto.sync.getRecord",
            &[("did", &a.did), ("collection", KP), ("rkey", &rkeys[2])],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/vnd.ipld.car");
    let path = RepoPath::parse(&format!("{KP}/{}", rkeys[2])).unwrap();
    let verified = proof::verify_record_proof(&r.body, &did, &key, &path).unwrap();
    let (_, record) = verified.record().expect("record present");
    let json = atmls_repo::json::from_ipld(record).unwrap();
    assert_eq!(json["deviceId"], "device-2");
    let latest = t
        .query("com.atproto.sync.getLatestCommit", &[("did", &a.did)], None)
        .await
        .ok();
    assert_eq!(
        verified.commit_cid().to_string(),
        latest["cid"].as_str().unwrap()
    );
    assert_eq!(
        verified.commit().rev().to_string(),
        latest["rev"].as_str().unwrap()
    );

    // Absence proof.
    let r = t
        .query(
            "com.atproto.sync.getRecord",
            &[
                ("did", &a.did),
                ("collection", KP),
                ("rkey", "2222222222222"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let path = RepoPath::parse(&format!("{KP}/2222222222222")).unwrap();
    let absent = proof::verify_record_proof(&r.body, &did, &key, &path).unwrap();
    assert!(absent.record().is_none());

    // A proof does not verify under another account's key.
    let b = t.account("bob.test").await;
    let other = t.repo_key(&b.did).await;
    let path = RepoPath::parse(&format!("{KP}/{}", rkeys[0])).unwrap();
    let r = t
        .query(
            "com.atproto.sync.getRecord",
            &[("did", &a.did), ("collection", KP), ("rkey", &rkeys[0])],
            None,
        )
        .await;
    assert!(proof::verify_record_proof(&r.body, &did, &other, &path).is_err());

    // The whole repo: signed commit, complete MST, every record present.
    let r = t
        .query("com.atproto.sync.getRepo", &[("did", &a.did)], None)
        .await;
    assert_eq!(r.status, 200);
    let car = car::read(&r.body).unwrap();
    let (commit_cid, commit) = proof::signed_commit(&car, &did, &key).unwrap();
    assert_eq!(commit_cid.to_string(), latest["cid"].as_str().unwrap());
    let entries = Mst::load(commit.data()).entries(&car.blocks).unwrap();
    assert_eq!(entries.len(), 5);
    for (k, cid) in &entries {
        assert!(car.blocks.contains_key(cid), "record block of {k:?}");
    }

    // Unknown repos.
    for nsid in [
        "com.atproto.sync.getRepo",
        "com.atproto.sync.getLatestCommit",
    ] {
        t.query(nsid, &[("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")], None)
            .await
            .assert_error(404, "RepoNotFound");
    }
    t.stop().await;
}
