//! A bounded cache of (key, nonce) pairs seen within the replay window.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::time::Timestamp;

type Entry = ([u8; 32], [u8; 16]);

/// What the replay cache says about a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayVerdict {
    /// First use: recorded.
    Fresh,
    /// Seen before within the window.
    Replayed,
    /// The cache is full of unexpired entries: refuse rather than forget one early.
    Full,
}

/// Remembers every accepted (key, nonce) for `window` after it was accepted.
///
/// A token passes the timestamp check only while `|now - ts| <= max_age`; an entry
/// recorded at `t0` (with `|t0 - ts| <= max_age`) and kept until `t0 + 2 * max_age`
/// therefore outlives every `now` at which the same token could be accepted again.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    seen: HashMap<Entry, Timestamp>,
    order: VecDeque<(Timestamp, Entry)>,
    capacity: usize,
    window: Duration,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize, window: Duration) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            window,
        }
    }

    /// Checks and records `(key, nonce)` at `now`.
    pub(crate) fn check(
        &mut self,
        key: &[u8; 32],
        nonce: &[u8; 16],
        now: Timestamp,
    ) -> ReplayVerdict {
        self.purge(now);
        let entry = (*key, *nonce);
        if self.seen.contains_key(&entry) {
            return ReplayVerdict::Replayed;
        }
        if self.seen.len() >= self.capacity {
            return ReplayVerdict::Full;
        }
        let expires = now.saturating_add(self.window);
        self.seen.insert(entry, expires);
        self.order.push_back((expires, entry));
        ReplayVerdict::Fresh
    }

    /// Drops entries whose window has passed (`expires < now`). Entries are queued in insertion order; if
    /// the clock went backwards, later entries may expire earlier than the queue front
    /// and are then kept longer than needed, never shorter.
    pub(crate) fn purge(&mut self, now: Timestamp) {
        while let Some(&(expires, entry)) = self.order.front() {
            // Kept through `expires` itself: a token dated `max_age` ahead of its first
            // use still passes the timestamp check at exactly `t0 + 2 * max_age`.
            if expires >= now {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&entry) == Some(&expires) {
                self.seen.remove(&entry);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_window_and_refuses_when_full() {
        let mut c = ReplayCache::new(2, Duration::from_millis(100));
        let t = Timestamp::from_millis(1000);
        assert_eq!(c.check(&[1; 32], &[1; 16], t), ReplayVerdict::Fresh);
        assert_eq!(c.check(&[1; 32], &[1; 16], t), ReplayVerdict::Replayed);
        assert_eq!(c.check(&[2; 32], &[1; 16], t), ReplayVerdict::Fresh);
        assert_eq!(c.check(&[3; 32], &[1; 16], t), ReplayVerdict::Full);
        let t2 = Timestamp::from_millis(1099);
        assert_eq!(c.check(&[1; 32], &[1; 16], t2), ReplayVerdict::Replayed);
        let t3 = Timestamp::from_millis(1100);
        assert_eq!(c.check(&[1; 32], &[1; 16], t3), ReplayVerdict::Replayed);
        let t4 = Timestamp::from_millis(1101);
        assert_eq!(c.check(&[3; 32], &[1; 16], t4), ReplayVerdict::Fresh);
        assert_eq!(c.len(), 1);
    }
}
