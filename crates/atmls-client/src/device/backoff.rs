//! Back-off after failures (docs/spec.md §11.14): a mailbox or group whose read failed is
//! left alone for a while, doubling per failure, so that a failing one costs a bounded
//! share of each sync and the others are read as usual.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::FailureKind;

/// What is backed off: the inbox or one group (by MLS group id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Inbox,
    Group(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    until: Instant,
}

/// The targets in back-off (in memory: a restarted device tries everything at once).
#[derive(Debug, Default)]
pub(crate) struct Backoffs(HashMap<Target, Entry>);

impl Backoffs {
    /// Whether `target` may be tried at `now`.
    pub(crate) fn ready(&self, target: &Target, now: Instant) -> bool {
        self.0.get(target).is_none_or(|e| e.until <= now)
    }

    /// Records a failure of `target`; returns how long it is left alone. A permanent
    /// failure of a whole mailbox (its DS refuses it) waits the longest at once.
    pub(crate) fn failed(
        &mut self,
        target: Target,
        kind: FailureKind,
        now: Instant,
        initial: Duration,
        max: Duration,
    ) -> Duration {
        let entry = self.0.entry(target).or_insert(Entry {
            failures: 0,
            until: now,
        });
        entry.failures = entry.failures.saturating_add(1);
        let wait = match kind {
            FailureKind::Transient => delay(initial, max, entry.failures),
            _ => max,
        };
        entry.until = now + wait;
        wait
    }

    /// When `target` may be tried again (`None`: now).
    pub(crate) fn until(&self, target: &Target) -> Option<Instant> {
        self.0.get(target).map(|e| e.until)
    }

    /// Clears `target`'s back-off after a success.
    pub(crate) fn succeeded(&mut self, target: &Target) {
        self.0.remove(target);
    }
}

/// The wait after `failures` consecutive failures: `initial · 2^(failures−1)`, at most
/// `max`.
pub(crate) fn delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_bound() {
        let s = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=12).map(|n| delay(s, max, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(delay(s, max, 200), max);
        assert_eq!(delay(s, max, 0), s);
    }

    #[test]
    fn targets_are_independent() {
        let now = Instant::now();
        let (s, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut b = Backoffs::default();
        let a = Target::Group(vec![1]);
        assert_eq!(b.failed(a.clone(), FailureKind::Transient, now, s, max), s);
        assert!(!b.ready(&a, now));
        assert!(b.ready(&Target::Group(vec![2]), now));
        assert!(b.ready(&Target::Inbox, now));
        assert!(b.ready(&a, now + s));
        assert_eq!(
            b.failed(a.clone(), FailureKind::Transient, now, s, max),
            2 * s
        );
        assert_eq!(
            b.failed(a.clone(), FailureKind::Permanent, now, s, max),
            max
        );
        b.succeeded(&a);
        assert!(b.ready(&a, now));
    }
}
