//! A bounded cache of (key, nonce) pairs seen within the replay window, with a share per
//! key, per mailbox and per source so that no one principal can fill it for everyone.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use super::RequestSource;
use crate::store::SavedNonce;
use atmls_ds_proto::MailboxId;
use atmls_syntax::Timestamp;

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
    /// This principal already holds its share of unexpired entries: refused for it only.
    OverShare(ReplayShare),
}

/// Whose share of the replay cache a request exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayShare {
    /// The signing key's.
    Key,
    /// The mailbox's.
    Mailbox,
    /// The request source's (e.g. a client address).
    Source,
}

impl std::fmt::Display for ReplayShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Key => "key",
            Self::Mailbox => "mailbox",
            Self::Source => "source",
        })
    }
}

/// The bounds of a [`ReplayCache`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayLimits {
    pub(crate) capacity: usize,
    pub(crate) per_key: usize,
    pub(crate) per_mailbox: usize,
    pub(crate) per_source: usize,
}

/// Who a recorded entry is counted against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Principals {
    pub(crate) mailbox: MailboxId,
    pub(crate) source: Option<RequestSource>,
}

#[derive(Debug)]
struct Queued {
    expires: Timestamp,
    entry: Entry,
    owner: Principals,
}

/// Remembers every accepted (key, nonce) for `window` after it was accepted.
///
/// A token passes the timestamp check only while `|now - ts| <= max_age`; an entry
/// recorded at `t0` (with `|t0 - ts| <= max_age`) and kept until `t0 + 2 * max_age`
/// therefore outlives every `now` at which the same token could be accepted again.
///
/// Fail-closed, but per principal: a key, a mailbox or a source holding its share of
/// unexpired entries is refused ([`ReplayVerdict::OverShare`]) while everyone else still
/// gets in; only when the whole cache is full is everyone refused.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    seen: HashMap<Entry, Timestamp>,
    order: VecDeque<Queued>,
    by_key: HashMap<[u8; 32], usize>,
    by_mailbox: HashMap<MailboxId, usize>,
    by_source: HashMap<RequestSource, usize>,
    limits: ReplayLimits,
    window: Duration,
}

fn count<K: Hash + Eq>(map: &HashMap<K, usize>, k: &K) -> usize {
    map.get(k).copied().unwrap_or(0)
}

fn decrement<K: Hash + Eq>(map: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = map.get_mut(k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(k);
        }
    }
}

impl ReplayCache {
    pub(crate) fn new(limits: ReplayLimits, window: Duration) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            by_key: HashMap::new(),
            by_mailbox: HashMap::new(),
            by_source: HashMap::new(),
            limits,
            window,
        }
    }

    /// Checks and records `(key, nonce)` at `now`, counted against `owner`.
    pub(crate) fn check(
        &mut self,
        key: &[u8; 32],
        nonce: &[u8; 16],
        owner: Principals,
        now: Timestamp,
    ) -> ReplayVerdict {
        self.purge(now);
        let entry = (*key, *nonce);
        if self.seen.contains_key(&entry) {
            return ReplayVerdict::Replayed;
        }
        if count(&self.by_key, key) >= self.limits.per_key {
            return ReplayVerdict::OverShare(ReplayShare::Key);
        }
        if count(&self.by_mailbox, &owner.mailbox) >= self.limits.per_mailbox {
            return ReplayVerdict::OverShare(ReplayShare::Mailbox);
        }
        if let Some(source) = &owner.source
            && count(&self.by_source, source) >= self.limits.per_source
        {
            return ReplayVerdict::OverShare(ReplayShare::Source);
        }
        if self.seen.len() >= self.limits.capacity {
            return ReplayVerdict::Full;
        }
        let expires = now.saturating_add(self.window);
        self.seen.insert(entry, expires);
        *self.by_key.entry(*key).or_default() += 1;
        *self.by_mailbox.entry(owner.mailbox).or_default() += 1;
        if let Some(source) = owner.source {
            *self.by_source.entry(source).or_default() += 1;
        }
        self.order.push_back(Queued {
            expires,
            entry,
            owner,
        });
        ReplayVerdict::Fresh
    }

    /// Forgets `(key, nonce)` recorded for a request whose effect was then not stored (a
    /// failed write), so that the in-memory state stays what the store says happened.
    /// Replaying such a token is harmless: nothing of it was applied.
    pub(crate) fn forget(&mut self, key: &[u8; 32], nonce: &[u8; 16], owner: Principals) {
        if self.seen.remove(&(*key, *nonce)).is_some() {
            self.uncount(key, &owner);
        }
    }

    fn uncount(&mut self, key: &[u8; 32], owner: &Principals) {
        decrement(&mut self.by_key, key);
        decrement(&mut self.by_mailbox, &owner.mailbox);
        if let Some(source) = &owner.source {
            decrement(&mut self.by_source, source);
        }
    }

    /// Drops entries whose window has passed (`expires < now`). Entries are queued in
    /// insertion order; if the clock went backwards, later entries may expire earlier
    /// than the queue front and are then kept longer than needed, never shorter.
    pub(crate) fn purge(&mut self, now: Timestamp) {
        while let Some(front) = self.order.front() {
            // Kept through `expires` itself: a token dated `max_age` ahead of its first
            // use still passes the timestamp check at exactly `t0 + 2 * max_age`.
            if front.expires >= now {
                break;
            }
            let Some(q) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&q.entry) == Some(&q.expires) {
                self.seen.remove(&q.entry);
                self.uncount(&q.entry.0, &q.owner);
            }
        }
    }

    /// The entries unexpired at `now`, in the order they were recorded, each with the
    /// mailbox it counts against and never its source (for a clean stop).
    pub(crate) fn snapshot(&self, now: Timestamp) -> Vec<SavedNonce> {
        self.order
            .iter()
            .filter(|q| q.expires >= now && self.seen.get(&q.entry) == Some(&q.expires))
            .map(|q| SavedNonce {
                key: q.entry.0,
                nonce: q.entry.1,
                mailbox: q.owner.mailbox,
                expires: q.expires,
            })
            .collect()
    }

    /// Records entries saved at a clean stop (unexpired at `now`), counted against their
    /// key and mailbox (the source is not saved). They were accepted already, so they
    /// are taken whole, beyond the capacity and the shares if the limits shrank: the
    /// cache then refuses new entries until enough expire, never forgets one early.
    /// Meant for a cache that records nothing yet; an entry it holds already is kept as
    /// it is. Returns how many were recorded.
    pub(crate) fn restore(&mut self, saved: &[SavedNonce], now: Timestamp) -> usize {
        // One entry per (key, nonce), the latest expiry kept; then in expiry order.
        let mut latest: HashMap<Entry, &SavedNonce> = HashMap::new();
        for e in saved.iter().filter(|e| e.expires >= now) {
            let slot = latest.entry((e.key, e.nonce)).or_insert(e);
            if e.expires > slot.expires {
                *slot = e;
            }
        }
        let mut saved: Vec<&SavedNonce> = latest.into_values().collect();
        saved.sort_by_key(|e| e.expires);
        let mut n = 0;
        for e in saved {
            let entry = (e.key, e.nonce);
            if self.seen.contains_key(&entry) {
                continue;
            }
            let owner = Principals {
                mailbox: e.mailbox,
                source: None,
            };
            self.seen.insert(entry, e.expires);
            *self.by_key.entry(e.key).or_default() += 1;
            *self.by_mailbox.entry(e.mailbox).or_default() += 1;
            self.order.push_back(Queued {
                expires: e.expires,
                entry,
                owner,
            });
            n += 1;
        }
        n
    }

    /// Unexpired entries held (expired ones until the next purge).
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(capacity: usize, share: usize) -> ReplayLimits {
        ReplayLimits {
            capacity,
            per_key: share,
            per_mailbox: share,
            per_source: share,
        }
    }

    fn owner(m: u8) -> Principals {
        Principals {
            mailbox: MailboxId::from_bytes([m; 32]),
            source: None,
        }
    }

    #[test]
    fn expires_after_window_and_refuses_when_full() {
        let mut c = ReplayCache::new(limits(2, 2), Duration::from_millis(100));
        let t = Timestamp::from_millis(1000);
        let o = owner(1);
        assert_eq!(c.check(&[1; 32], &[1; 16], o, t), ReplayVerdict::Fresh);
        assert_eq!(c.check(&[1; 32], &[1; 16], o, t), ReplayVerdict::Replayed);
        assert_eq!(
            c.check(&[2; 32], &[1; 16], owner(2), t),
            ReplayVerdict::Fresh
        );
        assert_eq!(
            c.check(&[3; 32], &[1; 16], owner(3), t),
            ReplayVerdict::Full
        );
        let t2 = Timestamp::from_millis(1099);
        assert_eq!(c.check(&[1; 32], &[1; 16], o, t2), ReplayVerdict::Replayed);
        let t3 = Timestamp::from_millis(1100);
        assert_eq!(c.check(&[1; 32], &[1; 16], o, t3), ReplayVerdict::Replayed);
        let t4 = Timestamp::from_millis(1101);
        assert_eq!(
            c.check(&[3; 32], &[1; 16], owner(3), t4),
            ReplayVerdict::Fresh
        );
        assert_eq!(c.len(), 1);
        assert!(c.by_key.len() == 1 && c.by_mailbox.len() == 1);
    }

    #[test]
    fn a_principal_over_its_share_is_refused_alone() {
        let mut c = ReplayCache::new(limits(100, 3), Duration::from_millis(100));
        let t = Timestamp::from_millis(1000);
        for n in 0..3 {
            assert_eq!(
                c.check(&[1; 32], &[n; 16], owner(1), t),
                ReplayVerdict::Fresh
            );
        }
        // The same key on another mailbox: the key's share.
        assert_eq!(
            c.check(&[1; 32], &[9; 16], owner(2), t),
            ReplayVerdict::OverShare(ReplayShare::Key)
        );
        // Another key on the same mailbox: the mailbox's share.
        assert_eq!(
            c.check(&[2; 32], &[9; 16], owner(1), t),
            ReplayVerdict::OverShare(ReplayShare::Mailbox)
        );
        // From one source over many keys and mailboxes: the source's share.
        let src = Some(RequestSource::from_bytes([7; 16]));
        for n in 0..3u8 {
            let o = Principals {
                mailbox: MailboxId::from_bytes([10 + n; 32]),
                source: src,
            };
            assert_eq!(c.check(&[20 + n; 32], &[0; 16], o, t), ReplayVerdict::Fresh);
        }
        let o = Principals {
            mailbox: MailboxId::from_bytes([50; 32]),
            source: src,
        };
        assert_eq!(
            c.check(&[50; 32], &[0; 16], o, t),
            ReplayVerdict::OverShare(ReplayShare::Source)
        );
        // Everyone else still gets in.
        assert_eq!(
            c.check(&[3; 32], &[0; 16], owner(3), t),
            ReplayVerdict::Fresh
        );
        // Forgetting gives the share back.
        c.forget(&[1; 32], &[0; 16], owner(1));
        assert_eq!(
            c.check(&[1; 32], &[9; 16], owner(1), t),
            ReplayVerdict::Fresh
        );
        // Expiry gives every share back.
        let later = Timestamp::from_millis(1101);
        assert_eq!(
            c.check(&[2; 32], &[9; 16], owner(1), later),
            ReplayVerdict::Fresh
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_snapshot_restores_entries_and_shares_without_sources() {
        let mut c = ReplayCache::new(limits(100, 2), Duration::from_millis(100));
        let t = Timestamp::from_millis(1000);
        let src = Some(RequestSource::from_bytes([7; 16]));
        let o = Principals {
            mailbox: MailboxId::from_bytes([1; 32]),
            source: src,
        };
        assert_eq!(c.check(&[1; 32], &[1; 16], o, t), ReplayVerdict::Fresh);
        let later = Timestamp::from_millis(1050);
        assert_eq!(c.check(&[2; 32], &[1; 16], o, later), ReplayVerdict::Fresh);
        // Forgotten entries are not saved; expired ones neither.
        c.check(&[3; 32], &[1; 16], owner(3), t);
        c.forget(&[3; 32], &[1; 16], owner(3));
        let saved = c.snapshot(Timestamp::from_millis(1120));
        assert_eq!(saved.len(), 1);
        assert_eq!(
            (saved[0].key, saved[0].mailbox, saved[0].expires),
            ([2; 32], o.mailbox, Timestamp::from_millis(1150))
        );
        let saved = c.snapshot(t);
        assert_eq!(saved.len(), 2);

        let mut d = ReplayCache::new(limits(100, 2), Duration::from_millis(100));
        assert_eq!(d.restore(&saved, later), 2);
        assert_eq!(
            d.check(&[1; 32], &[1; 16], o, later),
            ReplayVerdict::Replayed
        );
        assert_eq!(
            d.check(&[2; 32], &[1; 16], o, later),
            ReplayVerdict::Replayed
        );
        // The mailbox's share holds both entries; the source's share was not saved.
        assert_eq!(
            d.check(&[4; 32], &[1; 16], o, later),
            ReplayVerdict::OverShare(ReplayShare::Mailbox)
        );
        assert!(d.by_source.is_empty());
        // Restored entries expire as they would have.
        let t2 = Timestamp::from_millis(1101);
        assert_eq!(d.check(&[1; 32], &[1; 16], o, t2), ReplayVerdict::Fresh);
        // Entries expired by the time of the restore are dropped.
        let mut e = ReplayCache::new(limits(100, 2), Duration::from_millis(100));
        assert_eq!(e.restore(&saved, Timestamp::from_millis(1120)), 1);
    }
}
