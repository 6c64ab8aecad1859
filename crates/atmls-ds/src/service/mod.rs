//! The delivery-service core: decides every request from its inputs, a store and `now`.

mod group;
mod inbox;
mod rate;
mod restart;

pub use group::Subscription;
pub use restart::Restart;

use rand::RngCore;

use crate::auth::{
    Authorization, DsMethod, MailboxKey, PreChecked, Principals, ReplayCache, ReplayLimits,
    ReplayVerdict,
};
use crate::config::{DsConfig, LEXICON_MAX_PAGE, MAX_EPOCH};
use crate::error::{AuthError, CreateMailboxError, ReadError};
use crate::store::{
    CreateOutcome, Mailbox, MailboxKeys, NonceShares, PageLimit, SavedNonce, SharedNonce, Store,
    StoreError,
};
use atmls_ds_proto::{MailboxId, MailboxInfo, MailboxKind};
use atmls_syntax::Timestamp;

use rate::DepositLimiter;

impl From<&Mailbox> for MailboxInfo {
    fn from(m: &Mailbox) -> Self {
        Self {
            mailbox: m.id,
            kind: m.kind(),
            epoch: m.epoch(),
            seq: m.head,
            message_lifetime: m.message_lifetime,
        }
    }
}

/// How many envelopes `retention` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Group envelopes deleted.
    pub group_envelopes: u64,
    /// Inbox items deleted.
    pub inbox_items: u64,
    /// Group messages deleted by their mailbox's message lifetime (§11.18).
    pub lifetime_messages: u64,
}

/// Which of a group's keys signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// The current epoch's key, or an inbox's owner key.
    Current,
    /// The previous epoch's key, inside its grace window.
    Previous,
    /// The key of an ended epoch (not current, not previous in grace): it may only read,
    /// and only the envelopes with `seq <= end_seq` (`getEnvelopes`, subscriptions).
    Ended {
        /// The seq of the commit that ended its epoch.
        end_seq: u64,
    },
}

/// A request that passed [`DeliveryService::authorize`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authorized {
    pub(crate) mailbox: Mailbox,
    pub(crate) grant: Grant,
    pub(crate) key: [u8; 32],
}

/// Why a request was not let through to its operation.
#[derive(Debug)]
pub(crate) enum Access {
    Auth(AuthError),
    NotFound,
    WrongKind,
    Store(StoreError),
}

impl From<AuthError> for Access {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

impl From<StoreError> for Access {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Access> for ReadError {
    fn from(a: Access) -> Self {
        match a {
            Access::Auth(e) => Self::Auth(e),
            // getMailbox, getEnvelopes and subscriptions accept both kinds.
            Access::NotFound | Access::WrongKind => Self::MailboxNotFound,
            Access::Store(e) => Self::Store(e),
        }
    }
}

/// The delivery-service core, without I/O.
///
/// It owns a [`Store`], a random source for mailbox ids, its [`DsConfig`], and two
/// in-memory tables: the replay cache of signed nonces and the per-inbox deposit windows.
/// Every method takes `now` where time matters; nothing reads a clock.
#[derive(Debug)]
pub struct DeliveryService<S, R> {
    store: S,
    rng: R,
    config: DsConfig,
    replay: ReplayCache,
    deposits: DepositLimiter,
}

impl<S: Store, R: RngCore> DeliveryService<S, R> {
    /// A core over `store`, drawing mailbox ids from `rng` (a CSPRNG in production).
    pub fn new(store: S, rng: R, config: DsConfig) -> Self {
        let limits = ReplayLimits {
            capacity: config.replay_cache_capacity(),
            per_key: config.replay_share_per_key(),
            per_mailbox: config.replay_share_per_mailbox(),
            per_source: config.replay_share_per_source(),
        };
        Self {
            replay: ReplayCache::new(limits, config.replay_window()),
            deposits: DepositLimiter::new(
                config.inbox_deposits_per_minute(),
                config.inbox_deposit_bytes_per_minute(),
            ),
            store,
            rng,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DsConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// `chat.mls.ds.createMailbox`, for `account` (the DID of a service-auth JWT the
    /// caller already verified). `key` is the group key of `epoch`, or the inbox owner
    /// key; `epoch` is ignored for inboxes, and at most [`MAX_EPOCH`] for groups.
    pub fn create_mailbox(
        &mut self,
        account: &str,
        kind: MailboxKind,
        key: &[u8],
        epoch: u64,
    ) -> Result<MailboxInfo, CreateMailboxError> {
        let key = MailboxKey::from_bytes(key).map_err(|_| CreateMailboxError::InvalidKey)?;
        if kind == MailboxKind::Group && epoch > MAX_EPOCH {
            return Err(CreateMailboxError::EpochOutOfRange {
                epoch,
                max: MAX_EPOCH,
            });
        }
        let keys = match kind {
            MailboxKind::Group => MailboxKeys::Group {
                epoch,
                current: key,
                previous: None,
            },
            MailboxKind::Inbox => MailboxKeys::Inbox { owner: key },
        };
        let max = self.config.max_mailboxes_per_account();
        // A collision of 256-bit random ids means a broken RNG; retry a few times anyway.
        let mut attempts = 0;
        loop {
            let mailbox = Mailbox::new(MailboxId::random(&mut self.rng), keys);
            match self.store.create_mailbox(account, max, &mailbox) {
                Ok(CreateOutcome::Created) => return Ok(MailboxInfo::from(&mailbox)),
                Ok(CreateOutcome::QuotaExceeded) => {
                    return Err(CreateMailboxError::QuotaExceeded { max });
                }
                Err(StoreError::DuplicateMailbox(_)) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `chat.mls.ds.getMailbox`: the mailbox's kind, epoch and head.
    pub fn mailbox(
        &mut self,
        id: &MailboxId,
        auth: &impl Authorization,
        now: Timestamp,
    ) -> Result<MailboxInfo, ReadError> {
        let ok = self.authorize(DsMethod::GetMailbox, id, auth, None, now)?;
        Ok(MailboxInfo::from(&ok.mailbox))
    }

    /// Would `account` be refused by `createMailbox` for its quota now? For a caller that
    /// wants to refuse before it spends anything on the request (e.g. before recording
    /// the request's service-auth token id).
    pub fn quota_reached(&self, account: &str) -> Result<bool, StoreError> {
        Ok(self.store.account_mailboxes(account)? >= self.config.max_mailboxes_per_account())
    }

    /// Undoes the replay-cache entry of an accepted request whose write then failed, so
    /// that the core's memory matches the store: nothing of the request happened. Only
    /// for a request this core accepted (its nonce was recorded by that acceptance).
    pub fn forget_request(&mut self, auth: &PreChecked) {
        if let Some((key, nonce)) = auth.key_nonce() {
            let owner = Principals {
                mailbox: *auth.mailbox(),
                source: auth.source(),
            };
            self.replay.forget(&key, &nonce, owner);
            // A shared claim that cannot be taken back only makes the same token a replay
            // for its window; the client signs a new one when it sends again.
            let _ = self.store.release_nonce(&key, &nonce);
        }
    }

    /// Undoes the deposit count of an accepted welcome of `len` payload bytes whose write
    /// then failed.
    pub fn forget_deposit(&mut self, inbox: &MailboxId, len: usize) {
        if let Some(window_start) = self.deposits.forget(inbox, len) {
            // Not given back: the inbox's shared window is one deposit fuller than it
            // should be until it ends (stricter, never looser).
            let _ = self
                .store
                .give_back_deposit(inbox, len as u64, window_start);
        }
    }

    /// Unexpired entries of the replay cache (for metrics and tests).
    pub fn replay_entries(&self) -> usize {
        self.replay.len()
    }

    /// Retention: deletes envelopes older than the per-kind TTL, and forgets expired
    /// replay-cache entries and deposit windows.
    pub fn expire(&mut self, now: Timestamp) -> Result<Expired, StoreError> {
        self.replay.purge(now);
        self.deposits.purge(now);
        self.store
            .sweep_shared(now, self.config.replay_window().max(rate::WINDOW))?;
        let mut out = Expired::default();
        if let Some(ttl) = self.config.group_retention() {
            out.group_envelopes = self
                .store
                .expire(MailboxKind::Group, now.saturating_sub(ttl))?;
        }
        out.lifetime_messages = self.store.expire_messages(
            now,
            self.config
                .message_lifetime_margin()
                .min(crate::config::MAX_MESSAGE_LIFETIME_MARGIN),
        )?;
        if let Some(ttl) = self.config.inbox_retention() {
            out.inbox_items = self
                .store
                .expire(MailboxKind::Inbox, now.saturating_sub(ttl))?;
        }
        Ok(out)
    }

    /// Checks a mailbox-key authorisation, in the order the spec fixes: token, timestamp,
    /// signature, mailbox, kind, key, nonce. The outcomes of the token and signature steps
    /// come from `auth`'s pre-check ([`crate::auth::RequestAuth::check_signature`], done
    /// here for a [`crate::auth::RequestAuth`]); each is reported at its own step.
    pub(crate) fn authorize(
        &mut self,
        method: DsMethod,
        id: &MailboxId,
        auth: &impl Authorization,
        expect: Option<MailboxKind>,
        now: Timestamp,
    ) -> Result<Authorized, Access> {
        let checked = auth.pre_checked(method, id);
        // 1. Token present and well-formed.
        let token = checked.token()?;
        // 2. Timestamp within the window.
        let skew = now.abs_diff(token.timestamp());
        if skew > self.config.request_max_age() {
            return Err(AuthError::RequestExpired {
                skew_ms: u64::try_from(skew.as_millis()).unwrap_or(u64::MAX),
            }
            .into());
        }
        // 3. Signature.
        checked.signature(method, id)?;
        // 4. Mailbox exists; 5. its kind.
        let mailbox = self.store.mailbox(id)?.ok_or(Access::NotFound)?;
        if expect.is_some_and(|k| k != mailbox.kind()) {
            return Err(Access::WrongKind);
        }
        // 6. Key usable (an ended epoch's key only to read up to its end); 7. nonce fresh.
        let grant = match key_grant(&mailbox, token.key(), now) {
            Ok(grant) => grant,
            Err(AuthError::KeyExpired)
                if matches!(
                    method,
                    DsMethod::GetEnvelopes | DsMethod::SubscribeEnvelopes
                ) =>
            {
                match self.store.ended_epoch(id, token.key())? {
                    Some(ended) => Grant::Ended {
                        end_seq: ended.end_seq,
                    },
                    None => return Err(AuthError::KeyExpired.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let owner = Principals {
            mailbox: *id,
            source: checked.source(),
        };
        match self.replay.check(token.key(), token.nonce(), owner, now) {
            ReplayVerdict::Fresh => {}
            ReplayVerdict::Replayed => return Err(AuthError::ReplayedRequest.into()),
            ReplayVerdict::Full => return Err(AuthError::ReplayCacheFull.into()),
            ReplayVerdict::OverShare(share) => {
                return Err(AuthError::ReplayShareExceeded(share).into());
            }
        }
        // Fresh here; with a store shared by several processes, fresh everywhere too.
        self.claim_shared(token.key(), token.nonce(), owner, now)?;
        Ok(Authorized {
            mailbox,
            grant,
            key: *token.key(),
        })
    }

    /// Records a nonce the in-process cache found fresh in the store's shared replay
    /// cache (a no-op for single-process stores); if another process used it, or a share
    /// there is full, or the store failed, takes the in-process entry back and refuses.
    fn claim_shared(
        &mut self,
        key: &[u8; 32],
        nonce: &[u8; 16],
        owner: Principals,
        now: Timestamp,
    ) -> Result<(), Access> {
        let entry = SavedNonce {
            key: *key,
            nonce: *nonce,
            mailbox: owner.mailbox,
            expires: now.saturating_add(self.config.replay_window()),
        };
        let shares = NonceShares {
            per_key: self.config.replay_share_per_key() as u64,
            per_mailbox: self.config.replay_share_per_mailbox() as u64,
        };
        let refused = match self.store.claim_nonce(&entry, shares, now) {
            Ok(SharedNonce::Fresh) => return Ok(()),
            Ok(SharedNonce::Replayed) => Access::Auth(AuthError::ReplayedRequest),
            Ok(SharedNonce::OverShare(share)) => {
                Access::Auth(AuthError::ReplayShareExceeded(share))
            }
            Err(e) => Access::Store(e),
        };
        self.replay.forget(key, nonce, owner);
        Err(refused)
    }

    /// The page limit for a requested `limit` (clamped to 1..=1000).
    pub(crate) fn page_limit(&self, limit: u32) -> PageLimit {
        PageLimit {
            envelopes: limit.clamp(1, LEXICON_MAX_PAGE) as usize,
            bytes: self.config.max_page_bytes(),
        }
    }
}

/// Whether `key` may act on `mailbox` at `now` as its current or previous key (ended
/// epochs' keys are looked up in the store by [`DeliveryService::authorize`]).
pub(crate) fn key_grant(
    mailbox: &Mailbox,
    key: &[u8; 32],
    now: Timestamp,
) -> Result<Grant, AuthError> {
    match &mailbox.keys {
        MailboxKeys::Group {
            current, previous, ..
        } => {
            if current.as_bytes() == key {
                Ok(Grant::Current)
            } else if previous.is_some_and(|p| p.key.as_bytes() == key && now < p.valid_until) {
                Ok(Grant::Previous)
            } else {
                Err(AuthError::KeyExpired)
            }
        }
        MailboxKeys::Inbox { owner } => {
            if owner.as_bytes() == key {
                Ok(Grant::Current)
            } else {
                Err(AuthError::NotOwner)
            }
        }
    }
}
