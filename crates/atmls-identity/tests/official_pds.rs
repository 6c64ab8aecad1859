//! Fixtures made by the official TypeScript PDS and PLC directory.

mod common;

use atmls_identity::plc::{SignedOperation, validate_log};
use atmls_identity::{DidDocument, PlcDid};

use common::official;

#[test]
fn alice_did_document_parses() {
    let doc = DidDocument::from_json(&official("alice-did-doc.json")).unwrap();
    assert_eq!(doc.id.as_str(), "did:plc:fh5jrlbsm47qlufaem7aasei");
    let key = doc.atproto_key().unwrap();
    assert_eq!(key.algorithm(), atmls_crypto::Algorithm::Es256k);
    assert_eq!(doc.pds_endpoint().unwrap(), "http://localhost:41211");
    assert_eq!(doc.handle().unwrap().as_str(), "alice.test");
    assert!(doc.service("chat_mls_ds").is_none());
}

#[test]
fn alice_plc_log_validates_and_derives_her_did() {
    let ops: Vec<SignedOperation> =
        serde_json::from_slice(&official("alice-plc-log.json")).unwrap();
    assert_eq!(ops.len(), 1);
    let did = PlcDid::new("did:plc:fh5jrlbsm47qlufaem7aasei").unwrap();
    assert_eq!(ops[0].did().unwrap(), did);
    let state = validate_log(&did, &ops).unwrap();
    // The log's state renders the same key, handle and PDS as the served document.
    let served = DidDocument::from_json(&official("alice-did-doc.json")).unwrap();
    let rendered = state.document();
    assert_eq!(
        rendered.atproto_key().unwrap(),
        served.atproto_key().unwrap()
    );
    assert_eq!(
        rendered.pds_endpoint().unwrap(),
        served.pds_endpoint().unwrap()
    );
    assert_eq!(rendered.handle(), served.handle());
    // Re-encoding the parsed operation as JSON gives back the same operation.
    let again = SignedOperation::from_json(ops[0].to_json().to_string().as_bytes()).unwrap();
    assert_eq!(again, ops[0]);

    // A tampered operation fails.
    let mut tampered = ops[0].clone();
    if let atmls_identity::plc::UnsignedOperation::Operation(op) = &mut tampered.op {
        op.also_known_as = vec!["at://mallory.test".into()];
    }
    assert!(validate_log(&did, &[tampered]).is_err());
}

/// Her operation as plc.directory's `GET /:did/log/audit` serves it (`did`, `operation`,
/// `cid`, `nullified`, `createdAt`): parsed, its chain verified, and the key in force
/// from `createdAt` on is the one the served document names (docs/spec.md §11.13).
#[test]
fn alice_audit_log_gives_her_key_from_created_at() {
    let ops: Vec<serde_json::Value> =
        serde_json::from_slice(&official("alice-plc-log.json")).unwrap();
    let parsed = SignedOperation::from_json(ops[0].to_string().as_bytes()).unwrap();
    let audit = serde_json::json!([{
        "did": "did:plc:fh5jrlbsm47qlufaem7aasei",
        "operation": ops[0],
        "cid": parsed.cid().unwrap().to_string(),
        "nullified": false,
        "createdAt": "2024-05-01T12:00:00.123Z",
    }]);
    let log: Vec<atmls_identity::plc::AuditEntry> = serde_json::from_value(audit).unwrap();
    let did = PlcDid::new("did:plc:fh5jrlbsm47qlufaem7aasei").unwrap();
    let history = atmls_identity::DidHistory::from_plc_audit_log(&did, &log).unwrap();
    let served = DidDocument::from_json(&official("alice-did-doc.json")).unwrap();
    let at = |ms| atmls_syntax::Timestamp::from_millis(ms);
    // 2024-05-01T12:00:00.123Z
    let created = 1_714_564_800_123;
    assert_eq!(
        history.at(at(created)).unwrap().atproto_key().unwrap(),
        served.atproto_key().unwrap()
    );
    assert!(history.at(at(created - 1)).is_err());
}
