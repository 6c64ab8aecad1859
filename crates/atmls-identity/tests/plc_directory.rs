//! The development PLC directory core: genesis, updates, recovery, tombstones,
//! refusals and SQLite persistence. The clock is an argument: no sleeps.

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::PlcDid;
use atmls_identity::plc::directory::Directory;
use atmls_identity::plc::{
    GenesisBuilder, PlcError, RECOVERY_WINDOW, SignedOperation, Tombstone, validate_log,
};
use atmls_syntax::Timestamp;

const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

struct Keys {
    high: SigningKey,
    low: SigningKey,
    signing: SigningKey,
}

fn keys() -> Keys {
    Keys {
        high: SigningKey::generate(Algorithm::Es256k),
        low: SigningKey::generate(Algorithm::Es256),
        signing: SigningKey::generate(Algorithm::Es256k),
    }
}

fn genesis(k: &Keys) -> (PlcDid, SignedOperation) {
    let op = GenesisBuilder::new(&k.high.public_key(), &k.signing.public_key())
        .rotation_key(&k.low.public_key())
        .handle("alice.test")
        .pds("https://pds.example.com")
        .sign(&k.low);
    (op.did().unwrap(), op)
}

fn update(dir: &Directory, did: &PlcDid, handle: &str, key: &SigningKey) -> SignedOperation {
    let (_, prev) = dir.last_operation(did).unwrap();
    let mut op = dir.state(did).unwrap().to_update(&prev);
    op.also_known_as = vec![format!("at://{handle}")];
    op.sign(key)
}

#[test]
fn genesis_update_and_log_validation() {
    let k = keys();
    let dir = Directory::in_memory();
    let (did, op) = genesis(&k);
    dir.submit(&did, op.clone(), at(T0)).unwrap();
    // Idempotent re-submission.
    dir.submit(&did, op, at(T0)).unwrap();
    let up = update(&dir, &did, "alice2.test", &k.high);
    dir.submit(&did, up, at(T0 + 1)).unwrap();
    let log = dir.log(&did).unwrap();
    assert_eq!(log.len(), 2);
    let state = validate_log(&did, &log).unwrap();
    assert_eq!(state.also_known_as, vec!["at://alice2.test".to_owned()]);
    assert_eq!(state, dir.state(&did).unwrap());
    let audit = dir.audit_log(&did).unwrap();
    assert_eq!(audit[0].created_at, "2023-11-14T22:13:20.000Z");
    assert_eq!(audit[1].cid, log[1].cid().unwrap().to_string());
    // A log with a reordered or missing link does not validate.
    assert!(matches!(
        validate_log(&did, &[log[1].clone()]),
        Err(PlcError::NotGenesis)
    ));
}

#[test]
fn refusals() {
    let k = keys();
    let dir = Directory::in_memory();
    let (did, op) = genesis(&k);

    // Genesis under the wrong DID.
    let other = PlcDid::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    assert!(matches!(
        dir.submit(&other, op.clone(), at(T0)),
        Err(PlcError::DidMismatch { .. })
    ));
    // Genesis signed by a key that is not one of its rotation keys.
    let bad = GenesisBuilder::new(&k.high.public_key(), &k.signing.public_key()).sign(&k.signing);
    assert_eq!(
        dir.submit(&bad.did().unwrap(), bad, at(T0)),
        Err(PlcError::InvalidSignature)
    );
    // Six rotation keys.
    let mut b = GenesisBuilder::new(&k.high.public_key(), &k.signing.public_key());
    for _ in 0..5 {
        b = b.rotation_key(&SigningKey::generate(Algorithm::Es256k).public_key());
    }
    let six = b.sign(&k.high);
    assert_eq!(
        dir.submit(&six.did().unwrap(), six, at(T0)),
        Err(PlcError::RotationKeyCount(6))
    );
    // Duplicate rotation key.
    let dup = GenesisBuilder::new(&k.high.public_key(), &k.signing.public_key())
        .rotation_key(&k.high.public_key())
        .sign(&k.high);
    assert!(matches!(
        dir.submit(&dup.did().unwrap(), dup, at(T0)),
        Err(PlcError::DuplicateRotationKey(_))
    ));
    // A non-canonical signature encoding (padding) is refused.
    let mut padded = op.clone();
    padded.sig.push('=');
    assert!(dir.submit(&did, padded, at(T0)).is_err());
    // Oversized.
    let big = GenesisBuilder::new(&k.high.public_key(), &k.signing.public_key())
        .pds(&format!("https://{}.example.com", "a".repeat(8000)))
        .sign(&k.high);
    assert!(matches!(
        dir.submit(&big.did().unwrap(), big, at(T0)),
        Err(PlcError::TooLarge(_))
    ));

    dir.submit(&did, op, at(T0)).unwrap();
    // Update signed by the atproto signing key, not a rotation key.
    let forged = update(&dir, &did, "mallory.test", &k.signing);
    assert_eq!(
        dir.submit(&did, forged, at(T0)),
        Err(PlcError::InvalidSignature)
    );
    // Update naming an unknown prev.
    let mut op = dir.state(&did).unwrap().to_update("bafyreiunknown");
    op.also_known_as.clear();
    assert!(matches!(
        dir.submit(&did, op.sign(&k.high), at(T0)),
        Err(PlcError::PrevNotFound(_))
    ));
    // A second genesis for an existing DID.
    let (_, again) = genesis(&k);
    assert!(
        dir.submit(&did, again, at(T0)).is_ok(),
        "same op: idempotent"
    );
    assert_eq!(dir.log(&did).unwrap().len(), 1);
    assert_eq!(dir.state(&other), Err(PlcError::NotFound));
}

#[test]
fn recovery_by_higher_key_within_72_hours() {
    let k = keys();
    let dir = Directory::in_memory();
    let (did, op) = genesis(&k);
    let genesis_cid = op.cid().unwrap().to_string();
    dir.submit(&did, op, at(T0)).unwrap();
    // The low-priority key (index 1) hijacks the handle.
    let hijack = update(&dir, &did, "mallory.test", &k.low);
    dir.submit(&did, hijack, at(T0 + HOUR)).unwrap();

    let mut fork = dir.state(&did).unwrap().to_update(&genesis_cid);
    fork.also_known_as = vec!["at://alice.test".into()];
    // The same low key cannot fork over its own operation.
    assert_eq!(
        dir.submit(&did, fork.clone().sign(&k.low), at(T0 + 2 * HOUR)),
        Err(PlcError::RecoveryKeyNotHigher)
    );
    // Too late.
    assert_eq!(
        dir.submit(
            &did,
            fork.clone().sign(&k.high),
            at(T0 + HOUR + 1).saturating_add(RECOVERY_WINDOW)
        ),
        Err(PlcError::RecoveryWindowExpired)
    );
    // The high key recovers in time: the hijack is nullified.
    dir.submit(&did, fork.sign(&k.high), at(T0 + 2 * HOUR))
        .unwrap();
    let audit = dir.audit_log(&did).unwrap();
    assert_eq!(
        audit.iter().map(|e| e.nullified).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!(dir.log(&did).unwrap().len(), 2);
    assert_eq!(dir.state(&did).unwrap().also_known_as, ["at://alice.test"]);
    validate_log(&did, &dir.log(&did).unwrap()).unwrap();
}

#[test]
fn tombstone_ends_the_did() {
    let k = keys();
    let dir = Directory::in_memory();
    let (did, op) = genesis(&k);
    dir.submit(&did, op, at(T0)).unwrap();
    let (_, prev) = dir.last_operation(&did).unwrap();
    dir.submit(
        &did,
        Tombstone { prev: prev.clone() }.sign(&k.high),
        at(T0 + 1),
    )
    .unwrap();
    assert_eq!(dir.state(&did), Err(PlcError::Tombstoned));
    assert_eq!(
        validate_log(&did, &dir.log(&did).unwrap()),
        Err(PlcError::Tombstoned)
    );
    // Nothing may follow the tombstone.
    let (tomb, tomb_cid) = dir.last_operation(&did).unwrap();
    assert!(matches!(
        tomb.op,
        atmls_identity::plc::UnsignedOperation::Tombstone(_)
    ));
    let mut op = GenesisBuilder::new(&k.high.public_key(), &k.signing.public_key()).build();
    op.prev = Some(tomb_cid);
    assert_eq!(
        dir.submit(&did, op.sign(&k.high), at(T0 + 2)),
        Err(PlcError::Tombstoned)
    );
}

#[test]
fn sqlite_persists_logs_and_nullification() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("plc.sqlite");
    let k = keys();
    let (did, op) = genesis(&k);
    let genesis_cid = op.cid().unwrap().to_string();
    {
        let dir = Directory::open_sqlite(&path).unwrap();
        dir.submit(&did, op, at(T0)).unwrap();
        let hijack = update(&dir, &did, "mallory.test", &k.low);
        dir.submit(&did, hijack, at(T0 + 1)).unwrap();
        let fork = dir
            .state(&did)
            .unwrap()
            .to_update(&genesis_cid)
            .sign(&k.high);
        dir.submit(&did, fork, at(T0 + 2)).unwrap();
    }
    let dir = Directory::open_sqlite(&path).unwrap();
    let audit = dir.audit_log(&did).unwrap();
    assert_eq!(audit.len(), 3);
    assert!(audit[1].nullified);
    assert_eq!(audit[1].signer_index, 1);
    assert_eq!(audit[2].accepted_at, at(T0 + 2));
    validate_log(&did, &dir.log(&did).unwrap()).unwrap();
    // The reloaded directory keeps enforcing the rules.
    let forged = update(&dir, &did, "x.test", &k.signing);
    assert_eq!(
        dir.submit(&did, forged, at(T0 + 3)),
        Err(PlcError::InvalidSignature)
    );
}
