//! A commit built on an epoch that ended long ago catches up instead of failing
//! (docs/spec.md §11.3): the DS refuses the ended epoch's key (`KeyExpired`) once its
//! grace window has passed, and the committer reads the mailbox up to that epoch's end,
//! processes it and rebuilds the intent, as after an `EpochConflict`.

use std::sync::Arc;
use std::time::Duration;

use atmls_syntax::ManualClock;

use super::Device;
use crate::transport::memory::{MemoryDs, MemoryNetwork};
use crate::{Committed, DeviceConfig};

type Dev = Device<crate::transport::memory::MemoryPds, MemoryDs>;

async fn device(net: &MemoryNetwork, name: &str, clock: &ManualClock) -> Dev {
    net.device(
        name,
        DeviceConfig::default()
            .with_one_time_key_packages(2)
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .expect("device")
}

/// Bob's epoch ended (Alice committed twice) ten minutes before Bob commits: the DS's
/// grace window (60 s) is long over, so his commit's key is refused. Bob catches up and
/// his self-update lands on the current epoch; Alice merges it. (Before: the commit
/// failed with `KeyExpired` and the group was reported unreachable.)
#[tokio::test]
async fn commit_on_an_epoch_ended_long_ago_catches_up() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::starting_now();
    net.set_clock(Arc::new(clock.clone()));
    let alice = device(&net, "alice", &clock).await;
    let bob = device(&net, "bob", &clock).await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let joined = bob.group(&g).await.unwrap().epoch;
    alice.rename(&g, "g2").await.unwrap();
    alice.self_update(&g, false).await.unwrap();
    clock.advance(Duration::from_secs(600));

    let committed = bob.self_update(&g, false).await.expect("catches up");
    match committed {
        Committed::Accepted {
            epoch, attempts, ..
        } => {
            assert_eq!(epoch, joined + 2, "built on the current epoch");
            assert_eq!(attempts, 2, "one refused attempt, then the rebuilt one");
        }
        other => panic!("{other:?}"),
    }
    let seen = bob.group(&g).await.unwrap();
    assert_eq!(seen.epoch, joined + 3);
    assert_eq!(seen.name(), "g2", "the missed commits were processed");
    alice.sync().await.unwrap();
    assert_eq!(alice.group(&g).await.unwrap().epoch, joined + 3);
}
