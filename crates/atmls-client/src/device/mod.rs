//! A device: one MLS client of an account, its SQLite state, and every operation the
//! application calls.

mod backoff;
#[cfg(test)]
mod binding_tests;
#[cfg(test)]
mod catch_up_tests;
#[cfg(test)]
mod clock_tests;
mod device_key;
pub(crate) mod ds_limits;
mod envelope;
#[cfg(test)]
mod gaps_tests;
pub(crate) mod groups;
mod inbox;
#[cfg(test)]
mod key_history_tests;
#[cfg(test)]
mod key_package_reuse_tests;
mod keys;
#[cfg(test)]
mod leaf_proof_tests;
mod live;
pub(crate) mod outbox;
mod pending;
pub(crate) mod recovery;
pub(crate) mod resend;
mod rotation;
#[cfg(test)]
mod rotation_tests;
pub(crate) mod store;
mod sync;
mod tree_blobs;
mod used_key_packages;
pub(crate) mod vanish;
pub(crate) mod welcome;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atmls_ds_proto::{MailboxId, MailboxKind};
use atmls_identity::Did;
use ed25519_dalek::SigningKey;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use rusqlite::Connection;
use tokio::sync::{Mutex, broadcast};

use crate::at_rest::KeySource;
use crate::error::{Error, StoreError};
use crate::event::Event;
use crate::transport::{Ds, Pds};
use store::{DeviceRow, Provider};

/// How a device behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeviceConfig {
    /// The device's base MLS ciphersuite (0x0001): its signature scheme is the device's
    /// (Ed25519, shared by X-Wing). The suites of KeyPackages and new groups follow
    /// [`Self::suite_policy`].
    pub ciphersuite: Ciphersuite,
    /// Whether the device publishes X-Wing KeyPackages and creates X-Wing groups
    /// (docs/spec.md §11.19). Off by default in the library; the CLI prefers X-Wing.
    pub suite_policy: crate::suite::SuitePolicy,
    /// One-time KeyPackages kept published besides the last-resort one.
    pub one_time_key_packages: usize,
    /// KeyPackage lifetime (`expiresAt - createdAt`).
    pub key_package_lifetime: Duration,
    /// Replace KeyPackages this long before they expire.
    pub key_package_renewal: Duration,
    /// Epoch conflicts tolerated per commit before giving up.
    pub max_commit_attempts: u32,
    /// The declaration's `invitePolicy`.
    pub invite_policy: String,
    /// The largest payload the device sends: the smaller of this and each DS's
    /// announced `maxEnvelopeBytes` counts (payloads are padded up to buckets below it;
    /// docs/spec.md §11.5).
    pub max_envelope_bytes: usize,
    /// Look for new devices of this account at most this often during [`Device::sync`].
    pub own_device_check_interval: Duration,
    /// How often [`Device::run`] syncs when it has no working subscription.
    pub poll_interval: Duration,
    /// Self-update in each group this often (during [`Device::sync`]); `None`: never
    /// on its own.
    pub self_update_interval: Option<Duration>,
    /// Rotate the leaf signature key in each group this often (during [`Device::sync`],
    /// docs/spec.md §11.16.6); `None`: only after a last-resort join.
    pub signature_rotation_interval: Option<Duration>,
    /// After a transient failure (docs/spec.md §11.14) the inbox or group is left alone
    /// this long, doubling per consecutive failure up to [`Self::max_retry_backoff`];
    /// an inbox item set aside is retried on the same schedule.
    pub retry_backoff: Duration,
    /// The longest back-off (also the wait after a mailbox's DS refuses it for good).
    pub max_retry_backoff: Duration,
    /// A broken device asks to be re-added again after this long, doubling per request
    /// up to six hours (docs/spec.md §11.17).
    pub reentry_retry: Duration,
    /// How long a DS's `describeServer` limits are used before they are asked again
    /// (docs/spec.md §11.5).
    pub ds_limits_refresh: Duration,
    /// Attempts at delivering a welcome (the first included) before the device gives up
    /// on it with [`Event::WelcomeGivenUp`] (docs/spec.md §11.4).
    pub welcome_attempts: u32,
    /// The wall clock for every decision that compares with a stored or peer time
    /// (docs/spec.md §11.11): deadlines kept in the device database (out-of-band trees,
    /// welcome resends, deferred inbox items, re-entry requests), KeyPackage creation,
    /// expiry and renewal, the periodic leaf updates, record timestamps, and message
    /// expiry (compared with the DS's `receivedAt`, §11.18). Back-off timers use
    /// `Instant`. Tests move it with an `atmls_syntax::ManualClock`.
    pub clock: Arc<dyn atmls_syntax::Clock>,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            ciphersuite: Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            suite_policy: crate::suite::SuitePolicy::Off,
            one_time_key_packages: 3,
            key_package_lifetime: Duration::from_secs(30 * 86_400),
            key_package_renewal: Duration::from_secs(7 * 86_400),
            max_commit_attempts: 16,
            invite_policy: "anyone".into(),
            max_envelope_bytes: 1 << 20,
            own_device_check_interval: Duration::from_secs(300),
            self_update_interval: Some(Duration::from_secs(7 * 86_400)),
            signature_rotation_interval: Some(Duration::from_secs(3 * 86_400)),
            poll_interval: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            max_retry_backoff: Duration::from_secs(300),
            reentry_retry: Duration::from_secs(60),
            ds_limits_refresh: Duration::from_secs(3600),
            welcome_attempts: 8,
            clock: Arc::new(atmls_syntax::SystemClock),
        }
    }
}

impl DeviceConfig {
    /// Sets the DS's `maxEnvelopeBytes` (welcomes whose sealed form exceeds it send the
    /// ratchet tree out of band).
    pub fn with_max_envelope_bytes(mut self, n: usize) -> Self {
        self.max_envelope_bytes = n;
        self
    }

    /// Sets the wall clock (tests: an `atmls_syntax::ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn atmls_syntax::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how many times a welcome is tried before the device gives up on it.
    pub fn with_welcome_attempts(mut self, n: u32) -> Self {
        self.welcome_attempts = n.max(1);
        self
    }

    /// Sets how long a DS's announced limits are cached.
    pub fn with_ds_limits_refresh(mut self, interval: Duration) -> Self {
        self.ds_limits_refresh = interval;
        self
    }

    /// Sets the X-Wing policy (docs/spec.md §11.19).
    pub fn with_suite_policy(mut self, policy: crate::suite::SuitePolicy) -> Self {
        self.suite_policy = policy;
        self
    }

    /// Sets the number of one-time KeyPackages kept published (per suite).
    pub fn with_one_time_key_packages(mut self, n: usize) -> Self {
        self.one_time_key_packages = n;
        self
    }

    /// Sets how often [`Device::sync`] looks for new devices of the account.
    pub fn with_own_device_check_interval(mut self, interval: Duration) -> Self {
        self.own_device_check_interval = interval;
        self
    }

    /// Sets the periodic self-update interval.
    pub fn with_self_update_interval(mut self, interval: Option<Duration>) -> Self {
        self.self_update_interval = interval;
        self
    }

    /// Sets the periodic signature-key rotation interval.
    pub fn with_signature_rotation_interval(mut self, interval: Option<Duration>) -> Self {
        self.signature_rotation_interval = interval;
        self
    }

    /// Sets the KeyPackage lifetime and how long before expiry they are replaced.
    pub fn with_key_package_lifetime(mut self, lifetime: Duration, renewal: Duration) -> Self {
        self.key_package_lifetime = lifetime;
        self.key_package_renewal = renewal;
        self
    }

    /// Sets the back-off after transient failures: the first wait and the longest.
    pub fn with_retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = initial;
        self.max_retry_backoff = max.max(initial);
        self
    }

    /// Sets how soon a broken device asks again to be re-added (doubling per request).
    pub fn with_reentry_retry(mut self, wait: Duration) -> Self {
        self.reentry_retry = wait;
        self
    }

    /// Sets the commit retry bound.
    pub fn with_max_commit_attempts(mut self, n: u32) -> Self {
        self.max_commit_attempts = n;
        self
    }
}

pub(crate) struct State {
    pub(crate) conn: Connection,
    pub(crate) crypto: store::Crypto,
    pub(crate) row: DeviceRow,
    pub(crate) did: Did,
    pub(crate) groups: HashMap<Vec<u8>, MlsGroup>,
    pub(crate) last_device_check: Option<std::time::Instant>,
    /// DID documents resolved during this sync to check added leaves (§11.13).
    pub(crate) documents: crate::group::proofs::Documents,
    /// The inbox and groups in back-off after a failure (§11.14).
    pub(crate) backoffs: backoff::Backoffs,
    /// The inbox key, expanded once (deriving its public half costs a scalar
    /// multiplication).
    inbox: SigningKey,
    /// Each group's current mailbox key, derived once per epoch; checked against the
    /// group's epoch authenticator before use, so a stale entry is never returned.
    mailbox_keys: HashMap<Vec<u8>, MailboxKey>,
    /// The device clock ([`DeviceConfig::clock`]), for steps that only hold the state.
    clock: Arc<dyn atmls_syntax::Clock>,
}

/// A derived mailbox key and the epoch it belongs to.
struct MailboxKey {
    mailbox: [u8; 32],
    authenticator: Vec<u8>,
    key: SigningKey,
}

impl State {
    /// Now by the device clock, in Unix seconds: every decision that compares with a
    /// stored or peer time reads this (or [`Self::unix_ms`]), never the system clock.
    pub(crate) fn unix_now(&self) -> i64 {
        self.unix_ms() / 1000
    }

    /// Now by the device clock, in Unix milliseconds.
    pub(crate) fn unix_ms(&self) -> i64 {
        i64::try_from(self.clock.now().as_millis()).unwrap_or(i64::MAX)
    }

    pub(crate) fn provider(&self) -> Provider<'_> {
        Provider::new(&self.crypto, &self.conn)
    }

    pub(crate) fn ciphersuite(&self) -> Result<Ciphersuite, Error> {
        Ciphersuite::try_from(self.row.ciphersuite)
            .map_err(|_| StoreError::Corrupt("ciphersuite").into())
    }

    /// The signer with public key `public`.
    pub(crate) fn signer(&self, public: &[u8]) -> Result<SignatureKeyPair, Error> {
        let scheme = self.ciphersuite()?.signature_algorithm();
        SignatureKeyPair::read(self.provider().storage(), public, scheme)
            .ok_or(Error::Store(StoreError::Corrupt("missing signature key")))
    }

    pub(crate) fn inbox_key(&self) -> SigningKey {
        self.inbox.clone()
    }

    /// The mailbox key of the group's current epoch
    /// ([`seal::mailbox_key`](crate::group::seal::mailbox_key)), cached per epoch.
    pub(crate) fn mailbox_key(
        &mut self,
        id: &[u8],
        mailbox: &[u8; 32],
    ) -> Result<SigningKey, Error> {
        let cached = self.mailbox_keys.remove(id);
        let entry = self.with_group(id, |provider, g| {
            let authenticator = g.epoch_authenticator().as_slice();
            match cached {
                Some(c) if c.mailbox == *mailbox && c.authenticator == authenticator => Ok(c),
                _ => Ok(MailboxKey {
                    mailbox: *mailbox,
                    authenticator: authenticator.to_vec(),
                    key: crate::group::seal::mailbox_key(g, provider.crypto(), mailbox)
                        .map_err(|e| Error::mls("mailbox key", e))?,
                }),
            }
        })?;
        let key = entry.key.clone();
        self.mailbox_keys.insert(id.to_vec(), entry);
        Ok(key)
    }

    /// Runs `f` on the group, loaded once and cached; on error the cached copy is
    /// dropped (the transaction rolls back and storage stays the truth).
    pub(crate) fn with_group<T>(
        &mut self,
        id: &[u8],
        f: impl FnOnce(&Provider<'_>, &mut MlsGroup) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let State {
            conn,
            crypto,
            groups,
            ..
        } = self;
        let provider = Provider::new(crypto, conn);
        let group = match groups.entry(id.to_vec()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let g = MlsGroup::load(provider.storage(), &GroupId::from_slice(id))
                    .map_err(StoreError::Sqlite)?
                    .ok_or(Error::UnknownGroup)?;
                v.insert(g)
            }
        };
        let out = f(&provider, group);
        if out.is_err() {
            groups.remove(id);
        }
        out
    }

    /// Runs `f` in one SQLite transaction (MLS state and ours together).
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.transaction_or_undo(|st| f(st).map(Ok::<T, std::convert::Infallible>))? {
            Ok(v) => Ok(v),
            Err(never) => match never {},
        }
    }

    /// Like [`Self::transaction`], but `f` may also undo its step without failing:
    /// `Ok(Err(u))` rolls back (as an error does) and returns `u`.
    pub(crate) fn transaction_or_undo<T, U>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Result<T, U>, Error>,
    ) -> Result<Result<T, U>, Error> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let out = f(self);
        if let Ok(Ok(_)) = out {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
        } else {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.groups.clear();
        }
        out
    }
}

pub(crate) struct Inner<P, D> {
    pub(crate) pds: P,
    pub(crate) ds: D,
    pub(crate) config: DeviceConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) did: Did,
    pub(crate) device_id: String,
    /// Each DS's `describeServer` limits (§11.5).
    pub(crate) ds_limits: ds_limits::DsLimitsCache,
}

/// One device of an account: a member (leaf) of each of its groups.
///
/// Cheap to clone (shared state); every operation takes the device's lock, so operations
/// of one device run one at a time.
pub struct Device<P, D> {
    pub(crate) inner: Arc<Inner<P, D>>,
}

impl<P, D> Clone for Device<P, D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P, D> std::fmt::Debug for Device<P, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("did", &self.inner.did)
            .field("device_id", &self.inner.device_id)
            .finish_non_exhaustive()
    }
}

/// Where the device database lives.
#[derive(Debug, Clone, Copy)]
pub enum Storage<'a> {
    /// A file (created if missing), encrypted at rest with the key from the
    /// [`KeySource`] (docs/spec.md §11.11).
    File(&'a Path, &'a dyn KeySource),
    /// In memory (gone when the device is dropped).
    Memory,
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Creates a new device for the PDS session's account: a fresh signature key and
    /// device id, an inbox on `ds`, the declaration (if the account has none) and the
    /// KeyPackages published.
    pub async fn create(
        storage: Storage<'_>,
        pds: P,
        ds: D,
        ds_did: Did,
        config: DeviceConfig,
    ) -> Result<Self, Error> {
        Self::create_inner(storage, pds, ds, ds_did, config, None).await
    }

    /// [`Self::create`], with the device id given (a device restored after its database
    /// was lost keeps its id, docs/spec.md §11.17) or drawn at random.
    pub(crate) async fn create_inner(
        storage: Storage<'_>,
        pds: P,
        ds: D,
        ds_did: Did,
        config: DeviceConfig,
        device_id: Option<String>,
    ) -> Result<Self, Error> {
        let conn = match storage {
            Storage::File(p, key) => store::open(p, key)?,
            Storage::Memory => store::open_in_memory()?,
        };
        if store::read_device(&conn)?.is_some() {
            return Err(StoreError::Device("database already holds a device".into()).into());
        }
        let crypto = store::new_crypto()?;
        let did = pds.did();
        let signer = SignatureKeyPair::new(config.ciphersuite.signature_algorithm())
            .map_err(|e| Error::mls("signature key", e))?;
        signer
            .store(Provider::new(&crypto, &conn).storage())
            .map_err(StoreError::Sqlite)?;
        let inbox_key = SigningKey::from_bytes(&rand::random());
        let token = pds
            .service_auth(&ds_did, "chat.mls.ds.createMailbox")
            .await?;
        let inbox = ds
            .create_mailbox(
                &ds_did,
                &token,
                MailboxKind::Inbox,
                inbox_key.verifying_key().to_bytes(),
                0,
            )
            .await?;
        let device_id =
            device_id.unwrap_or_else(|| crate::content::base32(&rand::random::<[u8; 10]>()));
        let row = DeviceRow {
            did: did.to_string(),
            device_id: device_id.clone(),
            ciphersuite: u16::from(config.ciphersuite),
            signature_public: signer.to_public_vec(),
            inbox_ds: ds_did.to_string(),
            inbox_mailbox: *inbox.as_bytes(),
            inbox_key: inbox_key.to_bytes(),
            inbox_cursor: 0,
        };
        store::write_device(&conn, &row)?;
        let device = Self::from_parts(conn, crypto, row, pds, ds, config)?;
        device.publish_declaration().await?;
        {
            let mut st = device.inner.state.lock().await;
            device.publish_device_record(&mut st, false).await?;
        }
        device.replenish_key_packages().await?;
        Ok(device)
    }

    /// Opens an existing device database with its key: every group resumes where it
    /// stopped. A wrong key is [`StoreError::WrongKey`].
    pub async fn open(
        path: &Path,
        key: &dyn KeySource,
        pds: P,
        ds: D,
        config: DeviceConfig,
    ) -> Result<Self, Error> {
        if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
            return Err(StoreError::Device("no device in this database".into()).into());
        }
        let conn = store::open(path, key)?;
        let row = store::read_device(&conn)?
            .ok_or_else(|| StoreError::Device("no device in this database".into()))?;
        if row.did != pds.did().as_str() {
            return Err(StoreError::Device(format!(
                "database is for {}, session for {}",
                row.did,
                pds.did()
            ))
            .into());
        }
        let device = Self::from_parts(conn, store::new_crypto()?, row, pds, ds, config)?;
        {
            // A database from before device keys gets one (or at the next sync).
            let mut st = device.inner.state.lock().await;
            device.bind_device(&mut st).await?;
        }
        // What expired while the device was off goes first (§11.18).
        device.expire_messages().await?;
        Ok(device)
    }

    fn from_parts(
        conn: Connection,
        crypto: store::Crypto,
        row: DeviceRow,
        pds: P,
        ds: D,
        config: DeviceConfig,
    ) -> Result<Self, Error> {
        let did = Did::new(row.did.clone()).map_err(|_| StoreError::Corrupt("did"))?;
        let inbox = SigningKey::from_bytes(&row.inbox_key);
        let device_id = row.device_id.clone();
        let (events, _) = broadcast::channel(4096);
        let clock = Arc::clone(&config.clock);
        Ok(Self {
            inner: Arc::new(Inner {
                pds,
                ds,
                config,
                state: Mutex::new(State {
                    conn,
                    crypto,
                    row,
                    did: did.clone(),
                    groups: HashMap::new(),
                    last_device_check: None,
                    documents: Default::default(),
                    backoffs: Default::default(),
                    inbox,
                    mailbox_keys: HashMap::new(),
                    clock,
                }),
                events,
                did,
                device_id,
                ds_limits: Default::default(),
            }),
        })
    }

    /// The account.
    pub fn did(&self) -> &Did {
        &self.inner.did
    }

    /// This device's opaque id (as published in its KeyPackage records).
    pub fn device_id(&self) -> &str {
        &self.inner.device_id
    }

    /// The PDS session.
    pub fn pds(&self) -> &P {
        &self.inner.pds
    }

    /// A stream of this device's events (each subscriber sees events from now on).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub(crate) fn emit(&self, events: &[Event]) {
        for e in events {
            let _ = self.inner.events.send(e.clone());
        }
    }

    /// This device's inbox.
    pub async fn inbox(&self) -> (Did, MailboxId) {
        let st = self.inner.state.lock().await;
        (
            Did::new(st.row.inbox_ds.clone()).unwrap_or_else(|_| st.did.clone()),
            MailboxId::from_bytes(st.row.inbox_mailbox),
        )
    }
}
