//! The single writer: one thread owns the core ([`DeliveryService`]) and its store, and
//! serves every request through a channel.
//!
//! Requests that append (`sendEnvelopes`, `sendWelcome`) are decided by the core one
//! after the other against an in-memory overlay ([`GroupStore`]); the batches of all such
//! requests taken from the queue together are then written in **one** `Store::append`
//! transaction (group commit), and only after it committed are the live subscribers fed
//! and the requests answered. Every other request first commits what is pending, so it
//! only ever sees committed state. The write runs here, not in the request's future: a
//! request whose client went away is still decided and committed (or not) as a whole.
//!
//! **Isolation.** If the group's transaction fails, nothing of it was written; each
//! request's append is then written again in a transaction of its own, in order, so a
//! request that fails (whoever sent it) fails alone. A request decided against the
//! pending state of a mailbox whose earlier append failed gets `ServiceUnavailable`
//! (`Interrupted`: nothing stored, send again), never another request's error. The core's
//! memory follows the store: the replay-cache entry and deposit count of a request whose
//! append was not written are taken back.
//!
//! **Several processes.** On a store shared with other processes, the writer locks the
//! mailboxes of a run of appending requests in the store before deciding them
//! ([`Store::lock_mailboxes`]; the group commit writes under that lock), so another
//! process cannot move their heads between the decision and the write: writers of one
//! mailbox in two processes take turns rather than starve each other. A request whose
//! append still lost the race (the lock could not be taken) is decided again, at most
//! [`MAX_REDECIDE`] times, then answered `ServiceUnavailable`.
//!
//! **Token claims.** On a store shared by several processes, the claim of each accepted
//! mailbox token in the shared replay cache is written inside the same group commit as
//! the appends ([`group_store`]): no request waits for a transaction of its own before
//! the group's; a token another process used first refuses its request then.
//!
//! **Lanes.** Over a store shared by several processes, a process may run several
//! writers ([`lanes`]), each serving its share of the mailboxes as another process
//! would: several group commits in flight, each mailbox's requests still in one serial
//! chain.
//!
//! Mailbox-key requests arrive with their token decoded and signature verified
//! ([`PreChecked`], done in the request's task): the writer only applies the cheap steps
//! of the verification order (timestamp, mailbox, kind, key, nonce), reporting a failed
//! pre-check at its own step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use atmls_ds::auth::PreChecked;
use atmls_ds::store::{Append, PageLimit, SharedNonce};
use atmls_ds::{
    AuthError, CreateMailboxError, DeliveryService, Envelope, EnvelopeKind, EnvelopePage, Expired,
    InboxError, InboxPage, MailboxId, MailboxInfo, MailboxKind, OutgoingEnvelope, ReadError,
    Restart, SendEnvelopesError, SendReceipt, SendWelcomeError, Store, StoreError, Subscription,
};
use rand::rngs::OsRng;
use tokio::sync::{mpsc, oneshot};

use super::config::{Clock, DsServiceConfig};
use atmls_xrpc::subscription::{Frame, FrameError};

mod group_store;
mod lanes;

use group_store::{Flushed, GroupStore, Written};
pub(crate) use lanes::{Lanes, WeakLanes, lane_of};

/// Where a writer's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<T>;

/// One mailbox of a subscription request, its token already checked.
#[derive(Debug)]
pub(crate) struct SubscribeItem {
    pub(crate) mailbox: MailboxId,
    pub(crate) auth: PreChecked,
    pub(crate) cursor: Option<u64>,
}

/// A failure of one mailbox of a subscription, with its position in the request.
pub(crate) type ItemError = (usize, ReadError);

/// A request for the writer.
#[derive(Debug)]
pub(crate) enum Command {
    Create {
        account: String,
        kind: MailboxKind,
        key: Vec<u8>,
        epoch: u64,
        reply: Reply<Result<MailboxInfo, CreateMailboxError>>,
    },
    /// Whether the account has its quota of mailboxes (before its token is recorded).
    QuotaReached {
        account: String,
        reply: Reply<Result<bool, StoreError>>,
    },
    Mailbox {
        id: MailboxId,
        auth: PreChecked,
        reply: Reply<Result<MailboxInfo, ReadError>>,
    },
    Send {
        id: MailboxId,
        auth: PreChecked,
        envelopes: Vec<OutgoingEnvelope>,
        reply: Reply<Result<SendReceipt, SendEnvelopesError>>,
    },
    Envelopes {
        id: MailboxId,
        auth: PreChecked,
        cursor: u64,
        limit: u32,
        reply: Reply<Result<EnvelopePage, ReadError>>,
    },
    Welcome {
        inbox: MailboxId,
        payload: Vec<u8>,
        reply: Reply<Result<u64, SendWelcomeError>>,
    },
    ListInbox {
        inbox: MailboxId,
        auth: PreChecked,
        cursor: u64,
        limit: u32,
        reply: Reply<Result<InboxPage, InboxError>>,
    },
    DeleteInbox {
        inbox: MailboxId,
        auth: PreChecked,
        seqs: Vec<u64>,
        reply: Reply<Result<u64, InboxError>>,
    },
    /// Authorises every mailbox and, if all pass, registers `live` for them: atomically
    /// with respect to commits, so that the backlog read afterwards and the live feed
    /// overlap instead of leaving a gap.
    Subscribe {
        items: Vec<SubscribeItem>,
        live: LiveTx,
        reply: Reply<Result<Vec<Subscription>, ItemError>>,
    },
    /// Committed envelopes of a mailbox after `after` (a subscription's backlog; it was
    /// authorised when it started).
    Page {
        id: MailboxId,
        after: u64,
        limit: usize,
        reply: Reply<Result<Vec<Envelope>, StoreError>>,
    },
    /// Whether the keys of these subscriptions are still usable.
    Check {
        subs: Vec<Subscription>,
        reply: Reply<Result<(), ItemError>>,
    },
    Unsubscribe {
        id: u64,
    },
    /// Other processes appended to these mailboxes (up to at least these heads), or,
    /// with `None`, may have appended to any: feed the live subscribers of the mailboxes
    /// served here from the store (a store shared by several processes only).
    Wake {
        heads: Option<Vec<(MailboxId, u64)>>,
    },
    Expire {
        reply: Option<Reply<Result<Expired, StoreError>>>,
    },
    Stop {
        reply: Reply<()>,
    },
}

/// Committed envelopes of one mailbox, shared by every subscriber of it. The frames are
/// encoded once, by the first subscriber that needs them.
#[derive(Debug)]
pub(crate) struct LiveBatch {
    pub(crate) mailbox: MailboxId,
    pub(crate) envelopes: Vec<Envelope>,
    frames: OnceLock<Result<Vec<Frame>, FrameError>>,
}

impl LiveBatch {
    /// Whether the batch moved the epoch.
    pub(crate) fn has_commit(&self) -> bool {
        self.envelopes
            .iter()
            .any(|e| e.kind == EnvelopeKind::Commit)
    }

    /// One `#envelope` frame per envelope, encoded on first use.
    pub(crate) fn frames(&self) -> &Result<Vec<Frame>, FrameError> {
        self.frames.get_or_init(|| {
            self.envelopes
                .iter()
                .map(|e| super::wire::envelope_frame(&self.mailbox, e))
                .collect()
        })
    }
}

/// A subscription's live feed, as the writer holds it.
#[derive(Debug, Clone)]
pub(crate) struct LiveTx {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<Arc<LiveBatch>>,
    /// Set when the feed overflowed and was dropped: the subscriber is too slow.
    pub(crate) overflowed: Arc<AtomicBool>,
}

/// Who listens to which mailbox. Owned by the writer thread: registering and publishing
/// happen in the same order as commits.
#[derive(Debug, Default)]
struct Hub {
    by_mailbox: HashMap<MailboxId, Vec<LiveTx>>,
    by_sub: HashMap<u64, Vec<MailboxId>>,
    /// With a store shared by several processes: per mailbox served, the last seq its
    /// live subscribers were fed (from this process's commits or read from the store).
    published: HashMap<MailboxId, u64>,
}

impl Hub {
    /// The last seq fed to the subscribers of `mailbox`, if it is served (shared stores).
    fn published(&self, mailbox: &MailboxId) -> Option<u64> {
        self.published.get(mailbox).copied()
    }

    /// The mailboxes served here.
    fn mailboxes(&self) -> Vec<MailboxId> {
        self.by_mailbox.keys().copied().collect()
    }

    /// Feeds the envelopes of `mailbox` after its published seq (in order, from a store
    /// shared by several processes), and records `head` (at least) as published.
    fn feed(&mut self, mailbox: MailboxId, envelopes: Vec<Envelope>, head: u64) {
        let Some(published) = self.published.get(&mailbox).copied() else {
            return;
        };
        let fresh: Vec<Envelope> = envelopes
            .into_iter()
            .filter(|e| e.seq > published)
            .collect();
        let last = fresh
            .last()
            .map_or(published, |e| e.seq)
            .max(head)
            .max(published);
        self.published.insert(mailbox, last);
        if !fresh.is_empty() {
            self.send(mailbox, fresh);
        }
    }

    /// Ends every subscription of `mailbox` (its feed could not be read: the subscriber
    /// reconnects from its cursor rather than miss an envelope).
    fn end_mailbox(&mut self, mailbox: &MailboxId) {
        let ids: Vec<u64> = self
            .by_mailbox
            .get(mailbox)
            .map(|l| l.iter().map(|l| l.id).collect())
            .unwrap_or_default();
        for id in ids {
            self.remove(id);
        }
    }

    fn send(&mut self, mailbox: MailboxId, envelopes: Vec<Envelope>) {
        let Some(list) = self.by_mailbox.get(&mailbox) else {
            return;
        };
        let batch = Arc::new(LiveBatch {
            mailbox,
            envelopes,
            frames: OnceLock::new(),
        });
        let mut dead = Vec::new();
        for live in list {
            match live.tx.try_send(batch.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    live.overflowed.store(true, Ordering::SeqCst);
                    dead.push(live.id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => dead.push(live.id),
            }
        }
        for id in dead {
            self.remove(id);
        }
    }

    fn register(&mut self, mailbox: MailboxId, live: &LiveTx) {
        self.by_mailbox
            .entry(mailbox)
            .or_default()
            .push(live.clone());
        self.by_sub.entry(live.id).or_default().push(mailbox);
    }

    fn remove(&mut self, id: u64) {
        for mailbox in self.by_sub.remove(&id).unwrap_or_default() {
            if let Some(list) = self.by_mailbox.get_mut(&mailbox) {
                list.retain(|l| l.id != id);
                if list.is_empty() {
                    self.by_mailbox.remove(&mailbox);
                    self.published.remove(&mailbox);
                }
            }
        }
    }

    fn publish(&mut self, appends: Vec<Append>) {
        let mut dead = Vec::new();
        for append in appends {
            let Some(list) = self.by_mailbox.get(&append.mailbox.id) else {
                continue;
            };
            let batch = Arc::new(LiveBatch {
                mailbox: append.mailbox.id,
                envelopes: append.envelopes,
                frames: OnceLock::new(),
            });
            for live in list {
                match live.tx.try_send(batch.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        live.overflowed.store(true, Ordering::SeqCst);
                        dead.push(live.id);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => dead.push(live.id),
                }
            }
        }
        for id in dead {
            self.remove(id);
        }
    }

    /// Drops subscriptions whose receiver is gone.
    fn sweep(&mut self) {
        let dead: Vec<u64> = self
            .by_mailbox
            .values()
            .flatten()
            .filter(|l| l.tx.is_closed())
            .map(|l| l.id)
            .collect();
        for id in dead {
            self.remove(id);
        }
    }
}

/// An answer held back until the appends it depends on are written.
struct Held {
    /// The index of the request's own pending append (it was accepted).
    append: Option<usize>,
    /// The index of the pending append to the same mailbox it was decided after.
    depends: Option<usize>,
    /// Its token claim, deferred to the flush (shared stores).
    claim: Option<usize>,
    answer: Answer,
}

/// A held-back answer, with what is needed to take back its effects on the core.
///
/// With a store shared by several processes, it also keeps the request itself (`again`),
/// to decide it again if another process moved the mailbox's head before the write.
enum Answer {
    Send {
        id: MailboxId,
        auth: PreChecked,
        result: Result<SendReceipt, SendEnvelopesError>,
        reply: Reply<Result<SendReceipt, SendEnvelopesError>>,
        again: Option<Vec<OutgoingEnvelope>>,
        attempt: u32,
    },
    Welcome {
        inbox: MailboxId,
        len: usize,
        result: Result<u64, SendWelcomeError>,
        reply: Reply<Result<u64, SendWelcomeError>>,
        again: Option<Vec<u8>>,
        attempt: u32,
    },
}

impl Command {
    /// Whether the request only nudges the writer (a wake-up, an unsubscription): it
    /// neither reads nor writes a mailbox's state, and may wait for the end of a group.
    fn is_nudge(&self) -> bool {
        matches!(self, Self::Wake { .. } | Self::Unsubscribe { .. })
    }

    /// The mailbox a request that appends appends to.
    fn appends_to(&self) -> Option<MailboxId> {
        match self {
            Self::Send { id, .. } => Some(*id),
            Self::Welcome { inbox, .. } => Some(*inbox),
            _ => None,
        }
    }
}

impl Redo {
    fn mailbox(&self) -> MailboxId {
        match self {
            Self::Send { id, .. } => *id,
            Self::Welcome { inbox, .. } => *inbox,
        }
    }
}

/// A request to decide again: its append lost a race with another process.
enum Redo {
    Send {
        id: MailboxId,
        auth: PreChecked,
        envelopes: Vec<OutgoingEnvelope>,
        reply: Reply<Result<SendReceipt, SendEnvelopesError>>,
        attempt: u32,
    },
    Welcome {
        inbox: MailboxId,
        payload: Vec<u8>,
        reply: Reply<Result<u64, SendWelcomeError>>,
        attempt: u32,
    },
}

/// What a held-back request learns at the flush.
enum Fate<'a> {
    /// Its answer stands.
    Stands,
    /// Its own append failed.
    Failed(&'a StoreError),
    /// It was decided after an append that was not written.
    Interrupted,
}

impl Fate<'_> {
    /// Whether deciding the request again may succeed: the mailbox moved under it (another
    /// process appended), or it was decided after an append that was not written.
    fn redecide(&self) -> bool {
        matches!(
            self,
            Self::Failed(StoreError::HeadMoved { .. }) | Self::Interrupted
        )
    }
}

struct Writer<S: Store> {
    /// Whether the store is shared with other processes (their appends race ours).
    shared: bool,
    core: DeliveryService<GroupStore<S>, OsRng>,
    clock: Arc<dyn Clock>,
    hub: Hub,
    held: Vec<Held>,
}

/// Starts the writer over `store`: one thread, or, over a store shared by several
/// processes that offers more handles ([`Store::more_writers`]), one thread per handle
/// ([`lanes`]). Each runs until [`Command::Stop`] (a clean stop: the replay cache is
/// saved into the store) or until every sender is dropped (treated as a crash: nothing is
/// saved). Before it serves anything, the replay cache saved by the last clean stop, if
/// any, is taken back; the answer says whether it was.
pub(crate) fn spawn<S: Store + Send + 'static>(
    store: S,
    config: &DsServiceConfig,
) -> std::io::Result<(Lanes, Restart)> {
    let more = if store.shares_state() {
        store.more_writers()
    } else {
        Vec::new()
    };
    let (first, restart) = spawn_lane(store, config, 0)?;
    let mut txs = vec![first];
    for (i, store) in more.into_iter().enumerate() {
        txs.push(spawn_lane(store, config, i + 1)?.0);
    }
    Ok((Lanes::new(txs), restart))
}

/// Starts one writer thread (lane `lane`) over `store`.
fn spawn_lane<S: Store + Send + 'static>(
    store: S,
    config: &DsServiceConfig,
    lane: usize,
) -> std::io::Result<(mpsc::Sender<Command>, Restart)> {
    let (tx, rx) = mpsc::channel(config.queue());
    let mut core = DeliveryService::new(GroupStore::new(store), OsRng, config.core().clone());
    let restart = core
        .restore_replay(config.clock().now())
        .unwrap_or_else(|e| {
            tracing::error!(
                error = e.kind(),
                "cannot read the saved replay cache; treating the last stop as a crash"
            );
            Restart::NoCleanStop
        });
    let writer = Writer {
        shared: core.store().shares_state(),
        core,
        clock: config.clock().clone(),
        hub: Hub::default(),
        held: Vec::new(),
    };
    let max_group = config.max_group();
    let name = if lane == 0 {
        "atmls-ds-writer".to_owned()
    } else {
        format!("atmls-ds-writer-{lane}")
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || writer.run(rx, max_group))?;
    Ok((tx, restart))
}

/// A write failure as the store error of the one request it belongs to (its kind only:
/// the error is logged, and logs name no mailbox).
fn failed(e: &StoreError) -> StoreError {
    // Another process kept moving the mailbox's head (re-decided too often): retryable,
    // `ServiceUnavailable`, never an internal error.
    if let StoreError::HeadMoved {
        mailbox,
        expected,
        actual,
    } = e
    {
        return StoreError::HeadMoved {
            mailbox: *mailbox,
            expected: *expected,
            actual: *actual,
        };
    }
    if e.is_transient() {
        return StoreError::Database {
            transient: true,
            source: format!("write failed: {}", e.kind()).into(),
        };
    }
    StoreError::Corrupt(format!("write failed: {}", e.kind()))
}

/// Envelopes read per page when live subscribers catch up with other processes' appends.
const CATCH_UP_PAGE: usize = 500;

/// The position of `s` among `subs` (for an item error).
fn i_of(subs: &[Subscription], s: &Subscription) -> usize {
    subs.iter()
        .position(|x| x.mailbox == s.mailbox)
        .unwrap_or(0)
}

/// How many times one request is decided again after another process moved its
/// mailbox's head between the decision and the write ([`StoreError::HeadMoved`]) before
/// it is answered `ServiceUnavailable`.
const MAX_REDECIDE: u32 = 8;

impl<S: Store> Writer<S> {
    fn run(mut self, mut rx: mpsc::Receiver<Command>, max_group: usize) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < max_group {
                match rx.try_recv() {
                    Ok(c) => group.push(c),
                    Err(_) => break,
                }
            }
            // Wake-ups and unsubscriptions need no committed state: they wait for the end
            // of the group rather than cut it in two (on a shared store, each commit's
            // own notification comes back as a wake-up while the next group queues).
            let (nudges, group): (Vec<Command>, Vec<Command>) =
                group.into_iter().partition(Command::is_nudge);
            let appends: Vec<Option<MailboxId>> = group.iter().map(Command::appends_to).collect();
            for (i, cmd) in group.into_iter().enumerate() {
                if self.shared && appends[i].is_some() && (i == 0 || appends[i - 1].is_none()) {
                    // The first of a run of appending requests: lock the run's mailboxes.
                    let ids: Vec<MailboxId> = appends[i..].iter().map_while(|a| *a).collect();
                    self.core.store().lock(&ids);
                }
                if let Command::Stop { reply } = cmd {
                    self.flush();
                    self.save_replay();
                    let _ = reply.send(());
                    return;
                }
                self.handle(cmd);
            }
            self.flush();
            for cmd in nudges {
                self.handle(cmd);
            }
        }
        self.flush();
    }

    /// At a clean stop, after the last flush: saves the replay cache with the clean-stop
    /// record (nothing is decided after it).
    fn save_replay(&mut self) {
        match self.core.save_replay(self.clock.now()) {
            Ok(entries) => tracing::info!(entries, "clean stop: replay cache saved"),
            Err(e) => tracing::error!(
                error = e.kind(),
                "cannot save the replay cache; the next start refuses older tokens for a while"
            ),
        }
    }

    fn handle(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Send {
                id,
                auth,
                envelopes,
                reply,
            } => self.decide(Redo::Send {
                id,
                auth,
                envelopes,
                reply,
                attempt: 0,
            }),
            Command::Welcome {
                inbox,
                payload,
                reply,
            } => self.decide(Redo::Welcome {
                inbox,
                payload,
                reply,
                attempt: 0,
            }),
            other => {
                // Everything else sees committed state only.
                self.flush();
                self.handle_committed(other, now);
            }
        }
    }

    fn handle_committed(&mut self, cmd: Command, now: atmls_ds::Timestamp) {
        match cmd {
            Command::Create {
                account,
                kind,
                key,
                epoch,
                reply,
            } => {
                let _ = reply.send(self.core.create_mailbox(&account, kind, &key, epoch));
            }
            Command::QuotaReached { account, reply } => {
                let _ = reply.send(self.core.quota_reached(&account));
            }
            Command::Mailbox { id, auth, reply } => {
                let _ = reply.send(self.core.mailbox(&id, &auth, now));
            }
            Command::Envelopes {
                id,
                auth,
                cursor,
                limit,
                reply,
            } => {
                let _ = reply.send(self.core.envelopes(&id, &auth, cursor, limit, now));
            }
            Command::ListInbox {
                inbox,
                auth,
                cursor,
                limit,
                reply,
            } => {
                let page = self.core.list_inbox(&inbox, &auth, cursor, limit, now);
                let _ = reply.send(page);
            }
            Command::DeleteInbox {
                inbox,
                auth,
                seqs,
                reply,
            } => {
                let deleted = self.core.delete_inbox_items(&inbox, &auth, &seqs, now);
                let _ = reply.send(deleted);
            }
            Command::Subscribe { items, live, reply } => self.subscribe(items, live, reply, now),
            Command::Page {
                id,
                after,
                limit,
                reply,
            } => {
                let limit = PageLimit {
                    envelopes: limit.max(1),
                    bytes: self.core.config().max_page_bytes(),
                };
                let _ = reply.send(self.core.store().envelopes(&id, after, limit));
            }
            Command::Check { subs, reply } => {
                let result = subs.iter().enumerate().try_for_each(|(i, s)| {
                    self.core.check_subscription(s, now).map_err(|e| (i, e))
                });
                let _ = reply.send(result);
            }
            Command::Unsubscribe { id } => self.hub.remove(id),
            Command::Wake { heads } => self.wake(heads),
            Command::Expire { reply } => {
                self.hub.sweep();
                let result = self.core.expire(now);
                if let Err(e) = &result {
                    tracing::error!(error = e.kind(), "retention failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            // Handled by `run` and `handle`.
            Command::Send { .. } | Command::Welcome { .. } | Command::Stop { .. } => {}
        }
    }

    fn subscribe(
        &mut self,
        items: Vec<SubscribeItem>,
        live: LiveTx,
        reply: Reply<Result<Vec<Subscription>, ItemError>>,
        now: atmls_ds::Timestamp,
    ) {
        let mut subs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match self
                .core
                .authorize_subscription(&item.mailbox, &item.auth, item.cursor, now)
            {
                Ok(s) => subs.push(s),
                Err(e) => {
                    let _ = reply.send(Err((i, e)));
                    return;
                }
            }
        }
        for s in &subs {
            if self.shared && self.hub.published(&s.mailbox).is_none() {
                // Fed from the head now: what came before, the backlog read finds.
                match self.core.store().mailbox(&s.mailbox) {
                    Ok(Some(m)) => {
                        self.hub.published.insert(s.mailbox, m.head);
                    }
                    Ok(None) => {
                        let _ = reply.send(Err((i_of(&subs, s), ReadError::MailboxNotFound)));
                        return;
                    }
                    Err(e) => {
                        let _ = reply.send(Err((i_of(&subs, s), ReadError::Store(e))));
                        return;
                    }
                }
            }
            self.hub.register(s.mailbox, &live);
        }
        if reply.send(Ok(subs)).is_err() {
            self.hub.remove(live.id);
        }
    }

    /// Decides an appending request against the pending state and holds its answer back
    /// until the flush.
    fn decide(&mut self, request: Redo) {
        let now = self.clock.now();
        self.core.store().begin_decision();
        match request {
            Redo::Send {
                id,
                auth,
                envelopes,
                reply,
                attempt,
            } => {
                let (depends, before) = self.pending_state(&id);
                let again = (self.shared && attempt < MAX_REDECIDE).then(|| envelopes.clone());
                let result = self.core.send_envelopes(&id, &auth, envelopes, now);
                if let (
                    Err(SendEnvelopesError::Store(StoreError::HeadMoved { .. })),
                    Some(envelopes),
                ) = (&result, &again)
                {
                    // Another process appended between the core's read and its check.
                    self.core.forget_request(&auth);
                    return self.decide(Redo::Send {
                        id,
                        auth,
                        envelopes: envelopes.clone(),
                        reply,
                        attempt: attempt + 1,
                    });
                }
                self.hold(
                    depends,
                    before,
                    Answer::Send {
                        id,
                        auth,
                        result,
                        reply,
                        again,
                        attempt,
                    },
                );
            }
            Redo::Welcome {
                inbox,
                payload,
                reply,
                attempt,
            } => {
                let (depends, before) = self.pending_state(&inbox);
                let len = payload.len();
                let again = (self.shared && attempt < MAX_REDECIDE).then(|| payload.clone());
                let result = self.core.send_welcome(&inbox, payload, now);
                if let (Err(SendWelcomeError::Store(StoreError::HeadMoved { .. })), Some(payload)) =
                    (&result, &again)
                {
                    // Another process appended between the core's read and its check
                    // (the deposit was given back by the core).
                    return self.decide(Redo::Welcome {
                        inbox,
                        payload: payload.clone(),
                        reply,
                        attempt: attempt + 1,
                    });
                }
                self.hold(
                    depends,
                    before,
                    Answer::Welcome {
                        inbox,
                        len,
                        result,
                        reply,
                        again,
                        attempt,
                    },
                );
            }
        }
    }

    /// Feeds the live subscribers with what was committed: this process's appends, and,
    /// with a shared store, first whatever other processes appended before them (read
    /// from the store), so that no subscriber sees a gap.
    fn publish(&mut self, appends: Vec<Append>) {
        if !self.shared {
            self.hub.publish(appends);
            return;
        }
        for a in appends {
            let id = a.mailbox.id;
            let Some(published) = self.hub.published(&id) else {
                continue;
            };
            if published < a.expected_head {
                self.catch_up(id, a.expected_head);
            }
            self.hub.feed(id, a.envelopes, a.mailbox.head);
        }
    }

    /// Other processes appended: feeds the subscribers of those mailboxes (of every
    /// mailbox served, for `None`) from the store, after what they were last fed.
    fn wake(&mut self, heads: Option<Vec<(MailboxId, u64)>>) {
        match heads {
            Some(heads) => {
                for (id, head) in heads {
                    if self.hub.published(&id).is_some_and(|p| p < head) {
                        self.catch_up(id, head);
                    }
                }
            }
            None => {
                for id in self.hub.mailboxes() {
                    self.catch_up(id, 0);
                }
            }
        }
    }

    /// Reads the envelopes of `id` after its published seq from the store, page by page,
    /// and feeds them, up to `head` (`0`: up to whatever is stored); records at least
    /// `head` as published. If the store cannot be
    /// read, ends the mailbox's subscriptions (they reconnect from their cursor).
    fn catch_up(&mut self, id: MailboxId, head: u64) {
        let limit = PageLimit {
            envelopes: CATCH_UP_PAGE,
            bytes: self.core.config().max_page_bytes(),
        };
        loop {
            let Some(after) = self.hub.published(&id) else {
                return;
            };
            match self.core.store().envelopes(&id, after, limit) {
                Ok(page) => {
                    // Done at the known head, or when nothing more is stored (envelopes
                    // deleted or expired leave holes in the seqs: `head` is then fed).
                    let Some(last) = page.last().map(|e| e.seq) else {
                        self.hub.feed(id, page, head);
                        return;
                    };
                    self.hub.feed(id, page, last);
                    if head != 0 && last >= head {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        error = e.kind(),
                        "cannot read a mailbox for its subscribers; ending them"
                    );
                    self.hub.end_mailbox(&id);
                    return;
                }
            }
        }
    }

    /// What a request on `id` decided now depends on, and the pending count before it.
    fn pending_state(&self, id: &MailboxId) -> (Option<usize>, usize) {
        let store = self.core.store();
        (store.last_pending(id), store.pending_len())
    }

    /// Holds an answer back until the flush; `before` is the pending count before the
    /// request was decided (if it grew, the request's append is the one added).
    fn hold(&mut self, depends: Option<usize>, before: usize, answer: Answer) {
        let append = (self.core.store().pending_len() > before).then_some(before);
        let claim = self.core.store().end_decision();
        self.held.push(Held {
            append,
            depends,
            claim,
            answer,
        });
    }

    /// Commits what is pending, feeds the live subscribers with what was written, then
    /// answers the held-back requests, each by the fate of its own append (or of the one
    /// it depends on).
    ///
    /// A request whose append lost a race with another process is decided again (against
    /// the mailbox as that process left it) and flushed again, at most [`MAX_REDECIDE`]
    /// times.
    fn flush(&mut self) {
        loop {
            let again = self.flush_once();
            if again.is_empty() {
                return;
            }
            let ids: Vec<MailboxId> = again.iter().map(Redo::mailbox).collect();
            self.core.store().lock(&ids);
            for request in again {
                self.decide(request);
            }
        }
    }

    fn flush_once(&mut self) -> Vec<Redo> {
        if self.held.is_empty() && !self.core.store().has_pending() {
            return Vec::new();
        }
        let Flushed {
            appends,
            written,
            claims,
        } = self.core.store().flush();
        let committed = appends
            .into_iter()
            .zip(&written)
            .filter(|(_, w)| w.committed())
            .map(|(a, _)| a)
            .collect();
        self.publish(committed);
        let held = std::mem::take(&mut self.held);
        let mut again = Vec::new();
        for h in held {
            let refused = h
                .claim
                .and_then(|c| claims.get(c).copied().flatten())
                .filter(|v| !v.is_fresh());
            if let Some(verdict) = refused {
                self.refuse(h.answer, verdict);
                continue;
            }
            let fate = match (h.append, h.depends) {
                (Some(a), _) => match written.get(a) {
                    Some(Written::Committed) => Fate::Stands,
                    Some(Written::Failed(e)) => Fate::Failed(e),
                    Some(Written::Interrupted | Written::Refused) | None => Fate::Interrupted,
                },
                (None, Some(d)) if !written.get(d).is_some_and(Written::committed) => {
                    Fate::Interrupted
                }
                (None, _) => Fate::Stands,
            };
            again.extend(self.answer(h.answer, fate));
        }
        again
    }

    /// Answers a request whose token the store's shared replay cache refused at the flush
    /// (another process used it first, or a share there is full): the refusal of step 7
    /// of the verification order, as if the claim had been made while deciding. Its
    /// append, if any, was not written.
    fn refuse(&mut self, answer: Answer, verdict: SharedNonce) {
        let error = match verdict {
            SharedNonce::OverShare(share) => AuthError::ReplayShareExceeded(share),
            _ => AuthError::ReplayedRequest,
        };
        match answer {
            Answer::Send { auth, reply, .. } => {
                self.core.forget_request(&auth);
                let _ = reply.send(Err(SendEnvelopesError::Auth(error)));
            }
            // A welcome carries no mailbox token: it makes no claim.
            Answer::Welcome { reply, .. } => {
                let _ = reply.send(Err(SendWelcomeError::Interrupted));
            }
        }
    }

    /// Sends one held-back answer; for a request whose append was not written, takes back
    /// its effects on the core first.
    fn answer(&mut self, answer: Answer, fate: Fate<'_>) -> Option<Redo> {
        if let Fate::Failed(e) = fate
            && !matches!(e, StoreError::HeadMoved { .. })
        {
            tracing::error!(error = e.kind(), "a request's write failed");
        }
        match answer {
            Answer::Send {
                id,
                auth,
                result: Ok(_),
                reply,
                again: Some(envelopes),
                attempt,
            } if fate.redecide() => {
                self.core.forget_request(&auth);
                Some(Redo::Send {
                    id,
                    auth,
                    envelopes,
                    reply,
                    attempt: attempt + 1,
                })
            }
            Answer::Welcome {
                inbox,
                len,
                result: Ok(_),
                reply,
                again: Some(payload),
                attempt,
            } if fate.redecide() => {
                self.core.forget_deposit(&inbox, len);
                Some(Redo::Welcome {
                    inbox,
                    payload,
                    reply,
                    attempt: attempt + 1,
                })
            }
            Answer::Send {
                auth,
                result,
                reply,
                ..
            } => {
                let result = match (result, fate) {
                    (result, Fate::Stands) => result,
                    (Ok(_), fate) => {
                        self.core.forget_request(&auth);
                        match fate {
                            Fate::Failed(e) => Err(SendEnvelopesError::Store(failed(e))),
                            _ => Err(SendEnvelopesError::Interrupted),
                        }
                    }
                    (Err(_), _) => Err(SendEnvelopesError::Interrupted),
                };
                let _ = reply.send(result);
                None
            }
            Answer::Welcome {
                inbox,
                len,
                result,
                reply,
                ..
            } => {
                let result = match (result, fate) {
                    (result, Fate::Stands) => result,
                    (Ok(_), fate) => {
                        self.core.forget_deposit(&inbox, len);
                        match fate {
                            Fate::Failed(e) => Err(SendWelcomeError::Store(failed(e))),
                            _ => Err(SendWelcomeError::Interrupted),
                        }
                    }
                    (Err(_), _) => Err(SendWelcomeError::Interrupted),
                };
                let _ = reply.send(result);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
