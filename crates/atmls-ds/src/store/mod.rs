//! The storage contract of the delivery service and its backends.
//!
//! The core keeps no durable state of its own: every mailbox, envelope and quota counter
//! lives behind [`Store`]. Backends: [`MemoryStore`] (tests, ephemeral use) and
//! [`SqliteStore`] (the embedded default). A later PostgreSQL backend implements the same
//! trait and passes the same test suite (`atmls_testkit::ds_store`, run from
//! `tests/ds/store_suite.rs`).

mod memory;
mod shared;
mod sqlite;

pub use memory::MemoryStore;
pub use shared::{Claimed, GroupClaim, NonceShares, RateAllowance, SharedNonce, SharedRate};
pub use sqlite::SqliteStore;

use crate::auth::MailboxKey;
use atmls_ds_proto::{EnvelopeKind, MailboxId, MailboxKind};
use atmls_syntax::Timestamp;

pub use atmls_ds_proto::Envelope;

/// The previous epoch's key of a group mailbox and until when it is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousKey {
    /// The key of epoch `epoch - 1`.
    pub key: MailboxKey,
    /// Usable while `now < valid_until` (commit accepted at + key grace).
    pub valid_until: Timestamp,
}

/// An ended epoch of a group mailbox, as the store keeps it for the epoch's key.
///
/// A key whose epoch ended may only read the envelopes up to and including `end_seq`
/// (spec §9.3): what its holder could already read before the commit, nothing after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedEpoch {
    /// The epoch that ended.
    pub epoch: u64,
    /// The sequence number of the commit that ended it.
    pub end_seq: u64,
}

/// The keys of a mailbox, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxKeys {
    /// A group mailbox: the current epoch, its key, and the previous epoch's key.
    Group {
        /// The current MLS epoch.
        epoch: u64,
        /// The key of `epoch`.
        current: MailboxKey,
        /// The key of `epoch - 1`, while a commit is recent.
        previous: Option<PreviousKey>,
    },
    /// A device inbox: one owner key.
    Inbox {
        /// The owner key.
        owner: MailboxKey,
    },
}

/// The state of a mailbox. It holds no account identity and no creation time.
///
/// ```
/// use atmls_ds::store::{Mailbox, MailboxKeys};
/// use atmls_ds::{MailboxId, MailboxKind};
/// # let owner = atmls_ds::auth::MailboxKey::from(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
/// let m = Mailbox::new(MailboxId::from_bytes([1; 32]), MailboxKeys::Inbox { owner });
/// assert_eq!((m.head, m.stored_bytes, m.kind()), (0, 0, MailboxKind::Inbox));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mailbox {
    /// The mailbox id.
    pub id: MailboxId,
    /// The last sequence number given out (0: none yet). Never decreases, even when
    /// envelopes are deleted.
    pub head: u64,
    /// Its keys.
    pub keys: MailboxKeys,
    /// Payload bytes of the envelopes it holds now (deleted and expired ones no longer
    /// count). The stores keep it: in an [`Append`] it is the core's expectation, and the
    /// store counts the payloads itself.
    pub stored_bytes: u64,
    /// Groups: the message lifetime in seconds the last commit carrying one set (spec
    /// §11.18); `None`: none. Message envelopes are kept at most this long plus the
    /// service's margin ([`Store::expire_messages`]). An [`Append`] writes it with the rest
    /// of the state.
    pub message_lifetime: Option<u32>,
}

impl Mailbox {
    /// A new, empty mailbox (head 0, nothing stored).
    pub fn new(id: MailboxId, keys: MailboxKeys) -> Self {
        Self {
            id,
            head: 0,
            keys,
            stored_bytes: 0,
            message_lifetime: None,
        }
    }

    /// Group or inbox.
    pub fn kind(&self) -> MailboxKind {
        match self.keys {
            MailboxKeys::Group { .. } => MailboxKind::Group,
            MailboxKeys::Inbox { .. } => MailboxKind::Inbox,
        }
    }

    /// The current epoch of a group mailbox.
    pub fn epoch(&self) -> Option<u64> {
        match self.keys {
            MailboxKeys::Group { epoch, .. } => Some(epoch),
            MailboxKeys::Inbox { .. } => None,
        }
    }
}

/// One request's batch: envelopes to append to a mailbox and its state afterwards.
///
/// The store applies it only if the mailbox's head is still `expected_head`
/// (compare-and-swap), and requires `envelopes` to be numbered `expected_head + 1`
/// onwards without gap and `mailbox.head` to be the last of them.
#[derive(Debug, Clone)]
pub struct Append {
    /// The head the batch was sequenced against.
    pub expected_head: u64,
    /// The mailbox state after the batch (head, epoch, keys).
    pub mailbox: Mailbox,
    /// The envelopes, in sequence order.
    pub envelopes: Vec<Envelope>,
}

/// The result of [`Store::create_mailbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created and counted against the account.
    Created,
    /// The account already had the maximum; nothing was written.
    QuotaExceeded,
}

/// One replay-cache entry, as it is saved across a clean stop ([`Store::save_replay`]).
///
/// It holds the mailbox the entry counts against but never the request's source: the
/// store keeps no link between a client address and a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedNonce {
    /// The mailbox key that signed the request.
    pub key: [u8; 32],
    /// The request's nonce.
    pub nonce: [u8; 16],
    /// The mailbox the request was for (the entry counts against its share).
    pub mailbox: MailboxId,
    /// Until when (inclusive) the entry must be kept.
    pub expires: Timestamp,
}

/// How much one read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    /// Most envelopes.
    pub envelopes: usize,
    /// Most payload bytes in total; the first envelope is returned even if larger.
    pub bytes: usize,
}

/// A storage failure. These are the service's fault, never the client's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An append named a mailbox that does not exist.
    #[error("no mailbox {0}")]
    UnknownMailbox(MailboxId),
    /// A mailbox with this id already exists.
    #[error("mailbox {0} already exists")]
    DuplicateMailbox(MailboxId),
    /// The mailbox's head moved since the batch was sequenced (another writer).
    #[error("mailbox {mailbox}: head is {actual}, batch expected {expected}")]
    HeadMoved {
        /// The mailbox.
        mailbox: MailboxId,
        /// The head the batch was built against.
        expected: u64,
        /// The head in the store.
        actual: u64,
    },
    /// An append that breaks the contract (wrong numbering, kind change).
    #[error("invalid append: {0}")]
    InvalidAppend(&'static str),
    /// A number does not fit the backend's integer type.
    #[error("value {0} out of range for the store")]
    OutOfRange(u64),
    /// Stored data that does not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The database file could not be made owner-only (or its directory is writable by
    /// other users).
    #[error(transparent)]
    Private(#[from] atmls_fs::PrivateError),
    /// A database server (a networked backend) failed or could not be reached.
    #[error("database: {source}")]
    Database {
        /// Whether trying again later may succeed (the server is unreachable or
        /// restarting, the pool had no free connection, the transaction lost a
        /// serialization or deadlock check): nothing of the call was written.
        transient: bool,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// What kind of failure this is, without any identifier (mailbox ids, values): for
    /// logs, which must not name mailboxes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::UnknownMailbox(_) => "unknown mailbox",
            Self::DuplicateMailbox(_) => "duplicate mailbox",
            Self::HeadMoved { .. } => "head moved",
            Self::InvalidAppend(_) => "invalid append",
            Self::OutOfRange(_) => "value out of range",
            Self::Corrupt(_) => "corrupt store",
            Self::Private(_) => "database file not private",
            Self::Database {
                transient: true, ..
            } => "database unavailable",
            Self::Database { .. } => "database",
        }
    }

    /// Whether the same call may succeed when tried again later, with nothing of this
    /// one written: a database that is unreachable or restarting, a full pool, a lost
    /// serialization check. [`StoreError::HeadMoved`] is not transient in this sense: the
    /// caller must re-read the mailbox and decide again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Database {
                transient: true,
                ..
            }
        )
    }
}

/// The delivery service's storage contract.
///
/// Every write is atomic: it happens completely or not at all, and when it returns `Ok`
/// it is durable (for persistent backends). Reads see every write that returned.
pub trait Store {
    /// The mailbox with this id, if any.
    fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError>;

    /// Creates `mailbox` (head 0) and counts it against `account`, unless the account
    /// already has `max_per_account` mailboxes. The account is stored only in its
    /// counter, never with the mailbox.
    fn create_mailbox(
        &mut self,
        account: &str,
        max_per_account: u64,
        mailbox: &Mailbox,
    ) -> Result<CreateOutcome, StoreError>;

    /// Applies several batches in one transaction, in order (a later batch may follow an
    /// earlier one to the same mailbox). All are applied or none.
    fn append(&mut self, batches: &[Append]) -> Result<(), StoreError>;

    /// Envelopes of `id` with `seq > after`, in sequence order, within `limit`.
    fn envelopes(
        &self,
        id: &MailboxId,
        after: u64,
        limit: PageLimit,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// Deletes the named envelopes of `id` for good; returns how many existed.
    fn delete_envelopes(&mut self, id: &MailboxId, seqs: &[u64]) -> Result<u64, StoreError>;

    /// Deletes for good every envelope of mailboxes of `kind` received before `before`;
    /// returns how many. Heads are unchanged.
    fn expire(&mut self, kind: MailboxKind, before: Timestamp) -> Result<u64, StoreError>;

    /// Deletes for good every `message` envelope of a group mailbox with a message
    /// lifetime `l` received before `now - l - margin`; returns how many. Commits, and
    /// mailboxes without a lifetime, are left to [`Store::expire`]. Heads are unchanged.
    fn expire_messages(
        &mut self,
        now: Timestamp,
        margin: std::time::Duration,
    ) -> Result<u64, StoreError>;

    /// How many mailboxes `account` has created.
    fn account_mailboxes(&self, account: &str) -> Result<u64, StoreError>;

    /// The ended epoch whose key is `key`, for the group mailbox `id`, if any.
    ///
    /// Every accepted append that moves a group's epoch records, in the same transaction,
    /// the old epoch, its key and the sequence number of the commit that ended it
    /// ([`ended_by`]). Should a key end two epochs, the later one is kept.
    fn ended_epoch(&self, id: &MailboxId, key: &[u8; 32])
    -> Result<Option<EndedEpoch>, StoreError>;

    /// At a clean stop: saves `entries` (the unexpired replay-cache entries) and records
    /// that the service stopped cleanly, in one transaction, replacing anything saved
    /// before.
    fn save_replay(&mut self, entries: &[SavedNonce]) -> Result<(), StoreError>;

    /// At start: if a clean stop is recorded, the entries saved with it; `None` if not
    /// (first start, or the last run ended without a clean stop). Either way removes the
    /// record and the entries in one transaction, so that a run that then ends without a
    /// clean stop leaves none behind.
    fn take_replay(&mut self) -> Result<Option<Vec<SavedNonce>>, StoreError>;

    /// Whether this store holds state shared by several processes of the service (the
    /// replay cache, deposit windows: [`shared`]). When it does, the core consults it on
    /// top of its in-process tables, and the clean-stop replay record
    /// ([`Store::save_replay`], [`Store::take_replay`]) is not used: nothing lives only
    /// in a process. The default, for single-process stores: `false`.
    fn shares_state(&self) -> bool {
        false
    }

    /// More handles on this same store, one for each further writer lane of the process
    /// (a store shared by several processes, whose mutual correctness the database
    /// guarantees, may be written by several lanes in one process as by several
    /// processes): as many as the store's configuration asks for, less one. Each handle
    /// is used by one thread at a time. The default, for single-writer stores: none.
    fn more_writers(&self) -> Vec<Self>
    where
        Self: Sized,
    {
        Vec::new()
    }

    /// Records the use of a mailbox token (`entry.key`, `entry.nonce`) until
    /// `entry.expires`, unless it was used before (by any process) or the key's or
    /// mailbox's share is full. Atomic across processes. The default keeps nothing and
    /// answers [`SharedNonce::Fresh`] (the core's in-process cache decides alone).
    fn claim_nonce(
        &self,
        entry: &SavedNonce,
        shares: NonceShares,
        now: Timestamp,
    ) -> Result<SharedNonce, StoreError> {
        let _ = (entry, shares, now);
        Ok(SharedNonce::Fresh)
    }

    /// Before a group of appends is decided: the stored state of those of `ids` that
    /// exist and, on a store shared with other processes, a lock on them that keeps
    /// other processes from appending to them until this store's next
    /// [`Store::append`] or [`Store::append_claimed`] (which writes under it and ends
    /// it) or [`Store::unlock_mailboxes`]. Deciding against locked state, the group's
    /// appends cannot lose the head compare-and-swap to another process, so concurrent
    /// writers of one mailbox wait for each other instead of starving each other.
    /// Called again before that, locks more. The default reads each: a store of one
    /// process has no other writer to keep out.
    fn lock_mailboxes(&mut self, ids: &[MailboxId]) -> Result<Vec<Mailbox>, StoreError> {
        ids.iter()
            .filter_map(|id| self.mailbox(id).transpose())
            .collect()
    }

    /// Ends the lock of [`Store::lock_mailboxes`] without writing anything.
    fn unlock_mailboxes(&mut self) {}

    /// Writes `batches` as [`Store::append`] does and records `claims` as
    /// [`Store::claim_nonce`] does (in order, `now`, `shares`), in one transaction: a
    /// group commit of requests with their token claims, so that a claim costs no
    /// transaction of its own. If the claim tied to an append is not fresh, nothing is
    /// written ([`Claimed::Refused`]); an error of the append writes nothing either.
    ///
    /// The default claims first, then appends if every claim tied to an append is fresh:
    /// atomic only for a store that shares nothing (whose claims keep nothing).
    fn append_claimed(
        &mut self,
        batches: &[Append],
        claims: &[GroupClaim],
        shares: NonceShares,
        now: Timestamp,
    ) -> Result<Claimed, StoreError> {
        let verdicts = claims
            .iter()
            .map(|c| self.claim_nonce(&c.entry, shares, now))
            .collect::<Result<Vec<_>, _>>()?;
        let refused = claims
            .iter()
            .zip(&verdicts)
            .any(|(c, v)| c.append.is_some() && !v.is_fresh());
        if refused {
            return Ok(Claimed::Refused(verdicts));
        }
        self.append(batches)?;
        Ok(Claimed::Written(verdicts))
    }

    /// Takes back a claim of [`Store::claim_nonce`] whose request was then not stored.
    fn release_nonce(&self, key: &[u8; 32], nonce: &[u8; 16]) -> Result<(), StoreError> {
        let _ = (key, nonce);
        Ok(())
    }

    /// Counts one deposit of `len` bytes into `inbox` at `now` unless the inbox's current
    /// window is full, across all processes. The default counts nothing and allows it.
    fn take_deposit(
        &self,
        inbox: &MailboxId,
        len: u64,
        now: Timestamp,
        allowance: RateAllowance,
    ) -> Result<SharedRate, StoreError> {
        let _ = (inbox, len, allowance);
        Ok(SharedRate::Allowed { window_start: now })
    }

    /// Takes back a deposit of [`Store::take_deposit`] whose write then failed.
    fn give_back_deposit(
        &self,
        inbox: &MailboxId,
        len: u64,
        window_start: Timestamp,
    ) -> Result<(), StoreError> {
        let _ = (inbox, len, window_start);
        Ok(())
    }

    /// Forgets shared entries that expired by `now` (replay entries, ended windows no
    /// longer than `longest_window`). Safe from any process at any time.
    fn sweep_shared(
        &self,
        now: Timestamp,
        longest_window: std::time::Duration,
    ) -> Result<(), StoreError> {
        let _ = (now, longest_window);
        Ok(())
    }
}

/// The epoch an append ends, with its key: `Some` when `append` moves the epoch of the
/// group mailbox `current`. `end_seq` is the seq of the batch's commit (its last envelope
/// if it holds none). Shared by the backends.
pub fn ended_by(current: &Mailbox, append: &Append) -> Option<(MailboxKey, EndedEpoch)> {
    let (
        MailboxKeys::Group {
            epoch: before,
            current: key,
            ..
        },
        MailboxKeys::Group { epoch: after, .. },
    ) = (current.keys, append.mailbox.keys)
    else {
        return None;
    };
    if before == after {
        return None;
    }
    let end_seq = append
        .envelopes
        .iter()
        .find(|e| e.kind == EnvelopeKind::Commit)
        .map_or(append.mailbox.head, |e| e.seq);
    Some((
        key,
        EndedEpoch {
            epoch: before,
            end_seq,
        },
    ))
}

/// The cutoff of [`Store::expire_messages`] for a mailbox whose lifetime is `seconds`:
/// messages received before it are deleted. Shared by the backends.
pub fn messages_before(now: Timestamp, margin: std::time::Duration, seconds: u32) -> Timestamp {
    now.saturating_sub(margin)
        .saturating_sub(std::time::Duration::from_secs(u64::from(seconds)))
}

/// Payload bytes of an append's envelopes. Shared by the backends.
pub fn payload_bytes(append: &Append) -> u64 {
    append
        .envelopes
        .iter()
        .map(|e| e.payload.len() as u64)
        .fold(0, u64::saturating_add)
}

/// Checks an append against the mailbox's stored state (shared by the backends): the
/// head compare-and-swap ([`StoreError::HeadMoved`]) and the numbering and kind rules
/// ([`StoreError::InvalidAppend`]). A backend calls it with the state it read under the
/// same lock or transaction that then writes the append.
pub fn check_append(current: &Mailbox, append: &Append) -> Result<(), StoreError> {
    if current.head != append.expected_head {
        return Err(StoreError::HeadMoved {
            mailbox: current.id,
            expected: append.expected_head,
            actual: current.head,
        });
    }
    if current.kind() != append.mailbox.kind() {
        return Err(StoreError::InvalidAppend("mailbox kind changed"));
    }
    if append.envelopes.is_empty() {
        return Err(StoreError::InvalidAppend("empty batch"));
    }
    let mut next = append.expected_head;
    for e in &append.envelopes {
        next = next
            .checked_add(1)
            .ok_or(StoreError::InvalidAppend("sequence overflow"))?;
        if e.seq != next {
            return Err(StoreError::InvalidAppend(
                "sequence numbers not consecutive",
            ));
        }
        if e.kind.mailbox_kind() != current.kind() {
            return Err(StoreError::InvalidAppend("envelope kind not allowed here"));
        }
    }
    if append.mailbox.head != next {
        return Err(StoreError::InvalidAppend(
            "head is not the last sequence number",
        ));
    }
    Ok(())
}
