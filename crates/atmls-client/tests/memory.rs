//! Deterministic tests over the in-memory network (real DS core, real signed repos).

use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::{
    Committed, Device, DeviceConfig, Error, Event, GroupId, KeyPackageRefusal, Storage, content,
};

/// The device databases' passphrase, with the cheap KDF cost tests ask for by name.
fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

type Dev = Device<MemoryPds, MemoryDs>;

fn config() -> DeviceConfig {
    DeviceConfig::default().with_one_time_key_packages(2)
}

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, config()).await.expect("device")
}

/// Alice's group "g" with Bob in it (he has synced and joined).
async fn alice_and_bob() -> (MemoryNetwork, Dev, Dev, GroupId) {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    (net, alice, bob, g)
}

fn joined(events: &[Event]) -> Option<GroupId> {
    Event::joined(events).into_iter().next()
}

#[tokio::test]
async fn conversation_add_later_remove_rename() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;

    let g = alice.create_group("tea").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    alice.send(&g, content::text("hi bob")).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev), Some(g.clone()));
    assert_eq!(Event::texts(&ev), ["hi bob"]);
    bob.send(&g, content::text("hi alice")).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["hi alice"]);

    // Bob is not an admin: he may not add, rename or remove.
    assert!(matches!(
        bob.add_members(&g, &[carol.did().clone()]).await,
        Err(Error::NotAdmin)
    ));
    assert!(matches!(bob.rename(&g, "x").await, Err(Error::NotAdmin)));

    // Carol, added later, sees messages from then on only.
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    alice
        .send(&g, content::text("welcome carol"))
        .await
        .unwrap();
    let ev = carol.sync().await.unwrap();
    assert_eq!(joined(&ev), Some(g.clone()));
    assert_eq!(Event::texts(&ev), ["welcome carol"]);
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["welcome carol"]);

    // Rename and admin change reach everyone; the new admin can rename.
    alice.rename(&g, "coffee").await.unwrap();
    alice.add_admin(&g, bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert_eq!(carol.group(&g).await.unwrap().name(), "coffee");
    assert!(
        carol
            .group(&g)
            .await
            .unwrap()
            .data
            .is_admin(bob.did().as_str())
    );
    bob.rename(&g, "cocoa").await.unwrap();
    alice.sync().await.unwrap();
    carol.sync().await.unwrap();
    for d in [&alice, &bob, &carol] {
        let s = d.group(&g).await.unwrap();
        assert_eq!(s.name(), "cocoa");
        assert_eq!(s.members.len(), 3);
    }

    // Carol is removed: she learns it, cannot send, and sees nothing more.
    alice
        .remove_members(&g, &[carol.did().clone()])
        .await
        .unwrap();
    let ev = carol.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Removed { group } if *group == g))
    );
    assert!(matches!(
        carol.send(&g, content::text("still here?")).await,
        Err(Error::NotMember)
    ));
    alice
        .send(&g, content::text("carol is gone"))
        .await
        .unwrap();
    assert!(Event::texts(&carol.sync().await.unwrap()).is_empty());
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["carol is gone"]);
    let a = alice.group(&g).await.unwrap();
    let b = bob.group(&g).await.unwrap();
    assert_eq!(
        (a.epoch, &a.epoch_authenticator),
        (b.epoch, &b.epoch_authenticator)
    );
    assert_eq!(a.member_dids().len(), 2);
}

#[tokio::test]
async fn leave_is_committed_by_an_admin() {
    let (_net, alice, bob, g) = alice_and_bob().await;
    bob.leave(&g).await.unwrap();
    let ev = alice.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::LeaveRequested { .. })));
    assert_eq!(alice.group(&g).await.unwrap().members.len(), 1);
    let ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::Removed { .. })));
}

#[tokio::test]
async fn second_device_is_added_to_every_group() {
    let net = MemoryNetwork::new();
    let cfg = config().with_own_device_check_interval(std::time::Duration::ZERO);
    let alice = net.device("alice", cfg.clone()).await.unwrap();
    let bob = device(&net, "bob").await;
    let g1 = alice.create_group("one").await.unwrap();
    let g2 = bob.create_group("two").await.unwrap();
    alice.add_members(&g1, &[bob.did().clone()]).await.unwrap();
    bob.add_members(&g2, &[alice.did().clone()]).await.unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();

    // Alice's second device publishes its KeyPackages; her first device adds it.
    let phone = net.device("alice", cfg).await.unwrap();
    alice.sync().await.unwrap();
    let ev = phone.sync().await.unwrap();
    let mut joined: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Joined { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    joined.sort();
    assert_eq!(joined, ["one", "two"]);
    bob.sync().await.unwrap();
    bob.send(&g2, content::text("to both alices"))
        .await
        .unwrap();
    assert_eq!(
        Event::texts(&alice.sync().await.unwrap()),
        ["to both alices"]
    );
    assert_eq!(
        Event::texts(&phone.sync().await.unwrap()),
        ["to both alices"]
    );
    // Adding Alice's account adds both devices.
    let carol = device(&net, "carol").await;
    let g3 = carol.create_group("three").await.unwrap();
    carol
        .add_members(&g3, &[alice.did().clone()])
        .await
        .unwrap();
    assert!(joined_of(&alice.sync().await.unwrap()));
    assert!(joined_of(&phone.sync().await.unwrap()));
    assert_eq!(carol.group(&g3).await.unwrap().members.len(), 3);
}

fn joined_of(ev: &[Event]) -> bool {
    joined(ev).is_some()
}

#[tokio::test]
async fn last_resort_join_rotates_the_signature_key() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = net
        .device("bob", DeviceConfig::default().with_one_time_key_packages(0))
        .await
        .unwrap();
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    // Bob's first act was a self-update with a new signature key.
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::GroupChanged { by, .. } if by == bob.did()))
    );
    bob.send(&g, content::text("rotated")).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["rotated"]);
    // The last-resort package is still usable for another group.
    let g2 = alice.create_group("g2").await.unwrap();
    alice.add_members(&g2, &[bob.did().clone()]).await.unwrap();
    assert!(joined_of(&bob.sync().await.unwrap()));
}

#[tokio::test]
async fn restart_mid_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new();
    let a_path = dir.path().join("alice.sqlite");
    let b_path = dir.path().join("bob.sqlite");
    let alice = Device::create(
        Storage::File(&a_path, &passphrase()),
        net.account("alice"),
        net.ds(),
        net.ds_did(),
        config(),
    )
    .await
    .unwrap();
    let bob = Device::create(
        Storage::File(&b_path, &passphrase()),
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
    alice.send(&g, content::text("before")).await.unwrap();
    drop(alice);
    drop(bob);

    let alice = Device::open(
        &a_path,
        &passphrase(),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await
    .unwrap();
    let bob = Device::open(
        &b_path,
        &passphrase(),
        net.account("bob"),
        net.ds(),
        config(),
    )
    .await
    .unwrap();
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["before"]);
    alice.self_update(&g, false).await.unwrap();
    bob.send(&g, content::text("after")).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["after"]);
    bob.sync().await.unwrap();
    let (a, b) = (alice.group(&g).await.unwrap(), bob.group(&g).await.unwrap());
    assert_eq!(a.epoch_authenticator, b.epoch_authenticator);
    // The wrong account cannot open a device database.
    assert!(
        Device::open(
            &a_path,
            &passphrase(),
            net.account("bob"),
            net.ds(),
            config()
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn commit_race_100_rounds() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let g = alice.create_group("race").await.unwrap();
    alice
        .add_members(&g, &[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    alice.add_admin(&g, bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    let mut conflicts = 0;
    for round in 0..100 {
        net.hold_commits(2);
        let name = format!("name {round}");
        let desc = format!("description {round}");
        let (a, b) = tokio::join!(alice.rename(&g, &name), bob.set_description(&g, &desc));
        for r in [a.unwrap(), b.unwrap()] {
            match r {
                Committed::Accepted { attempts, .. } => conflicts += attempts - 1,
                other => panic!("round {round}: {other:?}"),
            }
        }
        for d in [&alice, &bob, &carol] {
            d.sync().await.unwrap();
        }
        let states = [
            alice.group(&g).await.unwrap(),
            bob.group(&g).await.unwrap(),
            carol.group(&g).await.unwrap(),
        ];
        for s in &states {
            assert_eq!(s.epoch, states[0].epoch, "round {round}");
            assert_eq!(s.epoch_authenticator, states[0].epoch_authenticator);
            assert_eq!(s.data.name, name);
            assert_eq!(s.data.description, desc);
        }
    }
    // Every round had exactly one loser that rebuilt its intent.
    assert_eq!(conflicts, 100);
}

#[tokio::test]
async fn refused_key_packages_have_typed_reasons() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    // No declaration: an account that never created a device.
    let ghost = net.account("ghost");
    let g = alice.create_group("g").await.unwrap();
    let ghost_did = atmls_client::transport::Pds::did(&ghost);
    assert!(matches!(
        alice.add_members(&g, &[ghost_did]).await,
        Err(Error::NoDeclaration(_))
    ));
    // Bob's DID document now names another repo key: every proof fails.
    let mut doc = atmls_client::transport::Pds::resolve(bob.pds(), bob.did())
        .await
        .unwrap();
    let other = atmls_crypto::SigningKey::generate(atmls_crypto::Algorithm::Es256k);
    doc.verification_method = vec![atmls_identity::VerificationMethod::multikey(
        bob.did(),
        "atproto",
        &other.public_key(),
    )];
    net.set_document(doc);
    // The declaration is proven first (docs/spec.md §3, §11.9): its proof fails.
    match alice.add_members(&g, &[bob.did().clone()]).await {
        Err(Error::DeclarationRefused {
            reason: KeyPackageRefusal::Proof(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// A member that has not processed two commits (its key is neither current nor
/// previous) still catches up: the DS lets an ended epoch's key read up to the commit that
/// ended its epoch (docs/spec.md §9.3), from which the member derives the next key.
#[tokio::test]
async fn member_two_commits_behind_catches_up() {
    let (_net, alice, bob, g) = alice_and_bob().await;
    alice.rename(&g, "one").await.unwrap();
    alice.rename(&g, "two").await.unwrap();
    alice.send(&g, content::text("after two")).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Unreachable { .. })),
        "{ev:?}"
    );
    let changes = ev
        .iter()
        .filter(|e| matches!(e, Event::GroupChanged { group, .. } if *group == g))
        .count();
    assert_eq!(changes, 2, "{ev:?}");
    assert_eq!(Event::texts(&ev), ["after two"]);
    assert_eq!(bob.group(&g).await.unwrap().name(), "two");
    bob.send(&g, content::text("caught up")).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["caught up"]);
}

/// A member reads each mailbox once when the DS says the page reaches the head, and at
/// most once per epoch key when it is behind (an ended epoch's page stops at the commit
/// that ended it, and the next key reads on).
#[tokio::test]
async fn sync_stops_reading_at_the_head() {
    let (net, alice, bob, g) = alice_and_bob().await;

    alice.send(&g, content::text("one")).await.unwrap();
    let before = net.envelope_reads();
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), ["one"]);
    assert_eq!(net.envelope_reads() - before, 1);

    // Nothing new: one read, an empty page.
    let before = net.envelope_reads();
    assert!(Event::texts(&bob.sync().await.unwrap()).is_empty());
    assert_eq!(net.envelope_reads() - before, 1);

    alice.rename(&g, "two").await.unwrap();
    alice.rename(&g, "three").await.unwrap();
    alice.send(&g, content::text("after three")).await.unwrap();
    let before = net.envelope_reads();
    let ev = bob.sync().await.unwrap();
    assert_eq!(Event::texts(&ev), ["after three"]);
    assert_eq!(bob.group(&g).await.unwrap().name(), "three");
    // At most one read per epoch key (three keys), none of them an empty page.
    let reads = net.envelope_reads() - before;
    assert!((1..=3).contains(&reads), "{reads} reads");

    // Bob's cached mailbox key follows the epoch: he can send and Alice reads it.
    bob.send(&g, content::text("from bob")).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["from bob"]);
}

#[tokio::test]
async fn attachment_round_trip() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let g = alice.create_group("files").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    let file: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    alice
        .send_attachment(&g, &file, "application/pdf", Some("notes.pdf".into()))
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    let attachment = ev
        .iter()
        .find_map(|e| match e {
            Event::Message(m) => match &m.content.body {
                atrium_api::types::Union::Refs(content::Body::Attachment(a)) => Some((**a).clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("attachment message");
    assert_eq!(attachment.name.as_deref(), Some("notes.pdf"));
    assert_eq!(bob.fetch_attachment(&attachment).await.unwrap(), file);
}

#[tokio::test]
async fn expired_key_packages_are_refused_and_periodic_self_update_runs() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let short =
        config().with_key_package_lifetime(std::time::Duration::ZERO, std::time::Duration::ZERO);
    let bob = net.device("bob", short).await.unwrap();
    let g = alice.create_group("g").await.unwrap();
    match alice.add_members(&g, &[bob.did().clone()]).await {
        Err(Error::NoKeyPackage {
            last: Some(KeyPackageRefusal::Expired(_)),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // A zero interval: every sync self-updates every group.
    let eager = config().with_self_update_interval(Some(std::time::Duration::ZERO));
    let carol = net.device("carol", eager).await.unwrap();
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    carol.sync().await.unwrap();
    let before = alice.group(&g).await.unwrap().epoch;
    carol.sync().await.unwrap();
    alice.sync().await.unwrap();
    assert!(alice.group(&g).await.unwrap().epoch > before);
    assert_eq!(
        alice.group(&g).await.unwrap().epoch_authenticator,
        carol.group(&g).await.unwrap().epoch_authenticator
    );
}

async fn wait_for(events: &mut tokio::sync::broadcast::Receiver<Event>, want: &str) {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(Event::Message(m)) if m.text() == Some(want) => return,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("closed"),
                _ => {}
            }
        }
    })
    .await
    .expect("message in time");
}

/// The live loop: messages arrive through the subscription; when the DS drops every
/// subscription, the device resubscribes from its cursors and misses nothing.
#[tokio::test]
async fn live_loop_resubscribes_from_the_cursor() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let g = alice.create_group("live").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    let mut events = bob.events();
    let live = tokio::spawn({
        let bob = bob.clone();
        async move { bob.run().await }
    });
    alice.send(&g, content::text("one")).await.unwrap();
    wait_for(&mut events, "one").await;
    net.drop_subscriptions();
    alice.send(&g, content::text("two")).await.unwrap();
    alice.send(&g, content::text("three")).await.unwrap();
    wait_for(&mut events, "two").await;
    wait_for(&mut events, "three").await;
    live.abort();
}

/// Adding accounts gathers their proofs with one `getKeyPackages` request to the DS
/// (docs/spec.md §6); a DS that does not offer it leaves the client reading each PDS.
#[tokio::test]
async fn add_members_uses_get_key_packages_and_falls_back_to_the_pds() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let bob = device(&net, "bob").await;
    let carol = device(&net, "carol").await;
    let dave = device(&net, "dave").await;
    let g = alice.create_group("g").await.unwrap();
    let before = net.key_package_requests();
    alice
        .add_members(&g, &[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(
        net.key_package_requests(),
        before + 1,
        "one request for both"
    );
    net.set_key_package_index(false);
    alice.add_members(&g, &[dave.did().clone()]).await.unwrap();
    assert_eq!(net.key_package_requests(), before + 1);
    for d in [&bob, &carol, &dave] {
        assert_eq!(joined(&d.sync().await.unwrap()), Some(g.clone()));
    }
    let members = alice.group(&g).await.unwrap().member_dids();
    assert_eq!(members.len(), 4, "{members:?}");
}

/// Leaving does not need an admin (docs/spec.md §11.2): when no admin stays, the
/// remaining members commit the leave proposal; the group keeps working without admins.
#[tokio::test]
async fn members_commit_leaves_when_no_admin_stays() {
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
    // The only admin leaves: Bob and Carol (not admins) commit it; the first one wins.
    alice.leave(&g).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::LeaveRequested { .. })));
    carol.sync().await.unwrap();
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
    let b = bob.group(&g).await.unwrap();
    let c = carol.group(&g).await.unwrap();
    let mut want = vec![bob.did().clone(), carol.did().clone()];
    want.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(b.member_dids(), want);
    assert_eq!(
        (b.epoch, &b.epoch_authenticator),
        (c.epoch, &c.epoch_authenticator)
    );
    // A member leaves a group without admins: the other member commits it.
    carol.leave(&g).await.unwrap();
    bob.sync().await.unwrap();
    let ev = carol.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
    assert_eq!(
        bob.group(&g).await.unwrap().member_dids(),
        vec![bob.did().clone()]
    );
    // And the group still carries messages.
    bob.send(&g, content::text("alone")).await.unwrap();
}

/// A proven declaration's `invitePolicy` is acted on, through the DS's `getKeyPackages`
/// and through the PDS alike; an unknown value counts as `none` (docs/spec.md §3).
#[tokio::test]
async fn declaration_policy_is_proven_and_acted_on() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice").await;
    let mut closed = config();
    closed.invite_policy = "none".into();
    let bob = net.device("bob", closed).await.unwrap();
    let mut odd = config();
    odd.invite_policy = "friendsOfFriends".into();
    let carol = net.device("carol", odd).await.unwrap();
    let g = alice.create_group("g").await.unwrap();
    for index in [true, false] {
        net.set_key_package_index(index);
        for (did, policy) in [(bob.did(), "none"), (carol.did(), "friendsOfFriends")] {
            match alice.add_members(&g, std::slice::from_ref(did)).await {
                Err(Error::InviteRefused { did: d, policy: p }) => {
                    assert_eq!((&d, p.as_str()), (did, policy));
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(alice.group(&g).await.unwrap().members.len(), 1);
}

/// A network whose DS takes envelopes of at most `max` bytes, and devices that know it.
async fn small_network(max: usize, names: &[&str]) -> (MemoryNetwork, Vec<Dev>) {
    let net =
        MemoryNetwork::with_ds_config(atmls_ds::DsConfig::default().with_max_envelope_bytes(max));
    let mut devs = Vec::new();
    for name in names {
        devs.push(
            net.device(name, config().with_max_envelope_bytes(max))
                .await
                .expect("device"),
        );
    }
    (net, devs)
}

/// Adds `devs` to `g` two at a time (a commit carries their KeyPackages, so it must fit
/// in an envelope too).
async fn add_in_batches(alice: &Dev, g: &GroupId, devs: &[Dev]) {
    for chunk in devs.chunks(2) {
        let dids: Vec<_> = chunk.iter().map(|d| d.did().clone()).collect();
        let r = alice.add_members(g, &dids).await.unwrap();
        assert!(matches!(r, Committed::Accepted { ref undelivered, .. } if undelivered.is_empty()));
    }
}

/// The names of `n` members after alice.
fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

#[tokio::test]
async fn welcome_too_large_sends_the_tree_out_of_band() {
    let others = names(40);
    let mut all = vec!["alice"];
    all.extend(others.iter().map(String::as_str));
    all.push("joiner");
    let (net, devs) = small_network(16 * 1024, &all).await;
    let alice = &devs[0];
    let joiner = devs.last().unwrap();
    let g = alice.create_group("big").await.unwrap();
    add_in_batches(alice, &g, &devs[1..devs.len() - 1]).await;
    alice.send(&g, content::text("before")).await.unwrap();
    let r = alice
        .add_members(&g, &[joiner.did().clone()])
        .await
        .unwrap();
    assert!(matches!(r, Committed::Accepted { ref undelivered, .. } if undelivered.is_empty()));
    alice.send(&g, content::text("hello")).await.unwrap();
    let events = joiner.sync().await.unwrap();
    assert_eq!(joined(&events), Some(g.clone()), "{events:?}");
    assert_eq!(Event::texts(&events), vec!["hello".to_owned()]);
    // The tree went out of band: a blob on alice's PDS (the earlier, smaller welcomes
    // carried theirs inline).
    assert!(net.tamper_blobs(alice.did()) > 0);
    // The member that joined with an out-of-band tree writes like the others.
    joiner.send(&g, content::text("from joiner")).await.unwrap();
    let events = alice.sync().await.unwrap();
    assert_eq!(Event::texts(&events), vec!["from joiner".to_owned()]);
}

#[tokio::test]
async fn tampered_out_of_band_tree_is_refused() {
    let others = names(40);
    let mut all = vec!["alice"];
    all.extend(others.iter().map(String::as_str));
    let (net, devs) = small_network(16 * 1024, &all).await;
    let alice = &devs[0];
    let g = alice.create_group("big").await.unwrap();
    add_in_batches(alice, &g, &devs[1..]).await;
    assert!(net.tamper_blobs(alice.did()) > 0);
    let last = devs.last().unwrap();
    let events = last.sync().await.unwrap();
    assert_eq!(joined(&events), None);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Rejected { reason, .. }
            if reason.contains("ratchet tree: digest does not match"))),
        "{events:?}"
    );
    assert!(last.groups().await.unwrap().is_empty());
}

#[tokio::test]
async fn undeliverable_welcome_is_a_typed_outcome() {
    // The client believes the DS takes 1 KiB, the DS takes 1 MiB: the sealed welcome
    // (without its tree) still exceeds what the client may send.
    let net = MemoryNetwork::new();
    let alice = net
        .device("alice", config().with_max_envelope_bytes(1024))
        .await
        .unwrap();
    let mut dids = Vec::new();
    for n in names(3) {
        dids.push(device(&net, &n).await.did().clone());
    }
    let g = alice.create_group("g").await.unwrap();
    let mut events = alice.events();
    let r = alice.add_members(&g, &dids).await.unwrap();
    let Committed::Accepted { undelivered, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(undelivered.len(), 3, "{undelivered:?}");
    assert!(undelivered.iter().all(|u| matches!(
        u.reason,
        atmls_client::WelcomeError::TooLarge { max: 1024, .. }
    )));
    let mut got = 0;
    while let Ok(Ok(e)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await
    {
        if matches!(e, Event::WelcomeUndelivered { .. }) {
            got += 1;
            if got == 3 {
                break;
            }
        }
    }
    assert_eq!(got, 3);
    // The members are in the group, without a welcome.
    assert_eq!(alice.group(&g).await.unwrap().members.len(), 4);
}
