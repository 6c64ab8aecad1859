//! The X-Wing suite (docs/spec.md §11.19) over the in-memory network: KeyPackages per
//! suite, the suite of a new group negotiated from its first devices, the typed refusal
//! of a device without the group's suite, and messages in both suites.

use std::collections::BTreeMap;

use atmls_client::suite::{CLASSIC, SuitePolicy, XWING};
use atmls_client::transport::Pds as _;
use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::{Device, DeviceConfig, Error, Event, GroupId, Storage, content};

type Dev = Device<MemoryPds, MemoryDs>;

const X: u16 = 0x004D;
const C: u16 = 0x0001;

async fn device(net: &MemoryNetwork, name: &str, policy: SuitePolicy) -> Dev {
    let config = DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_suite_policy(policy);
    net.device(name, config).await.expect("device")
}

/// The account's published KeyPackage records: (ciphersuite, lastResort) -> count.
async fn published(net: &MemoryNetwork, name: &str) -> BTreeMap<(u16, bool), usize> {
    let pds = net.account(name);
    let mut out = BTreeMap::new();
    for r in pds
        .list_records(&pds.did(), "chat.mls.keyPackage")
        .await
        .unwrap()
    {
        let suite = u16::try_from(r.value["ciphersuite"].as_i64().unwrap()).unwrap();
        let last_resort = r.value["lastResort"].as_bool().unwrap();
        *out.entry((suite, last_resort)).or_default() += 1;
    }
    out
}

async fn declared(net: &MemoryNetwork, name: &str) -> Vec<i64> {
    let pds = net.account(name);
    let records = pds
        .list_records(&pds.did(), "chat.mls.declaration")
        .await
        .unwrap();
    records[0].value["ciphersuites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

async fn suite(dev: &Dev, g: &GroupId) -> u16 {
    dev.group(g).await.unwrap().ciphersuite
}

/// `from` says `text` in `g`; `to` joins (if new) and reads it.
async fn talk(from: &Dev, to: &Dev, g: &GroupId, text: &str) {
    from.send(g, content::text(text)).await.unwrap();
    let ev = to.sync().await.unwrap();
    assert_eq!(Event::texts(&ev), [text]);
}

#[tokio::test]
async fn key_packages_and_declaration_per_suite() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", SuitePolicy::Prefer).await;
    let _carol = device(&net, "carol", SuitePolicy::Off).await;
    let _dave = device(&net, "dave", SuitePolicy::Require).await;
    alice.publish_declaration().await.unwrap();
    _carol.publish_declaration().await.unwrap();
    let both = BTreeMap::from([
        ((C, false), 2),
        ((C, true), 1),
        ((X, false), 2),
        ((X, true), 1),
    ]);
    assert_eq!(published(&net, "alice").await, both);
    assert_eq!(
        published(&net, "carol").await,
        BTreeMap::from([((C, false), 2), ((C, true), 1)])
    );
    assert_eq!(
        published(&net, "dave").await,
        BTreeMap::from([((X, false), 2), ((X, true), 1)])
    );
    // X-Wing first when preferred.
    assert_eq!(declared(&net, "alice").await, [i64::from(X), i64::from(C)]);
    assert_eq!(declared(&net, "carol").await, [i64::from(C)]);

    // Rotation replaces every package in every suite.
    let pds = net.account("alice");
    let before: Vec<String> = pds
        .list_records(&pds.did(), "chat.mls.keyPackage")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.rkey)
        .collect();
    alice.rotate_key_packages().await.unwrap();
    let after = pds
        .list_records(&pds.did(), "chat.mls.keyPackage")
        .await
        .unwrap();
    assert!(after.iter().all(|r| !before.contains(&r.rkey)));
    assert_eq!(published(&net, "alice").await, both);
}

#[tokio::test]
async fn a_new_group_negotiates_and_a_device_without_the_suite_is_refused() {
    let net = MemoryNetwork::new();
    let alice = device(&net, "alice", SuitePolicy::Prefer).await;
    let bob = device(&net, "bob", SuitePolicy::Prefer).await;
    let carol = device(&net, "carol", SuitePolicy::Off).await;
    for d in [&alice, &bob, &carol] {
        d.publish_declaration().await.unwrap();
    }

    // Every first device has X-Wing: the group is X-Wing, end to end.
    let (pq, _) = alice
        .create_group_with("pq", &[bob.did().clone()])
        .await
        .unwrap();
    assert_eq!(suite(&alice, &pq).await, X);
    talk(&alice, &bob, &pq, "hello in X-Wing").await;
    assert_eq!(suite(&bob, &pq).await, X);
    talk(&bob, &alice, &pq, "and back").await;

    // Carol has no X-Wing KeyPackage: adding her is refused by name; the group stays
    // X-Wing at the same epoch (never a silent downgrade).
    let epoch = alice.group(&pq).await.unwrap().epoch;
    match alice.add_members(&pq, &[carol.did().clone()]).await {
        Err(Error::SuiteMissing {
            did,
            device_id,
            suite: s,
        }) => {
            assert_eq!(&did, carol.did());
            assert_eq!(device_id, carol.device_id());
            assert_eq!(s, X);
        }
        other => panic!("expected SuiteMissing, got {other:?}"),
    }
    let g = alice.group(&pq).await.unwrap();
    assert_eq!((g.ciphersuite, g.epoch), (X, epoch));

    // A group created with Carol among its first devices is 0x0001, and works.
    let (mixed, _) = alice
        .create_group_with("mixed", &[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(suite(&alice, &mixed).await, C);
    alice
        .send(&mixed, content::text("hello in 0x0001"))
        .await
        .unwrap();
    for d in [&bob, &carol] {
        let ev = d.sync().await.unwrap();
        assert_eq!(Event::texts(&ev), ["hello in 0x0001"]);
        assert_eq!(suite(d, &mixed).await, C);
    }

    // Policy `off`: Carol's own groups are 0x0001 even with X-Wing members.
    let (hers, _) = carol
        .create_group_with("hers", &[alice.did().clone()])
        .await
        .unwrap();
    assert_eq!(suite(&carol, &hers).await, C);
    talk(&carol, &alice, &hers, "classic").await;
}

#[tokio::test]
async fn require_refuses_a_group_without_x_wing() {
    let net = MemoryNetwork::new();
    let dave = device(&net, "dave", SuitePolicy::Require).await;
    let carol = device(&net, "carol", SuitePolicy::Off).await;
    carol.publish_declaration().await.unwrap();
    assert!(matches!(
        dave.create_group_with("x", &[carol.did().clone()]).await,
        Err(Error::NoSuite(_))
    ));
    // Alone, Dave's group is X-Wing.
    let g = dave.create_group("alone").await.unwrap();
    assert_eq!(suite(&dave, &g).await, X);
    assert_eq!((u16::from(XWING), u16::from(CLASSIC)), (X, C));
}

/// The device database's passphrase, with the cheap KDF tests ask for by name.
fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

#[tokio::test]
async fn turning_x_wing_off_deletes_its_key_packages_and_on_again_publishes_them() {
    let net = MemoryNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let config = |policy| {
        DeviceConfig::default()
            .with_one_time_key_packages(2)
            .with_suite_policy(policy)
    };
    let alice = Device::create(
        Storage::File(&path, &passphrase()),
        net.account("alice"),
        net.ds(),
        net.ds_did(),
        config(SuitePolicy::Prefer),
    )
    .await
    .unwrap();
    let both = BTreeMap::from([
        ((C, false), 2),
        ((C, true), 1),
        ((X, false), 2),
        ((X, true), 1),
    ]);
    assert_eq!(published(&net, "alice").await, both);
    drop(alice);
    // Reopened with X-Wing off: the next renewal deletes the X-Wing records (and keys).
    let alice = Device::open(
        &path,
        &passphrase(),
        net.account("alice"),
        net.ds(),
        config(SuitePolicy::Off),
    )
    .await
    .unwrap();
    alice.replenish_key_packages().await.unwrap();
    assert_eq!(
        published(&net, "alice").await,
        BTreeMap::from([((C, false), 2), ((C, true), 1)])
    );
    drop(alice);
    let alice = Device::open(
        &path,
        &passphrase(),
        net.account("alice"),
        net.ds(),
        config(SuitePolicy::Require),
    )
    .await
    .unwrap();
    alice.replenish_key_packages().await.unwrap();
    assert_eq!(
        published(&net, "alice").await,
        BTreeMap::from([((X, false), 2), ((X, true), 1)])
    );
}

#[tokio::test]
async fn own_devices_join_and_a_lost_device_reenters_an_x_wing_group() {
    let net = MemoryNetwork::new();
    let config = || {
        DeviceConfig::default()
            .with_one_time_key_packages(2)
            .with_suite_policy(SuitePolicy::Prefer)
            .with_own_device_check_interval(std::time::Duration::ZERO)
    };
    let create = |name: &'static str| net.device(name, config());
    let laptop = create("alice").await.unwrap();
    let phone = create("alice").await.unwrap();
    let bob = create("bob").await.unwrap();
    bob.publish_declaration().await.unwrap();
    // The phone is among the first devices: X-Wing, and the phone joins from the welcome.
    let (g, _) = laptop
        .create_group_with("g", &[bob.did().clone()])
        .await
        .unwrap();
    assert_eq!(suite(&laptop, &g).await, X);
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

    // The phone's database is lost: restored under its id, it asks its sibling, which
    // re-adds it with one of its X-Wing packages (§11.17, §11.19).
    let phone_id = phone.device_id().to_owned();
    drop(phone);
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
    phone.sync().await.unwrap();
    laptop.sync().await.unwrap();
    assert_eq!(
        Event::joined(&phone.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
    assert_eq!(suite(&phone, &g).await, X);
    bob.sync().await.unwrap();
    talk(&bob, &phone, &g, "after the loss").await;
}
