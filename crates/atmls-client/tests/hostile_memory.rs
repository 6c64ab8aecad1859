//! Failures a client meets on the network, classified (docs/spec.md §11.14), on the
//! in-memory network (real DS core, real signed repos): a transient failure backs off
//! that group or inbox, or sets that inbox item aside, and never the rest; a permanent
//! one refuses that item and moves on. The HTTP counterparts are in `hostile_peers.rs`.

use std::time::Duration;

use atmls_client::group::seal::{TreeRef, WelcomeInfo, seal_welcome};
use atmls_client::transport::Ds as _;
use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::{
    Device, DeviceConfig, Did, Event, FailureKind, GroupId, KeyPackageRefusal, PolicyViolation,
    TransportError, content,
};
use atmls_ds_proto::MailboxId;
use atmls_identity::ResolveError;

type Dev = Device<MemoryPds, MemoryDs>;

/// Back-off long enough that a second sync right after a failure skips the target.
const LONG: Duration = Duration::from_secs(3600);

async fn device_with(net: &MemoryNetwork, name: &str, config: DeviceConfig) -> Dev {
    net.device(
        name,
        config
            .with_one_time_key_packages(2)
            .with_own_device_check_interval(LONG)
            .with_self_update_interval(None),
    )
    .await
    .expect("device")
}

async fn device(net: &MemoryNetwork, name: &str) -> Dev {
    device_with(net, name, DeviceConfig::default()).await
}

/// `owner`'s new group `name` with `member` in it (joined).
async fn group_with(owner: &Dev, name: &str, member: &Dev) -> GroupId {
    let g = owner.create_group(name).await.unwrap();
    owner
        .add_members(&g, &[member.did().clone()])
        .await
        .unwrap();
    assert!(Event::joined(&member.sync().await.unwrap()).contains(&g));
    g
}

async fn mailbox_of(d: &Dev, g: &GroupId) -> MailboxId {
    MailboxId::from_bytes(d.group(g).await.unwrap().data.mailbox)
}

fn unreachable(events: &[Event], g: &GroupId) -> Option<TransportError> {
    events.iter().find_map(|e| match e {
        Event::Unreachable { group, error } if group == g => Some(error.clone()),
        _ => None,
    })
}

/// One group's DS fails transiently: that group is reported and backed off; the other
/// group and the inbox are read in the same sync, and the next sync does not ask the
/// failing mailbox again before its back-off. Once the DS is back (and the back-off
/// over), the message arrives.
#[tokio::test]
async fn failing_group_is_backed_off_alone() {
    let net = MemoryNetwork::new();
    let victim = device_with(
        &net,
        "victim",
        DeviceConfig::default().with_retry_backoff(Duration::from_millis(500), LONG),
    )
    .await;
    let alice = device(&net, "alice").await;
    let carol = device(&net, "carol").await;
    let dave = device(&net, "dave").await;
    let g1 = group_with(&alice, "g1", &victim).await;
    let g2 = group_with(&carol, "g2", &victim).await;
    alice.send(&g1, content::text("in g1")).await.unwrap();
    carol.send(&g2, content::text("in g2")).await.unwrap();
    let g3 = dave.create_group("g3").await.unwrap();
    dave.add_members(&g3, &[victim.did().clone()])
        .await
        .unwrap();
    let failing = mailbox_of(&alice, &g1).await;
    net.fail_mailbox(&failing, Some(TransportError::Network("reset".into())));

    let ev = victim.sync().await.unwrap();
    assert_eq!(Event::texts(&ev), ["in g2"], "{ev:?}");
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g3));
    let error = unreachable(&ev, &g1).expect("g1 reported");
    assert_eq!(error.kind(), FailureKind::Transient);

    // Backed off: the next sync reads g2 and g3 only.
    let reads = net.envelope_reads();
    let ev = victim.sync().await.unwrap();
    assert!(unreachable(&ev, &g1).is_none(), "{ev:?}");
    assert_eq!(net.envelope_reads() - reads, 2, "g1 was asked again");

    net.fail_mailbox(&failing, None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(Event::texts(&victim.sync().await.unwrap()), ["in g1"]);
}

/// The inbox's DS fails: reported as `InboxUnreachable`, the groups are still read.
#[tokio::test]
async fn failing_inbox_does_not_stop_the_groups() {
    let net = MemoryNetwork::new();
    let victim = device(&net, "victim").await;
    let alice = device(&net, "alice").await;
    let g = group_with(&alice, "g", &victim).await;
    alice.send(&g, content::text("hello")).await.unwrap();
    let (_, inbox) = victim.inbox().await;
    net.fail_mailbox(&inbox, Some(TransportError::Network("reset".into())));
    let ev = victim.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::InboxUnreachable { error } if error.is_transient())),
        "{ev:?}"
    );
    assert_eq!(Event::texts(&ev), ["hello"]);
}

/// A stranger's welcome whose out-of-band tree lives with a DID whose directory keeps
/// timing out: set aside on the device (`InboxItemDeferred`), the rest of the inbox and
/// the groups read in the same sync, retried at every sync (no back-off configured
/// here), and refused after the bounded number of attempts; then nothing more.
#[tokio::test]
async fn welcome_with_a_tree_that_stays_unreachable_is_refused_after_bounded_attempts() {
    let net = MemoryNetwork::new();
    let victim = device_with(
        &net,
        "victim",
        DeviceConfig::default().with_retry_backoff(Duration::ZERO, Duration::ZERO),
    )
    .await;
    let alice = device(&net, "alice").await;
    let mallory = device(&net, "mallory").await;
    let g = group_with(&alice, "g", &victim).await;
    let tree = TreeRef {
        did: mallory.did().clone(),
        cid: atmls_repo::cid::raw(b"tree"),
        key: [1; 32],
        nonce: [2; 12],
        digest: [3; 32],
        size: 1000,
    };
    let seq = deposit(&net, &mallory, &victim, Some(tree)).await;
    net.fail_resolution(mallory.did(), Some(ResolveError::Timeout));
    alice.send(&g, content::text("hello")).await.unwrap();

    let ev = victim.sync().await.unwrap();
    assert_eq!(Event::texts(&ev), ["hello"]);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::InboxItemDeferred { seq: s, attempts: 1, error }
            if *s == seq && error.is_transient())
        ),
        "{ev:?}"
    );
    let mut syncs = 1;
    let reason = loop {
        let ev = victim.sync().await.unwrap();
        syncs += 1;
        if let Some(reason) = ev.iter().find_map(|e| match e {
            Event::Rejected { seq: s, reason, .. } if *s == seq => Some(reason.clone()),
            _ => None,
        }) {
            break reason;
        }
        assert!(syncs < 40, "never refused");
    };
    assert_eq!(syncs, 16, "{reason}");
    assert!(reason.contains("after 16 attempts"), "{reason}");
    assert!(victim.sync().await.unwrap().is_empty());
}

/// A flood of stranger welcomes whose trees need a directory that keeps failing (over
/// HTTP each failure may cost a timeout): one sync tries at most two of them and sets the
/// rest aside untried, so the groups are read at once; the untried ones are due at the
/// next sync.
#[tokio::test]
async fn flood_of_failing_welcomes_costs_a_bounded_number_of_tries_per_sync() {
    let net = MemoryNetwork::new();
    let victim = device(&net, "victim").await;
    let alice = device(&net, "alice").await;
    let mallory = device(&net, "mallory").await;
    let g = group_with(&alice, "g", &victim).await;
    let mut seqs = Vec::new();
    for i in 0..5u8 {
        let tree = TreeRef {
            did: mallory.did().clone(),
            cid: atmls_repo::cid::raw(&[i]),
            key: [1; 32],
            nonce: [2; 12],
            digest: [3; 32],
            size: 1000,
        };
        seqs.push(deposit(&net, &mallory, &victim, Some(tree)).await);
    }
    net.fail_resolution(mallory.did(), Some(ResolveError::Timeout));
    alice.send(&g, content::text("hello")).await.unwrap();

    let before = net.resolutions();
    let ev = victim.sync().await.unwrap();
    assert_eq!(net.resolutions() - before, 2, "tries in one sync");
    assert_eq!(Event::texts(&ev), ["hello"]);
    let deferred: Vec<(u64, u32)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::InboxItemDeferred { seq, attempts, .. } => Some((*seq, *attempts)),
            _ => None,
        })
        .collect();
    let want: Vec<(u64, u32)> = seqs
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, u32::from(i < 2)))
        .collect();
    assert_eq!(deferred, want);
}

/// An honest large-group welcome (tree out of band) while the committer's DID does not
/// resolve for a moment: set aside, then joined once it resolves again — a passing
/// failure loses no welcome.
#[tokio::test]
async fn welcome_set_aside_joins_once_the_tree_is_reachable() {
    let net = MemoryNetwork::with_ds_config(
        atmls_ds::DsConfig::default().with_max_envelope_bytes(16 * 1024),
    );
    let config = DeviceConfig::default()
        .with_max_envelope_bytes(16 * 1024)
        .with_retry_backoff(Duration::ZERO, Duration::ZERO);
    let alice = device_with(&net, "alice", config.clone()).await;
    let mut dids = Vec::new();
    for i in 0..40 {
        dids.push(
            device_with(&net, &format!("m{i}"), config.clone())
                .await
                .did()
                .clone(),
        );
    }
    let joiner = device_with(&net, "joiner", config).await;
    let g = alice.create_group("big").await.unwrap();
    // Two at a time: a commit carries their KeyPackages and must fit in an envelope.
    for chunk in dids.chunks(2) {
        alice.add_members(&g, chunk).await.unwrap();
    }
    net.fail_resolution(alice.did(), Some(ResolveError::Status(503)));
    alice
        .add_members(&g, &[joiner.did().clone()])
        .await
        .unwrap();
    let ev = joiner.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::InboxItemDeferred { attempts: 1, .. })),
        "{ev:?}"
    );
    assert!(joiner.groups().await.unwrap().is_empty());
    net.fail_resolution(alice.did(), None);
    alice.send(&g, content::text("hello")).await.unwrap();
    let ev = joiner.sync().await.unwrap();
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g), "{ev:?}");
    assert_eq!(Event::texts(&ev), ["hello"]);
}

/// A member adds an account whose DID then vanishes (tombstoned): the others refuse the
/// commit (typed, naming the DID document) and move on; their other group is read in
/// the same sync. The same add while the directory only times out is postponed (the
/// group backs off) and applied once it answers.
#[tokio::test]
async fn added_did_that_vanishes_is_refused_and_one_that_times_out_is_postponed() {
    let net = MemoryNetwork::new();
    let victim = device_with(
        &net,
        "victim",
        DeviceConfig::default().with_retry_backoff(Duration::ZERO, Duration::ZERO),
    )
    .await;
    let alice = device(&net, "alice").await;
    let carol = device(&net, "carol").await;
    let dave = device(&net, "dave").await;
    let erin = device(&net, "erin").await;
    let g = group_with(&alice, "g", &victim).await;
    let g2 = group_with(&carol, "g2", &victim).await;

    // Transient: postponed, then applied.
    alice.add_members(&g, &[erin.did().clone()]).await.unwrap();
    net.fail_resolution(erin.did(), Some(ResolveError::Timeout));
    carol.send(&g2, content::text("one")).await.unwrap();
    let ev = victim.sync().await.unwrap();
    assert_eq!(Event::texts(&ev), ["one"]);
    assert!(
        unreachable(&ev, &g).is_some_and(|e| e.is_transient()),
        "{ev:?}"
    );
    net.fail_resolution(erin.did(), None);
    let ev = victim.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::GroupChanged { group, .. } if *group == g)),
        "{ev:?}"
    );

    // Permanent: refused, and the cursor moves on.
    alice.add_members(&g, &[dave.did().clone()]).await.unwrap();
    net.fail_resolution(dave.did(), Some(ResolveError::Gone));
    carol.send(&g2, content::text("two")).await.unwrap();
    let ev = victim.sync().await.unwrap();
    assert_eq!(Event::texts(&ev), ["two"]);
    assert!(
        ev.iter().any(|e| matches!(e, Event::CommitRefused {
            group,
            violation: PolicyViolation::LeafProofRefused {
                did,
                reason: KeyPackageRefusal::DidDocument(_),
            },
            ..
        } if *group == g && did == dave.did().as_str())),
        "{ev:?}"
    );
    assert!(victim.sync().await.unwrap().is_empty());
}

/// Both transports classify resolver failures alike: the memory network goes through
/// the same mapping as the HTTP one.
#[tokio::test]
async fn memory_resolution_failures_have_the_http_kinds() {
    use atmls_client::transport::Pds as _;
    let net = MemoryNetwork::new();
    let alice = net.account("alice");
    let bob = net.account("bob");
    for (failure, kind) in [
        (ResolveError::NotFound, FailureKind::Permanent),
        (ResolveError::Gone, FailureKind::Permanent),
        (ResolveError::Timeout, FailureKind::Transient),
        (ResolveError::Status(502), FailureKind::Transient),
    ] {
        net.fail_resolution(&bob.did(), Some(failure));
        let e = alice.resolve(&bob.did()).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        let e = alice
            .blob(&bob.did(), &atmls_repo::cid::raw(b"x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
    }
    let nobody = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let e = alice.resolve(&nobody).await.unwrap_err();
    assert!(matches!(e, TransportError::Unresolvable(_)), "{e}");
}

/// A stranger's welcome for `victim` (sealed to its published init key) naming `tree`.
async fn deposit(net: &MemoryNetwork, stranger: &Dev, victim: &Dev, tree: Option<TreeRef>) -> u64 {
    let kp = stranger
        .key_packages_of(victim.did())
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let info = WelcomeInfo {
        welcome: vec![0; 64],
        ds: net.ds_did(),
        mailbox: MailboxId::from_bytes(rand::random()),
        from_seq: 1,
        ratchet_tree: tree,
    };
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let sealed = seal_welcome(
        &crypto,
        kp.key_package.ciphersuite(),
        kp.key_package.hpke_init_key().as_slice(),
        &info,
    )
    .unwrap();
    let (ds, inbox) = victim.inbox().await;
    net.ds()
        .send_welcome(&ds, &inbox, content::pad(sealed, 1 << 20))
        .await
        .unwrap()
}
