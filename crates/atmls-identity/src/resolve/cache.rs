//! A bounded TTL cache in front of any [`DidResolver`], with negative caching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{DidResolver, HistoryFuture, ResolveError, ResolveFuture};
use crate::{Did, DidDocument};

/// Settings of a [`CachingResolver`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    min_refresh_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(60),
            capacity: 10_000,
            min_refresh_interval: Duration::from_secs(10),
        }
    }
}

impl CacheConfig {
    /// How long a resolved document is served from cache (default 1 h).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a "not found" / "gone" answer is served from cache (default 60 s).
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Most entries kept (default 10,000); the oldest is evicted first.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// A forced refresh ([`DidResolver::resolve_fresh`]) of a DID fetched less than this
    /// long ago is answered from cache, so that bad signatures cannot make us hammer the
    /// directory (default 10 s).
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }
}

struct Entry {
    value: Result<Arc<DidDocument>, ResolveError>,
    fetched: Instant,
    expires: Instant,
}

/// Caches the answers of an inner resolver.
pub struct CachingResolver<R> {
    inner: R,
    config: CacheConfig,
    entries: Mutex<HashMap<Did, Entry>>,
}

impl<R> std::fmt::Debug for CachingResolver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingResolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<R: DidResolver> CachingResolver<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, config: CacheConfig) -> Self {
        CachingResolver {
            inner,
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Number of cached entries (positive and negative).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the entry of `did`.
    pub fn invalidate(&self, did: &Did) {
        self.lock().remove(did);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Did, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, did: &Did, now: Instant) -> Option<Result<Arc<DidDocument>, ResolveError>> {
        let entries = self.lock();
        let entry = entries.get(did)?;
        (entry.expires > now).then(|| entry.value.clone())
    }

    fn store(&self, did: &Did, value: &Result<Arc<DidDocument>, ResolveError>) {
        let ttl = match value {
            Ok(_) => self.config.ttl,
            Err(e) if e.is_cacheable() => self.config.negative_ttl,
            Err(_) => return,
        };
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.config.capacity && !entries.contains_key(did) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.config.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.fetched)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            did.clone(),
            Entry {
                value: value.clone(),
                fetched: now,
                expires: now + ttl,
            },
        );
    }

    async fn resolve_cached(&self, did: &Did) -> Result<Arc<DidDocument>, ResolveError> {
        if let Some(hit) = self.cached(did, Instant::now()) {
            return hit;
        }
        let value = self.inner.resolve(did).await;
        self.store(did, &value);
        value
    }

    async fn refresh(&self, did: &Did) -> Result<Arc<DidDocument>, ResolveError> {
        let recent = {
            let entries = self.lock();
            entries.get(did).and_then(|e| {
                (e.fetched.elapsed() < self.config.min_refresh_interval).then(|| e.value.clone())
            })
        };
        if let Some(value) = recent {
            return value;
        }
        let value = self.inner.resolve_fresh(did).await;
        self.store(did, &value);
        value
    }
}

impl<R: DidResolver> DidResolver for CachingResolver<R> {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        Box::pin(self.resolve_cached(did))
    }

    fn resolve_fresh<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        Box::pin(self.refresh(did))
    }

    /// Not cached: a history is asked for rarely (a commit that adds leaves) and must
    /// include operations newer than any cached document.
    fn resolve_history<'a>(&'a self, did: &'a Did) -> HistoryFuture<'a> {
        self.inner.resolve_history(did)
    }
}
