//! Recovery over the in-memory network (docs/spec.md §11.17): a device whose database is
//! lost, a member that refused a commit the others merged, a device restored from an old
//! copy of its database — each ends broken (or knows nothing), is re-added without a
//! human and reads new messages.

use std::time::Duration;

use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::{BrokenReason, Device, DeviceConfig, Error, Event, GroupId, Storage, content};
use atmls_identity::ResolveError;

type Dev = Device<MemoryPds, MemoryDs>;

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_own_device_check_interval(Duration::ZERO)
}

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, config()).await.expect("device")
}

fn recovered(events: &[Event], group: &GroupId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Recovered { group: g } if g == group))
}

/// Alice (laptop and phone) and Bob in Alice's group "g", everyone synced.
async fn two_accounts() -> (MemoryNetwork, Dev, Dev, Dev, GroupId) {
    let net = MemoryNetwork::new();
    let laptop = device(&net, "alice").await;
    let phone = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let g = laptop.create_group("g").await.unwrap();
    laptop.add_members(&g, &[bob.did().clone()]).await.unwrap();
    laptop.sync().await.unwrap();
    assert_eq!(
        Event::joined(&phone.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
    assert_eq!(
        Event::joined(&bob.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
    laptop.sync().await.unwrap();
    (net, laptop, phone, bob, g)
}

#[tokio::test]
async fn a_device_whose_database_is_deleted_is_readded_by_its_sibling() {
    let (net, laptop, phone, bob, g) = two_accounts().await;
    let phone_id = phone.device_id().to_owned();
    let members_before = bob.group(&g).await.unwrap().members.len();
    drop(phone);
    // The phone's database is gone; the application kept its identity.
    let phone = Device::restore(
        Storage::Memory,
        net.account("alice"),
        net.ds(),
        net.ds_did(),
        &phone_id,
        config(),
    )
    .await
    .unwrap();
    assert_eq!(phone.device_id(), phone_id);
    assert!(phone.groups().await.unwrap().is_empty());
    phone.sync().await.unwrap(); // asks its siblings
    laptop.sync().await.unwrap(); // re-adds it: remove the stale leaf, add the new package
    let ev = phone.sync().await.unwrap();
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    bob.sync().await.unwrap();
    bob.send(&g, content::text("after the loss")).await.unwrap();
    assert_eq!(
        Event::texts(&phone.sync().await.unwrap()),
        ["after the loss"]
    );
    // One leaf per device, as before: the stale one went in the same commit.
    let group = bob.group(&g).await.unwrap();
    assert_eq!(group.members.len(), members_before);
    assert_eq!(
        group
            .members
            .iter()
            .filter(|m| m.device_id.as_deref() == Some(phone_id.as_str()))
            .count(),
        1
    );
    // Asked once more later, the laptop does nothing (it acted on that package).
    let epoch = laptop.group(&g).await.unwrap().epoch;
    laptop.sync().await.unwrap();
    assert_eq!(laptop.group(&g).await.unwrap().epoch, epoch);
}

#[tokio::test]
async fn a_member_that_refused_a_commit_is_broken_then_readded_by_an_admin() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    // Alice adds Carol; Carol's DID document is gone for good when Bob checks her leaf.
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    net.fail_resolution(carol.did(), Some(ResolveError::NotFound));
    let ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::CommitRefused { .. })));
    net.fail_resolution(carol.did(), None);
    carol.sync().await.unwrap();
    alice
        .send(&g, content::text("bob cannot read this"))
        .await
        .unwrap();
    // The DS no longer serves Bob's epoch: broken, with the reason.
    let ev = bob.sync().await.unwrap();
    assert_eq!(
        Event::broken(&ev),
        [(g.clone(), BrokenReason::CommitRefused)]
    );
    assert_eq!(
        bob.group(&g).await.unwrap().broken,
        Some(BrokenReason::CommitRefused)
    );
    // While broken Bob does not send: the message waits in his outbox.
    assert!(matches!(
        bob.send(&g, content::text("held while broken")).await,
        Err(Error::Queued { .. })
    ));
    assert!(matches!(
        bob.self_update(&g, false).await,
        Err(Error::Broken(BrokenReason::CommitRefused))
    ));
    // Alice (the admin) acts on Bob's request; Bob rejoins and reads new messages.
    alice.sync().await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(recovered(&ev, &g), "{ev:?}");
    assert_eq!(bob.group(&g).await.unwrap().broken, None);
    alice.send(&g, content::text("welcome back")).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(Event::texts(&ev).contains(&"welcome back".to_owned()));
    // The held message went out after the rejoin.
    assert_eq!(
        Event::texts(&alice.sync().await.unwrap()),
        ["held while broken"]
    );
    let ev = carol.sync().await.unwrap();
    assert!(Event::texts(&ev).contains(&"held while broken".to_owned()));
    assert_eq!(bob.group(&g).await.unwrap().members.len(), 3);
}

#[tokio::test]
async fn a_device_restored_from_an_old_copy_is_broken_then_readded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.db");
    let key = atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests());
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = Device::create(
        Storage::File(&path, &key),
        net.account("bob"),
        net.ds(),
        net.ds_did(),
        config(),
    )
    .await
    .unwrap();
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    drop(bob);
    let backup = dir.path().join("backup.db");
    std::fs::copy(&path, &backup).unwrap();
    let bob = Device::open(&path, &key, net.account("bob"), net.ds(), config())
        .await
        .unwrap();
    // Bob moves on (his own commit), then his old copy comes back.
    bob.self_update(&g, false).await.unwrap();
    alice.sync().await.unwrap();
    alice
        .send(&g, content::text("after the backup"))
        .await
        .unwrap();
    drop(bob);
    std::fs::copy(&backup, &path).unwrap();
    let _ = std::fs::remove_file(dir.path().join("bob.db-wal"));
    let bob = Device::open(&path, &key, net.account("bob"), net.ds(), config())
        .await
        .unwrap();
    // Its own later commit does not decrypt for the old copy; the next envelope is of an
    // epoch beyond its own.
    let ev = bob.sync().await.unwrap();
    assert_eq!(
        Event::broken(&ev),
        [(g.clone(), BrokenReason::Behind)],
        "{ev:?}"
    );
    alice.sync().await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(recovered(&ev, &g), "{ev:?}");
    alice.send(&g, content::text("read again")).await.unwrap();
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["read again"]);
}

#[tokio::test]
async fn a_member_cut_off_by_the_ds_after_refusing_a_commit_is_broken() {
    // No grace window: the refused commit ends the key this member holds at once, and the
    // DS answers its next read with `KeyExpired`.
    let net =
        MemoryNetwork::with_ds_config(atmls_ds::DsConfig::default().with_key_grace(Duration::ZERO));
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    net.fail_resolution(carol.did(), Some(ResolveError::Gone));
    let mut ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::CommitRefused { .. })));
    net.fail_resolution(carol.did(), None);
    ev.extend(bob.sync().await.unwrap());
    assert_eq!(
        Event::broken(&ev),
        [(g.clone(), BrokenReason::CommitRefused)]
    );
    alice.sync().await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(recovered(&ev, &g), "{ev:?}");
    alice.send(&g, content::text("again")).await.unwrap();
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["again"]);
}

#[tokio::test]
async fn requests_go_to_the_next_member_in_turn_and_one_commit_readds() {
    let net =
        MemoryNetwork::with_ds_config(atmls_ds::DsConfig::default().with_key_grace(Duration::ZERO));
    let cfg = config().with_reentry_retry(Duration::ZERO);
    let laptop = device(&net, "alice").await;
    let phone = device(&net, "alice").await;
    let bob = net.device("bob", cfg).await.unwrap();
    let carol = device(&net, "carol").await;
    let g = laptop.create_group("g").await.unwrap();
    laptop.add_members(&g, &[bob.did().clone()]).await.unwrap();
    laptop.sync().await.unwrap();
    phone.sync().await.unwrap();
    bob.sync().await.unwrap();
    laptop
        .add_members(&g, &[carol.did().clone()])
        .await
        .unwrap();
    net.fail_resolution(carol.did(), Some(ResolveError::Gone));
    let mut ev = bob.sync().await.unwrap();
    net.fail_resolution(carol.did(), None);
    // Broken and a first request round; the next round goes to the other admin device.
    ev.extend(bob.sync().await.unwrap());
    assert_eq!(Event::broken(&ev).len(), 1, "{ev:?}");
    bob.sync().await.unwrap();
    // The laptop stays offline; the phone acts on the request it got.
    phone.sync().await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(recovered(&ev, &g), "{ev:?}");
    // The laptop comes back: its request finds the package already in the tree.
    let epoch = phone.group(&g).await.unwrap().epoch;
    laptop.sync().await.unwrap();
    assert_eq!(laptop.group(&g).await.unwrap().epoch, epoch);
    phone.send(&g, content::text("one re-add")).await.unwrap();
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["one re-add"]);
}
