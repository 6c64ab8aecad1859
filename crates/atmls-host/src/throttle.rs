//! Rate limits on the password paths (`createSession`, `createAccount`), whose Argon2
//! work is expensive by design. Pure: time comes in as an argument.
//!
//! Each limit is a token bucket per key, kept as its theoretical arrival time (GCRA):
//! `burst` attempts at once, then one per `interval`. Tables are bounded; when one is
//! full the oldest key is forgotten (which can only relax a limit, never refuse an
//! unrelated caller).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use atmls_syntax::{Timestamp, duration_millis};

use crate::error::HostError;

/// A rate: `burst` attempts at once, then one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Attempts allowed at once (at least 1).
    pub burst: u32,
    /// Time for one attempt to come back (counted in whole milliseconds).
    pub interval: Duration,
}

impl Rate {
    /// `burst` at once, then one per `interval`.
    pub const fn new(burst: u32, interval: Duration) -> Self {
        Rate { burst, interval }
    }

    fn interval_ms(&self) -> u64 {
        duration_millis(self.interval)
    }
}

/// The limits of the password paths.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// Failed logins per account **and source address** (whatever identifier named the
    /// account). Default 10 at once, then one a minute. Checked before the password is
    /// hashed; only failures count. Keyed by source too, so that a guesser cannot lock
    /// the account's owner out: the owner's own address has its own allowance.
    pub login_failures_per_account: Rate,
    /// Failed logins per account from all sources together, against guessing spread over
    /// many addresses. Default 100 at once, then one every 6 s. Once spent, only
    /// addresses with no recent failure for the account may still try (a guesser's
    /// address is refused; the owner's, which has not failed, is not).
    pub login_failures_per_account_total: Rate,
    /// Login attempts per source address. Default 30 at once, then one every 2 s.
    pub logins_per_source: Rate,
    /// Account creations per source address. Default 10 at once, then one a minute.
    pub accounts_per_source: Rate,
    /// Most keys each table remembers. Default 100,000.
    pub max_tracked: usize,
    /// Whether loopback sources skip the per-source limits. Default on: a loopback peer
    /// is this machine — the development stack, or a reverse proxy in front of the host,
    /// behind which every caller shares one address and a per-source limit would be a
    /// global one. The per-account limit applies to every source.
    pub exempt_loopback: bool,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            login_failures_per_account: Rate::new(10, Duration::from_secs(60)),
            login_failures_per_account_total: Rate::new(100, Duration::from_secs(6)),
            logins_per_source: Rate::new(30, Duration::from_secs(2)),
            accounts_per_source: Rate::new(10, Duration::from_millis(60_000)),
            max_tracked: 100_000,
            exempt_loopback: true,
        }
    }
}

impl ThrottleConfig {
    /// Sets [`ThrottleConfig::login_failures_per_account`].
    #[must_use]
    pub fn with_login_failures_per_account(mut self, rate: Rate) -> Self {
        self.login_failures_per_account = rate;
        self
    }

    /// Sets [`ThrottleConfig::login_failures_per_account_total`].
    #[must_use]
    pub fn with_login_failures_per_account_total(mut self, rate: Rate) -> Self {
        self.login_failures_per_account_total = rate;
        self
    }

    /// Sets [`ThrottleConfig::logins_per_source`].
    #[must_use]
    pub fn with_logins_per_source(mut self, rate: Rate) -> Self {
        self.logins_per_source = rate;
        self
    }

    /// Sets [`ThrottleConfig::exempt_loopback`].
    #[must_use]
    pub fn with_exempt_loopback(mut self, exempt: bool) -> Self {
        self.exempt_loopback = exempt;
        self
    }

    /// Sets [`ThrottleConfig::accounts_per_source`].
    #[must_use]
    pub fn with_accounts_per_source(mut self, rate: Rate) -> Self {
        self.accounts_per_source = rate;
        self
    }
}

/// The key a source address is counted under (one rule for every per-source limit).
pub use atmls_syntax::source_key;

/// One bounded table of buckets.
#[derive(Debug)]
struct Table<K> {
    rate: Rate,
    max: usize,
    /// Theoretical arrival time of the next attempt, per key.
    tat: HashMap<K, u64>,
    /// Keys in insertion order, for eviction (may name keys already forgotten).
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(rate: Rate, max: usize) -> Self {
        Table {
            rate,
            max: max.max(1),
            tat: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// `Err(ms to wait)` if `key` has no attempt left at `now`.
    fn check(&self, key: &K, now: u64) -> Result<(), u64> {
        let tolerance = self.rate.interval_ms() * u64::from(self.rate.burst.max(1) - 1);
        match self.tat.get(key) {
            Some(&tat) if tat > now + tolerance => Err(tat - tolerance - now),
            _ => Ok(()),
        }
    }

    /// Uses one attempt of `key` at `now` (whether or not one was left).
    fn consume(&mut self, key: &K, now: u64) {
        if let Some(tat) = self.tat.get_mut(key) {
            *tat = (*tat).max(now) + self.rate.interval_ms();
            return;
        }
        while self.tat.len() >= self.max {
            match self.order.pop_front() {
                Some(old) => {
                    self.tat.remove(&old);
                }
                None => break,
            }
        }
        // Forgotten keys leave stale names behind: keep the queue within twice the table.
        if self.order.len() >= 2 * self.max {
            let live = &self.tat;
            self.order.retain(|k| live.contains_key(k));
        }
        self.tat.insert(key.clone(), now + self.rate.interval_ms());
        self.order.push_back(key.clone());
    }

    /// Whether `key` has its whole burst (nothing used recently).
    fn is_fresh(&self, key: &K, now: u64) -> bool {
        self.tat.get(key).is_none_or(|&tat| tat <= now)
    }

    /// [`Self::check`], then [`Self::consume`] if allowed.
    fn take(&mut self, key: &K, now: u64) -> Result<(), u64> {
        self.check(key, now)?;
        self.consume(key, now);
        Ok(())
    }
}

/// The throttle of one host: three tables behind one lock (each operation is a few
/// hash-map steps).
#[derive(Debug)]
pub struct Throttle {
    tables: Mutex<Tables>,
    exempt_loopback: bool,
}

#[derive(Debug)]
struct Tables {
    /// Failures per (account, source key); `None`: source unknown.
    failures: Table<(String, Option<IpAddr>)>,
    /// Failures per account from every source.
    account_failures: Table<String>,
    logins: Table<IpAddr>,
    accounts: Table<IpAddr>,
}

fn limited(what: &str, wait_ms: u64) -> HostError {
    HostError::RateLimited {
        what: what.to_owned(),
        retry_after_secs: wait_ms.div_ceil(1000).max(1),
    }
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(config: &ThrottleConfig) -> Self {
        let max = config.max_tracked;
        Throttle {
            tables: Mutex::new(Tables {
                failures: Table::new(config.login_failures_per_account, max),
                account_failures: Table::new(config.login_failures_per_account_total, max),
                logins: Table::new(config.logins_per_source, max),
                accounts: Table::new(config.accounts_per_source, max),
            }),
            exempt_loopback: config.exempt_loopback,
        }
    }

    /// The key `source` is limited under, or `None` if it is not limited.
    fn source(&self, source: Option<IpAddr>) -> Option<IpAddr> {
        let ip = source?;
        let key = source_key(ip);
        let loopback = ip.is_loopback() || key.is_loopback();
        (!(self.exempt_loopback && loopback)).then_some(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A login attempt from `source` (if known): uses one of the source's attempts.
    pub fn login_attempt(&self, source: Option<IpAddr>, now: Timestamp) -> Result<(), HostError> {
        let Some(source) = self.source(source) else {
            return Ok(());
        };
        self.lock()
            .logins
            .take(&source, now.as_millis())
            .map_err(|wait| limited("login attempts from this address", wait))
    }

    /// Whether `account` (a DID) may try a password now from `source`: refused when
    /// this source spent its failures for the account, or when the account's failures
    /// from all sources are spent and this source has failed for it recently.
    pub fn login_allowed(
        &self,
        account: &str,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(), HostError> {
        let now_ms = now.as_millis();
        let key = (account.to_owned(), source.map(source_key));
        let tables = self.lock();
        tables
            .failures
            .check(&key, now_ms)
            .map_err(|wait| limited("failed logins for this account from this address", wait))?;
        if let Err(wait) = tables.account_failures.check(&key.0, now_ms)
            && !tables.failures.is_fresh(&key, now_ms)
        {
            return Err(limited("failed logins for this account", wait));
        }
        Ok(())
    }

    /// A wrong password for `account` from `source`.
    pub fn login_failed(&self, account: &str, source: Option<IpAddr>, now: Timestamp) {
        let now_ms = now.as_millis();
        let mut tables = self.lock();
        tables
            .failures
            .consume(&(account.to_owned(), source.map(source_key)), now_ms);
        tables.account_failures.consume(&account.to_owned(), now_ms);
    }

    /// An account creation from `source` (if known): uses one of the source's attempts.
    pub fn account_attempt(&self, source: Option<IpAddr>, now: Timestamp) -> Result<(), HostError> {
        let Some(source) = self.source(source) else {
            return Ok(());
        };
        self.lock()
            .accounts
            .take(&source, now.as_millis())
            .map_err(|wait| limited("account creations from this address", wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_one_per_interval() {
        let mut t = Table::new(Rate::new(3, Duration::from_millis(1000)), 10);
        for _ in 0..3 {
            t.take(&"k", 0).unwrap();
        }
        assert_eq!(t.take(&"k", 0), Err(1000));
        assert_eq!(t.take(&"k", 400), Err(600));
        t.take(&"k", 1000).unwrap();
        assert!(t.take(&"k", 1000).is_err());
        // Other keys are not affected.
        t.take(&"other", 0).unwrap();
        // Long idle: the whole burst is back.
        for _ in 0..3 {
            t.take(&"k", 100_000).unwrap();
        }
        assert!(t.take(&"k", 100_000).is_err());
    }

    #[test]
    fn tables_are_bounded() {
        let mut t = Table::new(Rate::new(1, Duration::from_millis(60_000)), 4);
        for i in 0..1000u32 {
            t.take(&i, 0).unwrap();
            assert!(t.tat.len() <= 4);
            assert!(t.order.len() <= 8);
        }
        // The newest keys are still limited; the oldest were forgotten.
        assert!(t.take(&999, 0).is_err());
        assert!(t.take(&0, 0).is_ok());
    }

    #[test]
    fn sources_group_by_host() {
        assert_eq!(source_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(source_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
    }

    #[test]
    fn failures_limit_the_guesser_not_the_owner() {
        let config = ThrottleConfig::default()
            .with_login_failures_per_account(Rate::new(2, Duration::from_millis(60_000)))
            .with_login_failures_per_account_total(Rate::new(3, Duration::from_millis(60_000)))
            .with_logins_per_source(Rate::new(100, Duration::from_millis(1)));
        let t = Throttle::new(&config);
        let guesser = Some(ip("203.0.113.7"));
        let second = Some(ip("198.51.100.9"));
        let owner = Some(ip("192.0.2.1"));
        for _ in 0..2 {
            t.login_allowed("did:plc:victim", guesser, at(0)).unwrap();
            t.login_failed("did:plc:victim", guesser, at(0));
        }
        let err = t
            .login_allowed("did:plc:victim", guesser, at(0))
            .unwrap_err();
        assert_eq!((err.status(), err.name()), (429, "RateLimitExceeded"));
        // A second guessing address spends the account's total...
        t.login_allowed("did:plc:victim", second, at(0)).unwrap();
        t.login_failed("did:plc:victim", second, at(0));
        assert!(t.login_allowed("did:plc:victim", second, at(0)).is_err());
        // ...but the owner's address, which has not failed, may still try.
        t.login_allowed("did:plc:victim", owner, at(0)).unwrap();
        t.login_allowed("did:plc:other", guesser, at(0)).unwrap();
        t.login_allowed("did:plc:victim", guesser, at(60_000))
            .unwrap();
        // No source known: only the per-account limits apply.
        t.login_attempt(None, at(0)).unwrap();
    }

    #[test]
    fn loopback_is_exempt_unless_configured() {
        let tight = ThrottleConfig::default()
            .with_accounts_per_source(Rate::new(1, Duration::from_millis(60_000)));
        let t = Throttle::new(&tight);
        for _ in 0..5 {
            t.account_attempt(Some(ip("127.0.0.1")), at(0)).unwrap();
            t.account_attempt(Some(ip("::1")), at(0)).unwrap();
            t.account_attempt(Some(ip("::ffff:127.0.0.1")), at(0))
                .unwrap();
        }
        t.account_attempt(Some(ip("192.0.2.1")), at(0)).unwrap();
        assert!(t.account_attempt(Some(ip("192.0.2.1")), at(0)).is_err());
        let strict = Throttle::new(&tight.with_exempt_loopback(false));
        strict
            .account_attempt(Some(ip("127.0.0.1")), at(0))
            .unwrap();
        assert!(
            strict
                .account_attempt(Some(ip("127.0.0.1")), at(0))
                .is_err()
        );
        strict
            .account_attempt(Some(ip("127.0.0.2")), at(0))
            .unwrap();
    }
}
