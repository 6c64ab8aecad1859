//! Signature-key rotation and device bindings (docs/spec.md §11.16) end to end through the
//! real servers on loopback: the embedded PDS host (device records, `getRecord` proofs,
//! PLC) and the DS over HTTP. Two accounts, Alice with two devices.

use std::time::Duration;

use atmls_client::{DeviceConfig, Event, content};

mod support;

use support::http::{Dev, Net, config, sync};

async fn start() -> Net {
    Net::start().await
}

/// A device of `name`: a new account, or another device of an existing one.
async fn device(net: &Net, name: &str, new_account: bool, config: DeviceConfig) -> Dev {
    let pds = if new_account {
        net.account(name).await
    } else {
        net.login(name).await
    };
    net.device_with(pds, config).await
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
    let laptop = device(&net, "alice", true, config()).await;
    let rotating = config().with_signature_rotation_interval(Some(Duration::ZERO));
    let bob = device(&net, "bob", true, rotating).await;
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
    let phone = device(&net, "alice", false, config()).await;
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
