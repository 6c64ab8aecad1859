//! The periodic leaf updates of this device in each group (docs/spec.md §11.16.6): a
//! signature-key rotation every [`DeviceConfig::signature_rotation_interval`] and a plain
//! self-update (new encryption keys) every [`DeviceConfig::self_update_interval`]. A
//! rotation is also a self-update, so a group due for both gets one commit. The
//! credential identity never changes; receivers refuse a leaf that changes it (§11.1).
//!
//! [`DeviceConfig::signature_rotation_interval`]: super::DeviceConfig::signature_rotation_interval
//! [`DeviceConfig::self_update_interval`]: super::DeviceConfig::self_update_interval

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::backoff::Target;
use super::store::{self, exec};
use super::{Device, State};
use crate::decide::commit::Intent;
use crate::error::{Error, StoreError};
use crate::event::Event;
use crate::group::GroupId;
use crate::transport::{Ds, Pds};

/// This module's table (its own migration step: created if missing, never altered).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_rotations (
    group_id BLOB NOT NULL PRIMARY KEY,
    at INTEGER NOT NULL
);
";

/// When this device last rotated its leaf signature key in the group (Unix seconds);
/// set to `now` the first time it is asked (a group just created or joined starts its
/// schedule then).
pub(crate) fn last_rotation(
    conn: &Connection,
    group_id: &[u8],
    now: i64,
) -> Result<i64, StoreError> {
    exec(
        conn,
        "INSERT OR IGNORE INTO atmls_rotations (group_id, at) VALUES (?1, ?2)",
        params![group_id, now],
    )?;
    Ok(conn.query_row(
        "SELECT at FROM atmls_rotations WHERE group_id = ?1",
        [group_id],
        |r| r.get(0),
    )?)
}

/// Records a rotation at `at` (0: due at the next sync).
pub(crate) fn set_last_rotation(
    conn: &Connection,
    group_id: &[u8],
    at: i64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_rotations (group_id, at) VALUES (?1, ?2)
         ON CONFLICT (group_id) DO UPDATE SET at = excluded.at",
        params![group_id, at],
    )?;
    Ok(())
}

/// Whether something last done at `last` is due again at `now` every `every` (`None`:
/// never on its own).
fn due(last: i64, now: i64, every: Option<Duration>) -> bool {
    every.is_some_and(|every| {
        let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        now.saturating_sub(last) >= every
    })
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// The periodic leaf updates of every active group at `now` (Unix seconds): a
    /// rotation where one is due, else a self-update where one is due. A group that
    /// cannot be reached is backed off and tried again at a later sync.
    pub(super) async fn periodic_leaf_updates(
        &self,
        st: &mut State,
        now: i64,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let config = &self.inner.config;
        let (rotate_every, update_every) = (
            config.signature_rotation_interval,
            config.self_update_interval,
        );
        if rotate_every.is_none() && update_every.is_none() {
            return Ok(());
        }
        let mut refreshed = false;
        for row in store::groups(&st.conn)? {
            // A broken group commits nothing until it is re-added (§11.17).
            if !row.active || super::recovery::is_broken(st, &row.group_id)? {
                continue;
            }
            let rotate = due(
                last_rotation(&st.conn, &row.group_id, now)?,
                now,
                rotate_every,
            );
            let update = due(
                store::last_update(&st.conn, &row.group_id, now)?,
                now,
                update_every,
            );
            if !(rotate || update) {
                continue;
            }
            let id = GroupId(row.group_id.clone());
            if !st
                .backoffs
                .ready(&Target::Group(id.0.clone()), Instant::now())
            {
                continue;
            }
            if rotate && !refreshed {
                // The new keys' bindings carry a fresh proof of the device record (the
                // account's `#atproto` key may have changed, §11.16.7); if it cannot be
                // had now, the kept one serves.
                refreshed = true;
                if let Err(e) = self.publish_device_record(st, true).await {
                    super::sync::own_step_failed(e, "device record proof not refreshed")?;
                }
            }
            let committed = self
                .commit_locked(st, &id, Intent::SelfUpdate { rotate })
                .await;
            if self.isolate(st, &id, committed, events)?.is_some() {
                store::set_last_update(&st.conn, &row.group_id, now)?;
                if rotate {
                    set_last_rotation(&st.conn, &row.group_id, now)?;
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
    fn schedule() {
        let day = Duration::from_secs(86_400);
        assert!(!due(0, 0, None));
        assert!(due(0, 0, Some(Duration::ZERO)));
        assert!(!due(100, 100 + 3 * 86_400 - 1, Some(3 * day)));
        assert!(due(100, 100 + 3 * 86_400, Some(3 * day)));
        assert!(due(0, i64::MAX, Some(Duration::MAX)));
    }

    #[test]
    fn first_ask_starts_the_schedule() {
        let conn = store::open_in_memory().unwrap();
        assert_eq!(last_rotation(&conn, b"g", 500).unwrap(), 500);
        assert_eq!(last_rotation(&conn, b"g", 900).unwrap(), 500);
        set_last_rotation(&conn, b"g", 0).unwrap();
        assert_eq!(last_rotation(&conn, b"g", 900).unwrap(), 0);
    }
}
