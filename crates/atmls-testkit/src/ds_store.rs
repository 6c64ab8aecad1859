//! The DS storage contract ([`atmls_ds::store::Store`]) as public test functions.
//!
//! Each function takes a fresh, empty store and panics when the store breaks the
//! contract. A backend runs all of them with [`ds_store_suite!`](crate::ds_store_suite):
//!
//! ```
//! mod memory {
//!     atmls_testkit::ds_store_suite!(atmls_ds::MemoryStore::new());
//! }
//! ```

use atmls_ds::auth::MailboxKey;
use atmls_ds::store::{
    Append, CreateOutcome, EndedEpoch, Mailbox, MailboxKeys, PageLimit, PreviousKey, SavedNonce,
    Store, StoreError,
};
use atmls_ds::{Envelope, EnvelopeKind, MailboxId, MailboxKind, Timestamp};

/// A deterministic mailbox key, different for each `n`.
pub fn mailbox_key(n: u8) -> MailboxKey {
    let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
    MailboxKey::from_bytes(&key.verifying_key().to_bytes()).expect("a valid Ed25519 key")
}

/// A new group mailbox with id `[id; 32]` at epoch 0 under `mailbox_key(1)`.
pub fn group(id: u8) -> Mailbox {
    Mailbox {
        id: MailboxId::from_bytes([id; 32]),
        head: 0,
        stored_bytes: 0,
        message_lifetime: None,
        keys: MailboxKeys::Group {
            epoch: 0,
            current: mailbox_key(1),
            previous: None,
        },
    }
}

/// A new inbox with id `[id; 32]` owned by `mailbox_key(2)`.
pub fn inbox(id: u8) -> Mailbox {
    Mailbox {
        id: MailboxId::from_bytes([id; 32]),
        head: 0,
        stored_bytes: 0,
        message_lifetime: None,
        keys: MailboxKeys::Inbox {
            owner: mailbox_key(2),
        },
    }
}

/// The envelope `seq` of a test mailbox: payload `"payload {seq}"`, received at `at` ms.
pub fn envelope(seq: u64, kind: EnvelopeKind, at: u64) -> Envelope {
    Envelope {
        seq,
        kind,
        epoch: (kind == EnvelopeKind::Commit).then_some(seq),
        payload: format!("payload {seq}").into_bytes(),
        received_at: Timestamp::from_millis(at),
    }
}

/// The append of `n` envelopes of `kind` after `before`'s head, expecting that head.
pub fn batch(before: &Mailbox, kind: EnvelopeKind, n: u64, at: u64) -> Append {
    let mut after = *before;
    after.head = before.head + n;
    let envelopes: Vec<Envelope> = (1..=n)
        .map(|i| envelope(before.head + i, kind, at))
        .collect();
    after.stored_bytes += envelopes
        .iter()
        .map(|e| e.payload.len() as u64)
        .sum::<u64>();
    Append {
        expected_head: before.head,
        mailbox: after,
        envelopes,
    }
}

/// A page limit that never cuts.
pub const EVERYTHING: PageLimit = PageLimit {
    envelopes: usize::MAX,
    bytes: usize::MAX,
};

/// Creating mailboxes: read back, duplicates refused, the per-account quota counted
/// and enforced without a trace of the refused mailbox.
pub fn create_read_and_quota<S: Store>(mut s: S) {
    let g = group(1);
    assert_eq!(s.mailbox(&g.id).unwrap(), None);
    assert_eq!(
        s.create_mailbox("did:plc:x", 2, &g).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(s.mailbox(&g.id).unwrap(), Some(g));
    assert!(matches!(
        s.create_mailbox("did:plc:x", 2, &g),
        Err(StoreError::DuplicateMailbox(_))
    ));
    assert_eq!(s.account_mailboxes("did:plc:x").unwrap(), 1);
    assert_eq!(
        s.create_mailbox("did:plc:x", 2, &inbox(2)).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        s.create_mailbox("did:plc:x", 2, &group(3)).unwrap(),
        CreateOutcome::QuotaExceeded
    );
    assert_eq!(s.mailbox(&group(3).id).unwrap(), None);
    assert_eq!(s.account_mailboxes("did:plc:x").unwrap(), 2);
    assert_eq!(
        s.create_mailbox("did:plc:y", 2, &group(3)).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        s.mailbox(&inbox(2).id).unwrap().unwrap().kind(),
        MailboxKind::Inbox
    );
}

/// An append stores the envelopes and the mailbox's new state (head, bytes, keys)
/// together.
pub fn append_updates_state_atomically<S: Store>(mut s: S) {
    let g = group(1);
    s.create_mailbox("a", 10, &g).unwrap();
    let b1 = batch(&g, EnvelopeKind::Message, 3, 5);
    s.append(std::slice::from_ref(&b1)).unwrap();
    // A commit batch with new keys.
    let mut b2 = batch(&b1.mailbox, EnvelopeKind::Commit, 1, 6);
    b2.mailbox.keys = MailboxKeys::Group {
        epoch: 1,
        current: mailbox_key(3),
        previous: Some(PreviousKey {
            key: mailbox_key(1),
            valid_until: Timestamp::from_millis(99),
        }),
    };
    s.append(std::slice::from_ref(&b2)).unwrap();
    assert_eq!(s.mailbox(&g.id).unwrap(), Some(b2.mailbox));
    let all = s.envelopes(&g.id, 0, EVERYTHING).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], envelope(4, EnvelopeKind::Commit, 6));
    assert_eq!(all[0], envelope(1, EnvelopeKind::Message, 5));
}

/// The compare-and-swap on the head: a stale head loses with `HeadMoved`; gaps,
/// wrong heads, wrong kinds, empty batches and unknown mailboxes are refused, and
/// nothing of them is stored.
pub fn append_refuses_stale_heads_and_gaps<S: Store>(mut s: S) {
    let g = group(1);
    s.create_mailbox("a", 10, &g).unwrap();
    let first = batch(&g, EnvelopeKind::Message, 1, 0);
    // Two writers sequence against the same head: the second loses.
    let rival = batch(&g, EnvelopeKind::Message, 2, 0);
    s.append(std::slice::from_ref(&first)).unwrap();
    assert!(matches!(
        s.append(&[rival]),
        Err(StoreError::HeadMoved {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    // A gap, a wrong head, a wrong kind, an empty batch, an unknown mailbox.
    let mut gap = batch(&first.mailbox, EnvelopeKind::Message, 2, 0);
    gap.envelopes[1].seq = 4;
    gap.mailbox.head = 4;
    let mut wrong_head = batch(&first.mailbox, EnvelopeKind::Message, 2, 0);
    wrong_head.mailbox.head = 9;
    let wrong_kind = batch(&first.mailbox, EnvelopeKind::Welcome, 1, 0);
    let empty = batch(&first.mailbox, EnvelopeKind::Message, 0, 0);
    for bad in [gap, wrong_head, wrong_kind, empty] {
        assert!(matches!(
            s.append(&[bad]),
            Err(StoreError::InvalidAppend(_))
        ));
    }
    assert!(matches!(
        s.append(&[batch(&group(9), EnvelopeKind::Message, 1, 0)]),
        Err(StoreError::UnknownMailbox(_))
    ));
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 1);
    assert_eq!(s.envelopes(&g.id, 0, EVERYTHING).unwrap().len(), 1);
}

/// Several batches in one call (also of one mailbox) apply all or nothing.
pub fn group_commit_of_several_batches<S: Store>(mut s: S) {
    let (a, b) = (group(1), inbox(2));
    s.create_mailbox("x", 10, &a).unwrap();
    s.create_mailbox("x", 10, &b).unwrap();
    let a1 = batch(&a, EnvelopeKind::Message, 2, 0);
    let a2 = batch(&a1.mailbox, EnvelopeKind::Message, 1, 0);
    let b1 = batch(&b, EnvelopeKind::Welcome, 1, 0);
    s.append(&[a1, b1.clone(), a2]).unwrap();
    assert_eq!(s.mailbox(&a.id).unwrap().unwrap().head, 3);
    assert_eq!(s.mailbox(&b.id).unwrap().unwrap().head, 1);
    // One bad batch: none of them applies.
    let a3 = batch(
        &s.mailbox(&a.id).unwrap().unwrap(),
        EnvelopeKind::Message,
        1,
        0,
    );
    let stale = batch(&b, EnvelopeKind::Welcome, 1, 0);
    assert!(s.append(&[a3, stale]).is_err());
    assert_eq!(s.mailbox(&a.id).unwrap().unwrap().head, 3);
    assert_eq!(s.envelopes(&a.id, 0, EVERYTHING).unwrap().len(), 3);
    assert_eq!(s.envelopes(&b.id, 0, EVERYTHING).unwrap(), b1.envelopes);
}

/// Pages by count and bytes, deletes count what existed, expiry by kind and age;
/// heads never go back.
pub fn pages_delete_and_expire<S: Store>(mut s: S) {
    let (g, i) = (group(1), inbox(2));
    s.create_mailbox("x", 10, &g).unwrap();
    s.create_mailbox("x", 10, &i).unwrap();
    let g1 = batch(&g, EnvelopeKind::Message, 5, 100);
    s.append(std::slice::from_ref(&g1)).unwrap();
    let g2 = batch(&g1.mailbox, EnvelopeKind::Message, 5, 200);
    s.append(&[g2]).unwrap();
    let i1 = batch(&i, EnvelopeKind::Welcome, 3, 100);
    s.append(&[i1]).unwrap();
    let page = s
        .envelopes(
            &g.id,
            2,
            PageLimit {
                envelopes: 3,
                bytes: usize::MAX,
            },
        )
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    // "payload N" is 9 bytes: 2 fit in 20 bytes.
    let page = s
        .envelopes(
            &g.id,
            0,
            PageLimit {
                envelopes: 10,
                bytes: 20,
            },
        )
        .unwrap();
    assert_eq!(page.len(), 2);
    let page = s
        .envelopes(
            &g.id,
            0,
            PageLimit {
                envelopes: 10,
                bytes: 1,
            },
        )
        .unwrap();
    assert_eq!(page.len(), 1);
    assert!(s.envelopes(&g.id, 10, EVERYTHING).unwrap().is_empty());
    assert!(s.envelopes(&group(7).id, 0, EVERYTHING).unwrap().is_empty());
    // Deleting counts only what existed; other mailboxes untouched.
    assert_eq!(s.delete_envelopes(&i.id, &[1, 1, 7]).unwrap(), 1);
    assert_eq!(s.delete_envelopes(&g.id, &[u64::MAX]).unwrap(), 0);
    // Expire by kind and age.
    assert_eq!(
        s.expire(MailboxKind::Group, Timestamp::from_millis(200))
            .unwrap(),
        5
    );
    assert_eq!(
        s.envelopes(&g.id, 0, EVERYTHING)
            .unwrap()
            .first()
            .map(|e| e.seq),
        Some(6)
    );
    assert_eq!(s.envelopes(&i.id, 0, EVERYTHING).unwrap().len(), 2);
    assert_eq!(
        s.expire(MailboxKind::Inbox, Timestamp::from_millis(101))
            .unwrap(),
        2
    );
    // Heads never go back.
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 10);
    assert_eq!(s.mailbox(&i.id).unwrap().unwrap().head, 3);
}

/// A group's message lifetime (spec §11.18) is written by the append that carries it,
/// read back, and deletes only that mailbox's `message` envelopes older than `lifetime +
/// margin` (commits stay, other mailboxes stay, bytes are given back, heads unchanged);
/// an append that clears it stops the deletions.
pub fn message_lifetime_expires_messages_only<S: Store>(mut s: S) {
    let margin = std::time::Duration::from_secs(3600);
    let (g, h) = (group(1), group(2));
    s.create_mailbox("x", 10, &g).unwrap();
    s.create_mailbox("x", 10, &h).unwrap();
    let mut set = batch(&g, EnvelopeKind::Commit, 1, 1000);
    set.mailbox.message_lifetime = Some(60);
    s.append(std::slice::from_ref(&set)).unwrap();
    assert_eq!(
        s.mailbox(&g.id).unwrap().unwrap().message_lifetime,
        Some(60)
    );
    let old = batch(&set.mailbox, EnvelopeKind::Message, 2, 1000);
    s.append(std::slice::from_ref(&old)).unwrap();
    let new = batch(&old.mailbox, EnvelopeKind::Message, 1, 100_000);
    s.append(std::slice::from_ref(&new)).unwrap();
    let other = batch(&h, EnvelopeKind::Message, 2, 1000);
    s.append(&[other]).unwrap();
    let bytes = s.mailbox(&g.id).unwrap().unwrap().stored_bytes;
    // Received exactly at the cutoff: kept.
    let at = |ms: u64| Timestamp::from_millis(ms + 60_000 + 3_600_000);
    assert_eq!(s.expire_messages(at(1000), margin).unwrap(), 0);
    assert_eq!(s.expire_messages(at(1001), margin).unwrap(), 2);
    let left: Vec<(u64, EnvelopeKind)> = s
        .envelopes(&g.id, 0, EVERYTHING)
        .unwrap()
        .iter()
        .map(|e| (e.seq, e.kind))
        .collect();
    assert_eq!(
        left,
        vec![(1, EnvelopeKind::Commit), (4, EnvelopeKind::Message)]
    );
    let after = s.mailbox(&g.id).unwrap().unwrap();
    assert_eq!((after.head, after.stored_bytes), (4, bytes - 18));
    assert_eq!(s.envelopes(&h.id, 0, EVERYTHING).unwrap().len(), 2);
    // Cleared by a later commit: nothing more expires by lifetime.
    let mut clear = batch(&after, EnvelopeKind::Commit, 1, 200_000);
    clear.mailbox.message_lifetime = None;
    s.append(&[clear]).unwrap();
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().message_lifetime, None);
    assert_eq!(s.expire_messages(at(10_000_000), margin).unwrap(), 0);
    assert_eq!(s.envelopes(&g.id, 0, EVERYTHING).unwrap().len(), 3);
}

/// Every append that moves a group's epoch records the old key with the seq of its
/// commit, also for several batches of one mailbox in one transaction.
pub fn ended_epochs_are_kept<S: Store>(mut s: S) {
    let g = group(1);
    s.create_mailbox("did:plc:x", 10, &g).unwrap();
    let messages = batch(&g, EnvelopeKind::Message, 2, 1);
    let mut commit = batch(&messages.mailbox, EnvelopeKind::Commit, 1, 2);
    commit.mailbox.keys = MailboxKeys::Group {
        epoch: 1,
        current: mailbox_key(3),
        previous: None,
    };
    let mut second = batch(&commit.mailbox, EnvelopeKind::Commit, 1, 3);
    second.mailbox.keys = MailboxKeys::Group {
        epoch: 2,
        current: mailbox_key(4),
        previous: None,
    };
    s.append(&[messages]).unwrap();
    assert_eq!(
        s.ended_epoch(&g.id, mailbox_key(1).as_bytes()).unwrap(),
        None
    );
    s.append(&[commit, second]).unwrap();
    let ended = |s: &S, n| s.ended_epoch(&g.id, mailbox_key(n).as_bytes()).unwrap();
    assert_eq!(
        ended(&s, 1),
        Some(EndedEpoch {
            epoch: 0,
            end_seq: 3
        })
    );
    assert_eq!(
        ended(&s, 3),
        Some(EndedEpoch {
            epoch: 1,
            end_seq: 4
        })
    );
    assert_eq!(ended(&s, 4), None);
    assert_eq!(
        s.ended_epoch(&group(2).id, mailbox_key(1).as_bytes())
            .unwrap(),
        None
    );
}

/// A saved replay-cache entry, different for each `n`.
pub fn saved_nonce(n: u8, expires: u64) -> SavedNonce {
    SavedNonce {
        key: [n; 32],
        nonce: [n; 16],
        mailbox: MailboxId::from_bytes([n; 32]),
        expires: Timestamp::from_millis(expires),
    }
}

/// The replay cache saved at a clean stop is taken once; a later save replaces an
/// earlier one.
pub fn replay_saved_only_with_a_clean_stop<S: Store>(mut s: S) {
    // A new store: no clean stop recorded.
    assert_eq!(s.take_replay().unwrap(), None);
    let entries = vec![saved_nonce(1, 10), saved_nonce(2, 20), saved_nonce(3, 5)];
    s.save_replay(&entries).unwrap();
    let mut back = s.take_replay().unwrap().expect("clean stop recorded");
    back.sort_by_key(|e| e.key);
    let mut want = entries.clone();
    want.sort_by_key(|e| e.key);
    assert_eq!(back, want);
    // Taken: the record and the entries are gone.
    assert_eq!(s.take_replay().unwrap(), None);
    // A later save replaces an earlier one; an empty cache is still a clean stop.
    s.save_replay(&entries).unwrap();
    s.save_replay(&[saved_nonce(4, 1)]).unwrap();
    assert_eq!(s.take_replay().unwrap(), Some(vec![saved_nonce(4, 1)]));
    s.save_replay(&[]).unwrap();
    assert_eq!(s.take_replay().unwrap(), Some(vec![]));
    assert_eq!(s.take_replay().unwrap(), None);
}

/// One `#[test]` per property of the DS storage contract ([`crate::ds_store`]), each on a
/// fresh store made by evaluating `$make` (an expression of a type implementing
/// [`atmls_ds::store::Store`]).
///
/// Call it inside a module named for the backend:
///
/// ```
/// mod memory {
///     atmls_testkit::ds_store_suite!(atmls_ds::MemoryStore::new());
/// }
/// ```
#[macro_export]
macro_rules! ds_store_suite {
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::ds_store::$name($make);
            }
        )*
    };
    ($make:expr) => {
        $crate::ds_store_suite!(@tests $make;
            create_read_and_quota,
            append_updates_state_atomically,
            append_refuses_stale_heads_and_gaps,
            group_commit_of_several_batches,
            pages_delete_and_expire,
            ended_epochs_are_kept,
            message_lifetime_expires_messages_only,
            replay_saved_only_with_a_clean_stop,
        );
    };
}
