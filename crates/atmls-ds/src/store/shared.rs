//! State that the processes of one service share through their store (issue 16): the
//! mailbox-token replay cache and the inbox deposit windows.
//!
//! A store that keeps it ([`Store::shares_state`] is `true`, e.g. the PostgreSQL store) is
//! consulted by the core on top of its in-process tables, so that a token one process
//! accepted is a replay at every other one, and the deposits of all processes together
//! stay within one inbox's allowance. The default methods of [`Store`] keep nothing: the
//! memory and SQLite stores serve one process, whose in-memory tables are enough.
//!
//! [`Store`]: super::Store
//! [`Store::shares_state`]: super::Store::shares_state

use std::time::Duration;

use atmls_syntax::Timestamp;

use crate::auth::ReplayShare;

use super::SavedNonce;

/// How many unexpired replay entries one signing key and one mailbox may hold in a
/// shared replay cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceShares {
    /// Per signing key.
    pub per_key: u64,
    /// Per mailbox.
    pub per_mailbox: u64,
}

/// What a shared replay cache said about a `(key, nonce)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedNonce {
    /// First use anywhere: recorded.
    Fresh,
    /// Seen before (by any process) and not expired.
    Replayed,
    /// The key's or the mailbox's share is full.
    OverShare(ReplayShare),
}

/// A fixed-window allowance: at most `count` events and `bytes` bytes per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateAllowance {
    /// The window's length.
    pub window: Duration,
    /// Most events per window.
    pub count: u64,
    /// Most bytes per window.
    pub bytes: u64,
}

/// What a shared rate window decided about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedRate {
    /// Counted in the window that started at `window_start`.
    Allowed {
        /// The window it was counted in (to give it back if its write fails).
        window_start: Timestamp,
    },
    /// Over the allowance; the window ends in `retry_after`.
    Limited {
        /// Time until the window ends.
        retry_after: Duration,
    },
}

impl SharedNonce {
    /// Whether the claim was recorded.
    pub fn is_fresh(self) -> bool {
        matches!(self, Self::Fresh)
    }
}

/// A mailbox-token use recorded together with a group of appends
/// ([`Store::append_claimed`](super::Store::append_claimed)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupClaim {
    /// The use to record.
    pub entry: SavedNonce,
    /// The append (its index in the group) that stands or falls with it: the append of
    /// the request the token authorised. `None` for a request that appends nothing.
    pub append: Option<usize>,
}

/// What [`Store::append_claimed`](super::Store::append_claimed) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claimed {
    /// Every append and every fresh claim is written; one verdict per claim.
    Written(Vec<SharedNonce>),
    /// A claim tied to an append was not fresh: nothing was written (no append, no
    /// claim). One verdict per claim, as found; those tied to appends that are not
    /// refused say nothing final (they were not recorded).
    Refused(Vec<SharedNonce>),
}
