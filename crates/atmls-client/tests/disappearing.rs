//! Disappearing messages (docs/spec.md §11.18): a lifetime in the group data, set by an
//! admin; every device deletes what it kept of a message once the lifetime has passed
//! since the DS received it (also a device that was closed meanwhile, when it opens); the
//! DS keeps the group's messages at most lifetime + 1 h, its commits longer.
//!
//! On the in-memory network (deterministic) and end to end over HTTP (the embedded host
//! and DS, the DS on SQLite). Two accounts, Bob with two devices.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::transport::memory::{MemoryDs, MemoryNetwork};
use atmls_client::transport::{Ds, Pds};
use atmls_client::{Committed, Device, DeviceConfig, Error, Event, GroupId, Storage, content};
use atmls_ds::MailboxId;
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use atmls_syntax::{Clock as _, ManualClock};
use atmls_testkit::server::TestServer;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(20);

fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

fn config(clock: &ManualClock) -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_own_device_check_interval(Duration::ZERO)
        .with_clock(Arc::new(clock.clone()))
}

async fn sync<P: Pds, D: Ds>(d: &Device<P, D>) -> Vec<Event> {
    tokio::time::timeout(WAIT, d.sync())
        .await
        .expect("sync in time")
        .expect("sync")
}

async fn records<P: Pds, D: Ds>(d: &Device<P, D>) -> u64 {
    d.stored_message_records().await.expect("records")
}

async fn mailbox<P: Pds, D: Ds>(d: &Device<P, D>, g: &GroupId) -> MailboxId {
    MailboxId::from_bytes(d.group(g).await.expect("group").data.mailbox)
}

/// Alice (admin) makes a group with Bob's two devices; Bob may not set a lifetime; Alice
/// sets one minute (bounds refused); every device learns it.
async fn one_minute_group<P: Pds, D: Ds>(
    alice: &Device<P, D>,
    bob: &Device<P, D>,
    phone: &Device<P, D>,
) -> GroupId {
    let g = alice.create_group("brief").await.expect("group");
    alice
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("add");
    assert_eq!(Event::joined(&sync(bob).await), std::slice::from_ref(&g));
    assert_eq!(Event::joined(&sync(phone).await), std::slice::from_ref(&g));
    assert!(matches!(
        bob.set_message_lifetime(&g, Some(MINUTE)).await,
        Err(Error::NotAdmin)
    ));
    for bad in [Duration::from_secs(59), Duration::from_secs(366 * 86_400)] {
        assert!(matches!(
            alice.set_message_lifetime(&g, Some(bad)).await,
            Err(Error::MessageLifetime(_))
        ));
    }
    assert!(matches!(
        alice.set_message_lifetime(&g, Some(MINUTE)).await,
        Ok(Committed::Accepted { .. })
    ));
    for d in [bob, phone] {
        // Merging it, each device also checks the DS's lifetime (getMailbox): it matches.
        let ev = sync(d).await;
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Unreachable { .. })),
            "{ev:?}"
        );
        let lifetime = d.group(&g).await.expect("group").data.message_lifetime;
        assert_eq!(lifetime.map(|l| l.duration()), Some(MINUTE));
    }
    g
}

#[tokio::test]
async fn a_message_vanishes_from_every_device_and_from_the_ds() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    net.set_clock(Arc::new(clock.clone()));
    let dir = tempfile::tempdir().expect("dir");
    let path = |n: &str| dir.path().join(format!("{n}.sqlite"));
    let key = passphrase();
    let create = |name: &'static str, file: std::path::PathBuf| {
        let (net, clock, key) = (net.clone(), clock.clone(), &key);
        async move {
            Device::create(
                Storage::File(&file, key),
                net.account(name),
                net.ds(),
                net.ds_did(),
                config(&clock),
            )
            .await
            .expect("device")
        }
    };
    let alice = create("alice", path("alice")).await;
    let bob = create("bob", path("bob")).await;
    let phone = create("bob", path("phone")).await;
    let g = one_minute_group(&alice, &bob, &phone).await;

    let received = clock.now();
    alice
        .send(&g, content::text("gone in a minute"))
        .await
        .expect("send");
    assert_eq!(Event::texts(&sync(&bob).await), ["gone in a minute"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["gone in a minute"]);
    sync(&alice).await;
    for d in [&alice, &bob, &phone] {
        assert!(records(d).await > 0);
    }

    // Bob's phone is closed; the minute passes (by the devices' clock).
    drop(phone);
    clock.advance(MINUTE + Duration::from_millis(1));
    sync(&alice).await;
    sync(&bob).await;
    assert_eq!(records(&alice).await, 0, "the sender deleted it");
    assert_eq!(records(&bob).await, 0, "the reader deleted it");
    // The phone deletes it when it opens, before any sync.
    let phone = open(&path("phone"), &net, "bob", &clock).await;
    assert_eq!(records(&phone).await, 0, "deleted at open");

    // The DS: still within lifetime + margin, then gone; the commits stay.
    let mb = mailbox(&alice, &g).await;
    assert_eq!(net.stored_envelopes(&mb).0, 1);
    let expired = net
        .expire_at(received.saturating_add(HOUR))
        .expect("expire");
    assert_eq!(expired.lifetime_messages, 0, "margin not passed yet");
    let expired = net
        .expire_at(received.saturating_add(MINUTE + HOUR + Duration::from_secs(1)))
        .expect("expire");
    assert_eq!(expired.lifetime_messages, 1);
    let (messages, commits) = net.stored_envelopes(&mb);
    assert_eq!((messages, commits > 0), (0, true));
}

async fn open(path: &Path, net: &MemoryNetwork, name: &str, clock: &ManualClock) -> Dev {
    Device::open(
        path,
        &passphrase(),
        net.account(name),
        net.ds(),
        config(clock),
    )
    .await
    .expect("open")
}

type Dev = Device<atmls_client::transport::memory::MemoryPds, MemoryDs>;

/// A device closed before a message arrived and opened after its lifetime never shows
/// it (the others deleted it); a later message is shown. Turning the lifetime off stops
/// the deletions.
#[tokio::test]
async fn a_device_away_past_the_lifetime_does_not_show_the_message() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    net.set_clock(Arc::new(clock.clone()));
    let dir = tempfile::tempdir().expect("dir");
    let key = passphrase();
    let phone_path = dir.path().join("phone.sqlite");
    let mem = |name: &'static str| net.device(name, config(&clock));
    let alice = mem("alice").await.expect("alice");
    let bob = mem("bob").await.expect("bob");
    let phone = Device::create(
        Storage::File(&phone_path, &key),
        net.account("bob"),
        net.ds(),
        net.ds_did(),
        config(&clock),
    )
    .await
    .expect("phone");
    let g = one_minute_group(&alice, &bob, &phone).await;
    drop(phone);
    alice
        .send(&g, content::text("while you were away"))
        .await
        .expect("send");
    clock.advance(MINUTE * 2);
    alice
        .send(&g, content::text("still here"))
        .await
        .expect("send");
    let phone = open(&phone_path, &net, "bob", &clock).await;
    assert_eq!(Event::texts(&sync(&phone).await), ["still here"]);

    // Off: what arrives now is kept past a minute.
    alice
        .set_message_lifetime(&g, None)
        .await
        .expect("lifetime off");
    alice.send(&g, content::text("kept")).await.expect("send");
    assert_eq!(Event::texts(&sync(&bob).await), ["still here", "kept"]);
    sync(&bob).await;
    let kept = records(&bob).await;
    assert!(kept > 0);
    clock.advance(HOUR);
    sync(&bob).await;
    assert_eq!(records(&bob).await, kept);
}

/// End to end: the embedded host and DS over HTTP (the DS on SQLite, its clock and the
/// devices' clock the same manual clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_over_http() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = ManualClock::starting_now();
    let server = TestServer::builder()
        .clock(clock.clone())
        .data_dir(dir.path())
        .start()
        .await;
    let url = server.url().to_owned();
    let resolver: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(
        ResolverConfig::default()
            .allow_loopback_http(true)
            .with_plc_url(&url),
    ));
    let account = |name: &'static str, create: bool| {
        let (url, resolver) = (url.clone(), resolver.clone());
        async move {
            if create {
                HttpPds::create_account(
                    &url,
                    &format!("{name}.test"),
                    &format!("{name}@example.com"),
                    "correct horse",
                    resolver,
                )
                .await
            } else {
                HttpPds::login(&url, &format!("{name}.test"), "correct horse", resolver).await
            }
            .expect("account")
        }
    };
    let key = passphrase();
    let path = |n: &str| dir.path().join(format!("{n}.device.sqlite"));
    let ds_did = server.ds_did().clone();
    let device = |pds: HttpPds, file: std::path::PathBuf| {
        let (resolver, clock, ds_did, key) =
            (resolver.clone(), clock.clone(), ds_did.clone(), &key);
        async move {
            Device::create(
                Storage::File(&file, key),
                pds,
                HttpDs::new(resolver),
                ds_did,
                config(&clock),
            )
            .await
            .expect("device")
        }
    };
    let alice = device(account("alice", true).await, path("alice")).await;
    let bob = device(account("bob", true).await, path("bob")).await;
    let phone = device(account("bob", false).await, path("phone")).await;
    let g = one_minute_group(&alice, &bob, &phone).await;

    alice
        .send(&g, content::text("gone in a minute"))
        .await
        .expect("send");
    assert_eq!(Event::texts(&sync(&bob).await), ["gone in a minute"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["gone in a minute"]);
    sync(&alice).await;
    drop(phone);

    // A minute passes for everyone (the DS too: requests stay within its age window).
    clock.advance(MINUTE + Duration::from_millis(1));
    sync(&alice).await;
    sync(&bob).await;
    assert_eq!(records(&alice).await, 0);
    assert_eq!(records(&bob).await, 0);
    let phone = Device::open(
        &path("phone"),
        &passphrase(),
        account("bob", false).await,
        HttpDs::new(resolver.clone()),
        config(&clock),
    )
    .await
    .expect("reopen");
    assert_eq!(records(&phone).await, 0, "deleted at open");

    // The DS: after lifetime + margin its retention deletes the message, not the commits.
    let count = |kind: i64| -> i64 {
        let db = rusqlite::Connection::open(dir.path().join("ds.sqlite")).expect("ds db");
        db.query_row(
            "SELECT count(*) FROM envelopes WHERE kind = ?1",
            [kind],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert_eq!(count(0), 1);
    clock.advance(HOUR);
    let expired = server.ds().expire_now().await.expect("expire");
    assert_eq!(expired.lifetime_messages, 1);
    assert_eq!(count(0), 0, "the DS no longer holds the message");
    assert!(count(1) > 0, "commits stay");
    server.shutdown().await;
}

/// The DS's lifetime can differ from the group's (a member's commit left it out, or set
/// another: the DS cannot know admins). The next member to merge that commit sees it in
/// `getMailbox` and repairs it with a self-update, which carries the group's lifetime.
#[tokio::test]
async fn a_mailbox_lifetime_that_differs_from_the_group_is_repaired() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    net.set_clock(Arc::new(clock.clone()));
    let mem = |name: &'static str| {
        Device::create(
            Storage::Memory,
            net.account(name),
            net.ds(),
            net.ds_did(),
            config(&clock),
        )
    };
    let alice = mem("alice").await.expect("alice");
    let bob = mem("bob").await.expect("bob");
    let g = alice.create_group("g").await.expect("group");
    alice
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("add");
    sync(&bob).await;
    let mb = mailbox(&alice, &g).await;
    // Alice's commit reaches the DS without its lifetime.
    net.strip_message_lifetimes(1);
    alice
        .set_message_lifetime(&g, Some(MINUTE))
        .await
        .expect("lifetime");
    assert_eq!(net.mailbox_lifetime(&mb), None, "the DS was not told");
    let epoch = bob.group(&g).await.expect("group").epoch;
    sync(&bob).await;
    assert_eq!(net.mailbox_lifetime(&mb), Some(60), "bob repaired it");
    assert_eq!(
        bob.group(&g).await.expect("group").epoch,
        epoch + 2,
        "the lifetime commit, then bob's self-update"
    );
    // Matching now: nobody commits again.
    sync(&alice).await;
    let epoch = alice.group(&g).await.expect("group").epoch;
    sync(&bob).await;
    sync(&alice).await;
    assert_eq!(alice.group(&g).await.expect("group").epoch, epoch);
}

/// A message the DS refused for good stays in the outbox as given up, with its text; in a
/// group with a lifetime it goes one lifetime after the device first saw it given up.
#[tokio::test]
async fn a_given_up_message_vanishes_after_the_lifetime() {
    let net = MemoryNetwork::with_ds_config(
        atmls_ds::DsConfig::default().with_max_envelope_bytes(16 * 1024),
    );
    let clock = ManualClock::starting_now();
    net.set_clock(Arc::new(clock.clone()));
    let mem = |name: &'static str| {
        Device::create(
            Storage::Memory,
            net.account(name),
            net.ds(),
            net.ds_did(),
            config(&clock).with_max_envelope_bytes(16 * 1024),
        )
    };
    let alice = mem("alice").await.expect("alice");
    let bob = mem("bob").await.expect("bob");
    let g = alice.create_group("g").await.expect("group");
    alice
        .add_members(&g, &[bob.did().clone()])
        .await
        .expect("add");
    alice
        .set_message_lifetime(&g, Some(MINUTE))
        .await
        .expect("lifetime");
    // Too large for the DS: refused for good, kept as given up.
    assert!(
        alice
            .send(&g, content::text("日".repeat(9000)))
            .await
            .is_err()
    );
    sync(&alice).await;
    let given_up = || async { alice.outbox().await.expect("outbox").len() };
    assert_eq!(given_up().await, 1);
    clock.advance(MINUTE);
    sync(&alice).await;
    assert_eq!(given_up().await, 1, "not before the lifetime");
    clock.advance(Duration::from_millis(1));
    sync(&alice).await;
    assert!(alice.outbox().await.expect("outbox").is_empty());
    assert_eq!(records(&alice).await, 0);
}
