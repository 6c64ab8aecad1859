//! The group commit's store: appends (and, on a store shared by several processes, the
//! token claims of the requests that made them) kept in memory until one transaction
//! writes them all.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use atmls_ds::store::{
    Append, Claimed, CreateOutcome, EndedEpoch, GroupClaim, Mailbox, NonceShares, PageLimit,
    RateAllowance, SavedNonce, SharedNonce, SharedRate,
};
use atmls_ds::{Envelope, MailboxId, MailboxKind, Store, StoreError};

/// A [`Store`] that keeps appends in memory until [`GroupStore::flush`] writes them all
/// in one transaction. Reads of a mailbox's state see the pending appends (so the core
/// sequences the next request after them); envelope reads go to the committed store.
///
/// **Claims in the group commit.** On a store shared by several processes
/// ([`Store::shares_state`]), the core records every mailbox token it accepts in the
/// store's shared replay cache ([`Store::claim_nonce`]). While a request that appends is
/// decided ([`GroupStore::begin_decision`]), that claim is not made at once: it is kept
/// with the request's append and written in the same transaction
/// ([`Store::append_claimed`]), so a request costs no transaction of its own. Its answer
/// waits for that transaction anyway; if another process used the token first, the
/// request's append is not written and it is refused then ([`Flushed::claims`]).
#[derive(Debug)]
pub(crate) struct GroupStore<S> {
    inner: RefCell<S>,
    /// Whether `inner` is shared with other processes (claims are deferred).
    shared: bool,
    pending: RefCell<Vec<Append>>,
    overlay: RefCell<HashMap<MailboxId, Mailbox>>,
    /// The state of mailboxes read under [`GroupStore::lock`] (`None`: no such mailbox),
    /// until the flush.
    locked: RefCell<HashMap<MailboxId, Option<Mailbox>>>,
    /// The deferred claims, in the order made; `None` once taken back.
    claims: RefCell<Vec<Option<Deferred>>>,
    /// Whether an appending request is being decided (its claim is deferred).
    deciding: Cell<bool>,
    /// The deferred claim of the request being decided, if it made one.
    current: Cell<Option<usize>>,
}

/// A deferred claim, as the core made it.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    claim: GroupClaim,
    shares: NonceShares,
    now: atmls_ds::Timestamp,
}

/// What a flush wrote.
#[derive(Debug, Default)]
pub(crate) struct Flushed {
    /// The appends that were pending, in order.
    pub(crate) appends: Vec<Append>,
    /// What became of each.
    pub(crate) written: Vec<Written>,
    /// Per deferred claim (by the index [`GroupStore::end_decision`] gave): the store's
    /// verdict, or `None` if it was not written (taken back, or its append not tried).
    pub(crate) claims: Vec<Option<SharedNonce>>,
}

impl<S: Store> GroupStore<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            shared: inner.shares_state(),
            inner: RefCell::new(inner),
            pending: RefCell::default(),
            overlay: RefCell::default(),
            locked: RefCell::default(),
            claims: RefCell::default(),
            deciding: Cell::new(false),
            current: Cell::new(None),
        }
    }

    /// Whether a flush has anything to write or a lock to end.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.borrow().is_empty()
            || !self.locked.borrow().is_empty()
            || self.claims.borrow().iter().any(Option::is_some)
    }

    /// Before deciding requests that append to `ids`: reads them under the store's lock
    /// ([`Store::lock_mailboxes`]; the flush writes under it and ends it), and decides
    /// them against that state. On a store shared with other processes, no other process
    /// can then move their heads before the flush: their appends do not lose the
    /// compare-and-swap, whoever else writes to the mailbox. If the lock cannot be
    /// taken, the requests are decided as without it (their reads fail or race).
    pub(crate) fn lock(&self, ids: &[MailboxId]) {
        let locked = self.locked.borrow();
        let mut ids: Vec<MailboxId> = ids
            .iter()
            .filter(|id| !locked.contains_key(id))
            .copied()
            .collect();
        drop(locked);
        ids.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        ids.dedup();
        if ids.is_empty() {
            return;
        }
        match self.inner.borrow_mut().lock_mailboxes(&ids) {
            Ok(found) => {
                let mut locked = self.locked.borrow_mut();
                for id in ids {
                    locked.insert(id, None);
                }
                for m in found {
                    locked.insert(m.id, Some(m));
                }
            }
            Err(e) => tracing::warn!(error = e.kind(), "cannot lock mailboxes before deciding"),
        }
    }

    /// A request that appends is about to be decided: its token claim, if it makes one,
    /// waits for the flush.
    pub(crate) fn begin_decision(&self) {
        self.deciding.set(true);
        self.current.set(None);
    }

    /// The request is decided: the index of its deferred claim, if it made one.
    pub(crate) fn end_decision(&self) -> Option<usize> {
        self.deciding.set(false);
        self.current.take()
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending.borrow().len()
    }

    /// The index of the last pending append to `id`: what a request on `id` decided now
    /// depends on.
    pub(crate) fn last_pending(&self, id: &MailboxId) -> Option<usize> {
        self.pending
            .borrow()
            .iter()
            .rposition(|a| a.mailbox.id == *id)
    }

    /// Writes every pending append and deferred claim: in one transaction, or, if that
    /// fails (or a claim tied to an append was refused), each append with its claim in
    /// its own transaction, in order (an append after a failed one to the same mailbox
    /// is not tried: it was sequenced after it), then the claims of requests that
    /// appended nothing. Nothing is pending afterwards.
    pub(crate) fn flush(&self) -> Flushed {
        let appends = std::mem::take(&mut *self.pending.borrow_mut());
        self.overlay.borrow_mut().clear();
        self.locked.borrow_mut().clear();
        let deferred = std::mem::take(&mut *self.claims.borrow_mut());
        let mut claims = vec![None; deferred.len()];
        let live: Vec<(usize, Deferred)> = deferred
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .collect();
        if appends.is_empty() && live.is_empty() {
            self.inner.borrow_mut().unlock_mailboxes();
            return Flushed {
                appends,
                written: Vec::new(),
                claims,
            };
        }
        // One set of shares for the group (the configuration's); the earliest `now`, at
        // which at least as many entries are unexpired as at any later one (stricter).
        let shares = live.first().map_or(
            NonceShares {
                per_key: 0,
                per_mailbox: 0,
            },
            |(_, d)| d.shares,
        );
        let now = live
            .iter()
            .map(|(_, d)| d.now)
            .min()
            .unwrap_or(atmls_ds::Timestamp::from_millis(0));
        let mut inner = self.inner.borrow_mut();
        let group: Vec<GroupClaim> = live.iter().map(|(_, d)| d.claim).collect();
        match inner.append_claimed(&appends, &group, shares, now) {
            Ok(Claimed::Written(verdicts)) => {
                for ((i, _), v) in live.iter().zip(verdicts) {
                    claims[*i] = Some(v);
                }
                let written = appends.iter().map(|_| Written::Committed).collect();
                return Flushed {
                    appends,
                    written,
                    claims,
                };
            }
            Ok(_) => tracing::info!(
                appends = appends.len(),
                "a token of the group was used by another process; writing each request alone"
            ),
            Err(e) => tracing::warn!(
                error = e.kind(),
                appends = appends.len(),
                "group commit failed; writing each request alone"
            ),
        }
        let mut written: Vec<Written> = Vec::with_capacity(appends.len());
        let mut last: HashMap<MailboxId, usize> = HashMap::new();
        for (i, append) in appends.iter().enumerate() {
            let before = last.insert(append.mailbox.id, i);
            if before.is_some_and(|b| !written[b].committed()) {
                written.push(Written::Interrupted);
                continue;
            }
            let mine: Vec<usize> = live
                .iter()
                .filter(|(_, d)| d.claim.append == Some(i))
                .map(|(k, _)| *k)
                .collect();
            let group: Vec<GroupClaim> = mine
                .iter()
                .filter_map(|k| deferred[*k])
                .map(|d| GroupClaim {
                    append: Some(0),
                    ..d.claim
                })
                .collect();
            let outcome =
                match inner.append_claimed(std::slice::from_ref(append), &group, shares, now) {
                    Ok(Claimed::Written(verdicts)) => {
                        for (k, v) in mine.iter().zip(verdicts) {
                            claims[*k] = Some(v);
                        }
                        Written::Committed
                    }
                    Ok(Claimed::Refused(verdicts)) => {
                        for (k, v) in mine.iter().zip(verdicts) {
                            claims[*k] = Some(v);
                        }
                        Written::Refused
                    }
                    Ok(_) => Written::Refused,
                    Err(e) => Written::Failed(e),
                };
            written.push(outcome);
        }
        let alone: Vec<usize> = live
            .iter()
            .filter(|(_, d)| d.claim.append.is_none())
            .map(|(k, _)| *k)
            .collect();
        if !alone.is_empty() {
            let group: Vec<GroupClaim> = alone
                .iter()
                .filter_map(|k| deferred[*k].map(|d| d.claim))
                .collect();
            match inner.append_claimed(&[], &group, shares, now) {
                Ok(Claimed::Written(verdicts) | Claimed::Refused(verdicts)) => {
                    for (k, v) in alone.iter().zip(verdicts) {
                        claims[*k] = Some(v);
                    }
                }
                Ok(_) => {}
                // Those requests were refused already; their tokens are not remembered
                // by the other processes (this one's cache still holds them).
                Err(e) => {
                    tracing::warn!(error = e.kind(), "cannot record refused requests' tokens")
                }
            }
        }
        Flushed {
            appends,
            written,
            claims,
        }
    }
}

/// What became of one pending append at a flush.
#[derive(Debug)]
pub(crate) enum Written {
    /// Durable.
    Committed,
    /// Its own transaction failed.
    Failed(StoreError),
    /// Not written: its request's token was used by another process (or a share of the
    /// shared replay cache is full; [`Flushed::claims`] says which).
    Refused,
    /// Not tried: an earlier append to the same mailbox failed.
    Interrupted,
}

impl Written {
    pub(crate) fn committed(&self) -> bool {
        matches!(self, Self::Committed)
    }
}

impl<S: Store> Store for GroupStore<S> {
    fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        if let Some(m) = self.overlay.borrow().get(id) {
            return Ok(Some(*m));
        }
        if let Some(m) = self.locked.borrow().get(id) {
            return Ok(*m);
        }
        self.inner.borrow().mailbox(id)
    }

    fn create_mailbox(
        &mut self,
        account: &str,
        max_per_account: u64,
        mailbox: &Mailbox,
    ) -> Result<CreateOutcome, StoreError> {
        self.inner
            .get_mut()
            .create_mailbox(account, max_per_account, mailbox)
    }

    fn append(&mut self, batches: &[Append]) -> Result<(), StoreError> {
        // Check every batch against the state including earlier pending ones; apply only
        // if all pass (the store checks again when the group is written).
        let mut staged: HashMap<MailboxId, Mailbox> = HashMap::new();
        for b in batches {
            let id = b.mailbox.id;
            let current = match staged.get(&id) {
                Some(m) => *m,
                None => self.mailbox(&id)?.ok_or(StoreError::UnknownMailbox(id))?,
            };
            if current.head != b.expected_head {
                return Err(StoreError::HeadMoved {
                    mailbox: id,
                    expected: b.expected_head,
                    actual: current.head,
                });
            }
            staged.insert(id, b.mailbox);
        }
        self.overlay.get_mut().extend(staged);
        self.pending.get_mut().extend_from_slice(batches);
        // The claim of the request being decided stands or falls with its append.
        if let Some(c) = self.current.get()
            && !batches.is_empty()
            && let Some(Some(d)) = self.claims.get_mut().get_mut(c)
        {
            d.claim.append = Some(self.pending.get_mut().len() - 1);
        }
        Ok(())
    }

    fn envelopes(
        &self,
        id: &MailboxId,
        after: u64,
        limit: PageLimit,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.inner.borrow().envelopes(id, after, limit)
    }

    fn delete_envelopes(&mut self, id: &MailboxId, seqs: &[u64]) -> Result<u64, StoreError> {
        self.inner.get_mut().delete_envelopes(id, seqs)
    }

    fn expire(
        &mut self,
        kind: MailboxKind,
        before: atmls_ds::Timestamp,
    ) -> Result<u64, StoreError> {
        self.inner.get_mut().expire(kind, before)
    }

    fn expire_messages(
        &mut self,
        now: atmls_ds::Timestamp,
        margin: std::time::Duration,
    ) -> Result<u64, StoreError> {
        self.inner.get_mut().expire_messages(now, margin)
    }

    fn account_mailboxes(&self, account: &str) -> Result<u64, StoreError> {
        self.inner.borrow().account_mailboxes(account)
    }

    /// Committed state only: the core asks only for reads, which run after a flush.
    fn ended_epoch(
        &self,
        id: &MailboxId,
        key: &[u8; 32],
    ) -> Result<Option<EndedEpoch>, StoreError> {
        self.inner.borrow().ended_epoch(id, key)
    }

    /// Called at a clean stop, after the last flush.
    fn save_replay(&mut self, entries: &[SavedNonce]) -> Result<(), StoreError> {
        self.inner.get_mut().save_replay(entries)
    }

    fn take_replay(&mut self) -> Result<Option<Vec<SavedNonce>>, StoreError> {
        self.inner.get_mut().take_replay()
    }

    fn shares_state(&self) -> bool {
        self.inner.borrow().shares_state()
    }

    /// Deferred to the flush while an appending request is decided on a shared store
    /// (answering `Fresh` for now); made at once otherwise.
    fn claim_nonce(
        &self,
        entry: &SavedNonce,
        shares: NonceShares,
        now: atmls_ds::Timestamp,
    ) -> Result<SharedNonce, StoreError> {
        if !(self.shared && self.deciding.get()) {
            return self.inner.borrow().claim_nonce(entry, shares, now);
        }
        let mut claims = self.claims.borrow_mut();
        claims.push(Some(Deferred {
            claim: GroupClaim {
                entry: *entry,
                append: None,
            },
            shares,
            now,
        }));
        self.current.set(Some(claims.len() - 1));
        Ok(SharedNonce::Fresh)
    }

    /// On a shared store, the only claims taken back are deferred ones: of requests
    /// decided again before the flush (dropped here), or written with an append that
    /// then did not commit (so never stored). Nothing is deleted from the store: a claim
    /// deleted by `(key, nonce)` might be another process's.
    fn release_nonce(&self, key: &[u8; 32], nonce: &[u8; 16]) -> Result<(), StoreError> {
        if !self.shared {
            return self.inner.borrow().release_nonce(key, nonce);
        }
        for slot in self.claims.borrow_mut().iter_mut() {
            if slot.is_some_and(|d| d.claim.entry.key == *key && d.claim.entry.nonce == *nonce) {
                *slot = None;
            }
        }
        Ok(())
    }

    fn take_deposit(
        &self,
        inbox: &MailboxId,
        len: u64,
        now: atmls_ds::Timestamp,
        allowance: RateAllowance,
    ) -> Result<SharedRate, StoreError> {
        self.inner.borrow().take_deposit(inbox, len, now, allowance)
    }

    fn give_back_deposit(
        &self,
        inbox: &MailboxId,
        len: u64,
        window_start: atmls_ds::Timestamp,
    ) -> Result<(), StoreError> {
        self.inner
            .borrow()
            .give_back_deposit(inbox, len, window_start)
    }

    fn sweep_shared(
        &self,
        now: atmls_ds::Timestamp,
        longest_window: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.inner.borrow().sweep_shared(now, longest_window)
    }
}
