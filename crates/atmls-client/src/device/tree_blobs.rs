//! Out-of-band ratchet trees are deleted when no longer needed (docs/spec.md §11.4,
//! "Lifetime"): the committer records each tree's `chat.mls.attachmentRef` record key with
//! the instant after which no invitee can use it, and deletes the record during `sync`
//! once that instant has passed (the PDS then collects the blob).

use std::time::Duration;

use atmls_syntax::Timestamp;
use rusqlite::{Connection, params};

use super::{Device, State};
use crate::error::{Error, StoreError};
use crate::transport::{Ds, Pds, RecordWrite};

/// The table (created with the rest of the device schema, independent of its other
/// steps).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_tree_blobs (
    rkey TEXT NOT NULL PRIMARY KEY,
    delete_at INTEGER NOT NULL
);
";

/// How long a tree is kept when neither the DS's retention nor the invitees' leaf
/// lifetimes say less: longer than the widest MLS lifetime the reference client gives a
/// KeyPackage (84 days after creation, §11.13).
pub(crate) const TREE_KEEP_DEFAULT: Duration = Duration::from_secs(90 * 86_400);

/// Most records deleted per `sync` (one `applyWrites` each).
const DELETIONS_PER_SYNC: usize = 16;

/// When a tree stored at `now` may be deleted: the earliest of `now` + the group DS's
/// `groupRetentionSeconds` (the envelopes from `fromSeq` are gone: nobody can catch up
/// after joining), the latest end of the invitees' leaf lifetimes (openmls refuses to
/// join with an expired leaf; `0` entries are unknown), and `now` + [`TREE_KEEP_DEFAULT`].
pub(crate) fn delete_at(
    now: Timestamp,
    group_retention_secs: Option<u64>,
    not_afters_secs: &[u64],
) -> Timestamp {
    let mut at = now.saturating_add(TREE_KEEP_DEFAULT);
    if let Some(r) = group_retention_secs {
        at = at.min(now.saturating_add(Duration::from_secs(r)));
    }
    if !not_afters_secs.is_empty() && !not_afters_secs.contains(&0) {
        let latest = not_afters_secs.iter().copied().max().unwrap_or(0);
        // A lifetime already over still keeps the tree a little (clock skew).
        let end = Timestamp::from_millis(latest.saturating_mul(1000)).max(now);
        at = at.min(end.saturating_add(Duration::from_secs(86_400)));
    }
    at
}

pub(crate) fn record(conn: &Connection, rkey: &str, at: Timestamp) -> Result<(), StoreError> {
    let at = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT OR REPLACE INTO atmls_tree_blobs (rkey, delete_at) VALUES (?1, ?2)",
        params![rkey, at],
    )?;
    Ok(())
}

fn due(conn: &Connection, now: Timestamp) -> Result<Vec<String>, StoreError> {
    let now = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(
        "SELECT rkey FROM atmls_tree_blobs WHERE delete_at <= ?1 ORDER BY delete_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![now, i64::try_from(DELETIONS_PER_SYNC).unwrap_or(16)],
        |r| r.get(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn forget(conn: &Connection, rkey: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM atmls_tree_blobs WHERE rkey = ?1",
        params![rkey],
    )?;
    Ok(())
}

/// How many tree records wait for deletion (tests).
#[cfg(test)]
pub(crate) fn pending(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM atmls_tree_blobs", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Deletes the `attachmentRef` records of trees whose time has come. A transient
    /// failure leaves the rest for the next `sync`; a permanent one (the record is
    /// already gone) forgets the entry.
    pub(crate) async fn delete_expired_trees(&self, st: &mut State) -> Result<(), Error> {
        let now = self.inner.config.clock.now();
        for rkey in due(&st.conn, now)? {
            let deleted = self
                .inner
                .pds
                .apply_writes(vec![RecordWrite::Delete {
                    collection: crate::attachment::ATTACHMENT_REF_COLLECTION.into(),
                    rkey: rkey.clone(),
                }])
                .await;
            match deleted {
                Ok(()) => forget(&st.conn, &rkey)?,
                Err(e) if e.is_transient() => {
                    tracing::debug!(error = %e, "tree record not deleted; retried later");
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "tree record refused deletion; forgotten");
                    forget(&st.conn, &rkey)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_the_earliest_rule() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let day = 86_400;
        // Nothing known: the default.
        assert_eq!(
            delete_at(now, None, &[]),
            now.saturating_add(TREE_KEEP_DEFAULT)
        );
        // The DS keeps envelopes a week.
        assert_eq!(
            delete_at(now, Some(7 * day), &[]),
            now.saturating_add(Duration::from_secs(7 * day))
        );
        // The invitees' leaves end in 10 and 20 days: 20 days and one.
        let in_days = |d: u64| now.as_millis() / 1000 + d * day;
        assert_eq!(
            delete_at(now, None, &[in_days(10), in_days(20)]),
            now.saturating_add(Duration::from_secs(21 * day))
        );
        // An unknown lifetime among them: that rule does not apply.
        assert_eq!(
            delete_at(now, None, &[in_days(10), 0]),
            now.saturating_add(TREE_KEEP_DEFAULT)
        );
        assert_eq!(
            delete_at(now, Some(day), &[in_days(10)]),
            now.saturating_add(Duration::from_secs(day))
        );
    }
}
