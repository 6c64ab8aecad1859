//! Settings of the delivery service's HTTP shell, and the clock it reads.

use std::sync::Arc;
use std::time::Duration;

use atmls_ds::DsConfig;
use atmls_identity::Did;
use atmls_identity::service_auth::ReplayStore;
use atmls_xrpc::Outbound;

/// The fragment of the DS's service entry, and of the audience it accepts.
pub const SERVICE_FRAGMENT: &str = "chat_mls_ds";

/// The service type of the `#chat_mls_ds` entry in the DS's DID document.
pub const SERVICE_TYPE: &str = "ChatMlsDeliveryService";

pub use atmls_syntax::{Clock, ManualClock, SystemClock};

/// Settings of [`KeyPackageFetcher`](super::KeyPackageFetcher) (`getKeyPackages`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyPackageConfig {
    /// Most HTTP requests to PDSes in flight for one `getKeyPackages` call. Default 16.
    pub concurrency: usize,
    /// Time allowed for one HTTP request to a PDS, connect to last byte. Default 5 s.
    pub request_timeout: Duration,
    /// Time allowed for everything about one DID (resolution included). Default 10 s.
    pub did_timeout: Duration,
    /// How long a DID's answer (`ok`, `noDeclaration`, `notFound`) is cached; `unreachable`
    /// is never cached. Default 60 s.
    pub cache_ttl: Duration,
    /// Most DIDs cached; the oldest entry is evicted first. Default 10,000.
    pub cache_capacity: usize,
    /// Largest `listRecords` body read. Default 1 MiB.
    pub max_list_bytes: usize,
    /// Largest proof (CAR) read, the lexicon's `provenRecord.proof` limit. Default 65,536.
    pub max_proof_bytes: usize,
    /// Allow plain `http://` PDS endpoints (development and tests). Default off: only
    /// `https://` endpoints are fetched.
    pub allow_http: bool,
    /// Most bytes of one answer. Results past it are answered `unreachable` ("ask for
    /// this DID alone"); the first DID's result is always whole (one DID's result is
    /// bounded by 101 records of at most `max_proof_bytes`). Default 16 MiB.
    pub max_response_bytes: usize,
    /// Most bytes of encoded answers the cache holds (besides `cache_capacity` DIDs);
    /// the oldest are evicted first. Default 64 MiB.
    pub cache_max_bytes: usize,
    /// Most DIDs one source (client address, IPv6 /64) may have looked up at PDSes per
    /// minute; cached answers are free. A request needing more is refused whole with
    /// `RateLimitExceeded`. Default 600.
    pub lookups_per_source_per_minute: u64,
}

impl Default for KeyPackageConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            request_timeout: Duration::from_secs(5),
            did_timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
            max_list_bytes: 1024 * 1024,
            max_proof_bytes: 65_536,
            allow_http: false,
            max_response_bytes: 16 * 1024 * 1024,
            cache_max_bytes: 64 * 1024 * 1024,
            lookups_per_source_per_minute: 600,
        }
    }
}

impl KeyPackageConfig {
    /// Sets [`KeyPackageConfig::concurrency`] (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets [`KeyPackageConfig::request_timeout`].
    #[must_use]
    pub fn with_request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Sets [`KeyPackageConfig::did_timeout`].
    #[must_use]
    pub fn with_did_timeout(mut self, d: Duration) -> Self {
        self.did_timeout = d;
        self
    }

    /// Sets [`KeyPackageConfig::cache_ttl`].
    #[must_use]
    pub fn with_cache_ttl(mut self, d: Duration) -> Self {
        self.cache_ttl = d;
        self
    }

    /// Sets [`KeyPackageConfig::cache_capacity`].
    #[must_use]
    pub fn with_cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n;
        self
    }

    /// Sets [`KeyPackageConfig::allow_http`].
    #[must_use]
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sets [`KeyPackageConfig::max_response_bytes`].
    #[must_use]
    pub fn with_max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// Sets [`KeyPackageConfig::cache_max_bytes`].
    #[must_use]
    pub fn with_cache_max_bytes(mut self, n: usize) -> Self {
        self.cache_max_bytes = n;
        self
    }

    /// Sets [`KeyPackageConfig::lookups_per_source_per_minute`].
    #[must_use]
    pub fn with_lookups_per_source_per_minute(mut self, n: u64) -> Self {
        self.lookups_per_source_per_minute = n;
        self
    }
}

/// Settings of a [`DsService`](super::DsService): who it is, the core's limits, and how
/// the shell batches writes, streams and cleans up.
///
/// ```
/// use std::time::Duration;
/// use atmls_identity::Did;
/// use atmls_ds_xrpc::DsServiceConfig;
///
/// let config = DsServiceConfig::new(Did::new("did:web:ds.example.com")?, "https://ds.example.com")
///     .with_heartbeat(Duration::from_secs(10));
/// assert_eq!(config.audience(), "did:web:ds.example.com#chat_mls_ds");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DsServiceConfig {
    did: Did,
    base_url: String,
    core: DsConfig,
    clock: Arc<dyn Clock>,
    heartbeat: Duration,
    retention_interval: Duration,
    startup_guard: bool,
    live_buffer: usize,
    queue: usize,
    max_group: usize,
    key_packages: KeyPackageConfig,
    outbound: Option<Outbound>,
    account_pds: Vec<String>,
    shares: Shares,
    replay_store: Option<SharedReplayStore>,
}

/// A service-auth replay store given by the caller (e.g. one shared by several processes).
#[derive(Clone)]
struct SharedReplayStore(Arc<dyn ReplayStore>);

impl std::fmt::Debug for SharedReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayStore")
    }
}

/// Per-principal shares of the shell's shared resources ([`DsServiceConfig`]).
#[derive(Debug, Clone, Copy)]
struct Shares {
    subscriptions_per_source: usize,
    subscribers_per_mailbox: usize,
    welcomes_per_source: u64,
    welcome_bytes_per_source: u64,
    inbox_share_divisor: u64,
    tokens_per_account: usize,
}

impl DsServiceConfig {
    /// A DS with DID `did` (usually `did:web:<host>`) reachable at `base_url` (e.g.
    /// `https://ds.example.com`, no trailing slash). Defaults: [`DsConfig::default`], the
    /// system clock, heartbeats every 30 s, retention every 60 s, the startup replay guard
    /// on, 1024 live batches buffered per subscription, a write queue of 4096 requests,
    /// at most 256 requests per group commit, and the per-principal shares: 100 open
    /// subscriptions per source, 1000 subscribers per mailbox, 120 welcomes and 32 MiB
    /// of welcomes per source per minute, 1000 live service-auth tokens per account.
    pub fn new(did: Did, base_url: impl Into<String>) -> Self {
        Self {
            did,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            core: DsConfig::default(),
            clock: Arc::new(SystemClock),
            heartbeat: Duration::from_secs(30),
            retention_interval: Duration::from_secs(60),
            startup_guard: true,
            live_buffer: 1024,
            queue: 4096,
            max_group: 256,
            key_packages: KeyPackageConfig::default(),
            outbound: None,
            replay_store: None,
            account_pds: Vec::new(),
            shares: Shares {
                subscriptions_per_source: 100,
                subscribers_per_mailbox: 1000,
                welcomes_per_source: 120,
                welcome_bytes_per_source: 32 * 1024 * 1024,
                inbox_share_divisor: 4,
                tokens_per_account: 1000,
            },
        }
    }

    /// Most subscriptions open at once from one source (client address, IPv6 /64); more
    /// are refused with `RateLimitExceeded`.
    pub fn subscriptions_per_source(&self) -> usize {
        self.shares.subscriptions_per_source
    }

    /// Sets [`Self::subscriptions_per_source`].
    #[must_use]
    pub fn with_subscriptions_per_source(mut self, n: usize) -> Self {
        self.shares.subscriptions_per_source = n;
        self
    }

    /// Most subscriptions open at once to one mailbox (counted once authorised); more are
    /// refused with `RateLimitExceeded`.
    pub fn subscribers_per_mailbox(&self) -> usize {
        self.shares.subscribers_per_mailbox
    }

    /// Sets [`Self::subscribers_per_mailbox`].
    #[must_use]
    pub fn with_subscribers_per_mailbox(mut self, n: usize) -> Self {
        self.shares.subscribers_per_mailbox = n;
        self
    }

    /// Most `sendWelcome` calls one source may make per minute (whatever the inbox;
    /// sending a welcome needs no identity); more get `RateLimitExceeded`.
    pub fn welcomes_per_source_per_minute(&self) -> u64 {
        self.shares.welcomes_per_source
    }

    /// Most welcome payload bytes one source may send per minute.
    pub fn welcome_bytes_per_source_per_minute(&self) -> u64 {
        self.shares.welcome_bytes_per_source
    }

    /// Sets [`Self::welcomes_per_source_per_minute`] and
    /// [`Self::welcome_bytes_per_source_per_minute`].
    #[must_use]
    pub fn with_welcomes_per_source_per_minute(mut self, count: u64, bytes: u64) -> Self {
        self.shares.welcomes_per_source = count;
        self.shares.welcome_bytes_per_source = bytes;
        self
    }

    /// One source may take at most `1/n` of one inbox's deposit allowance (count and
    /// bytes per minute, `DsConfig::inbox_deposits_per_minute` and
    /// `inbox_deposit_bytes_per_minute`), so that a stranger flooding an inbox cannot
    /// keep real invitations out; default 4.
    pub fn inbox_share_divisor(&self) -> u64 {
        self.shares.inbox_share_divisor
    }

    /// Sets [`Self::inbox_share_divisor`] (at least 1: 1 lets one source take it all).
    #[must_use]
    pub fn with_inbox_share_divisor(mut self, n: u64) -> Self {
        self.shares.inbox_share_divisor = n.max(1);
        self
    }

    /// Most unexpired service-auth tokens of one account the replay store holds (of
    /// 100,000); an account over it gets `RateLimitExceeded` from `createMailbox`.
    pub fn tokens_per_account(&self) -> usize {
        self.shares.tokens_per_account
    }

    /// Sets [`Self::tokens_per_account`] (at least 1).
    #[must_use]
    pub fn with_tokens_per_account(mut self, n: usize) -> Self {
        self.shares.tokens_per_account = n.max(1);
        self
    }

    /// The PDS endpoints whose accounts may create mailboxes; empty (the default) means
    /// any account with a valid service-auth token.
    pub fn account_pds(&self) -> &[String] {
        &self.account_pds
    }

    /// Serves only accounts whose DID document names one of `endpoints` as its PDS
    /// (`#atproto_pds`): an operator's DS attached to its own PDS. Other accounts get
    /// `403 AccountNotServed` from `createMailbox`; every other method is keyed by
    /// mailbox, not by account, and is unaffected.
    ///
    /// URLs are compared in a normal form: scheme and host lowercased, default ports
    /// (`:80`, `:443`) and trailing slashes dropped, and `localhost`, `127.0.0.1` and
    /// `[::1]` taken as the same host. An endpoint that is not an `http(s)://` URL with
    /// a host is kept as given (without trailing slashes) and matches only itself.
    #[must_use]
    pub fn with_account_pds(mut self, endpoints: Vec<String>) -> Self {
        self.account_pds = endpoints.iter().map(|e| normal_endpoint(e)).collect();
        self
    }

    /// The DS's DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// Its base URL (the `serviceEndpoint` of `#chat_mls_ds`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The audience service-auth tokens name: `<did>#chat_mls_ds` (the bare DID is
    /// accepted too).
    pub fn audience(&self) -> String {
        format!("{}#{SERVICE_FRAGMENT}", self.did)
    }

    /// The core's limits and windows.
    pub fn core(&self) -> &DsConfig {
        &self.core
    }

    /// Sets the core's limits and windows.
    #[must_use]
    pub fn with_core(mut self, core: DsConfig) -> Self {
        self.core = core;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Sets the clock (tests use a [`ManualClock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Interval of `#heartbeat` frames on idle subscriptions; keys are re-checked at each.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// Sets [`Self::heartbeat`] (at least 10 ms).
    #[must_use]
    pub fn with_heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d.max(Duration::from_millis(10));
        self
    }

    /// How often retention (`expire`) runs.
    pub fn retention_interval(&self) -> Duration {
        self.retention_interval
    }

    /// Sets [`Self::retention_interval`] (at least 10 ms).
    #[must_use]
    pub fn with_retention_interval(mut self, d: Duration) -> Self {
        self.retention_interval = d.max(Duration::from_millis(10));
        self
    }

    /// Whether mailbox-key tokens dated earlier than `start + request_max_age` are
    /// refused (503 `ServiceUnavailable`) after a start without a recorded clean stop,
    /// because the replay cache of the last run did not survive it (spec §10.2.1). After
    /// a clean stop the saved cache is restored and the guard never applies.
    pub fn startup_guard(&self) -> bool {
        self.startup_guard
    }

    /// Sets [`Self::startup_guard`]. Turn it off only for a store that does not survive
    /// the process (memory).
    #[must_use]
    pub fn with_startup_guard(mut self, on: bool) -> Self {
        self.startup_guard = on;
        self
    }

    /// Live batches buffered per subscription while it sends its backlog or waits on a
    /// slow socket; past it the subscriber is cut off (`ConsumerTooSlow`).
    pub fn live_buffer(&self) -> usize {
        self.live_buffer
    }

    /// Sets [`Self::live_buffer`] (at least 1).
    #[must_use]
    pub fn with_live_buffer(mut self, n: usize) -> Self {
        self.live_buffer = n.max(1);
        self
    }

    /// Requests queued for the writer; further requests wait for room.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Most requests one group commit takes.
    pub fn max_group(&self) -> usize {
        self.max_group
    }

    /// Sets [`Self::max_group`] (at least 1).
    #[must_use]
    pub fn with_max_group(mut self, n: usize) -> Self {
        self.max_group = n.max(1);
        self
    }

    /// Settings of `getKeyPackages`.
    pub fn key_packages(&self) -> &KeyPackageConfig {
        &self.key_packages
    }

    /// Sets the settings of `getKeyPackages`.
    #[must_use]
    pub fn with_key_packages(mut self, config: KeyPackageConfig) -> Self {
        self.key_packages = config;
        self
    }

    /// The client `getKeyPackages` fetches PDSes through, if one was given: the process's
    /// one [`Outbound`], shared with every other shell that fetches.
    pub fn outbound(&self) -> Option<&Outbound> {
        self.outbound.as_ref()
    }

    /// Fetches through `outbound` (default: a client of the DS's own, public addresses
    /// only, loopback too when [`KeyPackageConfig::allow_http`] is on, connections
    /// bounded by [`KeyPackageConfig::request_timeout`]).
    #[must_use]
    pub fn with_outbound(mut self, outbound: Outbound) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// The service-auth replay store given with [`Self::with_replay_store`], if any.
    pub fn replay_store(&self) -> Option<Arc<dyn ReplayStore>> {
        self.replay_store.as_ref().map(|s| s.0.clone())
    }

    /// Records service-auth token ids (`jti`) in `store` (default: in memory, 100,000
    /// tokens, [`Self::tokens_per_account`] per issuer). Several DS processes over one
    /// database give each the same shared store, so that a token one accepted is a
    /// replay at the others.
    #[must_use]
    pub fn with_replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay_store = Some(SharedReplayStore(store));
        self
    }
}

/// `url` in the normal form `--only-pds-accounts` compares (see
/// [`DsServiceConfig::with_account_pds`]); as given, without trailing slashes, if it is
/// not an `http(s)://` URL with a host.
pub(crate) fn normal_endpoint(url: &str) -> String {
    super::endpoint::PdsEndpoint::parse(url).map_or_else(
        || url.trim_end_matches('/').to_owned(),
        |e| e.as_str().to_owned(),
    )
}
