//! The device's recovery records (docs/spec.md §11.17): broken groups and when to ask
//! again, the last commit refused per group, the re-entry requests acted on, and a
//! restored device's pending group-less request.

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::device::store::{exec, to_i64};
use crate::error::StoreError;
use crate::group::reentry::BrokenReason;

/// The recovery tables; created if missing at every open (independent of the other
/// tables' migrations).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_broken (
    group_id BLOB NOT NULL PRIMARY KEY,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS atmls_refused (
    group_id BLOB NOT NULL PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS atmls_reentries (
    group_id BLOB NOT NULL,
    did TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_package_ref BLOB NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (group_id, did, device_id, key_package_ref)
);
CREATE TABLE IF NOT EXISTS atmls_restore (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    requests INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0
);
";

/// A broken group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokenRow {
    pub(crate) group_id: Vec<u8>,
    pub(crate) reason: BrokenReason,
    pub(crate) requests: u32,
    pub(crate) next_at: i64,
}

/// Marks a group broken; `false` if it already was (the first reason stays).
pub(crate) fn mark_broken(
    conn: &Connection,
    group_id: &[u8],
    reason: BrokenReason,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO atmls_broken (group_id, reason, since) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![group_id, reason.as_str(), now_ms])?;
    Ok(n > 0)
}

/// The group's broken state, if it is broken.
pub(crate) fn broken(conn: &Connection, group_id: &[u8]) -> Result<Option<BrokenRow>, StoreError> {
    Ok(all_broken(conn)?
        .into_iter()
        .find(|r| r.group_id == group_id))
}

/// Every broken group.
pub(crate) fn all_broken(conn: &Connection) -> Result<Vec<BrokenRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_id, reason, requests, next_at FROM atmls_broken ORDER BY group_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (group_id, reason, requests, next_at) = row?;
        out.push(BrokenRow {
            group_id,
            reason: BrokenReason::parse(&reason).ok_or(StoreError::Corrupt("broken reason"))?,
            requests: u32::try_from(requests).unwrap_or(u32::MAX),
            next_at,
        });
    }
    Ok(out)
}

/// Records a request round: `requests` so far, next one not before `next_at`.
pub(crate) fn requested(
    conn: &Connection,
    group_id: &[u8],
    requests: u32,
    next_at: i64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_broken SET requests = ?2, next_at = ?3 WHERE group_id = ?1",
        params![group_id, i64::from(requests), next_at],
    )?;
    Ok(())
}

/// The group is no longer broken (rejoined or left).
pub(crate) fn clear_broken(conn: &Connection, group_id: &[u8]) -> Result<(), StoreError> {
    exec(
        conn,
        "DELETE FROM atmls_broken WHERE group_id = ?1",
        params![group_id],
    )?;
    exec(
        conn,
        "DELETE FROM atmls_refused WHERE group_id = ?1",
        params![group_id],
    )?;
    Ok(())
}

/// Remembers that the commit at `seq` was refused.
pub(crate) fn refused_at(conn: &Connection, group_id: &[u8], seq: u64) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT OR REPLACE INTO atmls_refused (group_id, seq) VALUES (?1, ?2)",
        params![group_id, to_i64(seq)?],
    )?;
    Ok(())
}

/// The last refused commit's seq.
pub(crate) fn last_refused(conn: &Connection, group_id: &[u8]) -> Result<Option<u64>, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM atmls_refused WHERE group_id = ?1")?
        .query_row([group_id], |r| r.get(0))
        .optional()?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()))
}

/// Whether a request of that device with that KeyPackage was acted on in that group.
pub(crate) fn acted_on(
    conn: &Connection,
    group_id: &[u8],
    did: &str,
    device_id: &str,
    key_package_ref: &[u8],
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM atmls_reentries
             WHERE group_id = ?1 AND did = ?2 AND device_id = ?3 AND key_package_ref = ?4",
        )?
        .query_row(params![group_id, did, device_id, key_package_ref], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

/// Records a request acted on.
pub(crate) fn record_acted(
    conn: &Connection,
    group_id: &[u8],
    did: &str,
    device_id: &str,
    key_package_ref: &[u8],
    now_ms: i64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT OR IGNORE INTO atmls_reentries (group_id, did, device_id, key_package_ref, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![group_id, did, device_id, key_package_ref, now_ms],
    )?;
    Ok(())
}

/// A restored device's group-less request: `(requests, next_at)` if one is due some day.
pub(crate) fn restore(conn: &Connection) -> Result<Option<(u32, i64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT requests, next_at FROM atmls_restore WHERE id = 1")?
        .query_row([], |r| {
            Ok((
                u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                r.get::<_, i64>(1)?,
            ))
        })
        .optional()?)
}

/// Sets (or, with `None`, ends) the restored device's group-less request schedule.
pub(crate) fn set_restore(conn: &Connection, state: Option<(u32, i64)>) -> Result<(), StoreError> {
    match state {
        Some((requests, next_at)) => exec(
            conn,
            "INSERT OR REPLACE INTO atmls_restore (id, requests, next_at) VALUES (1, ?1, ?2)",
            params![i64::from(requests), next_at],
        )?,
        None => exec(conn, "DELETE FROM atmls_restore", [])?,
    };
    Ok(())
}
