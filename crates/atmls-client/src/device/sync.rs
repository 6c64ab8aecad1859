//! Catching up: the inbox (welcomes → joins), each group mailbox in sequence order, new
//! devices of this account, and the live loop over DS subscriptions.

use std::collections::BTreeMap;
use std::time::Instant;

use atmls_ds_proto::{Envelope, MailboxId};
use atmls_identity::Did;
use openmls::prelude::*;
use sha2::{Digest as _, Sha256};

use super::backoff::Target;
use super::groups::{forget_signer, is_commit};
use super::outbox;
use super::store;
use super::{Device, State};
use crate::content;
use crate::error::Error;
use crate::event::{Event, Message};
use crate::group::commit::{Intent, WelcomePlan};
use crate::group::processing::{self, Outcome};
use crate::group::{self as grp, GroupId};
use crate::transport::{Delivery, Ds, Pds, SubscribeTo};

/// What processing one envelope asks the caller to do afterwards.
#[derive(Default)]
struct After {
    events: Vec<Event>,
    welcomes: Option<(WelcomePlan, u64)>,
    leave_requested: bool,
    removed: bool,
}

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
        let mut events = Vec::new();
        self.sync_inbox(&mut st, &mut events).await?;
        let now = Instant::now();
        for row in store::groups(&st.conn)? {
            if !row.active {
                continue;
            }
            let id = GroupId(row.group_id.clone());
            if !st.backoffs.ready(&Target::Group(id.0.clone()), now) {
                continue;
            }
            let synced = self.sync_group_inner(&mut st, &id).await;
            let Some((evs, leave)) = self.isolate(&mut st, &id, synced, &mut events)? else {
                continue;
            };
            st.backoffs.succeeded(&Target::Group(id.0.clone()));
            self.emit(&evs);
            events.extend(evs);
            if leave && self.commits_leaves(&mut st, &id)? {
                let committed = self
                    .commit_locked(&mut st, &id, Intent::CommitProposals)
                    .await;
                self.isolate(&mut st, &id, committed, &mut events)?;
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
        if let Some(every) = self.inner.config.self_update_interval {
            self.periodic_self_updates(&mut st, every, &mut events)
                .await?;
        }
        if let Err(e) = self.replenish_locked(&mut st).await {
            own_step_failed(e, "KeyPackages not replenished")?;
        }
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
            Err(Error::NotMember) => return Ok(None),
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

    async fn periodic_self_updates(
        &self,
        st: &mut State,
        every: std::time::Duration,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let now = chrono::Utc::now().timestamp();
        let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        for row in store::groups(&st.conn)? {
            if !row.active {
                continue;
            }
            let last = store::last_update(&st.conn, &row.group_id, now)?;
            if now.saturating_sub(last) < every {
                continue;
            }
            let id = GroupId(row.group_id.clone());
            if !st
                .backoffs
                .ready(&Target::Group(id.0.clone()), Instant::now())
            {
                continue;
            }
            let committed = self
                .commit_locked(st, &id, Intent::SelfUpdate { rotate: false })
                .await;
            if self.isolate(st, &id, committed, events)?.is_some() {
                store::set_last_update(&st.conn, &row.group_id, now)?;
            }
        }
        Ok(())
    }

    /// Whether this device commits the pending leave proposals: admins do; when no admin
    /// stays in the group (the last ones are leaving or left), every remaining member
    /// does (the first commit wins, §11.8). A device that is leaving itself does not.
    fn commits_leaves(&self, st: &mut State, id: &GroupId) -> Result<bool, Error> {
        let me = st.did.clone();
        st.with_group(&id.0, |_, g| {
            let Ok(data) = grp::group_data(g.extensions()) else {
                return Ok(false);
            };
            let leaving: Vec<LeafNodeIndex> = g
                .pending_proposals()
                .filter_map(|p| match p.proposal() {
                    Proposal::Remove(r) => Some(r.removed()),
                    _ => None,
                })
                .collect();
            if leaving.contains(&g.own_leaf_index()) {
                return Ok(false);
            }
            if data.is_admin(me.as_str()) {
                return Ok(true);
            }
            let admin_stays = g.members().any(|m| {
                !leaving.contains(&m.index)
                    && grp::credential_did(&m.credential).is_ok_and(|d| data.is_admin(d.as_str()))
            });
            Ok(!admin_stays)
        })
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
            let page = self
                .inner
                .ds
                .envelopes(&ds, &mailbox, &key, row.cursor)
                .await?;
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
                    let step = st.transaction_or_undo(|st| {
                        process_envelope(st, group, &envelope, &documents)
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
            }
            if at_head {
                break;
            }
        }
        // A pending commit whose envelope never showed up was not accepted: drop it.
        if let Some(pending) = store::pending(&st.conn, &group.0)? {
            st.transaction(|st| {
                st.with_group(&group.0, |provider, g| {
                    g.clear_pending_commit(provider.storage())
                        .map_err(|e| Error::mls("clear pending commit", e))
                })?;
                store::take_sent(&st.conn, &group.0, &pending.digest)?;
                Ok(store::delete_pending(&st.conn, &group.0)?)
            })?;
        }
        Ok((events, leave_requested))
    }

    /// Resolves DID documents for checking added leaves. A transient failure is passed
    /// on (the group backs off and the step is repeated later); a permanent one (the DID
    /// does not resolve: not found, tombstoned, an invalid document) is remembered as
    /// such, and the leaf it names is refused (§11.13, §11.14).
    async fn resolve_documents(&self, st: &mut State, dids: &[Did]) -> Result<(), Error> {
        for did in dids {
            let doc = match self.inner.pds.resolve(did).await {
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
        for row in store::groups(&st.conn)? {
            if !row.active {
                continue;
            }
            let present: Vec<String> = st.with_group(&row.group_id, |_, g| {
                Ok(grp::members(g)
                    .into_iter()
                    .filter(|m| m.did == me)
                    .filter_map(|m| m.device_id)
                    .collect())
            })?;
            // Each group gets another one-time package of the device (a one-time package
            // admits one join); the last-resort one serves when they run out.
            let mut missing = Vec::new();
            for (device, packages) in own.iter_mut() {
                if present.contains(device) || packages.is_empty() {
                    continue;
                }
                let k = if packages.len() > 1 || packages[0].last_resort {
                    if packages.len() > 1 {
                        packages.remove(0)
                    } else {
                        packages[0].clone()
                    }
                } else {
                    packages.remove(0)
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

    /// Runs until a non-network error: subscribes to the inbox and every group mailbox
    /// and syncs whenever something arrives; resubscribes from the cursors when a stream
    /// ends or the keys change (new epoch, new group). A DS that cannot be subscribed to,
    /// or a network failure, falls back to syncing every
    /// [`DeviceConfig::poll_interval`](crate::DeviceConfig::poll_interval), trying to
    /// subscribe again each time. While messages wait in the outbox, it also syncs when
    /// their group's back-off ends, so that they are sent as soon as the DS is back.
    pub async fn run(&self) -> Result<(), Error> {
        let poll = self.inner.config.poll_interval;
        loop {
            match self.sync().await {
                Ok(_) => {}
                Err(Error::Transport(e)) => {
                    tracing::warn!(error = %e, "sync failed; retrying");
                    tokio::time::sleep(poll).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let targets = self.subscription_targets().await?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut subscribed = true;
            for (ds, subs) in &targets {
                match self.inner.ds.subscribe(ds, subs.clone()).await {
                    Ok(mut stream) => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            while let Some(d) = stream.recv().await {
                                if tx.send(d).is_err() {
                                    return;
                                }
                            }
                            let _ = tx.send(Delivery::Closed(None));
                        });
                    }
                    Err(e) => {
                        subscribed = false;
                        tracing::warn!(error = %e, ds = %ds, "cannot subscribe; polling");
                    }
                }
            }
            let fingerprint = fingerprint(&targets);
            let started = std::time::Instant::now();
            loop {
                let wait = self.wait_before_sync(poll).await?;
                let woke = tokio::time::timeout(wait, rx.recv()).await;
                let mut arrived = Vec::new();
                let mut ended = match woke {
                    Ok(Some(Delivery::Envelope { mailbox, .. })) => {
                        arrived.push(mailbox);
                        false
                    }
                    Ok(_) => true,
                    Err(_) => false,
                };
                if ended {
                    // A stream ended: resubscribe (not faster than once a second).
                    if started.elapsed() < std::time::Duration::from_secs(1) {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    break;
                }
                while let Ok(d) = rx.try_recv() {
                    match d {
                        Delivery::Envelope { mailbox, .. } => arrived.push(mailbox),
                        _ => ended = true,
                    }
                }
                // These mailboxes' DS just delivered: it is back, their back-off ends.
                self.reachable(&arrived).await?;
                if let Err(e) = self.sync().await {
                    match e {
                        Error::Transport(_) => break,
                        e => return Err(e),
                    }
                }
                if ended || fingerprint != self::fingerprint(&self.subscription_targets().await?) {
                    break;
                }
                // Polling: try to subscribe again at each poll.
                if !subscribed && woke.is_err() && started.elapsed() >= poll {
                    break;
                }
            }
            drop(tx);
        }
    }

    /// Ends the back-off of the inbox or groups whose mailbox just delivered.
    async fn reachable(&self, mailboxes: &[MailboxId]) -> Result<(), Error> {
        if mailboxes.is_empty() {
            return Ok(());
        }
        let mut st = self.inner.state.lock().await;
        if mailboxes.contains(&MailboxId::from_bytes(st.row.inbox_mailbox)) {
            st.backoffs.succeeded(&Target::Inbox);
        }
        for row in store::groups(&st.conn)? {
            if mailboxes.contains(&MailboxId::from_bytes(row.mailbox)) {
                st.backoffs.succeeded(&Target::Group(row.group_id));
            }
        }
        Ok(())
    }

    /// How long the live loop waits for a delivery before syncing anyway: the poll
    /// interval, or less when messages wait in the outbox and their group's back-off
    /// ends sooner (at least 100 ms).
    async fn wait_before_sync(
        &self,
        poll: std::time::Duration,
    ) -> Result<std::time::Duration, Error> {
        let floor = std::time::Duration::from_millis(100);
        Ok(match self.outbox_due().await? {
            Some(due) => due
                .saturating_duration_since(Instant::now())
                .clamp(floor, poll.max(floor)),
            None => poll,
        })
    }

    async fn subscription_targets(&self) -> Result<BTreeMap<Did, Vec<SubscribeTo>>, Error> {
        let mut st = self.inner.state.lock().await;
        let mut out: BTreeMap<Did, Vec<SubscribeTo>> = BTreeMap::new();
        let inbox_ds =
            Did::new(st.row.inbox_ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
        out.entry(inbox_ds).or_default().push(SubscribeTo {
            mailbox: MailboxId::from_bytes(st.row.inbox_mailbox),
            key: st.inbox_key(),
            cursor: st.row.inbox_cursor,
        });
        for row in store::groups(&st.conn)? {
            if !row.active {
                continue;
            }
            let key = st.mailbox_key(&row.group_id, &row.mailbox)?;
            let ds = Did::new(row.ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
            out.entry(ds).or_default().push(SubscribeTo {
                mailbox: MailboxId::from_bytes(row.mailbox),
                key,
                cursor: row.cursor,
            });
        }
        Ok(out)
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
        Error::RetriesExhausted(_) | Error::NotMember => Ok(()),
        e => Err(e),
    }
}

fn fingerprint(targets: &BTreeMap<Did, Vec<SubscribeTo>>) -> Vec<(MailboxId, [u8; 32])> {
    targets
        .values()
        .flatten()
        .map(|s| (s.mailbox, s.key.verifying_key().to_bytes()))
        .collect()
}

/// Processes one group envelope inside the caller's transaction and advances the cursor.
/// `Ok(Err(dids))`: these DID documents are needed first (the caller rolls back).
fn process_envelope(
    st: &mut State,
    group: &GroupId,
    envelope: &Envelope,
    documents: &crate::group::proofs::Documents,
) -> Result<Result<After, Vec<Did>>, Error> {
    let mut after = After::default();
    let digest = Sha256::digest(&envelope.payload).to_vec();
    store::set_group_cursor(&st.conn, &group.0, envelope.seq)?;
    if is_commit(envelope.kind)
        && let Some(pending) = store::pending(&st.conn, &group.0)?
    {
        if pending.digest == digest {
            // Our own commit, accepted (its answer was lost): merge it now.
            let (plan, new_signer): (WelcomePlan, Option<Vec<u8>>) =
                serde_json::from_str(&pending.welcomes).unwrap_or_default();
            st.with_group(&group.0, |provider, g| {
                g.merge_pending_commit(provider)
                    .map_err(|e| Error::mls("merge commit", e))
            })?;
            if let Some(public) = &new_signer {
                store::set_group_signer(&st.conn, &group.0, public)?;
            }
            store::delete_pending(&st.conn, &group.0)?;
            store::take_sent(&st.conn, &group.0, &digest)?;
            if !plan.targets.is_empty() {
                after.welcomes = Some((plan, envelope.seq + 1));
            }
            return Ok(Ok(after));
        }
        // Someone else's commit won this epoch: drop ours.
        st.with_group(&group.0, |provider, g| {
            g.clear_pending_commit(provider.storage())
                .map_err(|e| Error::mls("clear pending commit", e))
        })?;
        if let Some(public) =
            serde_json::from_str::<(WelcomePlan, Option<Vec<u8>>)>(&pending.welcomes)
                .ok()
                .and_then(|(_, s)| s)
        {
            forget_signer(st, &public)?;
        }
        store::take_sent(&st.conn, &group.0, &pending.digest)?;
        store::delete_pending(&st.conn, &group.0)?;
    }
    if let Some(row) = outbox::rows::by_digest(&st.conn, &group.0, &digest)? {
        // An attempt of a queued message whose answer was lost or never awaited: the DS
        // accepted it, so the message is sent (§11.15).
        outbox::rows::delivered(&st.conn, row.item)?;
        after
            .events
            .push(outbox::own_message(st, group, &row, envelope.seq)?);
    }
    if store::take_sent(&st.conn, &group.0, &digest)? {
        outbox::rows::forget_digest(&st.conn, &group.0, &digest)?;
        return Ok(Ok(after));
    }
    let reject = |reason: String| Event::Rejected {
        group: Some(group.clone()),
        seq: envelope.seq,
        reason,
    };
    let message = match content::unpad(&envelope.payload) {
        Ok(m) => m,
        Err(e) => {
            after.events.push(reject(e.to_string()));
            return Ok(Ok(after));
        }
    };
    let outcome = st.with_group(&group.0, |provider, g| {
        let ctx = processing::CommitContext {
            documents,
            accepted_ms: envelope.received_at.as_millis(),
        };
        Ok(processing::process(provider, g, message, &ctx))
    })?;
    match outcome {
        Outcome::Message {
            sender,
            sender_device,
            content,
        } => {
            // A message its sender sent again (an attempt whose outcome it did not
            // know) is shown once (§11.15).
            if outbox::rows::seen(
                &st.conn,
                &group.0,
                sender.as_str(),
                &content.id,
                envelope.seq,
            )? {
                tracing::debug!(seq = envelope.seq, "a resent message dropped");
            } else {
                after.events.push(Event::Message(Message {
                    group: group.clone(),
                    sender,
                    sender_device,
                    seq: envelope.seq,
                    content: *content,
                }));
            }
        }
        Outcome::Commit {
            committer,
            removed_self,
        } => {
            if removed_self {
                st.with_group(&group.0, |provider, g| {
                    g.delete(provider.storage())
                        .map_err(|e| Error::mls("delete group", e))
                })?;
                st.groups.remove(&group.0);
                store::deactivate_group(&st.conn, &group.0)?;
                after.removed = true;
                after.events.push(Event::Removed {
                    group: group.clone(),
                });
            } else {
                let epoch = st.with_group(&group.0, |_, g| Ok(g.epoch().as_u64()))?;
                after.events.push(Event::GroupChanged {
                    group: group.clone(),
                    epoch,
                    by: committer,
                });
            }
        }
        Outcome::Proposal { leaving } => {
            if let Some(did) = leaving {
                after.leave_requested = true;
                after.events.push(Event::LeaveRequested {
                    group: group.clone(),
                    did,
                });
            }
        }
        Outcome::Ignored(reason) => tracing::debug!(seq = envelope.seq, %reason, "ignored"),
        Outcome::Rejected(reason) => after.events.push(reject(reason)),
        Outcome::Refused(violation) => after.events.push(Event::CommitRefused {
            group: group.clone(),
            seq: envelope.seq,
            violation,
        }),
        Outcome::NeedDocuments(dids) => return Ok(Err(dids)),
        Outcome::StorageFailed(e) => return Err(crate::error::StoreError::Sqlite(e).into()),
    }
    Ok(Ok(after))
}
