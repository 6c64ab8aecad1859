//! Catching up: the inbox (welcomes → joins), each group mailbox in sequence order, new
//! devices of this account. The async orchestration only: what each envelope comes to
//! is decided in [`crate::decide::envelope`] and performed by [`super::envelope`].

use std::time::Instant;

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;

use super::backoff::Target;
use super::envelope;
use super::outbox;
use super::recovery;
use super::store;
use super::{Device, State};
use crate::decide::commit::{self, Intent};
use crate::error::Error;
use crate::event::Event;
use crate::group::{self as grp, GroupId};
use crate::transport::{Ds, Pds};

impl<P: Pds, D: Ds> Device<P, D> {
    /// Fetches and processes everything new: welcomes in the inbox (joining groups),
    /// every group's mailbox from its cursor, and (at the configured interval) new devices
    /// of this account, which are then added to every group. Returns the events (also
    /// sent to [`Device::events`]).
    ///
    /// A failure of one mailbox, group or inbox item does not stop the others
    /// (docs/spec.md §11.14): a permanent one refuses that item ([`Event::Rejected`],
    /// [`Event::CommitRefused`]) and the cursor moves on; a transient one
    /// ([`Event::Unreachable`], [`Event::InboxUnreachable`],
    /// [`Event::InboxItemDeferred`]) backs off that group or inbox, or sets that item
    /// aside. `Err` is left for local failures (the device database) and this account's
    /// own requests.
    pub async fn sync(&self) -> Result<Vec<Event>, Error> {
        let mut st = self.inner.state.lock().await;
        // DID documents are resolved afresh each sync (keys rotate).
        st.documents.clear();
        // Messages that outlived their group's lifetime since the last sync (§11.18).
        super::vanish::sweep(&mut st, self.inner.config.clock.now())?;
        let mut events = Vec::new();
        self.sync_inbox(&mut st, &mut events).await?;
        let now = Instant::now();
        for row in store::groups(&st.conn)? {
            if !row.active {
                continue;
            }
            let id = GroupId(row.group_id.clone());
            if !st.backoffs.ready(&Target::Group(id.0.clone()), now)
                || recovery::is_broken(&st, &id.0)?
            {
                continue;
            }
            let synced = self.sync_group_inner(&mut st, &id).await;
            let Some((evs, leave)) = self.isolate(&mut st, &id, synced, &mut events)? else {
                continue;
            };
            st.backoffs.succeeded(&Target::Group(id.0.clone()));
            let changed = evs.iter().any(|e| matches!(e, Event::GroupChanged { .. }));
            self.emit(&evs);
            events.extend(evs);
            if leave && self.commits_leaves(&mut st, &id)? {
                let committed = self
                    .commit_locked(&mut st, &id, Intent::CommitProposals)
                    .await;
                self.isolate(&mut st, &id, committed, &mut events)?;
            }
            // Another member's commit may have left the DS a lifetime that is not the
            // group's (§11.18): checked, repaired by a self-update.
            if changed {
                let repaired = self.repair_mailbox_lifetime(&mut st, &id).await;
                self.isolate(&mut st, &id, repaired, &mut events)?;
            }
            // The mailbox was just read to its head: the outbox goes on from there.
            if outbox::rows::has_pending(&st.conn, &id.0)?
                && st
                    .backoffs
                    .ready(&Target::Group(id.0.clone()), Instant::now())
            {
                self.flush_group(&mut st, &id, true, &mut events).await?;
            }
        }
        // Messages queued for groups this device has left are given up.
        for gid in outbox::rows::pending_groups(&st.conn)? {
            if !store::group(&st.conn, &gid)?.is_some_and(|r| r.active) {
                self.flush_group(&mut st, &GroupId(gid), true, &mut events)
                    .await?;
            }
        }
        self.request_reentries(&mut st).await?;
        // A database from before device keys publishes its record first (§11.16.1);
        // without it no leaf can be bound, so the periodic updates wait.
        self.bind_device(&mut st).await?;
        if st.is_bound() {
            let now = st.unix_now();
            self.periodic_leaf_updates(&mut st, now, &mut events)
                .await?;
        }
        if let Err(e) = self.replenish_locked(&mut st).await {
            own_step_failed(e, "KeyPackages not replenished")?;
        }
        // Undelivered welcomes and out-of-band trees (§11.4).
        self.resend_welcomes(&mut st, &mut events).await?;
        self.delete_expired_trees(&mut st).await?;
        let interval = self.inner.config.own_device_check_interval;
        if st.last_device_check.is_none_or(|t| t.elapsed() >= interval) {
            st.last_device_check = Some(Instant::now());
            if let Err(e) = self.add_own_devices(&mut st, &mut events).await {
                st.last_device_check = None;
                own_step_failed(e, "own devices not checked")?;
            }
        }
        Ok(events)
    }

    /// The outcome of a step on one group: a transport failure (or a commit that kept
    /// losing races) is reported as [`Event::Unreachable`] and backs that group off
    /// instead of failing the whole sync (`Ok(None)`); other errors are the caller's.
    pub(super) fn isolate<T>(
        &self,
        st: &mut State,
        group: &GroupId,
        result: Result<T, Error>,
        events: &mut Vec<Event>,
    ) -> Result<Option<T>, Error> {
        let error = match result {
            Ok(v) => return Ok(Some(v)),
            Err(Error::Transport(e)) => e,
            Err(Error::NotMember | Error::Broken(_)) => return Ok(None),
            Err(Error::RetriesExhausted(n)) => {
                tracing::warn!(
                    attempts = n,
                    "commit gave up after conflicts; retried later"
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let config = &self.inner.config;
        st.backoffs.failed(
            Target::Group(group.0.clone()),
            error.kind(),
            Instant::now(),
            config.retry_backoff,
            config.max_retry_backoff,
        );
        let ev = Event::Unreachable {
            group: group.clone(),
            error,
        };
        self.emit(std::slice::from_ref(&ev));
        events.push(ev);
        Ok(None)
    }

    /// Whether this device commits the pending leave proposals
    /// ([`commit::commits_leaves`]).
    fn commits_leaves(&self, st: &mut State, id: &GroupId) -> Result<bool, Error> {
        let me = st.did.clone();
        st.with_group(&id.0, |_, g| Ok(commit::commits_leaves(g, &me)))
    }

    /// Catches up with one group (used after a lost commit race).
    pub(crate) async fn sync_group_locked(
        &self,
        st: &mut State,
        group: &GroupId,
    ) -> Result<Vec<Event>, Error> {
        Ok(self.sync_group_inner(st, group).await?.0)
    }

    async fn sync_group_inner(
        &self,
        st: &mut State,
        group: &GroupId,
    ) -> Result<(Vec<Event>, bool), Error> {
        let mut events = Vec::new();
        let mut leave_requested = false;
        loop {
            let Some(row) = store::group(&st.conn, &group.0)? else {
                return Err(Error::UnknownGroup);
            };
            if !row.active {
                break;
            }
            let key = st.mailbox_key(&group.0, &row.mailbox)?;
            let ds = Did::new(row.ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
            let mailbox = MailboxId::from_bytes(row.mailbox);
            let page = match self
                .inner
                .ds
                .envelopes(&ds, &mailbox, &key, row.cursor)
                .await
            {
                Ok(page) => page,
                // The DS no longer serves this device's epoch (§11.17).
                Err(e) if recovery::cut_off(&e) => {
                    let reason = recovery::cut_off_reason(st, group, row.cursor)?;
                    recovery::enter_broken(st, group, reason, &mut events)?;
                    return Ok((events, false));
                }
                Err(e) => return Err(e.into()),
            };
            if page.envelopes.is_empty() {
                break;
            }
            // The DS said this page reaches the head: no need to ask for an empty one.
            let at_head = page.at_head;
            for envelope in page.envelopes {
                let after = loop {
                    // A commit that adds leaves needs their accounts' DID documents: the
                    // step is undone, they are resolved, and it runs again.
                    let documents = std::mem::take(&mut st.documents);
                    let now = self.inner.config.clock.now();
                    let step = st.transaction_or_undo(|st| {
                        let mut step =
                            envelope::process_envelope(st, group, &envelope, &documents)?;
                        if let Ok(after) = &mut step {
                            super::vanish::after_envelope(
                                st,
                                group,
                                &envelope,
                                &mut after.events,
                                now,
                            )?;
                        }
                        Ok(step)
                    });
                    st.documents = documents;
                    match step? {
                        Ok(after) => break after,
                        Err(dids) => self.resolve_documents(st, &dids).await?,
                    }
                };
                events.extend(after.events);
                leave_requested |= after.leave_requested;
                if let Some((plan, from_seq)) = after.welcomes {
                    self.send_welcomes(st, group, &ds, &mailbox, &plan, from_seq)
                        .await;
                }
                if after.removed {
                    store::checkpoint(&st.conn)?;
                    return Ok((events, false));
                }
                if after.broken {
                    return Ok((events, false));
                }
            }
            if at_head {
                break;
            }
        }
        // A pending commit whose envelope never showed up was not accepted: drop it.
        if store::pending(&st.conn, &group.0)?.is_some() {
            st.transaction(|st| st.drop_pending(group))?;
        }
        Ok((events, leave_requested))
    }

    /// Resolves DID documents for checking added leaves. A transient failure is passed
    /// on (the group backs off and the step is repeated later); a permanent one (the DID
    /// does not resolve: not found, tombstoned, an invalid document) is remembered as
    /// such, and the leaf it names is refused (§11.13, §11.14).
    pub(super) async fn resolve_documents(
        &self,
        st: &mut State,
        dids: &[Did],
    ) -> Result<(), Error> {
        for did in dids {
            let doc = match self.inner.pds.resolve_history(did).await {
                Ok(doc) => Ok(doc),
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => Err(e.to_string()),
            };
            st.documents.insert(did.clone(), doc);
        }
        Ok(())
    }

    /// Adds this account's devices that are missing from a group to it.
    async fn add_own_devices(&self, st: &mut State, events: &mut Vec<Event>) -> Result<(), Error> {
        let me = st.did.clone();
        let mut own = match self.key_packages_by_device(st, &me, false).await {
            Ok(v) => v,
            Err(Error::NoKeyPackage { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        // One-time packages already used by this device are not used again (§11.9).
        for packages in own.values_mut() {
            st.drop_used_key_packages(packages)?;
        }
        for row in store::groups(&st.conn)? {
            if !row.active || recovery::is_broken(st, &row.group_id)? {
                continue;
            }
            let (present, suite): (Vec<String>, _) = st.with_group(&row.group_id, |_, g| {
                Ok((
                    grp::members(g)
                        .into_iter()
                        .filter(|m| m.did == me)
                        .filter_map(|m| m.device_id)
                        .collect(),
                    g.ciphersuite(),
                ))
            })?;
            // Each group gets another one-time package of the device (a one-time package
            // admits one join); the last-resort one serves when they run out. Only
            // packages in the group's suite: a device without one stays out (§11.19).
            let mut missing = Vec::new();
            for (device, all) in own.iter_mut() {
                if present.contains(device) {
                    continue;
                }
                let Some(i) = all
                    .iter()
                    .position(|k| k.key_package.ciphersuite() == suite)
                else {
                    tracing::debug!("own device has no KeyPackage in the group's suite");
                    continue;
                };
                let k = if all[i].last_resort {
                    all[i].clone()
                } else {
                    all.remove(i)
                };
                missing.push(k);
            }
            let id = GroupId(row.group_id.clone());
            if !missing.is_empty()
                && st
                    .backoffs
                    .ready(&Target::Group(id.0.clone()), Instant::now())
            {
                let committed = self.commit_locked(st, &id, Intent::Add(missing)).await;
                self.isolate(st, &id, committed, events)?;
            }
        }
        Ok(())
    }
}

/// A failed step of this account's own upkeep (its PDS: KeyPackages, its devices): a
/// transport failure is logged and the step is tried again at the next sync; anything
/// else is the caller's.
pub(super) fn own_step_failed(e: Error, what: &'static str) -> Result<(), Error> {
    match e {
        Error::Transport(e) => {
            tracing::warn!(error = %e, "{what}; retried at the next sync");
            Ok(())
        }
        Error::RetriesExhausted(_) | Error::NotMember | Error::Broken(_) => Ok(()),
        e => Err(e),
    }
}
