//! Welcomes that were not delivered are resent (docs/spec.md §11.4, "not delivered"):
//! a welcome whose `sendWelcome` failed transiently is kept in the device database (its
//! plaintext, sealed anew for each attempt) and tried again on the back-off schedule
//! during `sync`, while the invitee's account still has a leaf in the group and the
//! group's envelopes from `fromSeq` are still kept; after
//! [`DeviceConfig::welcome_attempts`](super::DeviceConfig::welcome_attempts) attempts the
//! device gives up with [`Event::WelcomeGivenUp`].

use std::time::Duration;

use atmls_syntax::Timestamp;
use rusqlite::{Connection, params};

use super::welcome::WelcomeError;
use super::{Device, State};
use crate::decide::commit::WelcomeTarget;
use crate::error::{Error, StoreError};
use crate::event::Event;
use crate::group::seal::WelcomeInfo;
use crate::group::{self as grp, GroupId};
use crate::transport::{Ds, Pds};

/// The table (created with the rest of the device schema, independent of its other
/// steps).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_welcome_resends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id BLOB NOT NULL,
    target TEXT NOT NULL,
    info BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    give_up_at INTEGER NOT NULL
);
";

/// Most welcomes kept for resending; past it a failed welcome is given up at once.
const MAX_KEPT: i64 = 256;

/// Why the device stopped trying to deliver a welcome.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WelcomeGiveUp {
    /// The last attempt failed, and no attempt is left (or the failure is permanent).
    #[error("{0}")]
    Failed(WelcomeError),
    /// The invitee's account no longer has a leaf in the group, or this device left it.
    #[error("the invitee is no longer in the group")]
    NotInGroup,
    /// The group's DS no longer keeps the envelopes from the welcome's `fromSeq`, or the
    /// invitee's leaf lifetime ended: the welcome can no longer be used.
    #[error("the welcome is too old to be used")]
    Expired,
}

struct Row {
    id: i64,
    group_id: Vec<u8>,
    target: WelcomeTarget,
    info: Vec<u8>,
    attempts: u32,
    give_up_at: Timestamp,
}

fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// Keeps a welcome for resending; `false` if the table is full (it is then given up).
pub(crate) fn keep(
    conn: &Connection,
    group_id: &[u8],
    target: &WelcomeTarget,
    info: &WelcomeInfo,
    next_at: Timestamp,
    give_up_at: Timestamp,
) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM atmls_welcome_resends", [], |r| {
        r.get(0)
    })?;
    if n >= MAX_KEPT {
        return Ok(false);
    }
    let target = serde_json::to_string(target).map_err(|_| StoreError::Corrupt("target"))?;
    conn.execute(
        "INSERT INTO atmls_welcome_resends (group_id, target, info, attempts, next_at, give_up_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5)",
        params![
            group_id,
            target,
            info.to_cbor(),
            ms(next_at),
            ms(give_up_at)
        ],
    )?;
    Ok(true)
}

fn due(conn: &Connection, now: Timestamp) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, group_id, target, info, attempts, give_up_at FROM atmls_welcome_resends
         WHERE next_at <= ?1 ORDER BY next_at LIMIT 16",
    )?;
    let rows = stmt.query_map(params![ms(now)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, group_id, target, info, attempts, give_up_at) = row?;
        out.push(Row {
            id,
            group_id,
            target: serde_json::from_str(&target).map_err(|_| StoreError::Corrupt("target"))?,
            info,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            give_up_at: Timestamp::from_millis(u64::try_from(give_up_at).unwrap_or(0)),
        });
    }
    Ok(out)
}

fn forget(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM atmls_welcome_resends WHERE id = ?1",
        params![id],
    )?;
    Ok(())
}

fn postpone(
    conn: &Connection,
    id: i64,
    attempts: u32,
    next_at: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE atmls_welcome_resends SET attempts = ?2, next_at = ?3 WHERE id = ?1",
        params![id, i64::from(attempts), ms(next_at)],
    )?;
    Ok(())
}

/// How many welcomes wait for a resend (tests).
#[cfg(test)]
pub(crate) fn pending(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM atmls_welcome_resends", [], |r| {
        r.get(0)
    })?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The wait after `attempts` failed attempts: `initial · 2^(attempts−1)`, at most `max`.
pub(crate) fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(20);
    initial.saturating_mul(1 << shift).min(max)
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Resends the welcomes whose time has come (§11.4).
    pub(crate) async fn resend_welcomes(
        &self,
        st: &mut State,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let config = &self.inner.config;
        let now = config.clock.now();
        let mut out = Vec::new();
        for row in due(&st.conn, now)? {
            let group = GroupId(row.group_id.clone());
            let did = row.target.did.clone();
            let active = super::store::group(&st.conn, &row.group_id)?.is_some_and(|r| r.active);
            let present = active
                && st.with_group(&row.group_id, |_, g| {
                    Ok(grp::members(g).iter().any(|m| m.did.as_str() == did))
                })?;
            let give_up = |reason| Event::WelcomeGivenUp {
                group: group.clone(),
                did: did.clone(),
                attempts: row.attempts,
                reason,
            };
            if !present {
                forget(&st.conn, row.id)?;
                out.push(give_up(WelcomeGiveUp::NotInGroup));
                continue;
            }
            if now >= row.give_up_at {
                forget(&st.conn, row.id)?;
                out.push(give_up(WelcomeGiveUp::Expired));
                continue;
            }
            let info = match WelcomeInfo::from_cbor(&row.info) {
                Ok(info) => info,
                Err(_) => {
                    forget(&st.conn, row.id)?;
                    return Err(StoreError::Corrupt("welcome").into());
                }
            };
            let sealed = super::welcome::seal_for(st, &row.target, &info);
            let max = match atmls_identity::Did::new(row.target.inbox_ds.clone()) {
                Ok(ds) => self.envelope_limit(&ds).await,
                Err(_) => config.max_envelope_bytes,
            };
            let attempts = row.attempts.saturating_add(1);
            match self.send_one(sealed, max).await {
                Ok(()) => {
                    forget(&st.conn, row.id)?;
                    out.push(Event::WelcomeResent {
                        group: group.clone(),
                        did: did.clone(),
                        attempts,
                    });
                }
                Err(WelcomeError::Refused(e))
                    if e.is_transient() && attempts < config.welcome_attempts =>
                {
                    let wait = backoff(config.retry_backoff, config.max_retry_backoff, attempts);
                    postpone(&st.conn, row.id, attempts, now.saturating_add(wait))?;
                }
                Err(e) => {
                    forget(&st.conn, row.id)?;
                    out.push(Event::WelcomeGivenUp {
                        group: group.clone(),
                        did: did.clone(),
                        attempts,
                        reason: WelcomeGiveUp::Failed(e),
                    });
                }
            }
        }
        self.emit(&out);
        events.extend(out);
        Ok(())
    }
}

/// Whether a failed first attempt is kept for resending.
pub(crate) fn retryable(reason: &WelcomeError) -> bool {
    matches!(reason, WelcomeError::Refused(e) if e.is_transient())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(300), 1), s(1));
        assert_eq!(backoff(s(1), s(300), 2), s(2));
        assert_eq!(backoff(s(1), s(300), 5), s(16));
        assert_eq!(backoff(s(1), s(300), 30), s(300));
    }
}
