//! Recovery end to end (docs/spec.md §11.17) through the real host and DS on loopback:
//! two accounts, one with two devices. A device whose database file is deleted is
//! re-added by its sibling; a member that refused a commit the others merged is broken,
//! asks, is re-added by the admin, and reads new messages.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{BrokenReason, Device, DeviceConfig, Did, Event, GroupId, Storage, content};
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolveError, ResolveFuture, ResolverConfig};
use atmls_testkit::server::TestServer;

type Dev = Device<HttpPds, HttpDs>;

const WAIT: Duration = Duration::from_secs(20);

fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_own_device_check_interval(Duration::ZERO)
}

/// A resolver that answers "not found" for the DIDs in `refused` (one device's view of
/// a directory that definitively fails for it only).
struct Refusing {
    inner: HttpResolver,
    refused: Mutex<HashSet<String>>,
}

impl DidResolver for Refusing {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        if self.refused.lock().expect("lock").contains(did.as_str()) {
            return Box::pin(async { Err(ResolveError::NotFound) });
        }
        self.inner.resolve(did)
    }
}

struct Net {
    url: String,
    ds_did: Did,
    _server: TestServer,
}

async fn start() -> Net {
    let server = TestServer::builder().system_clock().start().await;
    Net {
        url: server.url().to_owned(),
        ds_did: server.ds_did().clone(),
        _server: server,
    }
}

impl Net {
    fn resolver(&self) -> Arc<Refusing> {
        Arc::new(Refusing {
            inner: HttpResolver::new(
                ResolverConfig::default()
                    .allow_loopback_http(true)
                    .with_plc_url(&self.url),
            ),
            refused: Mutex::new(HashSet::new()),
        })
    }

    async fn account(&self, name: &str, resolver: Arc<Refusing>) -> HttpPds {
        HttpPds::create_account(
            &self.url,
            &format!("{name}.test"),
            &format!("{name}@example.com"),
            "correct horse",
            resolver,
        )
        .await
        .unwrap()
    }

    async fn login(&self, name: &str, resolver: Arc<Refusing>) -> HttpPds {
        HttpPds::login(
            &self.url,
            &format!("{name}.test"),
            "correct horse",
            resolver,
        )
        .await
        .unwrap()
    }

    async fn device(&self, pds: HttpPds, resolver: Arc<Refusing>) -> Dev {
        Device::create(
            Storage::Memory,
            pds,
            HttpDs::new(resolver),
            self.ds_did.clone(),
            config(),
        )
        .await
        .unwrap()
    }
}

async fn sync(d: &Dev) -> Vec<Event> {
    tokio::time::timeout(WAIT, d.sync())
        .await
        .expect("sync in time")
        .unwrap()
}

fn recovered(events: &[Event], group: &GroupId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Recovered { group: g } if g == group))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_recovered_through_the_sibling_device() {
    let net = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let key = passphrase();
    let r = net.resolver();
    let laptop = net
        .device(net.account("alice", r.clone()).await, r.clone())
        .await;
    let phone = Device::create(
        Storage::File(&path, &key),
        net.login("alice", r.clone()).await,
        HttpDs::new(r.clone()),
        net.ds_did.clone(),
        config(),
    )
    .await
    .unwrap();
    let bob = net
        .device(net.account("bob", r.clone()).await, r.clone())
        .await;
    let g = laptop.create_group("g").await.unwrap();
    laptop.add_members(&g, &[bob.did().clone()]).await.unwrap();
    sync(&laptop).await;
    assert_eq!(Event::joined(&sync(&phone).await), std::slice::from_ref(&g));
    assert_eq!(Event::joined(&sync(&bob).await), std::slice::from_ref(&g));

    // The phone's database file is deleted; the application kept its identity.
    let phone_id = phone.device_id().to_owned();
    drop(phone);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let phone = Device::restore(
        Storage::File(&path, &key),
        net.login("alice", r.clone()).await,
        HttpDs::new(r.clone()),
        net.ds_did.clone(),
        &phone_id,
        config(),
    )
    .await
    .unwrap();
    sync(&phone).await;
    sync(&laptop).await;
    assert_eq!(Event::joined(&sync(&phone).await), std::slice::from_ref(&g));
    sync(&bob).await;
    bob.send(&g, content::text("after the loss")).await.unwrap();
    assert_eq!(Event::texts(&sync(&phone).await), ["after the loss"]);
    assert_eq!(Event::texts(&sync(&laptop).await), ["after the loss"]);
    assert_eq!(bob.group(&g).await.unwrap().members.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_refused_a_commit_is_readded_and_reads_again() {
    let net = start().await;
    let r = net.resolver();
    let bob_view = net.resolver();
    let laptop = net
        .device(net.account("alice", r.clone()).await, r.clone())
        .await;
    let phone = net
        .device(net.login("alice", r.clone()).await, r.clone())
        .await;
    let bob = net
        .device(net.account("bob", bob_view.clone()).await, bob_view.clone())
        .await;
    let carol = net
        .device(net.account("carol", r.clone()).await, r.clone())
        .await;
    let g = laptop.create_group("g").await.unwrap();
    laptop.add_members(&g, &[bob.did().clone()]).await.unwrap();
    sync(&laptop).await;
    sync(&phone).await;
    sync(&bob).await;
    // Carol's DID does not resolve for Bob, for good: he refuses the commit adding her.
    bob_view
        .refused
        .lock()
        .unwrap()
        .insert(carol.did().to_string());
    laptop
        .add_members(&g, &[carol.did().clone()])
        .await
        .unwrap();
    sync(&carol).await;
    sync(&phone).await;
    phone.send(&g, content::text("not for bob")).await.unwrap();
    let mut ev = sync(&bob).await;
    ev.extend(sync(&bob).await);
    assert!(ev.iter().any(|e| matches!(e, Event::CommitRefused { .. })));
    assert_eq!(
        Event::broken(&ev),
        [(g.clone(), BrokenReason::CommitRefused)]
    );
    assert_eq!(
        bob.groups().await.unwrap()[0].broken,
        Some(BrokenReason::CommitRefused)
    );
    // The directory answers again; an admin device acts on Bob's request.
    bob_view.refused.lock().unwrap().clear();
    sync(&laptop).await;
    sync(&phone).await;
    let ev = sync(&bob).await;
    assert!(recovered(&ev, &g), "{ev:?}");
    phone.send(&g, content::text("bob is back")).await.unwrap();
    assert!(Event::texts(&sync(&bob).await).contains(&"bob is back".to_owned()));
    assert!(Event::texts(&sync(&carol).await).contains(&"bob is back".to_owned()));
}
