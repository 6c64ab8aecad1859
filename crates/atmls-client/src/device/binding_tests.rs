//! Device bindings (docs/spec.md §11.16) on the memory network: a joiner refuses a group
//! with a member whose leaf is not bound to its account, a rotated leaf verifies for a
//! later joiner, a receiver refuses an update whose new key is not bound. A malicious
//! creator or member is played by building its leaves and commits by hand; everything
//! else is the real code path.

use atmls_identity::Did;

use super::Device;
use super::leaf_proof_tests::{in_group, send_raw_commit};
use crate::DeviceConfig;
use crate::decide::commit::Intent;
use crate::error::PolicyViolation;
use crate::event::Event;
use crate::group::binding::{Binder, BindingRefusal};
use crate::group::{DEVICE_COLLECTION, GroupId};
use crate::keypackage::VerifiedKeyPackage;
use crate::transport::Pds as _;
use crate::transport::memory::{MemoryDs, MemoryNetwork};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, DeviceConfig::default().with_one_time_key_packages(2))
        .await
        .expect("device")
}

/// How the forged leaf's binding is made.
enum Forgery {
    /// No binding extension at all.
    NoBinding,
    /// The victim's real device id and the real proof of its device record, signed by a
    /// key that is not that record's.
    OtherKey,
    /// A device id the victim's repo has no record for, with the proof of its absence.
    NoSuchDevice,
}

/// A KeyPackage claiming `victim`'s account, built by `forger` with a key of its own:
/// what a malicious group creator puts in a tree.
async fn forged_package(forger: &Dev, victim: &Dev, how: Forgery) -> VerifiedKeyPackage {
    use openmls::prelude::*;
    let (device_id, proof) = match how {
        Forgery::NoSuchDevice => {
            let id = "forgeddevice0000".to_owned();
            let car = forger
                .pds()
                .record_proof(victim.did(), DEVICE_COLLECTION, &id)
                .await
                .expect("a proof of absence");
            (id, car)
        }
        _ => {
            let id = victim.device_id().to_owned();
            let car = forger
                .pds()
                .record_proof(victim.did(), DEVICE_COLLECTION, &id)
                .await
                .expect("the victim's device record");
            (id, car)
        }
    };
    let binder = Binder {
        key: ed25519_dalek::SigningKey::from_bytes(&rand::random()),
        did: victim.did().to_string(),
        device_id: device_id.clone(),
        proof,
    };
    let st = forger.inner.state.lock().await;
    let suite = st.ciphersuite().unwrap();
    let signer = openmls_basic_credential::SignatureKeyPair::new(suite.signature_algorithm())
        .expect("a key");
    signer.store(st.provider().storage()).unwrap();
    let params = crate::keypackage::build::KeyPackageParams {
        ciphersuite: suite,
        did: victim.did().as_str(),
        device_id: &device_id,
        inbox_ds: &st.row.inbox_ds.clone(),
        inbox_mailbox: &atmls_ds_proto::MailboxId::from_bytes([9; 32]).to_string(),
        lifetime_secs: 30 * 86_400,
        last_resort: false,
        binder: &binder,
        now: st.unix_ms(),
    };
    let built = crate::keypackage::build::build_key_package(
        &st.provider(),
        &signer,
        &params,
        "3jzfcijpj2z2a".into(),
    )
    .expect("built");
    let hash_ref = crate::keypackage::key_package_ref(&built.key_package_ref).unwrap();
    let bundle: KeyPackageBundle = {
        use openmls_traits::storage::StorageProvider as _;
        st.provider()
            .storage()
            .key_package(&hash_ref)
            .unwrap()
            .expect("stored")
    };
    let mut key_package = bundle.key_package().clone();
    if matches!(how, Forgery::NoBinding) {
        // Rebuilt without the extension (re-signed by the forged leaf key).
        key_package = KeyPackage::builder()
            .leaf_node_capabilities(crate::keypackage::leaf_capabilities(suite))
            .leaf_node_extensions(
                Extensions::single(Extension::ApplicationId(ApplicationIdExtension::new(
                    device_id.as_bytes(),
                )))
                .unwrap(),
            )
            .build(
                suite,
                &st.provider(),
                &signer,
                CredentialWithKey {
                    credential: BasicCredential::new(victim.did().as_str().as_bytes().to_vec())
                        .into(),
                    signature_key: signer.public().into(),
                },
            )
            .expect("built")
            .key_package()
            .clone();
    }
    drop(st);
    VerifiedKeyPackage {
        did: victim.did().clone(),
        rkey: "3jzfcijpj2z2a".into(),
        device_id,
        inbox_ds: forger
            .inner
            .state
            .lock()
            .await
            .row
            .inbox_ds
            .parse()
            .unwrap(),
        inbox: atmls_ds_proto::MailboxId::from_bytes([9; 32]),
        last_resort: false,
        key_package,
        rev: "3jzfcijpj2z2a".into(),
        // No leaf proof: the creator merges its own commit, and nobody else was there.
        proof: Vec::new(),
        expires_at: i64::MAX,
    }
}

/// Mallory creates a group "with Carol" (a leaf Mallory made), then invites Bob: Bob
/// must refuse the welcome, naming Carol's leaf, and not be in the group.
async fn forged_member_refused(how: Forgery, want: fn(&BindingRefusal) -> bool) {
    let net = MemoryNetwork::new();
    let mallory = device(&net, "mallory").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = mallory.create_group("g").await.expect("group");
    let forged = forged_package(&mallory, &carol, how).await;
    {
        let mut st = mallory.inner.state.lock().await;
        mallory
            .commit_locked(&mut st, &g, Intent::Add(vec![forged]))
            .await
            .expect("the DS accepts the commit");
    }
    mallory
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("bob invited");
    let events = bob.sync().await.expect("sync");
    let refused = events.iter().find_map(|e| match e {
        Event::WelcomeRefused {
            violation: PolicyViolation::DeviceBinding { did, reason },
            ..
        } => Some((did.clone(), reason.clone())),
        _ => None,
    });
    match refused {
        Some((did, reason)) if did == carol.did().as_str() && want(&reason) => {}
        other => panic!("expected Carol's leaf refused, got {other:?} in {events:?}"),
    }
    assert!(!events.iter().any(|e| matches!(e, Event::Joined { .. })));
    assert!(bob.groups().await.unwrap().is_empty(), "bob joined");
}

#[tokio::test]
async fn welcome_with_a_member_without_binding_is_refused() {
    forged_member_refused(Forgery::NoBinding, |r| matches!(r, BindingRefusal::Missing)).await;
}

#[tokio::test]
async fn welcome_with_a_member_bound_by_another_key_is_refused() {
    forged_member_refused(Forgery::OtherKey, |r| {
        matches!(r, BindingRefusal::BadSignature)
    })
    .await;
}

#[tokio::test]
async fn welcome_with_a_member_of_no_such_device_is_refused() {
    forged_member_refused(Forgery::NoSuchDevice, |r| {
        matches!(r, BindingRefusal::NoSuchDevice)
    })
    .await;
}

/// The leaf signature key `viewer` holds for `member`'s leaf in `g`.
async fn leaf_key(viewer: &Dev, member: &Did, g: &GroupId) -> Vec<u8> {
    let mut st = viewer.inner.state.lock().await;
    st.with_group(&g.0, |_, grp| {
        Ok(grp
            .members()
            .find(|m| crate::group::credential_did(&m.credential).is_ok_and(|d| &d == member))
            .expect("the member")
            .signature_key)
    })
    .expect("group")
}

/// Bob rotates his leaf key twice; Alice verifies each new binding; Carol, who joins
/// later, verifies Bob's current leaf (which is in no KeyPackage record) from the tree.
#[tokio::test]
async fn rotated_leaf_verifies_for_a_later_joiner() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let first = leaf_key(&alice, bob.did(), &g).await;
    for _ in 0..2 {
        bob.self_update(&g, true).await.unwrap();
        let events = alice.sync().await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::GroupChanged { by, .. } if by == bob.did())),
            "{events:?}"
        );
    }
    let rotated = leaf_key(&alice, bob.did(), &g).await;
    assert_ne!(rotated, first);
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    let events = carol.sync().await.unwrap();
    assert_eq!(Event::joined(&events), vec![g.clone()], "{events:?}");
    assert_eq!(leaf_key(&carol, bob.did(), &g).await, rotated);
}

/// Bob commits a new leaf key that keeps his old binding (signed over his old key):
/// Alice refuses it before merging.
#[tokio::test]
async fn update_whose_binding_does_not_verify_is_refused() {
    use openmls::prelude::tls_codec::Serialize as _;
    use openmls::prelude::*;

    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let before = alice.group(&g).await.unwrap().epoch;
    let ((commit, next), key) = in_group(&bob, &g, |provider, grp, signer, mailbox| {
        let suite = grp.ciphersuite();
        let keys =
            openmls_basic_credential::SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
        let credential = grp.own_leaf_node().unwrap().credential().clone();
        // Default parameters: the old extensions, hence the old binding, stay.
        let bundle = grp
            .self_update_with_new_signer(
                provider,
                signer,
                NewSignerBundle {
                    signer: &keys,
                    credential_with_key: CredentialWithKey {
                        credential,
                        signature_key: keys.public().into(),
                    },
                },
                LeafNodeParameters::default(),
            )
            .expect("update");
        let staged = grp.pending_commit().expect("pending commit");
        let next =
            crate::group::seal::staged_mailbox_key(staged, provider.crypto(), mailbox).unwrap();
        (bundle.commit().tls_serialize_detached().unwrap(), next)
    })
    .await;
    send_raw_commit(&bob, &g, before, commit, &key, &next).await;
    let events = alice.sync().await.unwrap();
    let refused = events.iter().find_map(|e| match e {
        Event::CommitRefused { violation, .. } => Some(violation.clone()),
        _ => None,
    });
    assert!(
        matches!(
            &refused,
            Some(PolicyViolation::DeviceBinding { did, reason: BindingRefusal::BadSignature })
                if did == bob.did().as_str()
        ),
        "{events:?}"
    );
    assert_eq!(alice.group(&g).await.unwrap().epoch, before, "merged");
}

/// Carol's own repo holds a KeyPackage whose leaf binding does not verify (a broken or
/// older client signed it with another key). The committer's check (§3.3 step 9) refuses
/// it; a committer that skips the check has its commit refused by every receiver.
#[tokio::test]
async fn added_key_package_without_a_valid_binding_is_refused() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    // Carol's device publishes a package bound by a key that is not its device key.
    let rkey = "3jzfcijpj2z2z".to_owned();
    let record = {
        let st = carol.inner.state.lock().await;
        let mut binder = st.binder().unwrap();
        binder.key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let signer = st.signer(&st.row.signature_public).unwrap();
        let params = crate::keypackage::build::KeyPackageParams {
            ciphersuite: st.ciphersuite().unwrap(),
            did: &st.row.did,
            device_id: &st.row.device_id,
            inbox_ds: &st.row.inbox_ds,
            inbox_mailbox: &atmls_ds_proto::MailboxId::from_bytes(st.row.inbox_mailbox).to_string(),
            lifetime_secs: 30 * 86_400,
            last_resort: false,
            binder: &binder,
            now: st.unix_ms(),
        };
        crate::keypackage::build::build_key_package(&st.provider(), &signer, &params, rkey.clone())
            .unwrap()
            .record
    };
    carol
        .pds()
        .apply_writes(vec![crate::transport::RecordWrite::Create {
            collection: crate::keypackage::KEY_PACKAGE_COLLECTION.into(),
            rkey: rkey.clone(),
            value: record,
        }])
        .await
        .unwrap();
    let car = alice
        .pds()
        .record_proof(
            carol.did(),
            crate::keypackage::KEY_PACKAGE_COLLECTION,
            &rkey,
        )
        .await
        .unwrap();
    let doc = alice.pds().resolve(carol.did()).await.unwrap();
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let suite = alice.inner.config.ciphersuite;
    let checked = crate::keypackage::verify_key_package(
        &crypto,
        &doc,
        carol.did(),
        &rkey,
        &car,
        None,
        &[suite],
        chrono::Utc::now().timestamp(),
    );
    match &checked {
        Err(crate::error::KeyPackageRefusal::DeviceBinding(r))
            if matches!(**r, BindingRefusal::BadSignature) => {}
        other => panic!("expected a binding refusal, got {other:?}"),
    }
    // A committer that adds it anyway (the record and its proof are real).
    let key_package = {
        use openmls::prelude::tls_codec::Deserialize as _;
        use openmls::prelude::*;
        let records = carol
            .pds()
            .list_records(carol.did(), crate::keypackage::KEY_PACKAGE_COLLECTION)
            .await
            .unwrap();
        let value = &records.iter().find(|r| r.rkey == rkey).unwrap().value;
        let data: atmls_lexicon::chat::mls::key_package::RecordData =
            serde_json::from_value(value.clone()).unwrap();
        let MlsMessageBodyIn::KeyPackage(kp) =
            MlsMessageIn::tls_deserialize_exact(data.key_package.as_slice())
                .unwrap()
                .extract()
        else {
            panic!("not a KeyPackage")
        };
        kp.validate(&crypto, ProtocolVersion::Mls10).unwrap()
    };
    let forged = VerifiedKeyPackage {
        did: carol.did().clone(),
        rkey: rkey.clone(),
        device_id: carol.device_id().to_owned(),
        inbox_ds: carol.inner.state.lock().await.row.inbox_ds.parse().unwrap(),
        inbox: atmls_ds_proto::MailboxId::from_bytes([9; 32]),
        last_resort: false,
        key_package,
        rev: "3jzfcijpj2z2a".into(),
        proof: car,
        expires_at: i64::MAX,
    };
    super::leaf_proof_tests::commit_add(&alice, &g, vec![forged]).await;
    super::leaf_proof_tests::bob_refuses(&bob, &g, |v| {
        matches!(
            v,
            PolicyViolation::DeviceBinding { did, reason: BindingRefusal::BadSignature }
                if did == carol.did().as_str()
        )
    })
    .await;
}

/// The kept proof of the device record: fetched again whenever KeyPackages are built
/// (the account's `#atproto` key may have changed), and the next rotation carries it.
#[tokio::test]
async fn device_record_proof_is_refreshed_and_used_by_the_next_rotation() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let g = alice.create_group("g").await.unwrap();
    let kept = |dev: &Dev| {
        let dev = dev.clone();
        async move { dev.inner.state.lock().await.binder().unwrap().proof }
    };
    let first = kept(&alice).await;
    // The repo moves on (new KeyPackages): the kept proof is refetched at that head.
    alice.rotate_key_packages().await.unwrap();
    let second = kept(&alice).await;
    assert_ne!(first, second, "the proof was not refreshed");
    alice.self_update(&g, true).await.unwrap();
    let in_leaf = {
        let mut st = alice.inner.state.lock().await;
        st.with_group(&g.0, |_, grp| {
            let ext = grp
                .own_leaf_node()
                .unwrap()
                .extensions()
                .unknown(crate::group::DEVICE_BINDING_EXTENSION_TYPE)
                .cloned()
                .expect("a binding");
            Ok(crate::group::binding::DeviceBinding::from_bytes(&ext.0)
                .unwrap()
                .proof)
        })
        .unwrap()
    };
    assert_eq!(in_leaf, second);
}

/// A database without a device key (made before device keys, or whose key was lost) gets
/// one, and its record (replacing one that holds another key), at the next sync; its
/// leaves and its KeyPackages are then bound by it.
#[tokio::test]
async fn a_device_without_a_device_key_publishes_one_at_sync() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    alice
        .inner
        .state
        .lock()
        .await
        .conn
        .execute_batch("DELETE FROM atmls_device_key")
        .unwrap();
    assert!(alice.inner.state.lock().await.binder().is_err());
    alice.sync().await.unwrap();
    assert!(alice.inner.state.lock().await.binder().is_ok());
    let g = alice.create_group("g").await.unwrap();
    let bob = device(&net, "bob").await;
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    let events = bob.sync().await.unwrap();
    assert_eq!(Event::joined(&events), vec![g], "{events:?}");
    // Its KeyPackages were replaced with ones bound by the new key (those bound before
    // would still verify through their older proofs of the older record, §11.16.7):
    // every one verifies (two one-time packages and the last-resort one), and others can
    // add it.
    let packages: Vec<VerifiedKeyPackage> = {
        let mut st = bob.inner.state.lock().await;
        bob.key_packages_by_device(&mut st, alice.did(), false)
            .await
            .unwrap()
            .into_values()
            .flatten()
            .collect()
    };
    assert_eq!(packages.len(), 3, "packages verified");
    assert!(packages.iter().any(|k| k.last_resort));
    let h = bob.create_group("h").await.unwrap();
    bob.add_members(&h, &[alice.did().clone()])
        .await
        .expect("alice's packages verify");
    let events = alice.sync().await.unwrap();
    assert!(Event::joined(&events).contains(&h), "{events:?}");
}
