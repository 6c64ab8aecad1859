//! A committer never adds the same one-time KeyPackage twice (docs/spec.md §11.9): the
//! first join through it deletes its private keys, so a second welcome built on it
//! could not be opened.

use std::sync::Arc;

use atmls_syntax::ManualClock;

use super::Device;
use crate::DeviceConfig;
use crate::event::Event;
use crate::transport::memory::{MemoryDs, MemoryNetwork};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

async fn device(net: &MemoryNetwork, name: &str, one_time: usize, clock: &ManualClock) -> Dev {
    net.device(
        name,
        DeviceConfig::default()
            .with_one_time_key_packages(one_time)
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .expect("device")
}

/// Alice adds Bob to two groups back to back, before Bob syncs: his records still list
/// the one-time package the first group used. Bob has one one-time package and the
/// last-resort one, so the second group must get the last-resort one; both welcomes
/// join. (Before: both groups got the one-time package, and the second welcome was
/// refused once the first join had deleted its keys.)
#[tokio::test]
async fn one_account_added_to_two_groups_joins_both() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    let alice = device(&net, "alice", 2, &clock).await;
    let bob = device(&net, "bob", 1, &clock).await;
    let g1 = alice.create_group("one").await.unwrap();
    let g2 = alice.create_group("two").await.unwrap();
    alice.add_members(&g1, &[bob.did().clone()]).await.unwrap();
    alice.add_members(&g2, &[bob.did().clone()]).await.unwrap();
    // Bob's records still list the used one-time package: Alice offers the last resort.
    let offered = alice.key_packages_of(bob.did()).await.unwrap();
    assert_eq!(offered.len(), 1);
    assert!(
        offered[0].last_resort,
        "the used one-time package was offered again"
    );

    let events = bob.sync().await.unwrap();
    let mut joined = Event::joined(&events);
    joined.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![g1.clone(), g2.clone()];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(joined, expected, "{events:?}");
    assert_eq!(bob.group(&g1).await.unwrap().name(), "one");
    assert_eq!(bob.group(&g2).await.unwrap().name(), "two");
}

/// With two one-time packages, a third group still gets a package this committer has
/// not used (here the last-resort one), and a later add after Bob replenished picks a
/// fresh one-time package: the used table only holds refs, never a whole account.
#[tokio::test]
async fn used_packages_are_skipped_across_commits_and_fresh_ones_used() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    let alice = device(&net, "alice", 2, &clock).await;
    let bob = device(&net, "bob", 2, &clock).await;
    let mut groups = Vec::new();
    for name in ["a", "b", "c"] {
        let g = alice.create_group(name).await.unwrap();
        alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
        groups.push(g);
    }
    let events = bob.sync().await.unwrap();
    assert_eq!(Event::joined(&events).len(), 3, "{events:?}");
    // Bob has published fresh one-time packages; Alice uses one of them.
    let d = alice.create_group("d").await.unwrap();
    alice.add_members(&d, &[bob.did().clone()]).await.unwrap();
    let events = bob.sync().await.unwrap();
    assert_eq!(Event::joined(&events), vec![d], "{events:?}");
}
