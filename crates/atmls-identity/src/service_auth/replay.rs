//! Remembering used `jti`s until their tokens expire.

use std::collections::HashMap;
use std::sync::Mutex;

use super::ServiceAuthError;

/// Where used token ids are remembered. Implementations must be atomic: two concurrent
/// calls with the same `(iss, jti)` must not both succeed.
pub trait ReplayStore: Send + Sync {
    /// Records `(iss, jti)` until `exp`; [`ServiceAuthError::Replayed`] if it is already
    /// recorded and unexpired at `now`.
    fn check_and_insert(
        &self,
        iss: &str,
        jti: &str,
        exp: u64,
        now: u64,
    ) -> Result<(), ServiceAuthError>;
}

/// An in-memory [`ReplayStore`] with a bound on entries. When full of unexpired entries
/// it refuses new tokens ([`ServiceAuthError::ReplayStoreFull`]) rather than forget one.
#[derive(Debug)]
pub struct MemoryReplayStore {
    capacity: usize,
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl MemoryReplayStore {
    /// A store for at most `capacity` live tokens.
    pub fn new(capacity: usize) -> Self {
        MemoryReplayStore {
            capacity: capacity.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Number of remembered tokens (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
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
        exp: u64,
        now: u64,
    ) -> Result<(), ServiceAuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (iss.to_owned(), jti.to_owned());
        if seen.get(&key).is_some_and(|&e| e >= now) {
            return Err(ServiceAuthError::Replayed);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, &mut e| e >= now);
            if seen.len() >= self.capacity {
                return Err(ServiceAuthError::ReplayStoreFull);
            }
        }
        seen.insert(key, exp);
        Ok(())
    }
}
