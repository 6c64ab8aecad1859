//! Limits and windows a delivery service enforces.

use std::time::Duration;

pub use atmls_ds_proto::{
    LEXICON_MAX_DELETE, LEXICON_MAX_PAGE, LEXICON_MAX_PAYLOAD, MAX_EPOCH, MAX_SEQ,
};

/// The longest margin past a group's message lifetime (spec §11.18): a larger
/// [`DsConfig::message_lifetime_margin`] is used as this.
pub const MAX_MESSAGE_LIFETIME_MARGIN: Duration = Duration::from_secs(3600);
/// The bounds of a message lifetime a commit may carry (0 turns it off).
pub const MESSAGE_LIFETIME_SECONDS: std::ops::RangeInclusive<u32> = 60..=31_536_000;

/// Limits and windows of a delivery service.
///
/// Start from [`DsConfig::default`] and change what you need with the `with_*` builders:
///
/// ```
/// use std::time::Duration;
/// use atmls_ds::DsConfig;
///
/// let config = DsConfig::default()
///     .with_key_grace(Duration::from_secs(30))
///     .with_group_retention(Some(Duration::from_secs(30 * 24 * 3600)));
/// assert_eq!(config.key_grace(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct DsConfig {
    max_envelope_bytes: usize,
    max_batch_envelopes: usize,
    max_mailboxes_per_account: u64,
    inbox_deposits_per_minute: u32,
    key_grace: Duration,
    request_max_age: Duration,
    group_retention: Option<Duration>,
    inbox_retention: Option<Duration>,
    message_lifetime_margin: Duration,
    replay_cache_capacity: usize,
    replay_share_per_key: usize,
    replay_share_per_mailbox: usize,
    replay_share_per_source: usize,
    max_page_bytes: usize,
    max_mailbox_bytes: u64,
    inbox_deposit_bytes_per_minute: u64,
}

impl Default for DsConfig {
    /// The values `docs/spec.md` shows for `describeServer`: 1 MiB envelopes, batches of
    /// 100, 1000 mailboxes per account, 60 deposits per inbox per minute, 60 s key grace,
    /// 120 s request age, envelopes kept forever, a replay cache of 262,144 nonces of
    /// which one key, one mailbox or one source may hold 16,384 each, read pages of at
    /// most 8 MiB of payload, 256 MiB stored per mailbox and 16 MiB of welcomes per inbox
    /// per minute.
    fn default() -> Self {
        Self {
            max_envelope_bytes: 1_048_576,
            max_batch_envelopes: 100,
            max_mailboxes_per_account: 1000,
            inbox_deposits_per_minute: 60,
            key_grace: Duration::from_secs(60),
            request_max_age: Duration::from_secs(120),
            group_retention: None,
            inbox_retention: None,
            message_lifetime_margin: Duration::from_secs(3600),
            replay_cache_capacity: 262_144,
            replay_share_per_key: 16_384,
            replay_share_per_mailbox: 16_384,
            replay_share_per_source: 16_384,
            max_page_bytes: 8 * 1024 * 1024,
            max_mailbox_bytes: 256 * 1024 * 1024,
            inbox_deposit_bytes_per_minute: 16 * 1024 * 1024,
        }
    }
}

macro_rules! setting {
    ($(#[$doc:meta])* $field:ident, $with:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $field(&self) -> $ty {
            self.$field
        }

        #[doc = concat!("Sets [`Self::", stringify!($field), "`].")]
        #[must_use]
        pub fn $with(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    };
}

impl DsConfig {
    setting!(
        /// Largest payload of one envelope, in bytes (`maxEnvelopeBytes`). Values above
        /// [`LEXICON_MAX_PAYLOAD`] are treated as that.
        max_envelope_bytes, with_max_envelope_bytes, usize
    );
    setting!(
        /// Most envelopes in one `sendEnvelopes` batch (`maxBatchEnvelopes`).
        max_batch_envelopes, with_max_batch_envelopes, usize
    );
    setting!(
        /// Most mailboxes one account may create (`maxMailboxesPerAccount`).
        max_mailboxes_per_account, with_max_mailboxes_per_account, u64
    );
    setting!(
        /// Most welcomes deposited into one inbox per 60 s window (`inboxDepositsPerMinute`).
        inbox_deposits_per_minute, with_inbox_deposits_per_minute, u32
    );
    setting!(
        /// How long the previous epoch's key stays usable after a commit was accepted
        /// (`keyGraceSeconds`).
        key_grace, with_key_grace, Duration
    );
    setting!(
        /// How far a signed request's timestamp may be from `now`, either way
        /// (`requestMaxAgeSeconds`).
        request_max_age, with_request_max_age, Duration
    );
    setting!(
        /// How long group envelopes are kept; `None`: forever (`groupRetentionSeconds`).
        group_retention, with_group_retention, Option<Duration>
    );
    setting!(
        /// How long inbox items are kept; `None`: forever (`inboxRetentionSeconds`).
        inbox_retention, with_inbox_retention, Option<Duration>
    );
    setting!(
        /// How long past a group's message lifetime its message envelopes may stay
        /// (spec §9.7, §11.18): they are deleted once `receivedAt < now - lifetime -
        /// margin`. Default 1 h, the most the spec allows ([`MAX_MESSAGE_LIFETIME_MARGIN`];
        /// a larger value is used as that).
        message_lifetime_margin, with_message_lifetime_margin, Duration
    );
    setting!(
        /// How many (key, nonce) pairs the replay cache holds at most. When it is full of
        /// unexpired entries, signed requests are refused with `RateLimitExceeded`.
        replay_cache_capacity, with_replay_cache_capacity, usize
    );
    setting!(
        /// How many unexpired replay-cache entries one mailbox key may hold. A key over
        /// its share is refused (`RateLimitExceeded`) for itself only, so that no key can
        /// fill the cache that every other key needs.
        replay_share_per_key, with_replay_share_per_key, usize
    );
    setting!(
        /// How many unexpired replay-cache entries the requests to one mailbox may hold,
        /// whatever key signed them (a group's keys change with every commit).
        replay_share_per_mailbox, with_replay_share_per_mailbox, usize
    );
    setting!(
        /// How many unexpired replay-cache entries the requests from one source (as the
        /// server names it, e.g. a client IP address or IPv6 /64) may hold.
        replay_share_per_source, with_replay_share_per_source, usize
    );
    setting!(
        /// Most payload bytes one mailbox may hold stored (`maxMailboxBytes`); a batch or
        /// welcome that would pass it is refused with `MailboxFull` until envelopes are
        /// deleted or expire.
        max_mailbox_bytes, with_max_mailbox_bytes, u64
    );
    setting!(
        /// Most welcome payload bytes deposited into one inbox per 60 s window
        /// (`inboxDepositBytesPerMinute`), besides the count limit.
        inbox_deposit_bytes_per_minute, with_inbox_deposit_bytes_per_minute, u64
    );
    setting!(
        /// Most payload bytes one read page returns (at least one envelope is always
        /// returned when one exists).
        max_page_bytes, with_max_page_bytes, usize
    );

    /// The effective payload limit: the configured one, capped by the lexicon's.
    pub fn payload_limit(&self) -> usize {
        self.max_envelope_bytes.min(LEXICON_MAX_PAYLOAD)
    }

    /// How long a replay-cache entry lives: twice the request age, which covers every
    /// `now` at which the same token could still pass the timestamp check.
    pub(crate) fn replay_window(&self) -> Duration {
        self.request_max_age.saturating_mul(2)
    }
}
