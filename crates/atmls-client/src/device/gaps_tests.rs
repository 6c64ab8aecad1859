//! Undelivered welcomes are resent, out-of-band trees are deleted when no longer needed
//! (docs/spec.md §11.4), on the memory network with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use atmls_syntax::ManualClock;

use super::Device;
use crate::content;
use crate::event::Event;
use crate::group::GroupId;
use crate::transport::Pds as _;
use crate::transport::memory::{MemoryDs, MemoryNetwork};
use crate::{Committed, DeviceConfig, WelcomeGiveUp};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

async fn device(net: &MemoryNetwork, name: &str, clock: &ManualClock) -> Dev {
    device_with(net, name, clock, DeviceConfig::default()).await
}

async fn device_with(
    net: &MemoryNetwork,
    name: &str,
    clock: &ManualClock,
    config: DeviceConfig,
) -> Dev {
    net.device(
        name,
        config
            .with_one_time_key_packages(2)
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .expect("device")
}

fn undelivered(r: &Committed) -> Vec<crate::UndeliveredWelcome> {
    match r {
        Committed::Accepted { undelivered, .. } => undelivered.clone(),
        other => panic!("{other:?}"),
    }
}

/// The invitee's inbox DS refuses the first `sendWelcome` (429); the committer keeps the
/// welcome and resends it at its next sync after the back-off; the invitee joins from
/// `fromSeq` and reads what was sent meanwhile. (Before: the welcome was lost; the
/// invitee was a member that could never read.)
#[tokio::test]
async fn refused_welcome_is_resent_and_the_invitee_joins() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    let alice = device(&net, "alice", &clock).await;
    let bob = device(&net, "bob", &clock).await;
    let g = alice.create_group("g").await.unwrap();
    net.refuse_welcomes(1);
    let r = alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    let u = undelivered(&r);
    assert_eq!(u.len(), 1);
    assert!(u[0].retried, "{u:?}");
    alice
        .send(&g, content::text("before the resend"))
        .await
        .unwrap();
    assert!(Event::joined(&bob.sync().await.unwrap()).is_empty());
    // Not yet due: nothing is sent.
    let ev = alice.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::WelcomeResent { .. })),
        "{ev:?}"
    );
    clock.advance(Duration::from_secs(2));
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::WelcomeResent { group, attempts: 2, .. } if *group == g)),
        "{ev:?}"
    );
    let ev = bob.sync().await.unwrap();
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(Event::texts(&ev), ["before the resend"]);
    bob.send(&g, content::text("hi")).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), ["hi"]);
    // Sent once: nothing left to resend.
    let st = alice.inner.state.lock().await;
    assert_eq!(super::resend::pending(&st.conn).unwrap(), 0);
}

/// A DS that keeps refusing: the device gives up after the configured attempts with a
/// typed event; a welcome whose invitee left the group is given up without sending.
#[tokio::test]
async fn resends_give_up_after_the_attempts_or_when_the_invitee_is_gone() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    let config = DeviceConfig::default().with_welcome_attempts(3);
    let alice = device_with(&net, "alice", &clock, config).await;
    let bob = device(&net, "bob", &clock).await;
    let carol = device(&net, "carol", &clock).await;
    let g = alice.create_group("g").await.unwrap();
    net.refuse_welcomes(100);
    let r = alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    assert!(undelivered(&r)[0].retried);
    let mut given_up = None;
    for _ in 0..5 {
        clock.advance(Duration::from_secs(600));
        for e in alice.sync().await.unwrap() {
            if let Event::WelcomeGivenUp {
                attempts, reason, ..
            } = e
            {
                given_up = Some((attempts, reason));
            }
        }
    }
    let (attempts, reason) = given_up.expect("given up");
    assert_eq!(attempts, 3);
    assert!(matches!(reason, WelcomeGiveUp::Failed(_)), "{reason:?}");

    // Carol's welcome is refused, then she is removed before the resend.
    net.refuse_welcomes(1);
    let r = alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    assert!(undelivered(&r)[0].retried);
    net.refuse_welcomes(0);
    alice
        .remove_members(&g, &[carol.did().clone()])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(600));
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::WelcomeGivenUp {
                reason: WelcomeGiveUp::NotInGroup,
                ..
            }
        )),
        "{ev:?}"
    );
    assert!(Event::joined(&carol.sync().await.unwrap()).is_empty());
}

/// A group whose welcomes need the tree out of band, on a DS that keeps group envelopes a
/// day: the committer deletes each tree's `attachmentRef` record once the day has passed,
/// and not before. (Before: tree records accumulated for ever.)
#[tokio::test]
async fn out_of_band_trees_are_deleted_after_the_ds_retention() {
    let day = Duration::from_secs(86_400);
    let net = MemoryNetwork::with_ds_config(
        atmls_ds::DsConfig::default()
            .with_max_envelope_bytes(6144)
            .with_group_retention(Some(day)),
    );
    let clock = ManualClock::starting_now();
    let alice = device(&net, "alice", &clock).await;
    let g: GroupId = alice.create_group("big").await.unwrap();
    let refs = || async {
        alice
            .pds()
            .list_records(alice.did(), crate::attachment::ATTACHMENT_REF_COLLECTION)
            .await
            .unwrap()
            .len()
    };
    let mut joiner = None;
    for i in 0..80 {
        let m = device(&net, &format!("m{i}"), &clock).await;
        let r = alice.add_members(&g, &[m.did().clone()]).await.unwrap();
        assert!(undelivered(&r).is_empty());
        if refs().await > 0 {
            joiner = Some(m);
            break;
        }
    }
    let joiner = joiner.expect("a tree out of band");
    assert_eq!(refs().await, 1);
    // Within the day: kept, and the invitee joins with it.
    clock.advance(day / 2);
    alice.sync().await.unwrap();
    assert_eq!(refs().await, 1);
    assert_eq!(
        Event::joined(&joiner.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
    // After it: deleted, and forgotten.
    clock.advance(day / 2 + Duration::from_secs(1));
    alice.sync().await.unwrap();
    assert_eq!(refs().await, 0);
    let st = alice.inner.state.lock().await;
    assert_eq!(super::tree_blobs::pending(&st.conn).unwrap(), 0);
}
