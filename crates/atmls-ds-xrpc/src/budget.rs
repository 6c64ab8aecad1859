//! Per-principal shares of the shell's shared resources: rate windows per request source
//! (welcomes, `getKeyPackages` lookups) and concurrent holdings per key (subscriptions
//! per source and per mailbox). Each bounds what one principal can take, so that a limit
//! one principal reaches refuses that principal alone.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls_ds::Timestamp;

/// The window of rate budgets.
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Timestamp,
    count: u64,
    bytes: u64,
}

/// A budget per key of `count` requests and `bytes` bytes per 60 s fixed window.
///
/// The table holds at most `max_keys` keys with a running window; past that, ended
/// windows are dropped, and if all are running a new key is refused (a distributed
/// attack the operator has to see, rather than unbounded memory).
#[derive(Debug)]
pub(crate) struct RateWindows<K> {
    windows: Mutex<HashMap<K, Window>>,
    count: u64,
    bytes: u64,
    max_keys: usize,
}

/// A refused charge: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryAfter(pub(crate) Duration);

impl<K: Hash + Eq + Copy> RateWindows<K> {
    pub(crate) fn new(count: u64, bytes: u64, max_keys: usize) -> Self {
        Self {
            windows: Mutex::default(),
            count,
            bytes,
            max_keys: max_keys.max(1),
        }
    }

    /// Charges `count` requests and `bytes` bytes to `key` at `now`, or refuses them (and
    /// charges nothing) if they do not fit its window.
    pub(crate) fn charge(
        &self,
        key: K,
        count: u64,
        bytes: u64,
        now: Timestamp,
    ) -> Result<(), RetryAfter> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let ended = |w: &Window| now >= w.start.saturating_add(WINDOW) || now < w.start;
        if !windows.contains_key(&key) && windows.len() >= self.max_keys {
            windows.retain(|_, w| !ended(w));
            if windows.len() >= self.max_keys {
                return Err(RetryAfter(WINDOW));
            }
        }
        let w = windows.entry(key).or_insert(Window {
            start: now,
            count: 0,
            bytes: 0,
        });
        if ended(w) {
            *w = Window {
                start: now,
                count: 0,
                bytes: 0,
            };
        }
        if w.count.saturating_add(count) > self.count || w.bytes.saturating_add(bytes) > self.bytes
        {
            let left = w.start.saturating_add(WINDOW).as_millis() - now.as_millis();
            return Err(RetryAfter(Duration::from_millis(left.max(1))));
        }
        w.count += count;
        w.bytes += bytes;
        Ok(())
    }
}

/// Concurrent holdings per key, each at most `limit`.
#[derive(Debug)]
pub(crate) struct Holdings<K: Hash + Eq> {
    held: Arc<Mutex<HashMap<K, usize>>>,
    limit: usize,
}

/// One holding; given back when dropped.
#[derive(Debug)]
pub(crate) struct Held<K: Hash + Eq> {
    held: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Hash + Eq + Copy> Holdings<K> {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            held: Arc::default(),
            limit,
        }
    }

    /// Takes one holding for `key`, unless it already has `limit`.
    pub(crate) fn take(&self, key: K) -> Option<Held<K>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(key).or_default();
        if *n >= self.limit {
            if *n == 0 {
                held.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Held {
            held: self.held.clone(),
            key,
        })
    }

    /// Takes one holding for each of `keys`, all or none.
    pub(crate) fn take_all(&self, keys: &[K]) -> Option<Vec<Held<K>>> {
        keys.iter().map(|k| self.take(*k)).collect()
    }

    #[cfg(test)]
    pub(crate) fn held(&self, key: &K) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_refuse_over_budget_for_that_key_only() {
        let w = RateWindows::new(3, 100, 2);
        let t = Timestamp::from_millis(1_000);
        assert!(w.charge(1, 2, 50, t).is_ok());
        assert!(w.charge(1, 2, 10, t).is_err(), "count");
        assert!(w.charge(1, 1, 60, t).is_err(), "bytes");
        assert!(w.charge(1, 1, 50, t).is_ok());
        assert!(w.charge(2, 3, 100, t).is_ok(), "another key");
        // The table is full of running windows: a third key waits.
        assert_eq!(w.charge(3, 1, 1, t), Err(RetryAfter(WINDOW)));
        let later = t.saturating_add(WINDOW);
        assert!(w.charge(3, 1, 1, later).is_ok());
        assert!(w.charge(1, 3, 100, later).is_ok(), "a new window");
    }

    #[test]
    fn holdings_are_bounded_and_given_back() {
        let h = Holdings::new(2);
        let a = h.take(1).unwrap();
        let _b = h.take(1).unwrap();
        assert!(h.take(1).is_none());
        assert!(h.take_all(&[2, 1]).is_none());
        assert_eq!(h.held(&2), 0, "all or none");
        drop(a);
        assert!(h.take(1).is_some());
    }
}
