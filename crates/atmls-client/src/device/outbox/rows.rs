//! The outbox's tables (docs/spec.md §11.15): `atmls_outbox` (messages not yet accepted
//! by the DS, or given up), `atmls_outbox_digests` (the payload digest of every attempt,
//! so that an attempt seen in the mailbox settles its message) and `atmls_seen` (content
//! ids of recent messages per sender, so that a message resent by its sender is shown
//! once).

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::device::store::{exec, to_i64};
use crate::error::StoreError;

/// How many envelopes of a group a content id is remembered for (duplicates of a resent
/// message arrive within a few envelopes of each other).
pub(crate) const SEEN_WINDOW: u64 = 1000;

/// One message of the outbox.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub(crate) item: i64,
    pub(crate) group_id: Vec<u8>,
    pub(crate) id: String,
    /// The encoded `chat.mls.content` (DAG-CBOR), encrypted afresh at each attempt.
    pub(crate) plaintext: Vec<u8>,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
    /// Why it was given up; `None` while it is pending.
    pub(crate) failed: Option<String>,
}

const COLUMNS: &str = "item, group_id, id, plaintext, attempts, last_error, failed";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        item: r.get(0)?,
        group_id: r.get(1)?,
        id: r.get(2)?,
        plaintext: r.get(3)?,
        attempts: r.get(4)?,
        last_error: r.get(5)?,
        failed: r.get(6)?,
    })
}

fn rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let out = stmt.query_map(params, row)?.collect::<Result<_, _>>()?;
    Ok(out)
}

/// Queues a message at the end of the group's queue; returns its item number.
pub(crate) fn insert(
    conn: &Connection,
    group_id: &[u8],
    id: &str,
    plaintext: &[u8],
) -> Result<i64, StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_outbox (group_id, id, plaintext) VALUES (?1, ?2, ?3)",
        params![group_id, id, plaintext],
    )?;
    Ok(conn.last_insert_rowid())
}

/// One message by item number.
pub(crate) fn item(conn: &Connection, item: i64) -> Result<Option<OutboxRow>, StoreError> {
    Ok(rows(
        conn,
        &format!("SELECT {COLUMNS} FROM atmls_outbox WHERE item = ?1"),
        [item],
    )?
    .pop())
}

/// The first pending message of the group.
pub(crate) fn head(conn: &Connection, group_id: &[u8]) -> Result<Option<OutboxRow>, StoreError> {
    Ok(rows(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM atmls_outbox WHERE group_id = ?1 AND failed IS NULL
             ORDER BY item LIMIT 1"
        ),
        [group_id],
    )?
    .pop())
}

/// Every message, pending and failed, in queue order.
pub(crate) fn all(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    rows(
        conn,
        &format!("SELECT {COLUMNS} FROM atmls_outbox ORDER BY item"),
        [],
    )
}

/// The groups with pending messages.
pub(crate) fn pending_groups(conn: &Connection) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT group_id FROM atmls_outbox WHERE failed IS NULL ORDER BY group_id",
    )?;
    let out = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

/// Whether the group has pending messages.
pub(crate) fn has_pending(conn: &Connection, group_id: &[u8]) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM atmls_outbox WHERE group_id = ?1 AND failed IS NULL LIMIT 1",
        )?
        .query_row([group_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records an attempt (before it is sent): its payload digest, and one more attempt.
pub(crate) fn attempt(
    conn: &Connection,
    item: i64,
    group_id: &[u8],
    digest: &[u8],
) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_outbox SET attempts = attempts + 1 WHERE item = ?1",
        [item],
    )?;
    exec(
        conn,
        "INSERT OR REPLACE INTO atmls_outbox_digests (group_id, digest, item) VALUES (?1, ?2, ?3)",
        params![group_id, digest, item],
    )?;
    Ok(())
}

/// The message one of whose attempts has this payload digest.
pub(crate) fn by_digest(
    conn: &Connection,
    group_id: &[u8],
    digest: &[u8],
) -> Result<Option<OutboxRow>, StoreError> {
    let item: Option<i64> = conn
        .prepare_cached(
            "SELECT item FROM atmls_outbox_digests WHERE group_id = ?1 AND digest = ?2",
        )?
        .query_row(params![group_id, digest], |r| r.get(0))
        .optional()?;
    match item {
        Some(i) => item_pending(conn, i),
        None => Ok(None),
    }
}

fn item_pending(conn: &Connection, i: i64) -> Result<Option<OutboxRow>, StoreError> {
    Ok(item(conn, i)?.filter(|r| r.failed.is_none()))
}

/// Notes why the last attempt failed (transiently).
pub(crate) fn set_last_error(conn: &Connection, item: i64, error: &str) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_outbox SET last_error = ?2 WHERE item = ?1",
        params![item, error],
    )?;
    Ok(())
}

/// Gives a message up: it stays listed as failed, with `reason`.
pub(crate) fn fail(conn: &Connection, item: i64, reason: &str) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_outbox SET failed = ?2 WHERE item = ?1",
        params![item, reason],
    )?;
    Ok(())
}

/// Forgets a message the DS accepted (its plaintext with it); the digests of its
/// attempts stay until the group's cursor passes them ([`forget_digest`]).
pub(crate) fn delivered(conn: &Connection, item: i64) -> Result<(), StoreError> {
    exec(conn, "DELETE FROM atmls_outbox WHERE item = ?1", [item])?;
    Ok(())
}

/// Forgets the digest of an attempt seen in the mailbox.
pub(crate) fn forget_digest(
    conn: &Connection,
    group_id: &[u8],
    digest: &[u8],
) -> Result<(), StoreError> {
    exec(
        conn,
        "DELETE FROM atmls_outbox_digests WHERE group_id = ?1 AND digest = ?2",
        params![group_id, digest],
    )?;
    Ok(())
}

/// Removes the messages with content id `id` from the outbox; returns how many.
pub(crate) fn discard(conn: &Connection, id: &str) -> Result<usize, StoreError> {
    exec(
        conn,
        "DELETE FROM atmls_outbox_digests WHERE item IN (SELECT item FROM atmls_outbox WHERE id = ?1)",
        [id],
    )?;
    exec(conn, "DELETE FROM atmls_outbox WHERE id = ?1", [id])
}

/// Remembers that `sender`'s message `id` was shown at `seq`; returns whether it had
/// been shown already (a resent copy). Ids older than [`SEEN_WINDOW`] envelopes are
/// forgotten now and then.
pub(crate) fn seen(
    conn: &Connection,
    group_id: &[u8],
    sender: &str,
    id: &str,
    seq: u64,
) -> Result<bool, StoreError> {
    let inserted = exec(
        conn,
        "INSERT OR IGNORE INTO atmls_seen (group_id, sender, id, seq) VALUES (?1, ?2, ?3, ?4)",
        params![group_id, sender, id, to_i64(seq)?],
    )?;
    if seq.is_multiple_of(64) && seq > SEEN_WINDOW {
        exec(
            conn,
            "DELETE FROM atmls_seen WHERE group_id = ?1 AND seq < ?2",
            params![group_id, to_i64(seq - SEEN_WINDOW)?],
        )?;
    }
    Ok(inserted == 0)
}
