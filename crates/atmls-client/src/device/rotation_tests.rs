//! Periodic signature-key rotation (docs/spec.md §11.16.6) and the refusal of leaves that
//! change identity (§11.1), on the memory network. The schedule is driven by moving the
//! recorded time of the last rotation back (no sleeping, no clock of its own).

use std::time::Duration;

use atmls_identity::Did;

use super::Device;
use crate::DeviceConfig;
use crate::content;
use crate::event::Event;
use crate::group::GroupId;
use crate::transport::memory::{MemoryDs, MemoryNetwork};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

const DAY: i64 = 86_400;

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_self_update_interval(None)
        .with_signature_rotation_interval(Some(Duration::from_secs(3 * 86_400)))
}

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, config()).await.expect("device")
}

/// Alice (admin) and Bob in a group.
async fn pair() -> (MemoryNetwork, Dev, Dev, GroupId) {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let g = alice.create_group("g").await.expect("group");
    alice
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("add bob");
    let events = bob.sync().await.expect("bob joins");
    assert!(
        events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "{events:?}"
    );
    (net, alice, bob, g)
}

/// `dev`'s own leaf in `g`: its signature public key and its credential identity.
async fn own_leaf(dev: &Dev, g: &GroupId) -> (Vec<u8>, Did) {
    let mut st = dev.inner.state.lock().await;
    st.with_group(&g.0, |_, grp| {
        let leaf = grp.own_leaf_node().expect("a member");
        let did = crate::group::credential_did(leaf.credential()).expect("a DID");
        Ok((leaf.signature_key().as_slice().to_vec(), did))
    })
    .expect("group")
}

/// The signature key `viewer` holds for `member`'s leaf in `g`.
async fn leaf_key_seen_by(viewer: &Dev, member: &Did, g: &GroupId) -> Vec<u8> {
    let mut st = viewer.inner.state.lock().await;
    st.with_group(&g.0, |_, grp| {
        let m = grp
            .members()
            .find(|m| crate::group::credential_did(&m.credential).is_ok_and(|d| &d == member))
            .expect("the member");
        Ok(m.signature_key)
    })
    .expect("group")
}

/// Moves the recorded time of `dev`'s last rotation in `g` to `secs_ago`.
async fn last_rotated(dev: &Dev, g: &GroupId, secs_ago: i64) {
    let st = dev.inner.state.lock().await;
    let now = chrono::Utc::now().timestamp();
    super::rotation::set_last_rotation(&st.conn, &g.0, now - secs_ago).unwrap();
}

/// Whether `dev` still holds the private half of `public`.
async fn holds_private_key(dev: &Dev, public: &[u8]) -> bool {
    let st = dev.inner.state.lock().await;
    st.signer(public).is_ok()
}

#[tokio::test]
async fn signature_key_rotates_on_schedule_and_the_old_key_is_deleted() {
    let (_net, alice, bob, g) = pair().await;
    let (k0, bob_did) = own_leaf(&bob, &g).await;
    // Not yet due: the schedule starts when the group is first seen.
    bob.sync().await.unwrap();
    last_rotated(&bob, &g, 3 * DAY - 60).await;
    bob.sync().await.unwrap();
    assert_eq!(own_leaf(&bob, &g).await.0, k0, "rotated before it was due");

    // Due: one sync rotates, the identity stays, Alice merges it. The binding of the new
    // key carries a proof of the device record fetched for it (§11.16.7).
    let kept = bob.inner.state.lock().await.binder().unwrap().proof;
    last_rotated(&bob, &g, 3 * DAY).await;
    bob.sync().await.unwrap();
    let fresh = bob.inner.state.lock().await.binder().unwrap().proof;
    assert_ne!(fresh, kept, "the proof was not refreshed for the rotation");
    let (k1, did1) = own_leaf(&bob, &g).await;
    assert_ne!(k1, k0, "not rotated when due");
    assert_eq!(did1, bob_did, "the identity changed");
    let events = alice.sync().await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. })),
        "{events:?}"
    );
    assert_eq!(leaf_key_seen_by(&alice, &bob_did, &g).await, k1);
    // The schedule restarted: the next sync does not rotate again.
    bob.sync().await.unwrap();
    assert_eq!(own_leaf(&bob, &g).await.0, k1);

    // The next period: the rotated-away group key is deleted (the first one is the
    // device's KeyPackage key, kept for other groups and packages).
    last_rotated(&bob, &g, 3 * DAY + 1).await;
    bob.sync().await.unwrap();
    let (k2, _) = own_leaf(&bob, &g).await;
    assert_ne!(k2, k1);
    assert!(holds_private_key(&bob, &k2).await);
    assert!(
        !holds_private_key(&bob, &k1).await,
        "the rotated-away key is still stored"
    );
    alice.sync().await.unwrap();
    assert_eq!(leaf_key_seen_by(&alice, &bob_did, &g).await, k2);
    bob.send(&g, content::text("after two rotations"))
        .await
        .unwrap();
    assert_eq!(
        Event::texts(&alice.sync().await.unwrap()),
        ["after two rotations"]
    );
}

#[tokio::test]
async fn no_rotation_when_disabled() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = net
        .device("bob", config().with_signature_rotation_interval(None))
        .await
        .unwrap();
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let (k0, _) = own_leaf(&bob, &g).await;
    last_rotated(&bob, &g, 365 * DAY).await;
    bob.sync().await.unwrap();
    assert_eq!(own_leaf(&bob, &g).await.0, k0);
}

/// A last-resort join rotates at once and starts the schedule then (no second rotation
/// at the next sync).
#[tokio::test]
async fn last_resort_join_rotates_and_starts_the_schedule() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = net
        .device("bob", config().with_one_time_key_packages(0))
        .await
        .unwrap();
    let device_key = bob.inner.state.lock().await.row.signature_public.clone();
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let (k1, _) = own_leaf(&bob, &g).await;
    assert_ne!(k1, device_key, "not rotated after the last-resort join");
    let at = {
        let st = bob.inner.state.lock().await;
        super::rotation::last_rotation(&st.conn, &g.0, 0).unwrap()
    };
    assert!(
        chrono::Utc::now().timestamp() - at < 600,
        "schedule not started"
    );
    bob.sync().await.unwrap();
    assert_eq!(own_leaf(&bob, &g).await.0, k1);
}

/// A member sends an Update proposal whose leaf names another account: refused, never
/// stored, so no commit can carry it by reference (Update proposals are by reference
/// only, RFC 9420 §12.2). Its own-identity Update is refused alike: this client accepts
/// leave proposals only, and leaves update through commits (checked by
/// `commit_changing_a_leafs_identity_is_refused`).
#[tokio::test]
async fn update_proposal_changing_identity_is_refused() {
    use openmls::prelude::tls_codec::Serialize as _;
    use openmls::prelude::*;

    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let carol_did = carol.did().clone();
    let (proposal, key, row) = {
        let mut st = bob.inner.state.lock().await;
        let row = super::store::group(&st.conn, &g.0).unwrap().unwrap();
        let signer = st.signer(&row.signature_public).unwrap();
        let (proposal, key) = st
            .with_group(&g.0, |provider, grp| {
                use openmls_traits::OpenMlsProvider as _;
                let key =
                    crate::group::seal::mailbox_key(grp, provider.crypto(), &row.mailbox).unwrap();
                let suite = grp.ciphersuite();
                let keys =
                    openmls_basic_credential::SignatureKeyPair::new(suite.signature_algorithm())
                        .unwrap();
                let credential = BasicCredential::new(carol_did.as_str().as_bytes().to_vec());
                let (message, _) = grp
                    .propose_self_update_with_new_signer(
                        provider,
                        &signer,
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
                    .expect("proposal");
                Ok((message.tls_serialize_detached().unwrap(), key))
            })
            .unwrap();
        (proposal, key, row)
    };
    {
        use crate::transport::Ds as _;
        use sha2::Digest as _;
        let payload = content::pad(proposal, bob.inner.config.max_envelope_bytes);
        // Recorded as sent, as the client records its own messages (Bob skips it).
        let digest = sha2::Sha256::digest(&payload);
        super::store::record_sent(&bob.inner.state.lock().await.conn, &g.0, &digest).unwrap();
        bob.inner
            .ds
            .send_envelopes(
                &Did::new(row.ds.clone()).unwrap(),
                &atmls_ds_proto::MailboxId::from_bytes(row.mailbox),
                &key,
                vec![atmls_ds_proto::OutgoingEnvelope::message(payload)],
            )
            .await
            .expect("sent");
    }
    let events = alice.sync().await.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Event::Rejected { .. })),
        "{events:?}"
    );
    let stored = {
        let mut st = alice.inner.state.lock().await;
        st.with_group(&g.0, |_, grp| Ok(grp.pending_proposals().count()))
            .unwrap()
    };
    assert_eq!(stored, 0, "the update proposal was stored");
    // The group goes on: Alice's next commit carries no Update.
    alice.self_update(&g, false).await.unwrap();
    let events = bob.sync().await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. })),
        "{events:?}"
    );
    let _ = carol;
}
