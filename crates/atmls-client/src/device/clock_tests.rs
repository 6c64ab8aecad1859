//! One clock in the client (docs/spec.md §11.11): every decision that compares with a
//! stored or peer time reads [`DeviceConfig::clock`], so moving a manual clock ahead
//! makes KeyPackages renew and leaf keys rotate without touching the system clock.

use std::sync::Arc;
use std::time::Duration;

use atmls_syntax::ManualClock;

use super::Device;
use super::store;
use crate::DeviceConfig;
use crate::event::Event;
use crate::transport::memory::{MemoryDs, MemoryNetwork};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

const DAY: u64 = 86_400;

async fn device(net: &MemoryNetwork, name: &str, clock: &ManualClock) -> Dev {
    net.device(
        name,
        DeviceConfig::default()
            .with_one_time_key_packages(2)
            .with_self_update_interval(None)
            .with_signature_rotation_interval(Some(Duration::from_secs(3 * DAY)))
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .expect("device")
}

/// The record keys of `dev`'s published KeyPackages, sorted.
async fn key_package_rkeys(dev: &Dev) -> Vec<String> {
    let st = dev.inner.state.lock().await;
    let mut rkeys: Vec<String> = store::key_packages(&st.conn)
        .unwrap()
        .into_iter()
        .map(|r| r.rkey)
        .collect();
    rkeys.sort();
    rkeys
}

async fn own_signature_key(dev: &Dev, g: &crate::group::GroupId) -> Vec<u8> {
    let mut st = dev.inner.state.lock().await;
    st.with_group(&g.0, |_, grp| {
        Ok(grp
            .own_leaf_node()
            .expect("a member")
            .signature_key()
            .as_slice()
            .to_vec())
    })
    .unwrap()
}

/// Everyone (devices and DS) reads one manual clock. Two days on, nothing is due; 24
/// days on (the 30-day packages are inside their 7-day renewal window, the 3-day
/// rotation is due), one sync of Bob's renews every KeyPackage and rotates his leaf key,
/// and Alice merges the rotation. (Before: the renewal and the rotation schedule read
/// the system clock, so nothing happened.)
#[tokio::test]
async fn a_manual_clock_ahead_renews_key_packages_and_rotates() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    net.set_clock(Arc::new(clock.clone()));
    let alice = device(&net, "alice", &clock).await;
    let bob = device(&net, "bob", &clock).await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    bob.sync().await.unwrap();
    let packages = key_package_rkeys(&bob).await;
    let key = own_signature_key(&bob, &g).await;

    clock.advance(Duration::from_secs(2 * DAY));
    bob.sync().await.unwrap();
    assert_eq!(key_package_rkeys(&bob).await, packages, "renewed too early");
    assert_eq!(own_signature_key(&bob, &g).await, key, "rotated too early");

    clock.advance(Duration::from_secs(22 * DAY));
    bob.sync().await.unwrap();
    let renewed = key_package_rkeys(&bob).await;
    assert_eq!(renewed.len(), packages.len());
    assert!(
        renewed.iter().all(|r| !packages.contains(r)),
        "not renewed: {packages:?} -> {renewed:?}"
    );
    assert_ne!(own_signature_key(&bob, &g).await, key, "not rotated");
    let events = alice.sync().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::GroupChanged { .. })),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. })),
        "{events:?}"
    );
}
