//! Retention: per-kind TTLs, sequence numbers never reused.

use std::time::Duration;

use atmls_ds::{EnvelopeKind, EnvelopeRule, Expired, OutgoingEnvelope, SendEnvelopesError, Store};

use crate::harness::{Harness, config, key, public};
use crate::on_both_stores;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn expiry_per_kind<S: Store>(store: S) {
    let cfg = config()
        .with_group_retention(Some(DAY))
        .with_inbox_retention(Some(DAY * 7));
    let mut h = Harness::with_config(store, cfg);
    let k = key(1);
    let group = h.group("did:plc:a", &k, 0);
    let inbox = h.inbox("did:plc:a", &k);
    h.send_message(&k, &group, b"old").unwrap();
    h.welcome(&inbox, b"old").unwrap();
    h.advance(DAY - Duration::from_millis(1));
    h.send_message(&k, &group, b"newer").unwrap();
    // Exactly one TTL old is not yet expired.
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ds.expire(h.now).unwrap(), Expired::default());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.ds.expire(h.now).unwrap(),
        Expired {
            group_envelopes: 1,
            inbox_items: 0,
            ..Expired::default()
        }
    );
    let left = h.read_all(&k, &group);
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
    // Sequence numbers continue after the head, never reused.
    assert_eq!(h.send_message(&k, &group, b"x").unwrap().first_seq, 3);
    assert_eq!(h.read(&k, &group, 0, 10).unwrap().head_seq, 3);
    h.advance(DAY * 6);
    let ex = h.ds.expire(h.now).unwrap();
    assert_eq!(
        ex,
        Expired {
            group_envelopes: 2,
            inbox_items: 1,
            ..Expired::default()
        }
    );
    assert!(h.list(&k, &inbox, 0).unwrap().items.is_empty());
    assert_eq!(h.welcome(&inbox, b"w").unwrap(), 2);
}

fn no_retention_keeps_everything<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let group = h.group("did:plc:a", &k, 0);
    h.send_message(&k, &group, b"x").unwrap();
    h.advance(DAY * 3650);
    assert_eq!(h.ds.expire(h.now).unwrap(), Expired::default());
    assert_eq!(h.read_all(&k, &group).len(), 1);
}

const HOUR: Duration = Duration::from_secs(3600);

/// A commit's `messageLifetime` (§11.18): `getMailbox` answers it, the mailbox's messages
/// go after lifetime + margin (1 h) while its commits stay for the operator's retention,
/// another mailbox is untouched, a later commit with 0 turns it off; the value is refused
/// on a message and out of bounds.
fn message_lifetime_per_mailbox<S: Store>(store: S) {
    let mut h = Harness::with_config(store, config().with_group_retention(Some(DAY * 30)));
    let (k0, k1, k2) = (key(1), key(2), key(3));
    let group = h.group("did:plc:a", &k0, 0);
    let other = h.group("did:plc:a", &k0, 0);
    assert_eq!(h.info(&k0, &group).unwrap().message_lifetime, None);
    // Refused: on a message, or out of bounds (nothing stored).
    for (batch, rule) in [
        (
            vec![OutgoingEnvelope {
                message_lifetime: Some(60),
                ..OutgoingEnvelope::message(b"m".to_vec())
            }],
            EnvelopeRule::LifetimeOnMessage,
        ),
        (
            vec![OutgoingEnvelope::commit(0, b"c".to_vec(), public(&k1)).with_message_lifetime(59)],
            EnvelopeRule::LifetimeOutOfBounds,
        ),
        (
            vec![
                OutgoingEnvelope::commit(0, b"c".to_vec(), public(&k1))
                    .with_message_lifetime(31_536_001),
            ],
            EnvelopeRule::LifetimeOutOfBounds,
        ),
    ] {
        let e = h.send(&k0, &group, batch).unwrap_err();
        assert!(
            matches!(&e, SendEnvelopesError::InvalidEnvelope { index: 0, rule: r } if *r == rule),
            "{e:?}"
        );
        assert_eq!(e.name(), "InvalidEnvelope");
    }
    // A one-minute lifetime, set by the commit of epoch 0.
    h.send(
        &k0,
        &group,
        vec![OutgoingEnvelope::commit(0, b"c".to_vec(), public(&k1)).with_message_lifetime(60)],
    )
    .unwrap();
    assert_eq!(h.info(&k1, &group).unwrap().message_lifetime, Some(60));
    h.send_message(&k1, &group, b"secret").unwrap();
    h.send_message(&k0, &other, b"kept").unwrap();
    // Lifetime + margin exactly: still there.
    h.advance(Duration::from_secs(60) + HOUR);
    assert_eq!(h.ds.expire(h.now).unwrap(), Expired::default());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.ds.expire(h.now).unwrap(),
        Expired {
            lifetime_messages: 1,
            ..Expired::default()
        }
    );
    let left = h.read_all(&k1, &group);
    assert_eq!(
        left.iter().map(|e| (e.seq, e.kind)).collect::<Vec<_>>(),
        vec![(1, EnvelopeKind::Commit)]
    );
    assert_eq!(h.read_all(&k0, &other).len(), 1);
    // Turned off by the next commit: messages stay (up to the operator's 30 days).
    h.send(
        &k1,
        &group,
        vec![OutgoingEnvelope::commit(1, b"c".to_vec(), public(&k2)).with_message_lifetime(0)],
    )
    .unwrap();
    assert_eq!(h.info(&k2, &group).unwrap().message_lifetime, None);
    h.send_message(&k2, &group, b"later").unwrap();
    h.advance(DAY);
    assert_eq!(h.ds.expire(h.now).unwrap(), Expired::default());
    assert_eq!(h.read_all(&k2, &group).len(), 3);
    // A commit without the field leaves the lifetime as it is.
    h.send(
        &k2,
        &group,
        vec![OutgoingEnvelope::commit(2, b"c".to_vec(), public(&k0)).with_message_lifetime(120)],
    )
    .unwrap();
    h.send(
        &k0,
        &group,
        vec![OutgoingEnvelope::commit(3, b"c".to_vec(), public(&k1))],
    )
    .unwrap();
    assert_eq!(h.info(&k1, &group).unwrap().message_lifetime, Some(120));
}

on_both_stores!(
    expiry_per_kind,
    no_retention_keeps_everything,
    message_lifetime_per_mailbox
);
