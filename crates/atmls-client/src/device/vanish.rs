//! Disappearing messages on the device (docs/spec.md §11.18): what the device keeps of the
//! messages of a group with a message lifetime, and its deletion once they expire.
//!
//! The device keeps no message history; what it holds about messages is the `atmls_seen`
//! ids (sender, content id and position of recent messages, §11.15) and the outbox's
//! given-up messages (their plaintext). A message expires when the DS's `receivedAt` is
//! more than the lifetime before the device's clock ([`super::DeviceConfig::clock`]):
//! - `atmls_vanish` maps each envelope of such a group to its `receivedAt`, so the ids
//!   of `atmls_seen` up to the last expired position go with it (and the rows of
//!   `atmls_vanish` themselves);
//! - a given-up message has no `receivedAt` (the DS never took it): `atmls_vanish_given_up`
//!   records when the sweep first saw it given up, and it goes one lifetime later;
//! - a message already expired when this device reads it (it was offline) is not shown;
//! - a group this device left keeps nothing of this.
//!
//! The sweep runs at open and at every sync; it checkpoints the WAL after deleting
//! (`secure_delete` is on, §11.11).

use atmls_ds_proto::Envelope;
use atmls_syntax::Timestamp;
use openmls::prelude::MlsGroup;
use rusqlite::{OptionalExtension as _, params};

use super::store::{self, exec, to_i64};
use super::{Device, State};
use crate::error::{Error, StoreError};
use crate::event::Event;
use crate::group::{self as grp, GroupId, MessageLifetime, lifetime_seconds};
use crate::transport::{Ds, Pds};

/// The tables of this module (created at open, independent of the others).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_vanish (
    group_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS atmls_vanish_given_up (
    item INTEGER NOT NULL PRIMARY KEY,
    at INTEGER NOT NULL
);
";

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vanished {
    /// Message ids (`atmls_seen`) and position records deleted.
    pub seen: u64,
    /// Given-up messages of the outbox deleted.
    pub given_up: u64,
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Deletes what this device keeps of messages that outlived their group's message
    /// lifetime (docs/spec.md §11.18). Done at [`Device::open`] and at every
    /// [`Device::sync`]; this runs it now.
    pub async fn expire_messages(&self) -> Result<Vanished, Error> {
        let mut st = self.inner.state.lock().await;
        sweep(&mut st, self.inner.config.clock.now())
    }

    /// After a commit of another member: asks the DS for the mailbox's message lifetime
    /// (`getMailbox`) and, if it is not the group's, commits a self-update, which carries
    /// the group's (§11.18). A DS without `getMailbox` is not checked.
    pub(crate) async fn repair_mailbox_lifetime(
        &self,
        st: &mut State,
        group: &GroupId,
    ) -> Result<(), Error> {
        let Some(row) = store::group(&st.conn, &group.0)?.filter(|r| r.active) else {
            return Ok(());
        };
        let key = st.mailbox_key(&group.0, &row.mailbox)?;
        let ds =
            atmls_identity::Did::new(row.ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
        let mailbox = atmls_ds_proto::MailboxId::from_bytes(row.mailbox);
        let info = match self.inner.ds.mailbox_info(&ds, &mailbox, &key).await {
            Ok(info) => info,
            Err(e) if e.ds_error() == Some(atmls_ds_proto::ErrorName::MethodNotImplemented) => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let ours = st.with_group(&group.0, |_, g| Ok(lifetime_of(g)))?;
        if info.message_lifetime == ours.map(MessageLifetime::seconds) {
            return Ok(());
        }
        tracing::info!("the DS's message lifetime differs from the group's: repairing");
        self.commit_locked(
            st,
            group,
            crate::decide::commit::Intent::SelfUpdate { rotate: false },
        )
        .await
        .map(|_| ())
    }

    /// How many records of messages this device keeps: message ids of recent messages
    /// (`atmls_seen`), the positions of messages in groups with a lifetime, and given-up
    /// messages of the outbox. What [`Device::expire_messages`] deletes comes off this.
    pub async fn stored_message_records(&self) -> Result<u64, Error> {
        let st = self.inner.state.lock().await;
        let n: i64 = st
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM atmls_seen) + (SELECT count(*) FROM atmls_vanish)
                 + (SELECT count(*) FROM atmls_outbox WHERE failed IS NOT NULL)",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// The group's message lifetime in its current epoch.
pub(crate) fn lifetime_of(g: &MlsGroup) -> Option<MessageLifetime> {
    grp::group_data(g.extensions())
        .ok()
        .and_then(|d| d.message_lifetime)
}

/// The message lifetime a commit left pending in `g` sets, as the wire value (0: none):
/// the DS is told it with the commit (`messageLifetime`, §9.6.3).
pub(crate) fn pending_lifetime_seconds(g: &MlsGroup) -> u32 {
    let data = match g.pending_commit() {
        Some(staged) => grp::group_data(staged.group_context().extensions()).ok(),
        None => grp::group_data(g.extensions()).ok(),
    };
    lifetime_seconds(data.and_then(|d| d.message_lifetime))
}

/// Whether a message received at `received_at` has expired at `now`.
fn expired(received_at: Timestamp, lifetime: MessageLifetime, now: Timestamp) -> bool {
    received_at < now.saturating_sub(lifetime.duration())
}

/// After `envelope` was processed (same transaction): records its position and time when
/// the group has a lifetime, and drops from `events` a message that had already expired
/// at `now` (the other members deleted it; this device was away).
pub(crate) fn after_envelope(
    st: &mut State,
    group: &GroupId,
    envelope: &Envelope,
    events: &mut Vec<Event>,
    now: Timestamp,
) -> Result<(), Error> {
    if !store::group(&st.conn, &group.0)?.is_some_and(|r| r.active) {
        return Ok(());
    }
    let Some(lifetime) = st.with_group(&group.0, |_, g| Ok(lifetime_of(g)))? else {
        return Ok(());
    };
    exec(
        &st.conn,
        "INSERT OR REPLACE INTO atmls_vanish (group_id, seq, received_at) VALUES (?1, ?2, ?3)",
        params![
            group.0,
            to_i64(envelope.seq)?,
            to_i64(envelope.received_at.as_millis())?
        ],
    )?;
    if expired(envelope.received_at, lifetime, now) {
        events.retain(|e| !matches!(e, Event::Message(m) if m.seq == envelope.seq));
        exec(
            &st.conn,
            "DELETE FROM atmls_seen WHERE group_id = ?1 AND seq = ?2",
            params![group.0, to_i64(envelope.seq)?],
        )?;
    }
    Ok(())
}

/// Deletes what expired at `now` in every group (one transaction), then truncates the WAL
/// if anything was deleted.
pub(crate) fn sweep(st: &mut State, now: Timestamp) -> Result<Vanished, Error> {
    let out = st.transaction(|st| {
        let mut out = Vanished::default();
        for row in store::groups(&st.conn)? {
            let id = row.group_id.clone();
            let lifetime = if row.active {
                st.with_group(&id, |_, g| Ok(lifetime_of(g)))?
            } else {
                None
            };
            let Some(lifetime) = lifetime else {
                if !row.active {
                    // A group left: nothing of its messages is needed any more.
                    out.seen += u64_of(exec(
                        &st.conn,
                        "DELETE FROM atmls_seen WHERE group_id = ?1",
                        [&id],
                    )?);
                }
                exec(
                    &st.conn,
                    "DELETE FROM atmls_vanish WHERE group_id = ?1",
                    [&id],
                )?;
                continue;
            };
            out.seen += expire_seen(st, &id, lifetime, now)?;
            out.given_up += expire_given_up(st, &id, lifetime, now)?;
        }
        Ok(out)
    })?;
    if out != Vanished::default() {
        store::checkpoint(&st.conn)?;
    }
    Ok(out)
}

fn u64_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The message ids of `atmls_seen` up to the last expired position, and those positions.
fn expire_seen(
    st: &State,
    group_id: &[u8],
    lifetime: MessageLifetime,
    now: Timestamp,
) -> Result<u64, Error> {
    let cutoff = to_i64(now.saturating_sub(lifetime.duration()).as_millis())?;
    let last: Option<i64> = st
        .conn
        .prepare_cached(
            "SELECT max(seq) FROM atmls_vanish WHERE group_id = ?1 AND received_at < ?2",
        )?
        .query_row(params![group_id, cutoff], |r| r.get(0))
        .optional()
        .map_err(StoreError::from)?
        .flatten();
    let Some(last) = last else {
        return Ok(0);
    };
    let seen = exec(
        &st.conn,
        "DELETE FROM atmls_seen WHERE group_id = ?1 AND seq <= ?2",
        params![group_id, last],
    )?;
    let positions = exec(
        &st.conn,
        "DELETE FROM atmls_vanish WHERE group_id = ?1 AND seq <= ?2",
        params![group_id, last],
    )?;
    Ok(u64_of(seen) + u64_of(positions))
}

/// Given-up messages of the group: timed when first seen here, deleted a lifetime later.
fn expire_given_up(
    st: &State,
    group_id: &[u8],
    lifetime: MessageLifetime,
    now: Timestamp,
) -> Result<u64, Error> {
    exec(
        &st.conn,
        "INSERT OR IGNORE INTO atmls_vanish_given_up (item, at)
         SELECT item, ?2 FROM atmls_outbox WHERE group_id = ?1 AND failed IS NOT NULL",
        params![group_id, to_i64(now.as_millis())?],
    )?;
    let cutoff = to_i64(now.saturating_sub(lifetime.duration()).as_millis())?;
    let expired = "SELECT g.item FROM atmls_vanish_given_up g JOIN atmls_outbox o
                   ON o.item = g.item WHERE o.group_id = ?1 AND g.at < ?2";
    exec(
        &st.conn,
        &format!("DELETE FROM atmls_outbox_digests WHERE item IN ({expired})"),
        params![group_id, cutoff],
    )?;
    let n = exec(
        &st.conn,
        &format!("DELETE FROM atmls_outbox WHERE item IN ({expired})"),
        params![group_id, cutoff],
    )?;
    // Timings of messages no longer in the outbox (deleted here, discarded, or sent).
    exec(
        &st.conn,
        "DELETE FROM atmls_vanish_given_up WHERE item NOT IN (SELECT item FROM atmls_outbox)",
        [],
    )?;
    Ok(u64_of(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiry_is_strictly_after_the_lifetime() {
        let l = MessageLifetime::new(Duration::from_secs(60)).unwrap();
        let at = Timestamp::from_millis(1_000_000);
        assert!(!expired(at, l, at.saturating_add(Duration::from_secs(60))));
        assert!(expired(
            at,
            l,
            at.saturating_add(Duration::from_millis(60_001))
        ));
    }
}
