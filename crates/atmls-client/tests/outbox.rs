//! The outbox (docs/spec.md §11.15): messages accepted while the DS cannot take them are
//! kept on the device and sent later, in order, exactly once, across restarts. Faults
//! come from the in-memory network: the DS down, the answer lost after the DS accepted,
//! a request that lands after its client gave up, a restart of the device.

use atmls_client::transport::memory::{MemoryDs, MemoryNetwork};
use atmls_client::{Device, DeviceConfig, Event, GroupId, Storage, content};

type Dev = Device<atmls_client::transport::memory::MemoryPds, MemoryDs>;

fn config() -> DeviceConfig {
    DeviceConfig::default().with_one_time_key_packages(1)
}

async fn device(net: &MemoryNetwork, name: &str, storage: Storage<'_>) -> Dev {
    Device::create(storage, net.account(name), net.ds(), net.ds_did(), config())
        .await
        .expect("device")
}

/// Alice's group "g" with Bob in it (he has joined).
async fn group(net: &MemoryNetwork, alice: &Dev, bob: &Dev) -> GroupId {
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    assert_eq!(Event::joined(&bob.sync().await.unwrap()), [g.clone()]);
    let _ = net;
    g
}

/// What `dev` reads from now on, in order (two syncs: nothing left behind).
async fn texts(dev: &Dev) -> Vec<String> {
    let mut all = Event::texts(&dev.sync().await.unwrap());
    all.extend(Event::texts(&dev.sync().await.unwrap()));
    all
}

#[tokio::test]
async fn messages_sent_while_the_ds_is_down_arrive_once_in_order() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&net, &alice, &bob).await;
    net.set_offline(true);
    for text in ["one", "two", "three"] {
        let _ = alice.send(&g, content::text(text)).await;
    }
    net.set_offline(false);
    alice.sync().await.unwrap();
    alice.send(&g, content::text("four")).await.unwrap();
    assert_eq!(texts(&bob).await, ["one", "two", "three", "four"]);
}

#[tokio::test]
async fn queued_messages_survive_a_restart_of_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::File(&path)).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&net, &alice, &bob).await;
    net.set_offline(true);
    let _ = alice.send(&g, content::text("before the restart")).await;
    drop(alice);
    net.set_offline(false);
    let alice = Device::open(&path, net.account("alice"), net.ds(), config())
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(texts(&bob).await, ["before the restart"]);
}

#[tokio::test]
async fn a_message_queued_before_a_commit_is_sent_in_the_new_epoch() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&net, &alice, &bob).await;
    net.set_offline(true);
    let _ = alice.send(&g, content::text("queued at epoch 2")).await;
    net.set_offline(false);
    bob.self_update(&g, false).await.unwrap();
    alice.sync().await.unwrap();
    let events = bob.sync().await.unwrap();
    assert_eq!(Event::texts(&events), ["queued at epoch 2"]);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Rejected { .. })),
        "{events:?}"
    );
}

/// A resent message (same content id, another ciphertext) is shown once.
#[tokio::test]
async fn a_message_that_arrives_twice_is_shown_once() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&net, &alice, &bob).await;
    let c = content::content(content::text("once"), None);
    alice.send_content(&g, c.clone()).await.unwrap();
    let _ = alice.send_content(&g, c).await;
    alice.send(&g, content::text("after")).await.unwrap();
    assert_eq!(texts(&bob).await, ["once", "after"]);
}

/// The DS stored the message but its answer was lost; then a request that the DS decided
/// only after its client gave up: each message arrives once.
#[tokio::test]
async fn lost_answers_and_late_requests_do_not_duplicate() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&net, &alice, &bob).await;
    net.lose_answers(1);
    let _ = alice.send(&g, content::text("answer lost")).await;
    net.land_late(1);
    let _ = alice.send(&g, content::text("landed late")).await;
    alice.sync().await.unwrap();
    alice.send(&g, content::text("last")).await.unwrap();
    assert_eq!(
        texts(&bob).await,
        ["answer lost", "landed late", "last"]
    );
    assert_eq!(texts(&alice).await, Vec::<String>::new());
}
