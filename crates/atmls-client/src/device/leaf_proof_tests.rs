//! Receivers verify the KeyPackages of the leaves a commit adds (docs/spec.md §11.13).
//! A malicious admin is played by tampering with the verified packages it commits (the
//! commit itself is built and sent by the real code path).

use atmls_identity::Did;

use super::Device;
use crate::DeviceConfig;
use crate::decide::commit::Intent;
use crate::error::{KeyPackageRefusal, PolicyViolation};
use crate::event::Event;
use crate::group::GroupId;
use crate::keypackage::VerifiedKeyPackage;
use crate::transport::Pds as _;
use crate::transport::memory::{MemoryDs, MemoryNetwork};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, DeviceConfig::default().with_one_time_key_packages(2))
        .await
        .expect("device")
}

async fn epoch(d: &Dev, g: &GroupId) -> u64 {
    d.group(g).await.expect("group").epoch
}

/// Alice (admin) and Bob in a group; Carol and Dave exist. Returns them and the group.
async fn setup() -> (MemoryNetwork, Dev, Dev, Dev, Dev, GroupId) {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let dave = device(&net, "dave").await;
    let g = alice.create_group("g").await.expect("group");
    alice
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("add bob");
    bob.sync().await.expect("bob joins");
    assert_eq!(epoch(&alice, &g).await, epoch(&bob, &g).await);
    (net, alice, bob, carol, dave, g)
}

/// Alice commits adding `packages` as they are (tampered or not), bypassing nothing
/// else: the DS accepts it, Alice merges it.
pub(super) async fn commit_add(alice: &Dev, g: &GroupId, packages: Vec<VerifiedKeyPackage>) {
    let mut st = alice.inner.state.lock().await;
    alice
        .commit_locked(&mut st, g, Intent::Add(packages))
        .await
        .expect("the DS accepts the commit");
}

/// Bob processes the commit: it must be refused (not merged) with `want`.
pub(super) async fn bob_refuses(bob: &Dev, g: &GroupId, want: impl Fn(&PolicyViolation) -> bool) {
    let before = epoch(bob, g).await;
    let events = bob.sync().await.expect("sync");
    let refused = events.iter().find_map(|e| match e {
        Event::CommitRefused { violation, .. } => Some(violation.clone()),
        _ => None,
    });
    match refused {
        Some(v) if want(&v) => {}
        other => panic!("expected a refusal, got {other:?} in {events:?}"),
    }
    assert_eq!(epoch(bob, g).await, before, "the refused commit was merged");
}

fn first(kps: Vec<VerifiedKeyPackage>) -> VerifiedKeyPackage {
    kps.into_iter().next().expect("a package")
}

/// One verified package of `did` as `dev` sees it, and `did`'s DID document.
async fn package_and_document(
    dev: &Dev,
    did: &Did,
) -> (VerifiedKeyPackage, atmls_identity::DidDocument) {
    let kp = first(dev.key_packages_of(did).await.unwrap());
    (kp, dev.pds().resolve(did).await.unwrap())
}

#[tokio::test]
async fn missing_proof_is_refused() {
    let (_net, alice, bob, carol, _dave, g) = setup().await;
    let mut kp = first(alice.key_packages_of(carol.did()).await.unwrap());
    kp.proof.clear();
    commit_add(&alice, &g, vec![kp]).await;
    bob_refuses(
        &bob,
        &g,
        |v| matches!(v, PolicyViolation::LeafProofMissing { did } if did == carol.did().as_str()),
    )
    .await;
}

#[tokio::test]
async fn one_missing_among_several_is_refused() {
    let (_net, alice, bob, carol, dave, g) = setup().await;
    let good = first(alice.key_packages_of(carol.did()).await.unwrap());
    let mut bad = first(alice.key_packages_of(dave.did()).await.unwrap());
    bad.proof.clear();
    commit_add(&alice, &g, vec![good, bad]).await;
    bob_refuses(
        &bob,
        &g,
        |v| matches!(v, PolicyViolation::LeafProofMissing { did } if did == dave.did().as_str()),
    )
    .await;
}

#[tokio::test]
async fn forged_proof_is_refused() {
    let (_net, alice, bob, carol, _dave, g) = setup().await;
    let mut kp = first(alice.key_packages_of(carol.did()).await.unwrap());
    // Flip one byte near the end (inside the record or commit block): a block no longer
    // hashes to its CID, or the signature fails.
    let n = kp.proof.len();
    kp.proof[n - 5] ^= 0x01;
    commit_add(&alice, &g, vec![kp]).await;
    bob_refuses(&bob, &g, |v| {
        matches!(
            v,
            PolicyViolation::LeafProofRefused {
                reason: KeyPackageRefusal::Proof(_),
                ..
            }
        )
    })
    .await;
}

#[tokio::test]
async fn proof_from_another_accounts_repo_is_refused() {
    let (_net, alice, bob, carol, dave, g) = setup().await;
    // Carol's leaf, "proven" by a record of Dave's repo (signed by Dave's key).
    let mut kp = first(alice.key_packages_of(carol.did()).await.unwrap());
    let daves = first(alice.key_packages_of(dave.did()).await.unwrap());
    kp.proof = daves.proof.clone();
    kp.rkey = daves.rkey.clone();
    commit_add(&alice, &g, vec![kp]).await;
    bob_refuses(&bob, &g, |v| {
        matches!(
            v,
            PolicyViolation::LeafProofRefused {
                did,
                reason: KeyPackageRefusal::Proof(_),
            } if did == carol.did().as_str()
        )
    })
    .await;
}

#[tokio::test]
async fn proof_of_another_record_of_the_same_account_is_refused() {
    let (_net, alice, bob, carol, _dave, g) = setup().await;
    // Two of Carol's packages: the leaf of one with the (valid) proof of the other.
    let mut st = alice.inner.state.lock().await;
    let by_device = alice
        .key_packages_by_device(&mut st, carol.did(), true)
        .await
        .unwrap();
    drop(st);
    let mut kps: Vec<VerifiedKeyPackage> = by_device.into_values().flatten().collect();
    assert!(kps.len() >= 2);
    let other = kps.pop().unwrap();
    let mut kp = kps.remove(0);
    kp.proof = other.proof;
    kp.rkey = other.rkey;
    commit_add(&alice, &g, vec![kp]).await;
    bob_refuses(&bob, &g, |v| {
        matches!(
            v,
            PolicyViolation::LeafProofRefused {
                reason: KeyPackageRefusal::NotAdded,
                ..
            }
        )
    })
    .await;
}

/// The honest path: Bob processes the add only after Carol joined and deleted the
/// one-time package's record; the proof Alice attached (an older revision) still counts.
#[tokio::test]
async fn late_receiver_accepts_a_consumed_packages_older_proof() {
    let (_net, alice, bob, carol, _dave, g) = setup().await;
    let before = bob
        .pds()
        .list_records(carol.did(), crate::keypackage::KEY_PACKAGE_COLLECTION)
        .await
        .unwrap();
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    let events = carol.sync().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Joined { .. })));
    let after = bob
        .pds()
        .list_records(carol.did(), crate::keypackage::KEY_PACKAGE_COLLECTION)
        .await
        .unwrap();
    let gone: Vec<_> = before
        .iter()
        .filter(|r| !after.iter().any(|a| a.rkey == r.rkey))
        .collect();
    assert_eq!(gone.len(), 1, "the consumed one-time package was deleted");
    let events = bob.sync().await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. })),
        "{events:?}"
    );
    assert_eq!(epoch(&bob, &g).await, epoch(&alice, &g).await);
    assert_eq!(epoch(&carol, &g).await, epoch(&alice, &g).await);
}

/// The proof's revision is the invitee's repo head when the committer fetched it, which
/// is as old as the account's last write: an account quiet for days is still added, and
/// every receiver agrees (§11.13). What bounds the re-use of an old proof is the
/// record's `expiresAt` against the instant the DS accepted the commit.
#[tokio::test]
async fn proof_of_a_quiet_repo_counts_until_the_record_expires() {
    let (_net, alice, _bob, carol, _dave, _g) = setup().await;
    let (kp, doc) = package_and_document(&alice, carol.did()).await;
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let check = |accepted_ms| {
        crate::keypackage::verify_added_key_package(
            &crypto,
            &doc,
            carol.did(),
            &kp.rkey,
            &kp.proof,
            &kp.key_package,
            accepted_ms,
        )
    };
    assert!(check(now_ms).is_ok());
    let day = 86_400_000;
    // The repo was last written three days before the commit; or its PDS clock is ahead.
    assert!(
        check(now_ms + 3 * day).is_ok(),
        "{:?}",
        check(now_ms + 3 * day)
    );
    assert!(check(now_ms - 3_600_000).is_ok());
    let lifetime = crate::DeviceConfig::default()
        .key_package_lifetime
        .as_millis() as u64;
    assert!(matches!(
        check(now_ms + lifetime + 60_000),
        Err(KeyPackageRefusal::Expired(_))
    ));
    // And a DID whose document is not the record's repo.
    let other: Did = alice.did().clone();
    assert!(
        crate::keypackage::verify_added_key_package(
            &crypto,
            &doc,
            &other,
            &kp.rkey,
            &kp.proof,
            &kp.key_package,
            now_ms
        )
        .is_err()
    );
}

/// Runs `f` on `dev`'s copy of the group with its leaf signer and the mailbox id, as a
/// malicious member building its own messages would; also returns the epoch's mailbox key.
pub(super) async fn in_group<T>(
    dev: &Dev,
    g: &GroupId,
    f: impl FnOnce(
        &super::store::Provider<'_>,
        &mut openmls::prelude::MlsGroup,
        &openmls_basic_credential::SignatureKeyPair,
        &[u8; 32],
    ) -> T,
) -> (T, ed25519_dalek::SigningKey) {
    use openmls_traits::OpenMlsProvider as _;
    let mut st = dev.inner.state.lock().await;
    let row = super::store::group(&st.conn, &g.0).unwrap().unwrap();
    let signer = st.signer(&row.signature_public).unwrap();
    st.with_group(&g.0, |provider, grp| {
        let key = crate::group::seal::mailbox_key(grp, provider.crypto(), &row.mailbox).unwrap();
        Ok((f(provider, grp, &signer, &row.mailbox), key))
    })
    .unwrap()
}

/// Sends `commit` (an MLS message built outside the client's commit path, as a malicious
/// member would) to the group's mailbox as `dev`, signed with the epoch's mailbox `key`.
pub(super) async fn send_raw_commit(
    dev: &Dev,
    g: &GroupId,
    epoch: u64,
    commit: Vec<u8>,
    key: &ed25519_dalek::SigningKey,
    next: &ed25519_dalek::SigningKey,
) {
    use crate::transport::Ds as _;
    let row = {
        let st = dev.inner.state.lock().await;
        super::store::group(&st.conn, &g.0).unwrap().unwrap()
    };
    let mailbox: [u8; 32] = row.mailbox;
    let payload = crate::content::pad(commit, dev.inner.config.max_envelope_bytes);
    dev.inner
        .ds
        .send_envelopes(
            &Did::new(row.ds.clone()).unwrap(),
            &atmls_ds_proto::MailboxId::from_bytes(mailbox),
            key,
            vec![atmls_ds_proto::OutgoingEnvelope::commit(
                epoch,
                payload,
                next.verifying_key().to_bytes(),
            )],
        )
        .await
        .expect("the DS accepts the commit");
}

/// A member (Bob, not an admin) joins a second leaf "as Carol" by an external commit:
/// every member knows the epoch's `external_pub`, and openmls accepts external commits
/// whatever the wire-format policy. No KeyPackage, so no proof: it must be refused.
#[tokio::test]
async fn external_commit_is_refused() {
    use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
    use openmls::prelude::*;

    let (_net, alice, bob, carol, _dave, g) = setup().await;
    let before = epoch(&alice, &g).await;
    // Bob exports the current GroupInfo (with the tree) and his mailbox key.
    let ((info, suite, mailbox), key) = in_group(&bob, &g, |provider, grp, signer, mailbox| {
        let info = grp
            .export_group_info(provider.crypto(), signer, true)
            .unwrap();
        (
            info.tls_serialize_detached().unwrap(),
            grp.ciphersuite(),
            *mailbox,
        )
    })
    .await;
    let MlsMessageBodyIn::GroupInfo(info) = MlsMessageIn::tls_deserialize_exact(info.as_slice())
        .unwrap()
        .extract()
    else {
        panic!("not a GroupInfo");
    };
    // A fresh client state claiming Carol's DID with a key Carol never published.
    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let keys =
        openmls_basic_credential::SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
    let credential = BasicCredential::new(carol.did().as_str().as_bytes().to_vec());
    let (joined, bundle) = MlsGroup::external_commit_builder()
        .build_group(
            &provider,
            info,
            CredentialWithKey {
                credential: credential.into(),
                signature_key: keys.public().into(),
            },
        )
        .expect("external group")
        .leaf_node_parameters(
            LeafNodeParameters::builder()
                .with_capabilities(crate::keypackage::leaf_capabilities(suite))
                .build(),
        )
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), &keys, |_| true)
        .expect("external commit")
        .finalize(&provider)
        .expect("finalize");
    let next = crate::group::seal::mailbox_key(&joined, provider.crypto(), &mailbox).unwrap();
    let commit = bundle.commit().tls_serialize_detached().unwrap();
    send_raw_commit(&bob, &g, before, commit, &key, &next).await;
    bob_refuses(&alice, &g, |v| matches!(v, PolicyViolation::NotFromMember)).await;
    assert_eq!(epoch(&alice, &g).await, before);
    let members = alice.group(&g).await.unwrap().members;
    assert!(members.iter().all(|m| &m.did != carol.did()), "{members:?}");
}

/// openmls checks an added leaf's MLS lifetime against each receiver's own clock (not
/// against `receivedAt`): a member processing the add after `not_after` (offline for a
/// while) or with a clock behind `not_before` fails it and is forked off. The lifetime
/// of published packages is therefore as wide as openmls accepts, well past `expiresAt`.
#[tokio::test]
async fn key_package_mls_lifetime_outlasts_its_record() {
    let (_net, alice, _bob, carol, _dave, _g) = setup().await;
    let kp = first(alice.key_packages_of(carol.did()).await.unwrap());
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let lifetime = kp.key_package.life_time();
    assert!(lifetime.has_acceptable_range(), "{lifetime:?}");
    assert!(lifetime.not_before() <= now - 23 * 3600, "{lifetime:?}");
    let expires = now
        + crate::DeviceConfig::default()
            .key_package_lifetime
            .as_secs();
    assert!(
        lifetime.not_after() >= expires + 50 * 86_400,
        "{lifetime:?}: a receiver has 50 days after the last possible commit"
    );
}

/// The committer picks packages with the receivers' rule in mind: a package that
/// expires within the hour is not used, since receivers compare `expiresAt` with the
/// instant the DS accepts the commit (later than the committer's check, after retries
/// or with the DS's clock ahead) and would refuse what the committer merged.
#[tokio::test]
async fn committer_leaves_out_packages_about_to_expire() {
    let (_net, alice, _bob, carol, _dave, _g) = setup().await;
    let (kp, doc) = package_and_document(&alice, carol.did()).await;
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let suite = kp.key_package.ciphersuite();
    let check = |now| {
        crate::keypackage::verify_key_package(
            &crypto,
            &doc,
            carol.did(),
            &kp.rkey,
            &kp.proof,
            None,
            &[suite],
            now,
        )
    };
    let now = chrono::Utc::now().timestamp();
    let lifetime = crate::DeviceConfig::default()
        .key_package_lifetime
        .as_secs() as i64;
    assert!(check(now).is_ok());
    assert!(matches!(
        check(now + lifetime - 1800),
        Err(KeyPackageRefusal::Expired(_))
    ));
}

/// A storage failure while processing a commit (disk full, database busy) is not a
/// verdict on the commit: the step is rolled back and done again at the next sync, so
/// the member is not cut off from the group by a local, passing failure.
#[tokio::test]
async fn storage_failure_while_processing_a_commit_is_retried() {
    let (_net, alice, bob, _carol, _dave, g) = setup().await;
    bob.self_update(&g, false).await.expect("bob commits");
    let fail = "CREATE TEMP TRIGGER fail_insert BEFORE INSERT ON openmls_group_data \
                BEGIN SELECT RAISE(ABORT, 'disk full'); END; \
                CREATE TEMP TRIGGER fail_update BEFORE UPDATE ON openmls_group_data \
                BEGIN SELECT RAISE(ABORT, 'disk full'); END;";
    alice
        .inner
        .state
        .lock()
        .await
        .conn
        .execute_batch(fail)
        .unwrap();
    let first = alice.sync().await;
    assert!(
        first.is_err() || epoch(&alice, &g).await < epoch(&bob, &g).await,
        "the trigger did not fail anything: {first:?}"
    );
    alice
        .inner
        .state
        .lock()
        .await
        .conn
        .execute_batch("DROP TRIGGER temp.fail_insert; DROP TRIGGER temp.fail_update;")
        .unwrap();
    let events = alice.sync().await.expect("sync");
    assert_eq!(
        epoch(&alice, &g).await,
        epoch(&bob, &g).await,
        "alice was cut off: {first:?} then {events:?}"
    );
}

/// A member who is not an admin changes the group context's other extensions (here it
/// drops the leaf-proofs proposal from the required capabilities) while the group data
/// stays the same: refused.
#[tokio::test]
async fn group_context_change_by_a_non_admin_is_refused() {
    use openmls::prelude::tls_codec::Serialize as _;
    use openmls::prelude::*;

    let (_net, alice, bob, _carol, _dave, g) = setup().await;
    let before = epoch(&alice, &g).await;
    let ((commit, next), key) = in_group(&bob, &g, |provider, grp, signer, mailbox| {
        let mut extensions = grp.extensions().clone();
        let required = RequiredCapabilitiesExtension::new(
            &[ExtensionType::Unknown(
                crate::group::GROUP_DATA_EXTENSION_TYPE,
            )],
            &[],
            &[CredentialType::Basic],
        );
        extensions
            .add_or_replace(Extension::RequiredCapabilities(required))
            .unwrap();
        let bundle = grp
            .commit_builder()
            .propose_group_context_extensions(extensions)
            .unwrap()
            .load_psks(provider.storage())
            .unwrap()
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .unwrap()
            .stage_commit(provider)
            .unwrap();
        let staged = grp.pending_commit().expect("staged");
        let next =
            crate::group::seal::staged_mailbox_key(staged, provider.crypto(), mailbox).unwrap();
        (bundle.commit().tls_serialize_detached().unwrap(), next)
    })
    .await;
    send_raw_commit(&bob, &g, before, commit, &key, &next).await;
    bob_refuses(
        &alice,
        &g,
        |v| matches!(v, PolicyViolation::NotAdmin(did) if did == bob.did().as_str()),
    )
    .await;
}

/// A member (Bob) commits an update path whose new leaf names another account (Carol's
/// DID, with a key Carol never published): receivers refuse it as `IdentityChange`.
#[tokio::test]
async fn commit_changing_a_leafs_identity_is_refused() {
    use openmls::prelude::tls_codec::Serialize as _;
    use openmls::prelude::*;

    let (_net, alice, bob, carol, _dave, g) = setup().await;
    let before = epoch(&alice, &g).await;
    let carol_did = carol.did().clone();
    let ((commit, next), key) = in_group(&bob, &g, |provider, grp, signer, mailbox| {
        let suite = grp.ciphersuite();
        let keys =
            openmls_basic_credential::SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
        let credential = BasicCredential::new(carol_did.as_str().as_bytes().to_vec());
        let bundle = grp
            .self_update_with_new_signer(
                provider,
                signer,
                NewSignerBundle {
                    signer: &keys,
                    credential_with_key: CredentialWithKey {
                        credential: credential.into(),
                        signature_key: keys.public().into(),
                    },
                },
                LeafNodeParameters::builder()
                    .with_capabilities(crate::keypackage::leaf_capabilities(suite))
                    .build(),
            )
            .expect("update");
        let staged = grp.pending_commit().expect("pending commit");
        let next =
            crate::group::seal::staged_mailbox_key(staged, provider.crypto(), mailbox).unwrap();
        (bundle.commit().tls_serialize_detached().unwrap(), next)
    })
    .await;
    send_raw_commit(&bob, &g, before, commit, &key, &next).await;
    bob_refuses(
        &alice,
        &g,
        |v| matches!(v, PolicyViolation::IdentityChange { to, .. } if to == carol.did().as_str()),
    )
    .await;
}
