//! The outbox (docs/spec.md §11.15): messages accepted while the DS cannot take them are
//! kept on the device and sent later, in order, exactly once, across restarts. Faults
//! come from the in-memory network: the DS down, the answer lost after the DS accepted,
//! a request that lands after its client gave up, a restart of the device.

use std::time::Duration;

use atmls_client::transport::memory::{MemoryDs, MemoryNetwork};
use atmls_client::{
    Device, DeviceConfig, Error, Event, GroupId, OutgoingState, SendRefusal, Storage,
    TransportError, content,
};

/// The device databases' passphrase, with the cheap KDF cost tests ask for by name.
fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

type Dev = Device<atmls_client::transport::memory::MemoryPds, MemoryDs>;

/// No back-off between attempts (each sync tries again), unless a test sets one.
fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(1)
        .with_retry_backoff(Duration::ZERO, Duration::ZERO)
}

async fn device(net: &MemoryNetwork, name: &str, storage: Storage<'_>) -> Dev {
    Device::create(storage, net.account(name), net.ds(), net.ds_did(), config())
        .await
        .expect("device")
}

/// Alice's group "g" with Bob in it (he has joined).
async fn group(alice: &Dev, bob: &Dev) -> GroupId {
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    assert_eq!(
        Event::joined(&bob.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
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
    let g = group(&alice, &bob).await;
    let mut events = alice.events();
    net.set_offline(true);
    for text in ["one", "two", "three"] {
        let e = alice.send(&g, content::text(text)).await.unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Queued {
                    error: TransportError::Network(_),
                    ..
                }
            ),
            "{e}"
        );
    }
    // Shown as pending: listed in order, and reported.
    let pending: Vec<String> = alice
        .outbox()
        .await
        .unwrap()
        .iter()
        .map(|o| {
            assert!(matches!(o.state, OutgoingState::Pending { .. }), "{o:?}");
            text_of(&o.content)
        })
        .collect();
    assert_eq!(pending, ["one", "two", "three"]);
    let mut queued = 0;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::Queued { .. } => queued += 1,
            Event::Unsent { attempts, .. } => assert!(attempts >= 1),
            Event::Message(_) => panic!("nothing was sent"),
            _ => {}
        }
    }
    assert_eq!(queued, 3);
    // Syncing while the DS is down neither loses nor sends anything.
    alice.sync().await.unwrap();
    assert_eq!(alice.outbox().await.unwrap().len(), 3);
    net.set_offline(false);
    let sent = Event::texts(&alice.sync().await.unwrap());
    assert_eq!(sent, ["one", "two", "three"]);
    assert!(alice.outbox().await.unwrap().is_empty());
    alice.send(&g, content::text("four")).await.unwrap();
    assert_eq!(texts(&bob).await, ["one", "two", "three", "four"]);
    assert_eq!(net.messages_stored(), 4);
}

fn text_of(c: &content::Content) -> String {
    match &c.body {
        atrium_api::types::Union::Refs(content::Body::Text(t)) => t.text.clone(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn queued_messages_survive_a_restart_of_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::File(&path, &passphrase())).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&alice, &bob).await;
    net.set_offline(true);
    assert!(matches!(
        alice.send(&g, content::text("before the restart")).await,
        Err(Error::Queued { .. })
    ));
    alice
        .queue(&g, content::text("queued, never tried"))
        .await
        .unwrap();
    drop(alice);
    let alice = Device::open(
        &path,
        &passphrase(),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await
    .unwrap();
    let waiting = alice.outbox().await.unwrap();
    assert_eq!(
        waiting.iter().map(|o| o.attempts).collect::<Vec<_>>(),
        [1, 0]
    );
    net.set_offline(false);
    alice.sync().await.unwrap();
    assert!(alice.outbox().await.unwrap().is_empty());
    assert_eq!(
        texts(&bob).await,
        ["before the restart", "queued, never tried"]
    );
}

#[tokio::test]
async fn a_message_queued_before_a_commit_is_sent_in_the_new_epoch() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&alice, &bob).await;
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
    let g = group(&alice, &bob).await;
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
    let g = group(&alice, &bob).await;
    net.lose_answers(1);
    assert!(matches!(
        alice.send(&g, content::text("answer lost")).await,
        Err(Error::Queued { .. })
    ));
    // The next send reads the mailbox first: the first message is there, so it is not
    // sent again.
    alice.send(&g, content::text("second")).await.unwrap();
    assert_eq!(net.messages_stored(), 2);
    // A request the DS decides after its client read the mailbox: the message is sent
    // again (a new ciphertext), so the mailbox holds it twice; members show it once.
    net.land_late(1);
    assert!(matches!(
        alice.send(&g, content::text("landed late")).await,
        Err(Error::Queued { .. })
    ));
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["landed late"]);
    alice.send(&g, content::text("last")).await.unwrap();
    assert_eq!(net.messages_stored(), 5);
    assert_eq!(
        texts(&bob).await,
        ["answer lost", "second", "landed late", "last"]
    );
    // The sender's own copies are recognised, not shown again or refused.
    let own = alice.sync().await.unwrap();
    assert!(own.is_empty(), "{own:?}");
    assert!(alice.outbox().await.unwrap().is_empty());
}

/// A permanent refusal marks that message failed; the messages after it go on.
#[tokio::test]
async fn a_refused_message_is_marked_failed_and_the_queue_goes_on() {
    let net = MemoryNetwork::with_ds_config(
        atmls_ds::DsConfig::default().with_max_envelope_bytes(16 * 1024),
    );
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&alice, &bob).await;
    let mut events = alice.events();
    net.set_offline(true);
    let big = "日".repeat(9000);
    for text in ["small before", big.as_str(), "small after"] {
        alice.queue(&g, content::text(text)).await.unwrap();
    }
    net.set_offline(false);
    let synced = alice.sync().await.unwrap();
    assert_eq!(Event::texts(&synced), ["small before", "small after"]);
    let failed: Vec<&SendRefusal> = synced
        .iter()
        .filter_map(|e| match e {
            Event::SendFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        matches!(failed.as_slice(), [SendRefusal::Refused(e)] if e.name() == Some("EnvelopeTooLarge")),
        "{failed:?}"
    );
    assert!(
        std::iter::from_fn(|| events.try_recv().ok())
            .any(|e| matches!(e, Event::SendFailed { .. }))
    );
    let outbox = alice.outbox().await.unwrap();
    assert!(
        matches!(outbox.as_slice(), [o] if matches!(o.state, OutgoingState::Failed { .. })),
        "{outbox:?}"
    );
    assert_eq!(texts(&bob).await, ["small before", "small after"]);
    // `send` itself answers the DS's refusal.
    let e = alice
        .send(&g, content::text(big.as_str()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.name() == Some("EnvelopeTooLarge")),
        "{e}"
    );
    assert!(alice.discard(&outbox[0].content.id).await.unwrap());
    assert_eq!(alice.outbox().await.unwrap().len(), 1);
}

/// One group whose DS fails transiently backs off alone: the other group's messages go.
#[tokio::test]
async fn a_failing_group_does_not_hold_back_another() {
    let net = MemoryNetwork::new();
    let config = DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_retry_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
    let alice = net.device("alice", config).await.unwrap();
    let bob = device(&net, "bob", Storage::Memory).await;
    let g1 = group(&alice, &bob).await;
    let g2 = alice.create_group("g2").await.unwrap();
    alice.add_members(&g2, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let m1 = atmls_ds_proto::MailboxId::from_bytes(alice.group(&g1).await.unwrap().data.mailbox);
    let unavailable = TransportError::Xrpc {
        status: 503,
        error: "ServiceUnavailable".into(),
        message: "the service restarted".into(),
    };
    net.fail_mailbox(&m1, Some(unavailable));
    assert!(matches!(
        alice.send(&g1, content::text("to g1")).await,
        Err(Error::Queued {
            error: TransportError::Xrpc { status: 503, .. },
            ..
        })
    ));
    alice.send(&g2, content::text("to g2")).await.unwrap();
    // g1 backs off (an hour here): syncs leave it alone, g2 goes on.
    alice
        .queue(&g2, content::text("to g2 again"))
        .await
        .unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["to g2 again"]);
    net.fail_mailbox(&m1, None);
    assert_eq!(
        Event::texts(&alice.sync().await.unwrap()),
        Vec::<String>::new()
    );
    // An explicit send does not wait for the back-off: the queue goes, in order.
    alice.send(&g1, content::text("to g1 again")).await.unwrap();
    let got = bob.sync().await.unwrap();
    let by_group = |g: &GroupId| -> Vec<String> {
        got.iter()
            .filter_map(|e| match e {
                Event::Message(m) if &m.group == g => m.text().map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    assert_eq!(by_group(&g1), ["to g1", "to g1 again"]);
    assert_eq!(by_group(&g2), ["to g2", "to g2 again"]);
}

/// The live loop sends what waits as soon as the DS is back.
#[tokio::test]
async fn the_live_loop_sends_when_the_ds_is_back() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", Storage::Memory).await;
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&alice, &bob).await;
    net.set_offline(true);
    net.drop_subscriptions();
    let mut events = alice.events();
    let runner = tokio::spawn({
        let alice = alice.clone();
        async move { alice.run().await }
    });
    alice
        .queue(&g, content::text("typed while down"))
        .await
        .unwrap();
    net.set_offline(false);
    let sent = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(Event::Message(m)) = events.recv().await
                && m.sender == *alice.did()
            {
                return m.text().map(str::to_owned);
            }
        }
    })
    .await
    .expect("sent within 20 s");
    runner.abort();
    assert_eq!(sent.as_deref(), Some("typed while down"));
    assert_eq!(texts(&bob).await, ["typed while down"]);
}

/// A CLI command syncs before sending: with the DID directory unreachable too (one
/// process plays PDS, directory and DS), the sync must not fail on this account's own
/// upkeep (looking for its new devices), or nothing could even be queued.
#[tokio::test]
async fn an_unreachable_directory_does_not_fail_the_sync() {
    let net = MemoryNetwork::new();
    let alice = net
        .device(
            "alice",
            config().with_own_device_check_interval(Duration::ZERO),
        )
        .await
        .unwrap();
    let bob = device(&net, "bob", Storage::Memory).await;
    let g = group(&alice, &bob).await;
    net.set_offline(true);
    net.fail_resolution(alice.did(), Some(atmls_identity::ResolveError::Timeout));
    alice
        .sync()
        .await
        .expect("a passing failure is not the sync's");
    assert!(matches!(
        alice.send(&g, content::text("queued")).await,
        Err(Error::Queued { .. })
    ));
    net.set_offline(false);
    net.fail_resolution(alice.did(), None);
    alice.sync().await.unwrap();
    assert_eq!(texts(&bob).await, ["queued"]);
}
