//! Remembering used `jti`s until their tokens expire.

use std::collections::HashMap;
use std::sync::Mutex;

use atmls_syntax::Timestamp;

use super::ServiceAuthError;

/// Where used token ids are remembered. Implementations must be atomic: two concurrent
/// calls with the same `(iss, jti)` must not both succeed.
pub trait ReplayStore: Send + Sync {
    /// Records `(iss, jti)` until `exp`; [`ServiceAuthError::Replayed`] if it is already
    /// recorded and unexpired at `now` (an entry expiring exactly at `now` still counts).
    fn check_and_insert(
        &self,
        iss: &str,
        jti: &str,
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<(), ServiceAuthError>;
}

/// An in-memory [`ReplayStore`] with a bound on entries, and a share per issuer. When full
/// of unexpired entries it refuses new tokens ([`ServiceAuthError::ReplayStoreFull`])
/// rather than forget one; an issuer holding its share of unexpired entries is refused
/// alone ([`ServiceAuthError::IssuerShareFull`]), so that no one account can fill the
/// store for everyone.
///
/// ```
/// use atmls_identity::service_auth::{MemoryReplayStore, ReplayStore};
/// use atmls_syntax::Timestamp;
///
/// let (exp, now) = (Timestamp::from_millis(60_000), Timestamp::EPOCH);
/// let store = MemoryReplayStore::new(100).with_per_issuer(2);
/// store.check_and_insert("did:plc:a", "1", exp, now).unwrap();
/// store.check_and_insert("did:plc:a", "2", exp, now).unwrap();
/// assert!(store.check_and_insert("did:plc:a", "3", exp, now).is_err());
/// store.check_and_insert("did:plc:b", "1", exp, now).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryReplayStore {
    capacity: usize,
    per_issuer: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashMap<(String, String), Timestamp>,
    by_issuer: HashMap<String, usize>,
}

impl Inner {
    /// Forgets expired entries.
    fn purge(&mut self, now: Timestamp) {
        let by_issuer = &mut self.by_issuer;
        self.seen.retain(|(iss, _), &mut exp| {
            let keep = exp >= now;
            if !keep && let Some(n) = by_issuer.get_mut(iss) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    by_issuer.remove(iss);
                }
            }
            keep
        });
    }
}

impl MemoryReplayStore {
    /// A store for at most `capacity` live tokens, of which one issuer may hold 1,000.
    pub fn new(capacity: usize) -> Self {
        MemoryReplayStore {
            capacity: capacity.max(1),
            per_issuer: 1000,
            inner: Mutex::default(),
        }
    }

    /// Sets how many live tokens one issuer may hold (at least 1).
    #[must_use]
    pub fn with_per_issuer(mut self, n: usize) -> Self {
        self.per_issuer = n.max(1);
        self
    }

    /// Number of remembered tokens (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_insert(
        &self,
        iss: &str,
        jti: &str,
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<(), ServiceAuthError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (iss.to_owned(), jti.to_owned());
        if inner.seen.get(&key).is_some_and(|&e| e >= now) {
            return Err(ServiceAuthError::Replayed);
        }
        let held = |inner: &Inner| inner.by_issuer.get(iss).copied().unwrap_or(0);
        if inner.seen.len() >= self.capacity || held(&inner) >= self.per_issuer {
            inner.purge(now);
            if held(&inner) >= self.per_issuer {
                return Err(ServiceAuthError::IssuerShareFull);
            }
            if inner.seen.len() >= self.capacity {
                return Err(ServiceAuthError::ReplayStoreFull);
            }
        }
        if inner.seen.insert(key, exp).is_none() {
            *inner.by_issuer.entry(iss.to_owned()).or_default() += 1;
        }
        Ok(())
    }
}
