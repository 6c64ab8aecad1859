//! A [`Store`] in one SQLite file (WAL, `synchronous=FULL`, `secure_delete=ON`).
//!
//! Durability: in WAL mode with `synchronous=FULL` every transaction's commit fsyncs the
//! WAL before `COMMIT` returns, so an envelope whose append returned is on disk before
//! the service acknowledges it, and a crash before that point leaves no trace of the
//! transaction (`NORMAL` would only guarantee consistency, not the last commits).
//!
//! Privacy: `mailboxes` holds no account and no creation time, and is a `WITHOUT ROWID`
//! table keyed by the random id, so row order reveals no creation order. Accounts appear
//! only in `account_quota` (account, count), which holds no mailbox id and no time.
//! Deletions are overwritten with zeros (`secure_delete=ON`) and the WAL is checkpointed
//! and truncated after each deleting call, so deleted payloads leave the files.
//!
//! Restarts: `replay_saved` and `clean_stop` hold the replay cache only from a clean stop
//! to the next start, which takes and deletes them in one transaction.

mod export;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{
    Append, CreateOutcome, EndedEpoch, Envelope, Mailbox, MailboxKeys, PageLimit, PreviousKey,
    SavedNonce, Store, StoreError, check_append, ended_by, payload_bytes,
};
use crate::auth::MailboxKey;
use atmls_ds_proto::{EnvelopeKind, MailboxId, MailboxKind};
use atmls_syntax::Timestamp;

/// 1: mailboxes, envelopes, account_quota. 2: adds `epoch_keys` (created on open).
/// 3: adds `mailboxes.bytes` (payload bytes held; filled from `envelopes` on upgrade).
/// 4: adds `replay_saved` and `clean_stop` (created on open, empty: an upgraded database
/// has no clean stop recorded, so the first start after the upgrade keeps the guard).
/// 5: adds `mailboxes.message_ttl` (NULL on upgrade: no lifetime set).
const SCHEMA_VERSION: i64 = 5;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mailboxes (
    id               BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    kind             INTEGER NOT NULL,  -- 0 group, 1 inbox
    head             INTEGER NOT NULL,
    epoch            INTEGER,           -- group only
    key              BLOB    NOT NULL,  -- current epoch key / owner key
    prev_key         BLOB,              -- group: previous epoch key
    prev_valid_until INTEGER,           -- ms since the Unix epoch
    bytes            INTEGER NOT NULL DEFAULT 0,  -- payload bytes of its envelopes
    message_ttl INTEGER            -- group: seconds, set by a commit (§11.18)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes (
    mailbox     BLOB    NOT NULL,
    seq         INTEGER NOT NULL,
    kind        INTEGER NOT NULL,       -- 0 message, 1 commit, 2 welcome
    epoch       INTEGER,
    payload     BLOB    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (mailbox, seq)
);
CREATE INDEX IF NOT EXISTS envelopes_received_at ON envelopes (kind, received_at);
CREATE TABLE IF NOT EXISTS epoch_keys (
    mailbox BLOB    NOT NULL,
    key     BLOB    NOT NULL,           -- the key of an ended epoch
    epoch   INTEGER NOT NULL,
    end_seq INTEGER NOT NULL,           -- seq of the commit that ended it
    PRIMARY KEY (mailbox, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay_saved (  -- only between a clean stop and the next start
    key     BLOB    NOT NULL CHECK (length(key) = 32),
    nonce   BLOB    NOT NULL CHECK (length(nonce) = 16),
    mailbox BLOB    NOT NULL CHECK (length(mailbox) = 32),
    expires INTEGER NOT NULL,           -- ms since the Unix epoch
    PRIMARY KEY (key, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clean_stop (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1)
);
CREATE TABLE IF NOT EXISTS account_quota (
    account   TEXT    NOT NULL PRIMARY KEY,
    mailboxes INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A [`Store`] in a SQLite database.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        atmls_fs::private_sqlite(path)?;
        Self::init(Connection::open(path)?)
    }

    /// A private in-memory database (for tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;",
        )?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than {SCHEMA_VERSION}"
            )));
        }
        if (1..3).contains(&version) {
            // The mailboxes table predates the `bytes` column: add it and count what each
            // mailbox holds.
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 ALTER TABLE mailboxes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
                 UPDATE mailboxes SET bytes = (SELECT CAST(total(length(payload)) AS INTEGER)
                     FROM envelopes WHERE envelopes.mailbox = mailboxes.id);
                 COMMIT;",
            )?;
        }
        if (1..5).contains(&version) {
            let has: bool = conn.query_row(
                "SELECT count(*) > 0 FROM pragma_table_info('mailboxes')
                 WHERE name = 'message_ttl'",
                [],
                |r| r.get(0),
            )?;
            if !has {
                conn.execute_batch("ALTER TABLE mailboxes ADD COLUMN message_ttl INTEGER;")?;
            }
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        Ok(Self { conn })
    }

    /// Checkpoints the WAL into the database file and truncates it to zero bytes.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Closes the database (checkpointing the WAL).
    pub fn close(self) -> Result<(), StoreError> {
        self.conn.close().map_err(|(_, e)| StoreError::Sqlite(e))
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(v))
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

fn key_from(bytes: &[u8]) -> Result<MailboxKey, StoreError> {
    MailboxKey::from_bytes(bytes).map_err(|_| StoreError::Corrupt("invalid stored key".into()))
}

fn envelope_kind_code(kind: EnvelopeKind) -> i64 {
    match kind {
        EnvelopeKind::Message => 0,
        EnvelopeKind::Commit => 1,
        EnvelopeKind::Welcome => 2,
    }
}

fn envelope_kind_from(code: i64) -> Result<EnvelopeKind, StoreError> {
    match code {
        0 => Ok(EnvelopeKind::Message),
        1 => Ok(EnvelopeKind::Commit),
        2 => Ok(EnvelopeKind::Welcome),
        other => Err(StoreError::Corrupt(format!("envelope kind {other}"))),
    }
}

/// The columns of a mailbox row, in `SELECT` order after the id.
struct Row {
    kind: i64,
    head: i64,
    epoch: Option<i64>,
    key: Vec<u8>,
    prev_key: Option<Vec<u8>>,
    prev_valid_until: Option<i64>,
    bytes: i64,
    message_lifetime: Option<i64>,
}

fn decode_mailbox(id: MailboxId, r: Row) -> Result<Mailbox, StoreError> {
    let keys = match r.kind {
        0 => MailboxKeys::Group {
            epoch: to_u64(
                r.epoch
                    .ok_or_else(|| StoreError::Corrupt("group without epoch".into()))?,
            )?,
            current: key_from(&r.key)?,
            previous: match (r.prev_key, r.prev_valid_until) {
                (Some(k), Some(until)) => Some(PreviousKey {
                    key: key_from(&k)?,
                    valid_until: Timestamp::from_millis(to_u64(until)?),
                }),
                (None, None) => None,
                _ => return Err(StoreError::Corrupt("half a previous key".into())),
            },
        },
        1 => MailboxKeys::Inbox {
            owner: key_from(&r.key)?,
        },
        other => return Err(StoreError::Corrupt(format!("mailbox kind {other}"))),
    };
    Ok(Mailbox {
        id,
        head: to_u64(r.head)?,
        keys,
        stored_bytes: to_u64(r.bytes)?,
        message_lifetime: r
            .message_lifetime
            .map(|v| {
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("message lifetime {v}")))
            })
            .transpose()?,
    })
}

type MailboxColumns<'a> = (
    i64,
    i64,
    Option<i64>,
    &'a [u8],
    Option<&'a [u8]>,
    Option<i64>,
);

fn encode_mailbox(m: &Mailbox) -> Result<MailboxColumns<'_>, StoreError> {
    Ok(match &m.keys {
        MailboxKeys::Group {
            epoch,
            current,
            previous,
        } => (
            0,
            to_i64(m.head)?,
            Some(to_i64(*epoch)?),
            current.as_bytes().as_slice(),
            previous.as_ref().map(|p| p.key.as_bytes().as_slice()),
            previous
                .map(|p| to_i64(p.valid_until.as_millis()))
                .transpose()?,
        ),
        MailboxKeys::Inbox { owner } => (
            1,
            to_i64(m.head)?,
            None,
            owner.as_bytes().as_slice(),
            None,
            None,
        ),
    })
}

fn read_mailbox(conn: &Connection, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, head, epoch, key, prev_key, prev_valid_until, bytes, message_ttl
         FROM mailboxes WHERE id = ?1",
    )?;
    let row = stmt
        .query_row([id.as_bytes().as_slice()], |r| {
            Ok(Row {
                kind: r.get(0)?,
                head: r.get(1)?,
                epoch: r.get(2)?,
                key: r.get(3)?,
                prev_key: r.get(4)?,
                prev_valid_until: r.get(5)?,
                bytes: r.get(6)?,
                message_lifetime: r.get(7)?,
            })
        })
        .optional()?;
    row.map(|r| decode_mailbox(*id, r)).transpose()
}

impl Store for SqliteStore {
    fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        read_mailbox(&self.conn, id)
    }

    fn create_mailbox(
        &mut self,
        account: &str,
        max_per_account: u64,
        mailbox: &Mailbox,
    ) -> Result<CreateOutcome, StoreError> {
        if mailbox.head != 0 {
            return Err(StoreError::InvalidAppend("a new mailbox starts at head 0"));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if read_mailbox(&tx, &mailbox.id)?.is_some() {
            return Err(StoreError::DuplicateMailbox(mailbox.id));
        }
        let count: i64 = tx
            .prepare_cached("SELECT mailboxes FROM account_quota WHERE account = ?1")?
            .query_row([account], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if to_u64(count)? >= max_per_account {
            return Ok(CreateOutcome::QuotaExceeded);
        }
        tx.prepare_cached(
            "INSERT INTO account_quota (account, mailboxes) VALUES (?1, 1)
             ON CONFLICT (account) DO UPDATE SET mailboxes = mailboxes + 1",
        )?
        .execute([account])?;
        let (kind, head, epoch, key, prev_key, prev_until) = encode_mailbox(mailbox)?;
        tx.prepare_cached(
            "INSERT INTO mailboxes (id, kind, head, epoch, key, prev_key, prev_valid_until,
             message_ttl) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            mailbox.id.as_bytes().as_slice(),
            kind,
            head,
            epoch,
            key,
            prev_key,
            prev_until,
            mailbox.message_lifetime
        ])?;
        tx.commit()?;
        Ok(CreateOutcome::Created)
    }

    fn append(&mut self, batches: &[Append]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for b in batches {
            let id = b.mailbox.id;
            let current = read_mailbox(&tx, &id)?.ok_or(StoreError::UnknownMailbox(id))?;
            check_append(&current, b)?;
            if let Some((key, ended)) = ended_by(&current, b) {
                tx.prepare_cached(
                    "INSERT INTO epoch_keys (mailbox, key, epoch, end_seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (mailbox, key) DO UPDATE
                     SET epoch = excluded.epoch, end_seq = excluded.end_seq",
                )?
                .execute(params![
                    id.as_bytes().as_slice(),
                    key.as_bytes().as_slice(),
                    to_i64(ended.epoch)?,
                    to_i64(ended.end_seq)?
                ])?;
            }
            let (_, head, epoch, key, prev_key, prev_until) = encode_mailbox(&b.mailbox)?;
            let bytes = to_i64(current.stored_bytes.saturating_add(payload_bytes(b)))?;
            let changed = tx
                .prepare_cached(
                    "UPDATE mailboxes SET head = ?2, epoch = ?3, key = ?4, prev_key = ?5,
                     prev_valid_until = ?6, bytes = ?8, message_ttl = ?9
                     WHERE id = ?1 AND head = ?7",
                )?
                .execute(params![
                    id.as_bytes().as_slice(),
                    head,
                    epoch,
                    key,
                    prev_key,
                    prev_until,
                    to_i64(b.expected_head)?,
                    bytes,
                    b.mailbox.message_lifetime
                ])?;
            if changed != 1 {
                return Err(StoreError::HeadMoved {
                    mailbox: id,
                    expected: b.expected_head,
                    actual: current.head,
                });
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO envelopes (mailbox, seq, kind, epoch, payload, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in &b.envelopes {
                insert.execute(params![
                    id.as_bytes().as_slice(),
                    to_i64(e.seq)?,
                    envelope_kind_code(e.kind),
                    e.epoch.map(to_i64).transpose()?,
                    e.payload,
                    to_i64(e.received_at.as_millis())?
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn envelopes(
        &self,
        id: &MailboxId,
        after: u64,
        limit: PageLimit,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, kind, epoch, payload, received_at FROM envelopes
             WHERE mailbox = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let max = i64::try_from(limit.envelopes).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![id.as_bytes().as_slice(), after, max])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let payload: Vec<u8> = r.get(3)?;
            bytes = bytes.saturating_add(payload.len());
            if !out.is_empty() && bytes > limit.bytes {
                break;
            }
            out.push(Envelope {
                seq: to_u64(r.get(0)?)?,
                kind: envelope_kind_from(r.get(1)?)?,
                epoch: r.get::<_, Option<i64>>(2)?.map(to_u64).transpose()?,
                payload,
                received_at: Timestamp::from_millis(to_u64(r.get(4)?)?),
            });
        }
        Ok(out)
    }

    fn delete_envelopes(&mut self, id: &MailboxId, seqs: &[u64]) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0u64;
        let mut freed = 0i64;
        {
            let mut del = tx.prepare_cached(
                "DELETE FROM envelopes WHERE mailbox = ?1 AND seq = ?2 RETURNING length(payload)",
            )?;
            for &seq in seqs {
                let Ok(seq) = i64::try_from(seq) else {
                    continue;
                };
                let len: Option<i64> = del
                    .query_row(params![id.as_bytes().as_slice(), seq], |r| r.get(0))
                    .optional()?;
                if let Some(len) = len {
                    n += 1;
                    freed = freed.saturating_add(len);
                }
            }
        }
        if n > 0 {
            tx.prepare_cached("UPDATE mailboxes SET bytes = max(bytes - ?2, 0) WHERE id = ?1")?
                .execute(params![id.as_bytes().as_slice(), freed])?;
        }
        tx.commit()?;
        if n > 0 {
            self.checkpoint()?;
        }
        Ok(n)
    }

    fn expire(&mut self, kind: MailboxKind, before: Timestamp) -> Result<u64, StoreError> {
        let before = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut freed: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
        let mut n = 0u64;
        {
            let mut del = tx.prepare_cached(match kind {
                MailboxKind::Group => {
                    "DELETE FROM envelopes WHERE kind IN (0, 1) AND received_at < ?1
                     RETURNING mailbox, length(payload)"
                }
                MailboxKind::Inbox => {
                    "DELETE FROM envelopes WHERE kind = 2 AND received_at < ?1
                     RETURNING mailbox, length(payload)"
                }
            })?;
            let mut rows = del.query([before])?;
            while let Some(r) = rows.next()? {
                n += 1;
                let len: i64 = r.get(1)?;
                let e = freed.entry(r.get(0)?).or_default();
                *e = e.saturating_add(len);
            }
        }
        {
            let mut update =
                tx.prepare_cached("UPDATE mailboxes SET bytes = max(bytes - ?2, 0) WHERE id = ?1")?;
            for (id, len) in &freed {
                update.execute(params![id, len])?;
            }
        }
        tx.commit()?;
        if n > 0 {
            self.checkpoint()?;
        }
        Ok(n)
    }

    fn expire_messages(
        &mut self,
        now: Timestamp,
        margin: std::time::Duration,
    ) -> Result<u64, StoreError> {
        // Cutoff per mailbox: now - margin - lifetime (ms); mailboxes without a lifetime
        // give NULL, which deletes nothing.
        let base = i64::try_from(now.saturating_sub(margin).as_millis()).unwrap_or(i64::MAX);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut freed: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
        let mut n = 0u64;
        {
            let mut del = tx.prepare_cached(
                "DELETE FROM envelopes WHERE kind = 0 AND received_at < ?1
                 AND received_at < ?1 - 1000 * (SELECT m.message_ttl FROM mailboxes m
                                                WHERE m.id = envelopes.mailbox)
                 RETURNING mailbox, length(payload)",
            )?;
            let mut rows = del.query([base])?;
            while let Some(r) = rows.next()? {
                n += 1;
                let len: i64 = r.get(1)?;
                let e = freed.entry(r.get(0)?).or_default();
                *e = e.saturating_add(len);
            }
        }
        {
            let mut update =
                tx.prepare_cached("UPDATE mailboxes SET bytes = max(bytes - ?2, 0) WHERE id = ?1")?;
            for (id, len) in &freed {
                update.execute(params![id, len])?;
            }
        }
        tx.commit()?;
        if n > 0 {
            self.checkpoint()?;
        }
        Ok(n)
    }

    fn account_mailboxes(&self, account: &str) -> Result<u64, StoreError> {
        let count: Option<i64> = self
            .conn
            .prepare_cached("SELECT mailboxes FROM account_quota WHERE account = ?1")?
            .query_row([account], |r| r.get(0))
            .optional()?;
        to_u64(count.unwrap_or(0))
    }

    fn ended_epoch(
        &self,
        id: &MailboxId,
        key: &[u8; 32],
    ) -> Result<Option<EndedEpoch>, StoreError> {
        let row: Option<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT epoch, end_seq FROM epoch_keys WHERE mailbox = ?1 AND key = ?2",
            )?
            .query_row(params![id.as_bytes().as_slice(), key.as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(epoch, end_seq)| {
            Ok(EndedEpoch {
                epoch: to_u64(epoch)?,
                end_seq: to_u64(end_seq)?,
            })
        })
        .transpose()
    }

    fn save_replay(&mut self, entries: &[SavedNonce]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM replay_saved", [])?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO replay_saved (key, nonce, mailbox, expires)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in entries {
                insert.execute(params![
                    e.key.as_slice(),
                    e.nonce.as_slice(),
                    e.mailbox.as_bytes().as_slice(),
                    to_i64(e.expires.as_millis())?
                ])?;
            }
        }
        tx.execute("INSERT OR REPLACE INTO clean_stop (id) VALUES (1)", [])?;
        tx.commit()?;
        Ok(())
    }

    fn take_replay(&mut self) -> Result<Option<Vec<SavedNonce>>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let clean = tx.execute("DELETE FROM clean_stop", [])? > 0;
        let mut entries = Vec::new();
        {
            let mut rows = tx.prepare_cached(
                "DELETE FROM replay_saved RETURNING key, nonce, mailbox, expires",
            )?;
            let mut rows = rows.query([])?;
            while let Some(r) = rows.next()? {
                let key: Vec<u8> = r.get(0)?;
                let nonce: Vec<u8> = r.get(1)?;
                let mailbox: Vec<u8> = r.get(2)?;
                let corrupt = || StoreError::Corrupt("invalid saved replay entry".into());
                entries.push(SavedNonce {
                    key: key.try_into().map_err(|_| corrupt())?,
                    nonce: nonce.try_into().map_err(|_| corrupt())?,
                    mailbox: MailboxId::from_bytes(mailbox.try_into().map_err(|_| corrupt())?),
                    expires: Timestamp::from_millis(to_u64(r.get(3)?)?),
                });
            }
        }
        tx.commit()?;
        Ok(clean.then_some(entries))
    }
}
