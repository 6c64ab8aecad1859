//! Repos and proofs made by the official atproto PDS verify with atmls-repo, and no
//! single flipped byte in a proof goes unnoticed.

use atmls_crypto::{Algorithm, PublicKey};
use atmls_repo::proof::{self, ProofError};
use atmls_repo::{Did, Ipld, Mst, RepoPath, car};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/official-pds"
);

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&read(name)).unwrap()
}

/// The `#atproto` key of the DID document (legacy `EcdsaSecp256k1VerificationKey2019`).
fn alice_key() -> PublicKey {
    let doc = json("alice-did-doc.json");
    let vm = doc["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vm| vm["id"] == "#atproto")
        .unwrap();
    assert_eq!(vm["type"], "EcdsaSecp256k1VerificationKey2019");
    PublicKey::from_legacy_multibase(
        Algorithm::Es256k,
        vm["publicKeyMultibase"].as_str().unwrap(),
    )
    .unwrap()
}

fn alice() -> Did {
    Did::new(json("records.json")["did"].as_str().unwrap()).unwrap()
}

fn kp_path() -> RepoPath {
    RepoPath::parse("chat.mls.keyPackage/3kpaaaaaaaaa2").unwrap()
}

/// A key that is not in alice's repo.
fn absent_path() -> RepoPath {
    RepoPath::parse("chat.mls.keyPackage/3kpaaaaaaaaa3").unwrap()
}

#[test]
fn keypackage_inclusion_proof_verifies() {
    let records = json("records.json");
    let proof = proof::verify_record_proof(
        &read("keypackage-record-proof.car"),
        &alice(),
        &alice_key(),
        &kp_path(),
    )
    .unwrap();
    let (cid, value) = proof.record().expect("record present");
    assert_eq!(
        cid.to_string(),
        records["keyPackageRecord"]["cid"].as_str().unwrap()
    );
    let Ipld::Map(map) = value else {
        panic!("record is a map")
    };
    assert_eq!(
        map.get("$type"),
        Some(&Ipld::String("chat.mls.keyPackage".into()))
    );
    // The proof is against the commit that existed when it was fetched.
    let commit_cid = proof.commit_cid().to_string();
    let latest = records["latestCommit"]["cid"].as_str().unwrap();
    let at_write = records["keyPackageRecord"]["commit"]["cid"]
        .as_str()
        .unwrap();
    assert!(
        commit_cid == latest || commit_cid == at_write,
        "{commit_cid}"
    );
    assert_eq!(proof.commit().did(), &alice());
}

#[test]
fn absence_proof_verifies() {
    let proof = proof::verify_record_proof(
        &read("absent-record-proof.car"),
        &alice(),
        &alice_key(),
        &absent_path(),
    )
    .unwrap();
    assert!(proof.record().is_none());
}

#[test]
fn whole_repo_verifies_and_lists_records() {
    let records = json("records.json");
    let car = car::read(&read("alice-repo.car")).unwrap();
    let (commit_cid, commit) = proof::signed_commit(&car, &alice(), &alice_key()).unwrap();
    assert_eq!(
        commit_cid.to_string(),
        records["latestCommit"]["cid"].as_str().unwrap()
    );
    assert_eq!(
        commit.rev().to_string(),
        records["latestCommit"]["rev"].as_str().unwrap()
    );
    let entries = Mst::load(commit.data()).entries(&car.blocks).unwrap();
    let keys: Vec<String> = entries
        .iter()
        .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "chat.mls.declaration/self",
            "chat.mls.keyPackage/3kpaaaaaaaaa2"
        ]
    );
    assert_eq!(
        entries[0].1.to_string(),
        records["declarationRecord"]["cid"].as_str().unwrap()
    );
    assert_eq!(
        entries[1].1.to_string(),
        records["keyPackageRecord"]["cid"].as_str().unwrap()
    );
    // Every record proof can be checked from the full repo too.
    for path in [
        kp_path(),
        RepoPath::parse("chat.mls.declaration/self").unwrap(),
    ] {
        let p = proof::verify_record_in_car(&car, &alice(), &alice_key(), &path).unwrap();
        assert!(p.record().is_some());
    }
    // Our MST code re-derives the same root from the same keys.
    let mut mst = Mst::new();
    for (k, v) in &entries {
        mst.insert(&car.blocks, k, *v).unwrap();
    }
    assert_eq!(mst.root_cid().unwrap(), commit.data());
}

#[test]
fn wrong_key_did_or_path_fails() {
    let other = atmls_crypto::SigningKey::generate(Algorithm::Es256k).public_key();
    let car = read("keypackage-record-proof.car");
    assert!(matches!(
        proof::verify_record_proof(&car, &alice(), &other, &kp_path()),
        Err(ProofError::Commit(_))
    ));
    assert!(matches!(
        proof::verify_record_proof(
            &car,
            &Did::new("did:plc:someoneelse").unwrap(),
            &alice_key(),
            &kp_path()
        ),
        Err(ProofError::DidMismatch { .. })
    ));
    // The inclusion proof does not cover a key on another path of the tree; the absence
    // proof does not prove the KeyPackage absent (it is there).
    let absent = read("absent-record-proof.car");
    match proof::verify_record_proof(&absent, &alice(), &alice_key(), &kp_path()) {
        Err(ProofError::MissingBlock(_)) => {}
        Ok(p) => assert!(
            p.record().is_some(),
            "must never prove a present key absent"
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn flip_every_byte(name: &str, path: &RepoPath) -> usize {
    let original = read(name);
    let key = alice_key();
    let did = alice();
    proof::verify_record_proof(&original, &did, &key, path).unwrap();
    let mut checked = 0;
    for i in 0..original.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[i] ^= mask;
            let outcome = proof::verify_record_proof(&bytes, &did, &key, path);
            assert!(
                outcome.is_err(),
                "{name}: flipping byte {i} with {mask:#x} still verifies"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_flipped_byte_fails_inclusion_proof() {
    assert!(flip_every_byte("keypackage-record-proof.car", &kp_path()) > 1000);
}

#[test]
fn every_flipped_byte_fails_absence_proof() {
    assert!(flip_every_byte("absent-record-proof.car", &absent_path()) > 1000);
}
