//! The storage contract (`atmls_testkit::ds_store`), run against every backend here, and
//! the SQLite store's own durability and migration tests.

use atmls_ds::store::{EndedEpoch, MailboxKeys, Store};
use atmls_ds::{EnvelopeKind, MailboxId};
use atmls_testkit::ds_store::{EVERYTHING, batch, group, mailbox_key, saved_nonce};

mod memory {
    atmls_testkit::ds_store_suite!(crate::harness::memory_store());
}

mod sqlite {
    atmls_testkit::ds_store_suite!(crate::harness::sqlite_store());
}

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
    assert_eq!(s.envelopes(&g.id, 0, EVERYTHING).unwrap().len(), 3);
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
            rusqlite::params![[9u8; 32].as_slice(), mailbox_key(2).as_bytes().as_slice()],
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
        current: mailbox_key(3),
        previous: None,
    };
    s.append(&[commit]).unwrap();
    assert_eq!(
        s.ended_epoch(&g.id, mailbox_key(1).as_bytes()).unwrap(),
        Some(EndedEpoch {
            epoch: 0,
            end_seq: 1
        })
    );
    // Stored bytes were counted on upgrade; no message lifetime (version 5's column).
    let old = s.mailbox(&MailboxId::from_bytes([9; 32])).unwrap().unwrap();
    assert_eq!((old.head, old.stored_bytes), (2, 12));
    assert_eq!(old.message_lifetime, None);
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
}

/// The saved replay cache survives closing the file; taking it removes it on disk.
#[test]
fn sqlite_keeps_the_clean_stop_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.sqlite");
    {
        let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
        s.save_replay(&[saved_nonce(1, 10)]).unwrap();
    }
    {
        let mut s = atmls_ds::SqliteStore::open(&path).unwrap();
        assert_eq!(s.take_replay().unwrap(), Some(vec![saved_nonce(1, 10)]));
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
    s.save_replay(&[saved_nonce(1, 10)]).unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
}
