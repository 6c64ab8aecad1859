//! The inbox: sealed welcomes (docs/spec.md §11.4) become joins. Every item is decided on
//! its own (§11.14): refused, joined, or — when something it needs failed transiently —
//! set aside on this device and retried later a bounded number of times, so that no item
//! a stranger can deposit stops the items after it, or the groups.

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;

use super::backoff::{Target, delay};
use super::recovery;
use super::store::{self, GroupRow};
use super::sync::own_step_failed;
use super::{Device, State};
use crate::decide::commit::Intent;
use crate::decide::welcome;
use crate::error::{Error, TransportError};
use crate::event::Event;
use crate::group::GroupId;
use crate::group::binding;
use crate::group::proofs::LeafCheck;
use crate::transport::{Ds, Pds};

/// Most inbox items set aside at once; an item that fails transiently when this many
/// wait is refused at once.
pub(crate) const MAX_DEFERRED: usize = 64;
/// Attempts of an item set aside before it is refused (with the default back-off, about
/// 45 minutes of failures).
pub(crate) const MAX_ATTEMPTS: u32 = 16;
/// Items set aside retried in one sync, at most.
const RETRIES_PER_SYNC: usize = 4;
/// Transient failures of inbox items tolerated in one sync (each may have cost a
/// timeout); after that, items that need the network are set aside untried, so that a
/// flood of items naming hosts that hang cannot hold the sync away from the groups.
const TRANSIENT_PER_SYNC: u32 = 2;

/// Why a join step was undone.
enum Undo {
    /// These DID documents are needed to check the tree's leaves.
    Resolve(Vec<Did>),
    /// A leaf of the tree is not bound to its account.
    Forged(crate::error::PolicyViolation),
}

/// A joined group, and how it was joined.
struct Joined {
    group: GroupId,
    name: String,
    key_package_ref: Vec<u8>,
    last_resort: bool,
    /// It replaced this device's broken state in the group (§11.17).
    recovered: bool,
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Retries the items set aside whose time has come, then lists the inbox and decides
    /// each new item. A failure to list backs the inbox off ([`Event::InboxUnreachable`]);
    /// the caller goes on with the groups.
    pub(super) async fn sync_inbox(
        &self,
        st: &mut State,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let now = std::time::Instant::now();
        if !st.backoffs.ready(&Target::Inbox, now) {
            return Ok(());
        }
        let mut budget = TRANSIENT_PER_SYNC;
        let now_ms = st.unix_ms();
        for row in store::deferred_due(&st.conn, now_ms, RETRIES_PER_SYNC)? {
            self.inbox_item(st, row.seq, &row.payload, row.attempts, &mut budget, events)
                .await?;
        }
        let ds = Did::new(st.row.inbox_ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
        let inbox = MailboxId::from_bytes(st.row.inbox_mailbox);
        let key = st.inbox_key();
        loop {
            let listed = self
                .inner
                .ds
                .list_inbox(&ds, &inbox, &key, st.row.inbox_cursor)
                .await;
            let page = match listed {
                Ok(page) => page,
                Err(error) => {
                    let config = &self.inner.config;
                    st.backoffs.failed(
                        Target::Inbox,
                        error.kind(),
                        now,
                        config.retry_backoff,
                        config.max_retry_backoff,
                    );
                    let ev = Event::InboxUnreachable { error };
                    self.emit(std::slice::from_ref(&ev));
                    events.push(ev);
                    return Ok(());
                }
            };
            st.backoffs.succeeded(&Target::Inbox);
            if page.envelopes.is_empty() {
                break;
            }
            let mut done = Vec::new();
            for item in page.envelopes {
                self.inbox_item(st, item.seq, &item.payload, 0, &mut budget, events)
                    .await?;
                done.push(item.seq);
            }
            for chunk in done.chunks(100) {
                if let Err(e) = self
                    .inner
                    .ds
                    .delete_inbox_items(&ds, &inbox, &key, chunk.to_vec())
                    .await
                {
                    tracing::warn!(error = %e, "inbox items not deleted");
                }
            }
            store::checkpoint(&st.conn)?;
        }
        Ok(())
    }

    /// Decides one inbox item, new (`attempts` 0) or set aside after `attempts` failed
    /// attempts: joined, refused ([`Event::Rejected`]) or set aside again
    /// ([`Event::InboxItemDeferred`]). The inbox cursor moves past it in every case.
    /// `budget` is what is left of this sync's transient failures: when none is left,
    /// an item that needs the network is set aside untried.
    async fn inbox_item(
        &self,
        st: &mut State,
        seq: u64,
        payload: &[u8],
        attempts: u32,
        budget: &mut u32,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        // A re-entry request (§11.17): decided on its own, never set aside (the
        // requester asks again on its schedule).
        if crate::group::reentry::is_sealed_reentry(payload) {
            st.transaction(|st| {
                advance_cursor(st, seq)?;
                store::release_deferred(&st.conn, seq)?;
                Ok(())
            })?;
            return self.reentry_item(st, payload, events).await;
        }
        let packages = store::key_packages(&st.conn)?;
        let opened = welcome::open(&st.provider(), packages, payload)?;
        // An out-of-band ratchet tree (§11.4) is fetched before the join.
        let tree_ref = opened
            .as_ref()
            .ok()
            .and_then(|o| o.info.ratchet_tree.as_ref());
        let fetched = match tree_ref {
            None => None,
            Some(_) if *budget == 0 => Some(Err(Error::Transport(TransportError::Network(
                "not tried: this sync's budget of transient failures is spent".into(),
            )))),
            Some(r) => Some(self.fetch_tree(r).await),
        };
        let tree = match fetched {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(Error::Transport(error))) if error.is_transient() => {
                let attempts =
                    match self.set_aside(st, seq, payload, attempts, budget, error, events)? {
                        None => return Ok(()),
                        Some(a) => a,
                    };
                Err(format!(
                    "ratchet tree still unreachable after {attempts} attempts"
                ))
            }
            Some(Err(e)) => Err(e.to_string()),
        };
        // Groups a welcome may replace: those this device left or is broken in.
        let mut replaceable = Vec::new();
        for row in store::groups(&st.conn)? {
            if !row.active || recovery::is_broken(st, &row.group_id)? {
                replaceable.push(row.group_id);
            }
        }
        // Joined, then every other leaf's device binding checked (§11.16.5); the DID
        // documents this needs are resolved first and the step is run again.
        let joined = loop {
            let documents = std::mem::take(&mut st.documents);
            let (o, t) = (opened.clone(), tree.clone());
            let step = st.transaction_or_undo(|st| {
                let joined = match (o, t) {
                    (Ok(opened), Ok(tree)) => {
                        match welcome::join(&st.provider(), opened, tree, &replaceable) {
                            Ok(j) => match binding::check_tree(&j.group, &documents) {
                                Ok(()) => Ok(record_join(st, j)?),
                                Err(LeafCheck::NeedDocuments(dids)) => {
                                    return Ok(Err(Undo::Resolve(dids)));
                                }
                                Err(LeafCheck::Refused(v)) => return Ok(Err(Undo::Forged(v))),
                            },
                            Err(refusal) => Err(refusal.to_string()),
                        }
                    }
                    (Err(refusal), _) => Err(refusal.to_string()),
                    (_, Err(reason)) => Err(reason),
                };
                advance_cursor(st, seq)?;
                store::release_deferred(&st.conn, seq)?;
                Ok(Ok(joined))
            });
            st.documents = documents;
            match step? {
                Ok(joined) => break joined,
                Err(Undo::Forged(violation)) => {
                    // Nothing of the join stays; the item is done with.
                    st.transaction(|st| {
                        advance_cursor(st, seq)?;
                        store::release_deferred(&st.conn, seq)?;
                        Ok(())
                    })?;
                    let ev = Event::WelcomeRefused { seq, violation };
                    self.emit(std::slice::from_ref(&ev));
                    events.push(ev);
                    return Ok(());
                }
                Err(Undo::Resolve(dids)) => match self.resolve_documents(st, &dids).await {
                    Ok(()) => {}
                    Err(Error::Transport(error)) if error.is_transient() => {
                        if self
                            .set_aside(st, seq, payload, attempts, budget, error, events)?
                            .is_none()
                        {
                            return Ok(());
                        }
                        break Err(format!(
                            "DID documents still unresolved after {attempts} attempts"
                        ));
                    }
                    Err(e) => return Err(e),
                },
            }
        };
        let joined = match joined {
            Ok(j) => Ok(j),
            Err(reason) => {
                // Refused before or during the join: the cursor moves past it.
                st.transaction(|st| {
                    advance_cursor(st, seq)?;
                    store::release_deferred(&st.conn, seq)?;
                    Ok(())
                })?;
                Err(reason)
            }
        };
        let j = match joined {
            Ok(j) => j,
            Err(reason) => {
                let ev = Event::Rejected {
                    group: None,
                    seq,
                    reason,
                };
                self.emit(std::slice::from_ref(&ev));
                events.push(ev);
                return Ok(());
            }
        };
        let mut evs = vec![Event::Joined {
            group: j.group.clone(),
            name: j.name.clone(),
        }];
        if j.recovered {
            evs.push(Event::Recovered {
                group: j.group.clone(),
            });
        }
        self.emit(&evs);
        events.extend(evs);
        // What follows talks to the group's DS (named by whoever invited us) and to our
        // PDS: a failure is that group's (or retried at the next sync), not the inbox's.
        if j.last_resort {
            // Joined through the last-resort package: rotate the leaf signature key at
            // once (if that fails, the periodic rotation does it at the next sync).
            let rotated = self
                .commit_locked(st, &j.group, Intent::SelfUpdate { rotate: true })
                .await;
            if self.isolate(st, &j.group, rotated, events)?.is_none() {
                // Due at the next sync: the periodic path rotates (not only updates).
                store::set_last_update(&st.conn, &j.group.0, 0)?;
                super::rotation::set_last_rotation(&st.conn, &j.group.0, 0)?;
                return Ok(());
            }
            let now = st.unix_now();
            store::set_last_update(&st.conn, &j.group.0, now)?;
            super::rotation::set_last_rotation(&st.conn, &j.group.0, now)?;
        } else if let Err(e) = self.consumed_key_package(st, &j.key_package_ref).await {
            own_step_failed(e, "consumed KeyPackage not deleted")?;
        }
        let synced = self.sync_group_locked(st, &j.group).await;
        if let Some(evs) = self.isolate(st, &j.group, synced, events)? {
            self.emit(&evs);
            events.extend(evs);
        }
        Ok(())
    }

    /// A transient failure of an item: sets it aside ([`Event::InboxItemDeferred`],
    /// `None`) unless it may not wait any more (`Some(attempts)`: the caller refuses it).
    /// An item tried when this sync's `budget` is spent keeps its count and is due at once.
    #[allow(clippy::too_many_arguments)] // the item, its count, the sync's budget and events
    fn set_aside(
        &self,
        st: &mut State,
        seq: u64,
        payload: &[u8],
        attempts: u32,
        budget: &mut u32,
        error: TransportError,
        events: &mut Vec<Event>,
    ) -> Result<Option<u32>, Error> {
        let config = &self.inner.config;
        let (attempts, wait) = if *budget == 0 {
            (attempts, std::time::Duration::ZERO)
        } else {
            *budget -= 1;
            let n = attempts.saturating_add(1);
            (n, delay(config.retry_backoff, config.max_retry_backoff, n))
        };
        if self.defer(st, seq, payload, attempts, wait)? {
            let ev = Event::InboxItemDeferred {
                seq,
                error,
                attempts,
            };
            self.emit(std::slice::from_ref(&ev));
            events.push(ev);
            return Ok(None);
        }
        Ok(Some(attempts))
    }

    /// Sets an item aside (moving the cursor past it) until `wait` has passed, with
    /// `attempts` failed attempts so far; `false` when it may not wait any more (too many
    /// attempts, or too many items waiting).
    fn defer(
        &self,
        st: &mut State,
        seq: u64,
        payload: &[u8],
        attempts: u32,
        wait: std::time::Duration,
    ) -> Result<bool, Error> {
        let waiting = store::deferred_count(&st.conn)?;
        let already = seq <= st.row.inbox_cursor;
        if attempts >= MAX_ATTEMPTS || (!already && waiting >= MAX_DEFERRED) {
            return Ok(false);
        }
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let next_at = st.unix_ms().saturating_add(wait_ms);
        st.transaction(|st| {
            store::defer(&st.conn, seq, payload, attempts, next_at)?;
            advance_cursor(st, seq)
        })?;
        Ok(true)
    }
}

/// Moves the inbox cursor to `seq` unless it is already past it (an item set aside
/// earlier).
fn advance_cursor(st: &mut State, seq: u64) -> Result<(), Error> {
    if seq > st.row.inbox_cursor {
        store::set_inbox_cursor(&st.conn, seq)?;
        st.row.inbox_cursor = seq;
    }
    Ok(())
}

/// Records a group joined from a welcome.
fn record_join(st: &mut State, j: welcome::Joined) -> Result<Joined, Error> {
    let id = j.group.group_id().as_slice().to_vec();
    // A group re-joined: what was pending or held for the old state goes (§11.17).
    let recovered = recovery::is_broken(st, &id)?;
    if store::group(&st.conn, &id)?.is_some() {
        store::deactivate_group(&st.conn, &id)?;
        recovery::rows::clear_broken(&st.conn, &id)?;
    }
    // A restored device was re-added somewhere: its group-less requests end.
    recovery::rows::set_restore(&st.conn, None)?;
    store::insert_group(
        &st.conn,
        &GroupRow {
            group_id: id.clone(),
            ds: j.data.ds.to_string(),
            mailbox: j.data.mailbox,
            cursor: j.cursor,
            signature_public: st.row.signature_public.clone(),
            active: true,
        },
    )?;
    st.groups.insert(id.clone(), j.group);
    Ok(Joined {
        group: GroupId(id),
        name: j.data.name,
        key_package_ref: j.package.key_package_ref,
        last_resort: j.package.last_resort,
        recovered,
    })
}
