//! The replay cache across a clean stop: saved into the store when the service stops,
//! taken back when it starts (spec §10.2.1).

use rand::RngCore;

use super::DeliveryService;
use crate::store::{Store, StoreError};
use atmls_syntax::Timestamp;

/// What [`DeliveryService::restore_replay`] found at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restart {
    /// The last run stopped cleanly: its replay cache is back (this many unexpired
    /// entries), and no token used before the stop can be replayed. No startup guard is
    /// needed.
    Restored {
        /// Entries recorded.
        entries: usize,
    },
    /// No clean stop is recorded (a first start, or the last run ended without one):
    /// tokens used by the last run may still be within their window, and the caller
    /// applies the startup guard (unless the store is new or does not persist).
    NoCleanStop,
    /// The store keeps the replay cache itself, shared by every process of the service
    /// ([`Store::shares_state`]): nothing of it was lost with the last process, and no
    /// startup guard is needed.
    Shared,
}

impl<S: Store, R: RngCore> DeliveryService<S, R> {
    /// At a clean stop, after the last request was decided: saves every replay-cache
    /// entry unexpired at `now` (key, nonce, expiry, mailbox; never the source) and
    /// records the clean stop, in one store transaction. Returns how many were saved.
    /// Nothing may be decided after it: a later entry would not be saved.
    pub fn save_replay(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        if self.store.shares_state() {
            return Ok(0);
        }
        let entries = self.replay.snapshot(now);
        self.store.save_replay(&entries)?;
        Ok(entries.len())
    }

    /// At start, before the first request: takes back the replay cache saved by the last
    /// clean stop, if one is recorded (and removes it from the store either way, so a run
    /// that ends without a clean stop leaves no record behind). Entries expired by `now`
    /// are dropped; the others count against their key's and mailbox's shares again.
    pub fn restore_replay(&mut self, now: Timestamp) -> Result<Restart, StoreError> {
        if self.store.shares_state() {
            return Ok(Restart::Shared);
        }
        Ok(match self.store.take_replay()? {
            Some(saved) => Restart::Restored {
                entries: self.replay.restore(&saved, now),
            },
            None => Restart::NoCleanStop,
        })
    }
}
