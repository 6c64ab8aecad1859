//! Signature-key rotation and device bindings (docs/spec.md §11.16) end to end through the
//! real servers on loopback: the embedded PDS host (device records, `getRecord` proofs,
//! PLC) and the DS over HTTP. Two accounts, Alice with two devices.

use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{Device, DeviceConfig, Did, Event, Storage, content};
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use atmls_testkit::server::TestServer;

type Dev = Device<HttpPds, HttpDs>;

const WAIT: Duration = Duration::from_secs(20);

struct Net {
    url: String,
    ds_did: Did,
    resolver: Arc<dyn DidResolver>,
    server: TestServer,
}

async fn start() -> Net {
    let server = TestServer::builder().system_clock().start().await;
    let url = server.url().to_owned();
    let resolver: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(
        ResolverConfig::default()
            .allow_loopback_http(true)
            .with_plc_url(&url),
    ));
    Net {
        url,
        ds_did: server.ds_did().clone(),
        resolver,
        server,
    }
}

impl Net {
    async fn device(&self, name: &str, new_account: bool, config: DeviceConfig) -> Dev {
        let pds = if new_account {
            HttpPds::create_account(
                &self.url,
                &format!("{name}.test"),
                &format!("{name}@example.com"),
                "correct horse",
                self.resolver.clone(),
            )
            .await
            .unwrap()
        } else {
            HttpPds::login(
                &self.url,
                &format!("{name}.test"),
                "correct horse",
                self.resolver.clone(),
            )
            .await
            .unwrap()
        };
        Device::create(
            Storage::Memory,
            pds,
            HttpDs::new(self.resolver.clone()),
            self.ds_did.clone(),
            config,
        )
        .await
        .unwrap()
    }
}

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_own_device_check_interval(Duration::ZERO)
}

async fn sync(d: &Dev) -> Vec<Event> {
    tokio::time::timeout(WAIT, d.sync())
        .await
        .expect("sync in time")
        .unwrap()
}

fn refused(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::CommitRefused { .. } | Event::Rejected { .. } | Event::WelcomeRefused { .. }
        )
    })
}

/// Bob rotates on his schedule (an interval of zero: at every sync), Alice's laptop by
/// hand; each receiver verifies the new bindings; Alice's phone, joining afterwards,
/// verifies every leaf of the tree (both rotated ones are in no KeyPackage record) and
/// reads the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_leaves_verify_for_receivers_and_a_later_device() {
    let net = start().await;
    let laptop = net.device("alice", true, config()).await;
    let bob = net
        .device(
            "bob",
            true,
            config().with_signature_rotation_interval(Some(Duration::ZERO)),
        )
        .await;
    let g = laptop.create_group("tea").await.unwrap();
    laptop.add_members(&g, &[bob.did().clone()]).await.unwrap();
    let ev = sync(&bob).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g), "{ev:?}");
    let epoch = bob.group(&g).await.unwrap().epoch;

    // Bob's scheduled rotation (his join sync already made one) reaches the laptop.
    let ev = sync(&laptop).await;
    assert!(!refused(&ev), "{ev:?}");
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::GroupChanged { by, .. } if by == bob.did())),
        "{ev:?}"
    );
    assert_eq!(laptop.group(&g).await.unwrap().epoch, epoch);

    // The laptop rotates by hand; Bob verifies it (and rotates again on his schedule).
    laptop.self_update(&g, true).await.unwrap();
    let ev = sync(&bob).await;
    assert!(!refused(&ev), "{ev:?}");
    let ev = sync(&laptop).await;
    assert!(!refused(&ev), "{ev:?}");

    // Alice's second device: added by the laptop, it verifies every leaf it joins.
    let phone = net.device("alice", false, config()).await;
    sync(&laptop).await;
    let ev = sync(&phone).await;
    assert!(!refused(&ev), "{ev:?}");
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g), "{ev:?}");
    let members = phone.group(&g).await.unwrap().members;
    assert_eq!(members.len(), 3);

    laptop
        .send(&g, content::text("after rotations"))
        .await
        .unwrap();
    assert_eq!(Event::texts(&sync(&phone).await), ["after rotations"]);
    let ev = sync(&bob).await;
    assert!(!refused(&ev), "{ev:?}");
    assert_eq!(Event::texts(&ev), ["after rotations"]);
    // Bob's latest rotation verifies for the phone too.
    bob.send(&g, content::text("rotated again")).await.unwrap();
    let ev = sync(&phone).await;
    assert!(!refused(&ev), "{ev:?}");
    assert_eq!(Event::texts(&ev), ["rotated again"]);
    net.server.shutdown().await;
}
