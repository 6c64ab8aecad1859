//! The storage contract, run against every backend.

use atmls_ds::auth::MailboxKey;
use atmls_ds::store::{
    Append, CreateOutcome, EndedEpoch, Mailbox, MailboxKeys, PageLimit, PreviousKey, SavedNonce,
    Store, StoreError,
};
use atmls_ds::{Envelope, EnvelopeKind, MailboxId, MailboxKind, Timestamp};

use crate::harness::{key, public};
use crate::on_both_stores;

fn mkey(n: u8) -> MailboxKey {
    MailboxKey::from_bytes(&public(&key(n))).unwrap()
}

fn group(id: u8) -> Mailbox {
    Mailbox {
        id: MailboxId::from_bytes([id; 32]),
        head: 0,
        stored_bytes: 0,
        keys: MailboxKeys::Group {
            epoch: 0,
            current: mkey(1),
            previous: None,
        },
    }
}

fn inbox(id: u8) -> Mailbox {
    Mailbox {
        id: MailboxId::from_bytes([id; 32]),
        head: 0,
        stored_bytes: 0,
        keys: MailboxKeys::Inbox { owner: mkey(2) },
    }
}

fn env(seq: u64, kind: EnvelopeKind, at: u64) -> Envelope {
    Envelope {
        seq,
        kind,
        epoch: (kind == EnvelopeKind::Commit).then_some(seq),
        payload: format!("payload {seq}").into_bytes(),
        received_at: Timestamp::from_millis(at),
    }
}

fn batch(before: &Mailbox, kind: EnvelopeKind, n: u64, at: u64) -> Append {
    let mut after = *before;
    after.head = before.head + n;
    let envelopes: Vec<Envelope> = (1..=n).map(|i| env(before.head + i, kind, at)).collect();
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

const ALL: PageLimit = PageLimit {
    envelopes: usize::MAX,
    bytes: usize::MAX,
};

fn create_read_and_quota<S: Store>(mut s: S) {
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

fn append_updates_state_atomically<S: Store>(mut s: S) {
    let g = group(1);
    s.create_mailbox("a", 10, &g).unwrap();
    let b1 = batch(&g, EnvelopeKind::Message, 3, 5);
    s.append(std::slice::from_ref(&b1)).unwrap();
    // A commit batch with new keys.
    let mut b2 = batch(&b1.mailbox, EnvelopeKind::Commit, 1, 6);
    b2.mailbox.keys = MailboxKeys::Group {
        epoch: 1,
        current: mkey(3),
        previous: Some(PreviousKey {
            key: mkey(1),
            valid_until: Timestamp::from_millis(99),
        }),
    };
    s.append(std::slice::from_ref(&b2)).unwrap();
    assert_eq!(s.mailbox(&g.id).unwrap(), Some(b2.mailbox));
    let all = s.envelopes(&g.id, 0, ALL).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], env(4, EnvelopeKind::Commit, 6));
    assert_eq!(all[0], env(1, EnvelopeKind::Message, 5));
}

fn append_refuses_stale_heads_and_gaps<S: Store>(mut s: S) {
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
    assert_eq!(s.envelopes(&g.id, 0, ALL).unwrap().len(), 1);
}

fn group_commit_of_several_batches<S: Store>(mut s: S) {
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
    assert_eq!(s.envelopes(&a.id, 0, ALL).unwrap().len(), 3);
    assert_eq!(s.envelopes(&b.id, 0, ALL).unwrap(), b1.envelopes);
}

fn pages_delete_and_expire<S: Store>(mut s: S) {
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
    assert!(s.envelopes(&g.id, 10, ALL).unwrap().is_empty());
    assert!(s.envelopes(&group(7).id, 0, ALL).unwrap().is_empty());
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
        s.envelopes(&g.id, 0, ALL).unwrap().first().map(|e| e.seq),
        Some(6)
    );
    assert_eq!(s.envelopes(&i.id, 0, ALL).unwrap().len(), 2);
    assert_eq!(
        s.expire(MailboxKind::Inbox, Timestamp::from_millis(101))
            .unwrap(),
        2
    );
    // Heads never go back.
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 10);
    assert_eq!(s.mailbox(&i.id).unwrap().unwrap().head, 3);
}

/// Every append that moves a group's epoch records the old key with the seq of its
/// commit, also for several batches of one mailbox in one transaction.
fn ended_epochs_are_kept<S: Store>(mut s: S) {
    let g = group(1);
    s.create_mailbox("did:plc:x", 10, &g).unwrap();
    let messages = batch(&g, EnvelopeKind::Message, 2, 1);
    let mut commit = batch(&messages.mailbox, EnvelopeKind::Commit, 1, 2);
    commit.mailbox.keys = MailboxKeys::Group {
        epoch: 1,
        current: mkey(3),
        previous: None,
    };
    let mut second = batch(&commit.mailbox, EnvelopeKind::Commit, 1, 3);
    second.mailbox.keys = MailboxKeys::Group {
        epoch: 2,
        current: mkey(4),
        previous: None,
    };
    s.append(&[messages]).unwrap();
    assert_eq!(s.ended_epoch(&g.id, mkey(1).as_bytes()).unwrap(), None);
    s.append(&[commit, second]).unwrap();
    let ended = |s: &S, n| s.ended_epoch(&g.id, mkey(n).as_bytes()).unwrap();
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
        s.ended_epoch(&group(2).id, mkey(1).as_bytes()).unwrap(),
        None
    );
}

fn saved(n: u8, expires: u64) -> SavedNonce {
    SavedNonce {
        key: [n; 32],
        nonce: [n; 16],
        mailbox: MailboxId::from_bytes([n; 32]),
        expires: Timestamp::from_millis(expires),
    }
}

fn replay_saved_only_with_a_clean_stop<S: Store>(mut s: S) {
    // A new store: no clean stop recorded.
    assert_eq!(s.take_replay().unwrap(), None);
    let entries = vec![saved(1, 10), saved(2, 20), saved(3, 5)];
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
    s.save_replay(&[saved(4, 1)]).unwrap();
    assert_eq!(s.take_replay().unwrap(), Some(vec![saved(4, 1)]));
    s.save_replay(&[]).unwrap();
    assert_eq!(s.take_replay().unwrap(), Some(vec![]));
    assert_eq!(s.take_replay().unwrap(), None);
}

on_both_stores!(
    replay_saved_only_with_a_clean_stop,
    ended_epochs_are_kept,
    create_read_and_quota,
    append_updates_state_atomically,
    append_refuses_stale_heads_and_gaps,
    group_commit_of_several_batches,
    pages_delete_and_expire,
);

#[test]
fn sqlite_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.sqlite");
    let g = group(1);
    {
        let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
        s.create_mailbox("a", 10, &g).unwrap();
        s.append(&[batch(&g, EnvelopeKind::Message, 3, 1)]).unwrap();
        // Dropped without close: committed transactions are in the WAL.
    }
    let s = atmls_ds::SqliteStore::open(&path).unwrap();
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 3);
    assert_eq!(s.envelopes(&g.id, 0, ALL).unwrap().len(), 3);
    assert_eq!(s.account_mailboxes("a").unwrap(), 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// A version-1 database gains `epoch_keys` and version 2 when opened.
#[test]
fn sqlite_migrates_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE mailboxes (
                id BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 32), kind INTEGER NOT NULL,
                head INTEGER NOT NULL, epoch INTEGER, key BLOB NOT NULL,
                prev_key BLOB, prev_valid_until INTEGER) WITHOUT ROWID;
             CREATE TABLE envelopes (mailbox BLOB NOT NULL, seq INTEGER NOT NULL,
                kind INTEGER NOT NULL, epoch INTEGER, payload BLOB NOT NULL,
                received_at INTEGER NOT NULL, PRIMARY KEY (mailbox, seq));
             CREATE TABLE account_quota (account TEXT NOT NULL PRIMARY KEY,
                mailboxes INTEGER NOT NULL) WITHOUT ROWID;
             PRAGMA user_version = 1;",
        )
        .unwrap();
        // A mailbox holding 12 payload bytes before the upgrade.
        conn.execute(
            "INSERT INTO mailboxes (id, kind, head, key) VALUES (?1, 1, 2, ?2)",
            rusqlite::params![[9u8; 32].as_slice(), mkey(2).as_bytes().as_slice()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO envelopes SELECT id, 1, 2, NULL, X'0102030405', 0 FROM mailboxes;
             INSERT INTO envelopes SELECT id, 2, 2, NULL, X'01020304050607', 0 FROM mailboxes;",
        )
        .unwrap();
    }
    let g = group(1);
    let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
    s.create_mailbox("a", 10, &g).unwrap();
    let mut commit = batch(&g, EnvelopeKind::Commit, 1, 1);
    commit.mailbox.keys = MailboxKeys::Group {
        epoch: 1,
        current: mkey(3),
        previous: None,
    };
    s.append(&[commit]).unwrap();
    assert_eq!(
        s.ended_epoch(&g.id, mkey(1).as_bytes()).unwrap(),
        Some(EndedEpoch {
            epoch: 0,
            end_seq: 1
        })
    );
    // Stored bytes were counted on upgrade.
    let old = s.mailbox(&MailboxId::from_bytes([9; 32])).unwrap().unwrap();
    assert_eq!((old.head, old.stored_bytes), (2, 12));
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}

/// The saved replay cache survives closing the file; taking it removes it on disk.
#[test]
fn sqlite_keeps_the_clean_stop_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.sqlite");
    {
        let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
        s.save_replay(&[saved(1, 10)]).unwrap();
    }
    {
        let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
        assert_eq!(s.take_replay().unwrap(), Some(vec![saved(1, 10)]));
    }
    let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
    assert_eq!(s.take_replay().unwrap(), None);
}

/// A version-3 database (before the saved replay cache) opens with no clean stop
/// recorded, and becomes version 4.
#[test]
fn sqlite_migrates_version_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.sqlite");
    {
        let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
        s.create_mailbox("a", 10, &group(1)).unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE replay_saved; DROP TABLE clean_stop; PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
    assert!(s.mailbox(&group(1).id).unwrap().is_some());
    assert_eq!(s.take_replay().unwrap(), None);
    s.save_replay(&[saved(1, 10)]).unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}
