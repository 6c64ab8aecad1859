//! The limits each DS announces in `chat.mls.ds.describeServer` (docs/spec.md §11.5):
//! fetched per DS, cached, refreshed every [`DeviceConfig::ds_limits_refresh`], and
//! bounded by the device's own configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atmls_ds_proto::Limits;
use atmls_identity::Did;

use super::{Device, DeviceConfig};
use crate::transport::{Ds, Pds};

/// The smallest `maxEnvelopeBytes` the client takes from a DS: below it no commit or
/// welcome fits, and a DS answering less is treated as answering this (its refusals
/// then show as refused sends, not as a client padding to nothing).
pub(crate) const MIN_ENVELOPE_BYTES: usize = 4096;

/// After a failed `describeServer`, the client asks that DS again no sooner than this.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Most DSes whose limits are kept (the oldest entry is dropped past it).
const CAPACITY: usize = 256;

/// What the device knows of each DS's limits.
#[derive(Debug, Default)]
pub(crate) struct DsLimitsCache {
    entries: Mutex<HashMap<Did, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    limits: Option<Limits>,
    fetched: Instant,
}

impl DsLimitsCache {
    fn get(&self, ds: &Did, fresh_for: Duration, now: Instant) -> Option<Option<Limits>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(ds)?;
        let ttl = if e.limits.is_some() {
            fresh_for
        } else {
            RETRY_AFTER_FAILURE.min(fresh_for)
        };
        (now.saturating_duration_since(e.fetched) < ttl).then_some(e.limits)
    }

    fn put(&self, ds: &Did, limits: Option<Limits>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY
            && !entries.contains_key(ds)
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.fetched)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            ds.clone(),
            Entry {
                limits,
                fetched: now,
            },
        );
    }
}

/// The envelope size the client uses toward a DS: the smaller of its own configuration
/// and the DS's announced `maxEnvelopeBytes`, the latter raised to
/// [`MIN_ENVELOPE_BYTES`] (an absurdly small announcement is bounded; an absurdly large
/// one loses to the configuration). Without an announcement, the configuration.
pub(crate) fn effective_envelope_bytes(config: &DeviceConfig, limits: Option<&Limits>) -> usize {
    let configured = config.max_envelope_bytes;
    match limits {
        Some(l) => {
            let announced = usize::try_from(l.max_envelope_bytes).unwrap_or(usize::MAX);
            configured.min(announced.max(MIN_ENVELOPE_BYTES))
        }
        None => configured,
    }
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// `ds`'s announced limits, from the cache or `describeServer`; `None` if it does
    /// not answer usably (the device then keeps to its configuration). A failure is
    /// remembered for a minute so that a DS that does not answer costs one request.
    pub(crate) async fn ds_limits(&self, ds: &Did) -> Option<Limits> {
        let cache = &self.inner.ds_limits;
        let refresh = self.inner.config.ds_limits_refresh;
        if let Some(hit) = cache.get(ds, refresh, Instant::now()) {
            return hit;
        }
        let limits = match self.inner.ds.describe(ds).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::debug!(error = %e, "describeServer failed; using the configured limits");
                None
            }
        };
        cache.put(ds, limits, Instant::now());
        limits
    }

    /// The largest payload to send to `ds` ([`effective_envelope_bytes`]).
    pub(crate) async fn envelope_limit(&self, ds: &Did) -> usize {
        let limits = self.ds_limits(ds).await;
        effective_envelope_bytes(&self.inner.config, limits.as_ref())
    }

    /// The smallest [`Self::envelope_limit`] over `dses`.
    pub(crate) async fn envelope_limit_over<'a>(
        &self,
        dses: impl IntoIterator<Item = &'a Did>,
    ) -> usize {
        let mut min = self.inner.config.max_envelope_bytes;
        for ds in dses {
            min = min.min(self.envelope_limit(ds).await);
        }
        min
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u64) -> Limits {
        Limits {
            max_envelope_bytes: max,
            max_batch_envelopes: 1,
            max_mailboxes_per_account: 1,
            inbox_deposits_per_minute: 1,
            key_grace_seconds: 0,
            request_max_age_seconds: 1,
            max_subscription_mailboxes: 1,
            max_mailbox_bytes: None,
            inbox_deposit_bytes_per_minute: None,
            group_retention_seconds: None,
            inbox_retention_seconds: None,
        }
    }

    #[test]
    fn the_smaller_wins_and_absurd_values_are_bounded() {
        let config = DeviceConfig::default().with_max_envelope_bytes(1 << 20);
        assert_eq!(effective_envelope_bytes(&config, None), 1 << 20);
        assert_eq!(effective_envelope_bytes(&config, Some(&limits(8192))), 8192);
        assert_eq!(
            effective_envelope_bytes(&config, Some(&limits(u64::MAX))),
            1 << 20
        );
        assert_eq!(
            effective_envelope_bytes(&config, Some(&limits(1))),
            MIN_ENVELOPE_BYTES
        );
    }

    #[test]
    fn cache_refreshes_and_retries_failures_sooner() {
        let cache = DsLimitsCache::default();
        let ds = Did::new("did:web:ds.test").unwrap();
        let t0 = Instant::now();
        assert!(cache.get(&ds, Duration::from_secs(3600), t0).is_none());
        cache.put(&ds, Some(limits(5000)), t0);
        let hour = Duration::from_secs(3600);
        assert!(cache.get(&ds, hour, t0 + hour / 2).unwrap().is_some());
        assert!(cache.get(&ds, hour, t0 + hour).is_none());
        cache.put(&ds, None, t0);
        assert_eq!(
            cache.get(&ds, hour, t0 + Duration::from_secs(30)),
            Some(None)
        );
        assert!(cache.get(&ds, hour, t0 + RETRY_AFTER_FAILURE).is_none());
    }
}
