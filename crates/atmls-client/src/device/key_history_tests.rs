//! Leaf proofs are checked against the `#atproto` key in force when the DS accepted the
//! commit (docs/spec.md §11.13, decision 0026), not the key at processing time: a key
//! rotation after the commit never splits a late member, and a proof signed by a key that
//! was not in force at `acceptedAt` is refused.

use super::Device;
use crate::DeviceConfig;
use crate::decide::commit::Intent;
use crate::error::{KeyPackageRefusal, PolicyViolation};
use crate::event::Event;
use crate::group::GroupId;
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

/// Alice (admin) and Bob in a group; Carol exists.
async fn setup() -> (MemoryNetwork, Dev, Dev, Dev, GroupId) {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.expect("group");
    alice
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("add bob");
    bob.sync().await.expect("bob joins");
    (net, alice, bob, carol, g)
}

/// Alice adds Carol; Carol's account then rotates its `#atproto` key (a PDS migration)
/// before Bob reads the commit. Bob checks the proof against the key in force when the
/// DS accepted the commit, merges it, and stays in step with Alice. (Before: Bob
/// checked against the current key and refused the commit, splitting from the group.)
#[tokio::test]
async fn late_member_merges_an_add_after_the_invitees_key_rotated() {
    let (net, alice, bob, carol, g) = setup().await;
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    let after_commit = crate::transport::now().as_millis() + 1;
    net.rotate_atproto_key(
        carol.did(),
        atmls_syntax::Timestamp::from_millis(after_commit),
    );
    let events = bob.sync().await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. })),
        "{events:?}"
    );
    assert_eq!(epoch(&bob, &g).await, epoch(&alice, &g).await);
    let events = carol.sync().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Joined { .. })));
}

/// A proof signed by a key that was no longer in force when the DS accepted the commit
/// (Alice kept a package she fetched before Carol's key rotated) is refused.
#[tokio::test]
async fn proof_signed_by_a_key_not_in_force_at_accepted_at_is_refused() {
    let (net, alice, bob, carol, g) = setup().await;
    let kp = alice
        .key_packages_of(carol.did())
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    net.rotate_atproto_key(carol.did(), crate::transport::now());
    {
        let mut st = alice.inner.state.lock().await;
        alice
            .commit_locked(&mut st, &g, Intent::Add(vec![kp]))
            .await
            .expect("the DS accepts the commit");
    }
    let before = epoch(&bob, &g).await;
    let events = bob.sync().await.unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::CommitRefused {
                violation: PolicyViolation::LeafProofRefused {
                    reason: KeyPackageRefusal::Proof(_),
                    ..
                },
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(epoch(&bob, &g).await, before);
}
