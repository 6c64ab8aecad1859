//! Hostile re-entry requests (docs/spec.md §11.17): each is refused with its reason and
//! costs no commit.

use atmls_ds_proto::MailboxId;
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;

use crate::content;
use crate::device::store;
use crate::event::Event;
use crate::group::GroupId;
use crate::group::reentry::{self, ReentryGroup, ReentryRefusal, ReentryRequest};
use crate::transport::Ds as _;
use crate::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use crate::{Device, DeviceConfig};

type Dev = Device<MemoryPds, MemoryDs>;

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, DeviceConfig::default().with_one_time_key_packages(2))
        .await
        .expect("device")
}

/// How a crafted request is made.
#[derive(Clone, Copy, PartialEq)]
enum Craft {
    /// As the device would (a valid signature by its KeyPackage's key).
    Honest,
    /// Signed by another key.
    WrongKey,
}

/// A request of `from` about `group`, sealed to `to` and deposited in its inbox.
async fn deposit(from: &Dev, to: &Dev, group: Option<&GroupId>, craft: Craft) {
    let target = match group {
        Some(g) => {
            let snapshot = from.group(g).await.expect("group");
            Some(ReentryGroup {
                id: g.0.clone(),
                ds: snapshot.data.ds.clone(),
                mailbox: MailboxId::from_bytes(snapshot.data.mailbox),
            })
        }
        None => None,
    };
    let (request, signature) = {
        let st = from.inner.state.lock().await;
        let package = store::key_packages(&st.conn)
            .unwrap()
            .into_iter()
            .find(|p| !p.last_resort)
            .expect("a one-time package");
        let request = ReentryRequest {
            did: from.did().clone(),
            device_id: from.device_id().to_owned(),
            key_package: package.rkey,
            key_package_ref: package.key_package_ref,
            group: target,
            created_at: 0,
        };
        let signature = match craft {
            Craft::Honest => request
                .sign(&st.signer(&st.row.signature_public).unwrap())
                .unwrap(),
            Craft::WrongKey => request
                .sign(&SignatureKeyPair::new(SignatureScheme::ED25519).unwrap())
                .unwrap(),
        };
        (request, signature)
    };
    let k = from
        .key_packages_of(to.did())
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.device_id == to.device_id())
        .expect("the recipient's package");
    let sealed = reentry::seal_reentry(
        &openmls_rust_crypto::RustCrypto::default(),
        k.key_package.ciphersuite(),
        k.key_package.hpke_init_key().as_slice(),
        &request.to_cbor(&signature),
    )
    .unwrap();
    from.inner
        .ds
        .send_welcome(&k.inbox_ds, &k.inbox, content::pad(sealed, 1 << 20))
        .await
        .unwrap();
}

fn refusals(events: &[Event]) -> Vec<ReentryRefusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ReentryRefused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Alice (admin), Bob and Carol in Alice's group, synced.
async fn group() -> (MemoryNetwork, Dev, Dev, Dev, GroupId) {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.unwrap();
    alice
        .add_members(&g, &[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    alice.sync().await.unwrap();
    (net, alice, bob, carol, g)
}

#[tokio::test]
async fn a_request_with_a_bad_signature_is_refused_and_costs_no_commit() {
    let (_net, alice, bob, _carol, g) = group().await;
    let epoch = alice.group(&g).await.unwrap().epoch;
    deposit(&bob, &alice, Some(&g), Craft::WrongKey).await;
    let ev = alice.sync().await.unwrap();
    assert_eq!(refusals(&ev), [ReentryRefusal::BadSignature]);
    assert_eq!(alice.group(&g).await.unwrap().epoch, epoch);
}

#[tokio::test]
async fn a_request_from_a_device_without_a_leaf_is_refused() {
    let (net, alice, _bob, _carol, g) = group().await;
    let mallory = device(&net, "mallory").await;
    // Mallory learnt the group's id and mailbox; her request is well signed.
    let snapshot = alice.group(&g).await.unwrap();
    let epoch = snapshot.epoch;
    let (request, signature) = {
        let st = mallory.inner.state.lock().await;
        let package = store::key_packages(&st.conn).unwrap().remove(0);
        let request = ReentryRequest {
            did: mallory.did().clone(),
            device_id: mallory.device_id().to_owned(),
            key_package: package.rkey,
            key_package_ref: package.key_package_ref,
            group: Some(ReentryGroup {
                id: g.0.clone(),
                ds: snapshot.data.ds.clone(),
                mailbox: MailboxId::from_bytes(snapshot.data.mailbox),
            }),
            created_at: 0,
        };
        let signature = request
            .sign(&st.signer(&st.row.signature_public).unwrap())
            .unwrap();
        (request, signature)
    };
    let k = mallory
        .key_packages_of(alice.did())
        .await
        .unwrap()
        .remove(0);
    let sealed = reentry::seal_reentry(
        &openmls_rust_crypto::RustCrypto::default(),
        k.key_package.ciphersuite(),
        k.key_package.hpke_init_key().as_slice(),
        &request.to_cbor(&signature),
    )
    .unwrap();
    mallory
        .inner
        .ds
        .send_welcome(&k.inbox_ds, &k.inbox, content::pad(sealed, 1 << 20))
        .await
        .unwrap();
    let ev = alice.sync().await.unwrap();
    assert_eq!(refusals(&ev), [ReentryRefusal::NoLeaf]);
    assert_eq!(alice.group(&g).await.unwrap().epoch, epoch);
}

#[tokio::test]
async fn a_member_without_the_right_refuses_and_a_replay_costs_one_commit() {
    let (_net, alice, bob, carol, g) = group().await;
    // Carol is no admin and not Bob's account: she may not re-add him.
    let epoch = carol.group(&g).await.unwrap().epoch;
    deposit(&bob, &carol, Some(&g), Craft::Honest).await;
    let ev = carol.sync().await.unwrap();
    assert_eq!(refusals(&ev), [ReentryRefusal::NoRight]);
    assert_eq!(carol.group(&g).await.unwrap().epoch, epoch);
    // A group-less request is for the account's own devices only.
    deposit(&bob, &alice, None, Craft::Honest).await;
    let ev = alice.sync().await.unwrap();
    assert_eq!(refusals(&ev), [ReentryRefusal::NoRight]);
    // Alice (admin) acts once; the same request again costs nothing.
    let epoch = alice.group(&g).await.unwrap().epoch;
    deposit(&bob, &alice, Some(&g), Craft::Honest).await;
    deposit(&bob, &alice, Some(&g), Craft::Honest).await;
    let ev = alice.sync().await.unwrap();
    assert_eq!(refusals(&ev), [ReentryRefusal::AlreadyDone]);
    assert_eq!(alice.group(&g).await.unwrap().epoch, epoch + 1);
}
