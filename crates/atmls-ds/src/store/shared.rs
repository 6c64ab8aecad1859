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
