//! Open connections per source (an IPv4 address, or an IPv6 /64), so that one source can
//! hold only a bounded share of [`ServerConfig::max_connections`].
//!
//! [`ServerConfig::max_connections`]: crate::ServerConfig::max_connections

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use atmls_syntax::source_key;

/// The counts, shared by the accept loop and the connections' guards.
#[derive(Debug)]
pub(crate) struct SourceCounts {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; its source's count goes down when it is dropped.
#[derive(Debug)]
pub(crate) struct SourceGuard {
    counts: Arc<SourceCounts>,
    key: IpAddr,
}

impl SourceCounts {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(SourceCounts {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A guard for a new connection from `ip`, or `None` if its source is at the limit.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<SourceGuard> {
        let key = source_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SourceGuard {
            counts: self.clone(),
            key,
        })
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_is_counted_and_released() {
        let counts = SourceCounts::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_sibling: IpAddr = "2001:db8::2".parse().unwrap();
        let first = counts.admit(a).unwrap();
        let _second = counts.admit(a).unwrap();
        assert!(counts.admit(a).is_none());
        let _b = counts.admit(b).unwrap();
        let _b2 = counts.admit(b_sibling).unwrap();
        assert!(counts.admit(b).is_none(), "one /64 is one source");
        drop(first);
        assert!(counts.admit(a).is_some());
        drop(_b);
        drop(_b2);
        assert!(!counts.open.lock().unwrap().contains_key(&source_key(b)));
    }
}
