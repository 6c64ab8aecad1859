//! Group mailboxes: sequencing, batches, commits and epoch keys, reads.

use std::time::Duration;

use atmls_ds::{
    AuthError, CreateMailboxError, EnvelopeKind, EnvelopeRule, MailboxKind, OutgoingEnvelope,
    ReadError, SendEnvelopesError, Store,
};

use crate::harness::{Harness, config, key, public};
use crate::on_both_stores;

fn rule(e: SendEnvelopesError) -> (usize, EnvelopeRule) {
    match e {
        SendEnvelopesError::InvalidEnvelope { index, rule } => (index, rule),
        other => panic!("expected InvalidEnvelope, got {other:?}"),
    }
}

fn sequence_numbers_are_gap_free<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let info = h.info(&k, &mb).unwrap();
    assert_eq!(
        (info.kind, info.epoch, info.seq),
        (MailboxKind::Group, Some(0), 0)
    );
    let mut expect = 1;
    for n in 1..=8usize {
        let batch = (0..n)
            .map(|i| OutgoingEnvelope::message(vec![n as u8, i as u8]))
            .collect();
        let r = h.send(&k, &mb, batch).unwrap();
        assert_eq!(
            (r.first_seq, r.last_seq, r.epoch),
            (expect, expect + n as u64 - 1, 0)
        );
        expect += n as u64;
    }
    let all = h.read_all(&k, &mb);
    assert_eq!(all.len(), 36);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.kind, EnvelopeKind::Message);
        assert_eq!(e.received_at, h.now);
    }
    assert_eq!(h.info(&k, &mb).unwrap().seq, 36);
}

fn batches_are_all_or_nothing<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    h.send_message(&k, &mb, b"first").unwrap();
    let max = config().max_batch_envelopes();
    let ok = || OutgoingEnvelope::message(b"ok".to_vec());

    let e = h.send(&k, &mb, vec![ok(); max + 1]).unwrap_err();
    assert!(
        matches!(e, SendEnvelopesError::BatchTooLarge { len, max: m } if len == max + 1 && m == max)
    );
    assert_eq!(e.name(), "BatchTooLarge");
    let e = h.send(&k, &mb, vec![]).unwrap_err();
    assert_eq!(e.name(), "InvalidRequest");

    let big = OutgoingEnvelope::message(vec![0; config().max_envelope_bytes() + 1]);
    let e = h.send(&k, &mb, vec![ok(), big]).unwrap_err();
    assert!(matches!(
        e,
        SendEnvelopesError::EnvelopeTooLarge { index: 1, .. }
    ));
    assert_eq!(e.name(), "EnvelopeTooLarge");
    let exact = OutgoingEnvelope::message(vec![0; config().max_envelope_bytes()]);
    h.send(&k, &mb, vec![exact]).unwrap();

    let nk = public(&key(2));
    let commit = |epoch| OutgoingEnvelope::commit(epoch, b"c".to_vec(), nk);
    let cases: Vec<(Vec<OutgoingEnvelope>, usize, EnvelopeRule)> = vec![
        (
            vec![ok(), commit(0), commit(0)],
            2,
            EnvelopeRule::TwoCommits,
        ),
        (
            vec![OutgoingEnvelope {
                epoch: None,
                ..commit(0)
            }],
            0,
            EnvelopeRule::CommitWithoutEpoch,
        ),
        (
            vec![
                ok(),
                OutgoingEnvelope {
                    next_key: None,
                    ..commit(0)
                },
            ],
            1,
            EnvelopeRule::CommitWithoutNextKey,
        ),
        (
            vec![OutgoingEnvelope {
                next_key: Some(vec![1; 31]),
                ..commit(0)
            }],
            0,
            EnvelopeRule::InvalidNextKey,
        ),
        (
            // The identity point: small order, a weak key.
            vec![OutgoingEnvelope {
                next_key: Some({
                    let mut b = vec![0; 32];
                    b[0] = 1;
                    b
                }),
                ..commit(0)
            }],
            0,
            EnvelopeRule::InvalidNextKey,
        ),
        (
            vec![OutgoingEnvelope {
                next_key: Some(nk.to_vec()),
                ..ok()
            }],
            0,
            EnvelopeRule::NextKeyOnMessage,
        ),
        (
            vec![
                ok(),
                OutgoingEnvelope {
                    kind: EnvelopeKind::Welcome,
                    ..ok()
                },
            ],
            1,
            EnvelopeRule::Kind(EnvelopeKind::Welcome),
        ),
        (
            vec![ok(), OutgoingEnvelope::message(vec![])],
            1,
            EnvelopeRule::EmptyPayload,
        ),
    ];
    for (batch, index, want) in cases {
        let e = h.send(&k, &mb, batch).unwrap_err();
        assert_eq!(e.name(), "InvalidEnvelope");
        assert_eq!(rule(e), (index, want));
    }
    // Nothing of the refused batches was stored; the epoch did not move.
    let info = h.info(&k, &mb).unwrap();
    assert_eq!((info.seq, info.epoch), (2, Some(0)));
    assert_eq!(h.read_all(&k, &mb).len(), 2);
}

fn commits_advance_the_epoch_and_rotate_keys<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let (k0, k1, k2) = (key(10), key(11), key(12));
    let mb = h.group("did:plc:a", &k0, 5);
    h.send_message(&k0, &mb, b"m").unwrap();
    let r = h
        .send(
            &k0,
            &mb,
            vec![
                OutgoingEnvelope::message(b"before".to_vec()),
                OutgoingEnvelope::commit(5, b"commit".to_vec(), public(&k1)),
                OutgoingEnvelope::message(b"after".to_vec()),
            ],
        )
        .unwrap();
    assert_eq!((r.first_seq, r.last_seq, r.epoch), (2, 4, 6));
    let all = h.read_all(&k1, &mb);
    assert_eq!(all[2].kind, EnvelopeKind::Commit);
    assert_eq!(all[2].epoch, Some(5));
    assert_eq!(all[1].epoch, None);
    // A stale commit: conflict with the current epoch and head.
    let e = h
        .send(
            &k1,
            &mb,
            vec![OutgoingEnvelope::commit(5, b"late".to_vec(), public(&k2))],
        )
        .unwrap_err();
    assert!(matches!(
        e,
        SendEnvelopesError::EpochConflict {
            current_epoch: 6,
            current_seq: 4
        }
    ));
    assert_eq!(e.name(), "EpochConflict");
    // A commit from the future is a conflict too.
    let e = h
        .send(
            &k1,
            &mb,
            vec![OutgoingEnvelope::commit(7, b"x".to_vec(), public(&k2))],
        )
        .unwrap_err();
    assert!(matches!(
        e,
        SendEnvelopesError::EpochConflict {
            current_epoch: 6,
            ..
        }
    ));
    // The previous key, inside its grace window, may send messages but not commit.
    let e = h
        .send(
            &k0,
            &mb,
            vec![OutgoingEnvelope::commit(6, b"hijack".to_vec(), public(&k2))],
        )
        .unwrap_err();
    assert!(matches!(e, SendEnvelopesError::Auth(AuthError::KeyExpired)));
    assert_eq!(h.info(&k1, &mb).unwrap().epoch, Some(6));
    // Two commits in a row: the key two epochs back is gone at once.
    h.send(
        &k1,
        &mb,
        vec![OutgoingEnvelope::commit(6, b"c7".to_vec(), public(&k2))],
    )
    .unwrap();
    let e = h.send_message(&k0, &mb, b"x").unwrap_err();
    assert!(matches!(e, SendEnvelopesError::Auth(AuthError::KeyExpired)));
    h.send_message(&k1, &mb, b"x").unwrap();
    h.send_message(&k2, &mb, b"x").unwrap();
}

fn removed_member_after_grace<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let grace = config().key_grace();
    let (old, new) = (key(20), key(21));
    let mb = h.group("did:plc:a", &old, 0);
    h.send_message(&old, &mb, b"hello").unwrap();
    // A remaining member commits the removal; the removed member only knows `old`.
    h.send(
        &old,
        &mb,
        vec![OutgoingEnvelope::commit(
            0,
            b"remove".to_vec(),
            public(&new),
        )],
    )
    .unwrap();
    // Inside the grace window the old key still sends and reads.
    h.advance(grace - Duration::from_millis(1));
    h.send_message(&old, &mb, b"in flight").unwrap();
    assert_eq!(h.read(&old, &mb, 0, 100).unwrap().envelopes.len(), 3);
    assert_eq!(h.info(&old, &mb).unwrap().seq, 3);
    // From the end of the window on, it may only read, and only up to and including its
    // removal commit (seq 2): not the message sent during the grace window.
    h.advance(Duration::from_millis(1));
    let e = h.send_message(&old, &mb, b"late").unwrap_err();
    assert!(
        matches!(e, SendEnvelopesError::Auth(AuthError::KeyExpired)),
        "{e:?}"
    );
    let page = h.read(&old, &mb, 0, 100).unwrap();
    let seqs: Vec<u64> = page.envelopes.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(page.envelopes[1].payload, b"remove");
    assert_eq!((page.cursor, page.head_seq, page.epoch), (2, 2, None));
    // Page by page, the same.
    let page = h.read(&old, &mb, 0, 1).unwrap();
    assert_eq!(
        (page.envelopes[0].seq, page.cursor, page.head_seq),
        (1, 1, 2)
    );
    let page = h.read(&old, &mb, 1, 100).unwrap();
    assert_eq!(
        (page.envelopes.len(), page.cursor, page.head_seq),
        (1, 2, 2)
    );
    // Nothing left for it: from its end on (and beyond the head), `KeyExpired`.
    for cursor in [2, 3, 4] {
        let e = h.read(&old, &mb, cursor, 100).unwrap_err();
        assert!(matches!(e, ReadError::Auth(AuthError::KeyExpired)), "{e:?}");
    }
    let e = h.info(&old, &mb).unwrap_err();
    assert_eq!(e.name(), "KeyExpired");
    // Forever: later traffic changes nothing for it.
    assert_eq!(h.send_message(&new, &mb, b"bye").unwrap().first_seq, 4);
    h.advance(Duration::from_secs(3600));
    let page = h.read(&old, &mb, 0, 100).unwrap();
    assert_eq!(
        (page.envelopes.len(), page.head_seq, page.epoch),
        (2, 2, None)
    );
    // An unknown key is still refused.
    let e = h.read(&key(99), &mb, 0, 100).unwrap_err();
    assert!(matches!(e, ReadError::Auth(AuthError::KeyExpired)), "{e:?}");
}

/// A member two commits behind reads each commit in turn with the key it has, derives
/// the next key from it, and never sees anything after the end of its key's epoch.
fn member_two_commits_behind_catches_up<S: Store>(store: S) {
    let mut h = Harness::new(store);
    // A commit's payload names the seed of the next key (standing in for MLS).
    let derive = |commit: &atmls_ds::Envelope| {
        assert_eq!(commit.kind, EnvelopeKind::Commit);
        key(commit.payload[0])
    };
    let (k0, k1, k2) = (key(30), key(31), key(32));
    let mb = h.group("did:plc:a", &k0, 0);
    h.send_message(&k0, &mb, b"e0").unwrap(); // 1
    h.send(
        &k0,
        &mb,
        vec![OutgoingEnvelope::commit(0, vec![31], public(&k1))],
    )
    .unwrap(); // 2
    h.send_message(&k1, &mb, b"e1").unwrap(); // 3
    h.send(
        &k1,
        &mb,
        vec![OutgoingEnvelope::commit(1, vec![32], public(&k2))],
    )
    .unwrap(); // 4
    h.send_message(&k2, &mb, b"e2").unwrap(); // 5

    // Two quick commits: `k0` is neither current nor previous (inside the grace window).
    let e = h.send_message(&k0, &mb, b"x").unwrap_err();
    assert!(matches!(e, SendEnvelopesError::Auth(AuthError::KeyExpired)));
    let page = h.read(&k0, &mb, 0, 100).unwrap();
    assert_eq!(
        page.envelopes.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!((page.cursor, page.head_seq, page.epoch), (2, 2, None));
    let next = derive(&page.envelopes[1]);
    assert_eq!(public(&next), public(&k1));
    // `k1` is the previous key, inside its grace window: today's rights (all of it).
    let page = h.read(&next, &mb, 2, 100).unwrap();
    assert_eq!(
        (page.envelopes.len(), page.head_seq, page.epoch),
        (3, 5, Some(2))
    );

    // After the grace window, `k1` too only reads up to the commit that ended its epoch.
    h.advance(config().key_grace());
    let page = h.read(&k0, &mb, 0, 100).unwrap();
    assert_eq!(page.cursor, 2);
    let page = h.read(&next, &mb, 2, 100).unwrap();
    assert_eq!(
        page.envelopes.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!((page.cursor, page.head_seq, page.epoch), (4, 4, None));
    let e = h.read(&next, &mb, 4, 100).unwrap_err();
    assert!(matches!(e, ReadError::Auth(AuthError::KeyExpired)), "{e:?}");
    let e = h.send_message(&next, &mb, b"x").unwrap_err();
    assert!(matches!(e, SendEnvelopesError::Auth(AuthError::KeyExpired)));
    let newest = derive(&page.envelopes[1]);
    // With the current key it is caught up and may send and commit again.
    let page = h.read(&newest, &mb, 4, 100).unwrap();
    assert_eq!(
        (page.envelopes.len(), page.head_seq, page.epoch),
        (1, 5, Some(2))
    );
    assert_eq!(h.info(&newest, &mb).unwrap().epoch, Some(2));
    h.send_message(&newest, &mb, b"back").unwrap();
}

fn zero_grace_cuts_off_at_once<S: Store>(store: S) {
    let mut h = Harness::with_config(store, config().with_key_grace(Duration::ZERO));
    let (old, new) = (key(20), key(21));
    let mb = h.group("did:plc:a", &old, 0);
    h.send(
        &old,
        &mb,
        vec![OutgoingEnvelope::commit(0, b"c".to_vec(), public(&new))],
    )
    .unwrap();
    assert!(h.send_message(&old, &mb, b"x").is_err());
}

fn reads_and_cursors<S: Store>(store: S) {
    let mut h = Harness::with_config(store, config().with_max_page_bytes(10));
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let page = h.read(&k, &mb, 0, 100).unwrap();
    assert_eq!(
        (page.envelopes.len(), page.cursor, page.head_seq, page.epoch),
        (0, 0, 0, Some(0))
    );
    for i in 0..5u8 {
        h.send_message(&k, &mb, &[i; 4]).unwrap();
    }
    // limit
    let page = h.read(&k, &mb, 0, 1).unwrap();
    assert_eq!(
        (page.envelopes.len(), page.cursor, page.head_seq),
        (1, 1, 5)
    );
    // page bytes: 4 + 4 <= 10 < 12
    let page = h.read(&k, &mb, 1, 100).unwrap();
    assert_eq!(
        page.envelopes.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(page.cursor, 3);
    // at the head: empty page, cursor unchanged
    let page = h.read(&k, &mb, 5, 100).unwrap();
    assert_eq!((page.envelopes.len(), page.cursor), (0, 5));
    let e = h.read(&k, &mb, 6, 100).unwrap_err();
    assert!(matches!(e, ReadError::FutureCursor { cursor: 6, head: 5 }));
    assert_eq!(e.name(), "FutureCursor");
    // limit 0 is read as 1
    assert_eq!(h.read(&k, &mb, 0, 0).unwrap().envelopes.len(), 1);
    // a single envelope larger than the page bytes still comes back
    h.send_message(&k, &mb, &[9; 64]).unwrap();
    assert_eq!(h.read(&k, &mb, 5, 100).unwrap().envelopes.len(), 1);
}

fn create_mailbox_rules<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = public(&key(1));
    for bad in [
        &k[..31],
        &[0u8; 32][..],
        &{
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        }[..],
    ] {
        let e =
            h.ds.create_mailbox("did:plc:a", MailboxKind::Group, bad, 0)
                .unwrap_err();
        assert!(matches!(e, CreateMailboxError::InvalidKey));
        assert_eq!(e.name(), "InvalidKey");
    }
    // Quota: 3 per account, counted across kinds; other accounts unaffected; invalid
    // requests do not count.
    h.ds.create_mailbox("did:plc:a", MailboxKind::Group, &k, 0)
        .unwrap();
    h.ds.create_mailbox("did:plc:a", MailboxKind::Inbox, &k, 0)
        .unwrap();
    let info =
        h.ds.create_mailbox("did:plc:a", MailboxKind::Group, &k, 9)
            .unwrap();
    assert_eq!(
        (info.kind, info.epoch, info.seq),
        (MailboxKind::Group, Some(9), 0)
    );
    let e =
        h.ds.create_mailbox("did:plc:a", MailboxKind::Inbox, &k, 0)
            .unwrap_err();
    assert!(matches!(e, CreateMailboxError::QuotaExceeded { max: 3 }));
    assert_eq!(e.name(), "QuotaExceeded");
    let inbox =
        h.ds.create_mailbox("did:plc:b", MailboxKind::Inbox, &k, 7)
            .unwrap();
    assert_eq!((inbox.kind, inbox.epoch), (MailboxKind::Inbox, None));
    assert_eq!(h.ds.store().account_mailboxes("did:plc:a").unwrap(), 3);
    assert_eq!(h.ds.store().account_mailboxes("did:plc:b").unwrap(), 1);
    assert_eq!(h.ds.store().account_mailboxes("did:plc:c").unwrap(), 0);
}

fn unknown_mailbox<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let id = atmls_ds::MailboxId::from_bytes([3; 32]);
    assert_eq!(
        h.send_message(&k, &id, b"x").unwrap_err().name(),
        "MailboxNotFound"
    );
    assert_eq!(h.read(&k, &id, 0, 1).unwrap_err().name(), "MailboxNotFound");
    assert_eq!(h.info(&k, &id).unwrap_err().name(), "MailboxNotFound");
    assert_eq!(h.welcome(&id, b"w").unwrap_err().name(), "MailboxNotFound");
    assert_eq!(h.list(&k, &id, 0).unwrap_err().name(), "MailboxNotFound");
    assert_eq!(
        h.delete(&k, &id, &[1]).unwrap_err().name(),
        "MailboxNotFound"
    );
}

on_both_stores!(
    sequence_numbers_are_gap_free,
    batches_are_all_or_nothing,
    commits_advance_the_epoch_and_rotate_keys,
    removed_member_after_grace,
    zero_grace_cuts_off_at_once,
    member_two_commits_behind_catches_up,
    reads_and_cursors,
    create_mailbox_rules,
    unknown_mailbox,
);

#[test]
fn epoch_overflow_is_refused_not_a_panic() {
    let mut h = Harness::new(crate::harness::memory_store());
    let k = key(1);
    let mb = h.group("did:plc:a", &k, atmls_ds::MAX_EPOCH);
    let e = h
        .send(
            &k,
            &mb,
            vec![OutgoingEnvelope::commit(
                atmls_ds::MAX_EPOCH,
                b"c".to_vec(),
                public(&key(2)),
            )],
        )
        .unwrap_err();
    assert_eq!(rule(e), (0, EnvelopeRule::EpochOverflow));
    // An epoch no backend can move past is refused at creation, on every backend (it
    // used to be a store failure on SQLite: 500).
    let mut h = Harness::new(crate::harness::sqlite_store());
    let e =
        h.ds.create_mailbox("did:plc:a", MailboxKind::Group, &public(&k), u64::MAX)
            .unwrap_err();
    assert_eq!(e.name(), "InvalidRequest");
}
