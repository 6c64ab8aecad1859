//! Issue 17 item 6 end to end, through the embedded host (PDS and PLC directory) and DS
//! over HTTP on loopback: two accounts, Alice with two devices. Leaf proofs checked
//! against the key in force at `acceptedAt` across a key rotation, undelivered welcomes
//! resent, out-of-band trees deleted after the DS's retention (docs/spec.md §11.4,
//! §11.13).

use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::Pds as _;
use atmls_client::transport::http::HttpPds;
use atmls_client::{Committed, Event, GroupId, content};
use atmls_ds_xrpc::KeyPackageConfig;
use atmls_syntax::{Clock as _, ManualClock};
use atmls_testkit::server::TestServer;

mod support;

use support::http::{Dev, config, sync};

/// The server, and the devices' clock (deadlines in their databases).
struct Net {
    http: support::http::Net,
    clock: ManualClock,
}

fn on(server: TestServer) -> Net {
    Net {
        http: support::http::Net::on(server),
        clock: ManualClock::starting_now(),
    }
}

impl Net {
    async fn account(&self, name: &str) -> HttpPds {
        self.http.account(name).await
    }

    async fn login(&self, name: &str) -> HttpPds {
        self.http.login(name).await
    }

    async fn device(&self, pds: HttpPds) -> Dev {
        let config = config().with_clock(Arc::new(self.clock.clone()));
        self.http.device_with(pds, config).await
    }
}

async fn epoch(d: &Dev, g: &GroupId) -> u64 {
    d.group(g).await.unwrap().epoch
}

fn no_refusal(events: &[Event]) {
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. })),
        "{events:?}"
    );
}

/// Alice adds Bob; Bob's account then rotates its `#atproto` key in the PLC directory (a
/// PDS migration) before Alice's second device reads the commit. That device checks the
/// proof against the key in the audit log at `acceptedAt`, merges, and stays in step;
/// Bob joins and everyone reads. (Before: the late device checked against the new key,
/// refused the commit and was cut off from the group.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_device_merges_an_add_across_a_key_rotation() {
    let net = on(TestServer::builder().system_clock().start().await);
    let alice = net.device(net.account("alice").await).await;
    let bob = net.device(net.account("bob").await).await;
    let phone = net.device(net.login("alice").await).await;
    let g = alice.create_group("g").await.unwrap();
    sync(&alice).await;
    assert_eq!(Event::joined(&sync(&phone).await), std::slice::from_ref(&g));

    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    // The rotation lands after the DS accepted the commit.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = atmls_syntax::SystemClock.now();
    net.http
        .server
        .host()
        .core()
        .rotate_signing_key(bob.did().as_str(), now)
        .unwrap();
    let ev = sync(&phone).await;
    no_refusal(&ev);
    assert_eq!(epoch(&phone, &g).await, epoch(&alice, &g).await);
    assert_eq!(Event::joined(&sync(&bob).await), std::slice::from_ref(&g));
    bob.send(&g, content::text("moved")).await.unwrap();
    assert_eq!(Event::texts(&sync(&alice).await), ["moved"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["moved"]);
    net.http.server.shutdown().await;
}

/// The DS lets one welcome a minute into an inbox: Bob's second welcome is refused
/// (429). Alice's device keeps it and resends it after the back-off, once the DS's minute
/// has passed; Bob joins the second group and reads it. (Before: that welcome was lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_refused_by_the_inbox_limit_is_resent() {
    let server_clock = ManualClock::starting_now();
    let net = on(TestServer::builder()
        .clock(server_clock.clone())
        .core(
            atmls_ds::DsConfig::default()
                .with_inbox_deposits_per_minute(1)
                // The test moves the server's clock by two minutes; the clients sign
                // with the system's.
                .with_request_max_age(Duration::from_secs(600)),
        )
        // No getKeyPackages cache: the second add must not pick the package the first
        // one consumed.
        .key_packages(KeyPackageConfig::default().with_cache_ttl(Duration::ZERO))
        .unlimited_shares()
        .start()
        .await);
    let alice = net.device(net.account("alice").await).await;
    let phone = net.device(net.login("alice").await).await;
    let bob = net.device(net.account("bob").await).await;
    let g1 = alice.create_group("g1").await.unwrap();
    let g2 = alice.create_group("g2").await.unwrap();
    let r = alice.add_members(&g1, &[bob.did().clone()]).await.unwrap();
    assert!(matches!(r, Committed::Accepted { ref undelivered, .. } if undelivered.is_empty()));
    // Bob joins (consuming that KeyPackage) within the DS's minute.
    assert_eq!(Event::joined(&sync(&bob).await), std::slice::from_ref(&g1));
    let r = alice.add_members(&g2, &[bob.did().clone()]).await.unwrap();
    let Committed::Accepted { undelivered, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(undelivered.len(), 1);
    assert!(undelivered[0].retried, "{undelivered:?}");
    assert!(Event::joined(&sync(&bob).await).is_empty());
    alice.send(&g2, content::text("in g2")).await.unwrap();

    server_clock.advance(Duration::from_secs(61));
    net.clock.advance(Duration::from_secs(2));
    let ev = sync(&alice).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::WelcomeResent { group, .. } if *group == g2)),
        "{ev:?}"
    );
    let ev = sync(&bob).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g2), "{ev:?}");
    assert_eq!(Event::texts(&ev), ["in g2"]);
    // Alice's phone was added to both groups by her first device in that sync; its
    // inbox takes one welcome a minute too: the other one is resent a minute later.
    let mut joined = Event::joined(&sync(&phone).await);
    server_clock.advance(Duration::from_secs(61));
    net.clock.advance(Duration::from_secs(2));
    sync(&alice).await;
    joined.extend(Event::joined(&sync(&phone).await));
    assert_eq!(joined.len(), 2, "{joined:?}");
    assert!(joined.contains(&g1) && joined.contains(&g2), "{joined:?}");
    alice.send(&g2, content::text("all here")).await.unwrap();
    assert_eq!(Event::texts(&sync(&phone).await), ["all here"]);
    assert_eq!(Event::texts(&sync(&bob).await), ["all here"]);
    net.http.server.shutdown().await;
}

/// Welcomes that need the tree out of band on a DS that keeps group envelopes a day: the
/// tree's `attachmentRef` record is on Alice's PDS while the day lasts and the invitee
/// joins with it; after the day, Alice's sync deletes it. (Before: never deleted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_record_is_deleted_after_the_retention() {
    let day = Duration::from_secs(86_400);
    let net = on(TestServer::builder()
        .system_clock()
        .core(
            atmls_ds::DsConfig::default()
                .with_max_envelope_bytes(6144)
                .with_group_retention(Some(day)),
        )
        .start()
        .await);
    let alice = net.device(net.account("alice").await).await;
    let g = alice.create_group("big").await.unwrap();
    let refs = || async {
        alice
            .pds()
            .list_records(
                alice.did(),
                atmls_client::attachment::ATTACHMENT_REF_COLLECTION,
            )
            .await
            .unwrap()
            .len()
    };
    let mut joiner = None;
    for i in 0..80 {
        let m = net.device(net.account(&format!("m{i}")).await).await;
        alice.add_members(&g, &[m.did().clone()]).await.unwrap();
        if refs().await > 0 {
            joiner = Some(m);
            break;
        }
    }
    let joiner = joiner.expect("a tree out of band");
    sync(&alice).await;
    assert_eq!(refs().await, 1);
    assert_eq!(
        Event::joined(&sync(&joiner).await),
        std::slice::from_ref(&g)
    );
    net.clock.advance(day + Duration::from_secs(1));
    sync(&alice).await;
    assert_eq!(refs().await, 0);
    net.http.server.shutdown().await;
}
