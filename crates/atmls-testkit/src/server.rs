//! The one way tests (and the load generator) start atmls servers: [`TestServer::builder`]
//! picks the shells (the embedded composition, the DS alone, the host alone), where the
//! state lives (memory, a data directory, or any DS [`Store`]), the clock (a
//! [`ManualClock`] by default), limits and shares, and the outbound address policy
//! (loopback allowed by default: every peer of a test is on this machine). Always on
//! `127.0.0.1:0`.
//!
//! ```no_run
//! use atmls_testkit::server::TestServer;
//!
//! # async fn run() {
//! let both = TestServer::builder().start().await;           // host + DS, in memory
//! let ds = TestServer::builder().ds_only().start().await;   // the DS, a dev PLC beside it
//! let account = ds.plc().account("https://pds.example.com");
//! ds.clock().advance(std::time::Duration::from_secs(60));
//! # let _ = (both, account);
//! # }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atmls_crypto::{Algorithm, SigningKey};
use atmls_ds::{DsConfig, MemoryStore, SqliteStore, Store};
use atmls_ds_xrpc::{
    Clock, DsService, DsServiceConfig, KeyPackageConfig, ManualClock, SystemClock,
};
use atmls_host_xrpc::{Host, HostConfig};
use atmls_identity::plc::GenesisBuilder;
use atmls_identity::plc::directory::{Directory, DirectoryService};
use atmls_identity::resolve::{CacheConfig, CachingResolver, HttpResolver, ResolverConfig};
use atmls_identity::{Did, DidResolver};
use atmls_server::embedded::{DS_DATABASE, DsShares, Embedded, EmbeddedConfig};
use atmls_xrpc::{AddressPolicy, Outbound, Server, ServerConfig, ServerHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The DS's DID in DS-only mode.
pub const DS_ONLY_DID: &str = "did:web:127.0.0.1";

/// A setting of the DS service config, applied last (DS-only mode).
type DsTune = Box<dyn FnOnce(DsServiceConfig) -> DsServiceConfig + Send>;
/// A setting of the host config, applied last (host-only mode).
type HostTune = Box<dyn FnOnce(HostConfig) -> HostConfig + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Embedded,
    DsOnly,
    HostOnly,
}

/// What to start; see the [module](self) documentation.
#[must_use]
pub struct ServerBuilder {
    mode: Mode,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    system_clock: bool,
    clock: ManualClock,
    core: DsConfig,
    shares: Option<DsShares>,
    key_packages: KeyPackageConfig,
    ds: Option<DsTune>,
    host: Option<HostTune>,
    server: ServerConfig,
    loopback: bool,
    plc: bool,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("mode", &self.mode)
            .field("data_dir", &self.data_dir)
            .field("loopback", &self.loopback)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    fn new() -> Self {
        Self {
            mode: Mode::Embedded,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            system_clock: false,
            clock: ManualClock::starting_now(),
            core: DsConfig::default(),
            shares: None,
            key_packages: KeyPackageConfig::default(),
            ds: None,
            host: None,
            server: ServerConfig::default(),
            loopback: true,
            plc: true,
        }
    }

    /// The host, its PLC directory and the DS on one listener, composed by
    /// [`atmls_server::embedded`] (the default).
    pub fn embedded(mut self) -> Self {
        self.mode = Mode::Embedded;
        self
    }

    /// The DS alone, resolving account DIDs in a development PLC directory on another
    /// loopback port ([`TestServer::plc`]; see [`Self::without_plc`]). Its DID is
    /// [`DS_ONLY_DID`] and its startup guard is off.
    pub fn ds_only(mut self) -> Self {
        self.mode = Mode::DsOnly;
        self
    }

    /// The host alone (its PLC directory included).
    pub fn host_only(mut self) -> Self {
        self.mode = Mode::HostOnly;
        self
    }

    /// Listen on `addr` (default `127.0.0.1:0`, a free port): a test restarting a server
    /// where its clients expect it.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// State in SQLite files in `dir` instead of memory (`ds.sqlite` for the DS, as
    /// [`atmls_server::embedded`] names it; the host's files beside it).
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The clock the services read, shared with the test (default: a manual clock
    /// standing at the system's time at build).
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = clock;
        self.system_clock = false;
        self
    }

    /// The system clock instead of a manual one (a server in its own process).
    pub fn system_clock(mut self) -> Self {
        self.system_clock = true;
        self
    }

    /// The DS core's rules: limits, retention, request age (default
    /// [`DsConfig::default`]).
    pub fn core(mut self, core: DsConfig) -> Self {
        self.core = core;
        self
    }

    /// The DS service's per-principal shares (default: [`DsServiceConfig::new`]'s).
    pub fn shares(mut self, shares: DsShares) -> Self {
        self.shares = Some(shares);
        self
    }

    /// Every per-principal share of the DS service unbounded: for load from one address
    /// with a handful of accounts, which would otherwise measure the shares.
    pub fn unlimited_shares(self) -> Self {
        let mut shares = DsShares::default();
        shares.subscriptions_per_source = Some(usize::MAX);
        shares.subscribers_per_mailbox = Some(usize::MAX);
        shares.welcomes_per_source_per_minute = Some(u64::MAX);
        shares.welcome_bytes_per_source_per_minute = Some(u64::MAX);
        shares.tokens_per_account = Some(usize::MAX);
        self.shares(shares)
    }

    /// The settings of the DS's `getKeyPackages` (default [`KeyPackageConfig::default`]);
    /// plain-http PDSes are fetched under the development allowance (the default, see
    /// [`Self::public_only`]).
    pub fn key_packages(mut self, config: KeyPackageConfig) -> Self {
        self.key_packages = config;
        self
    }

    /// Any other DS service setting, applied after the others (DS-only mode; the
    /// embedded composition sets its DS up itself).
    pub fn ds(
        mut self,
        tune: impl FnOnce(DsServiceConfig) -> DsServiceConfig + Send + 'static,
    ) -> Self {
        self.ds = Some(Box::new(tune));
        self
    }

    /// Any other host setting, applied after the others (host-only mode).
    pub fn host(mut self, tune: impl FnOnce(HostConfig) -> HostConfig + Send + 'static) -> Self {
        self.host = Some(Box::new(tune));
        self
    }

    /// Limits and timeouts of the HTTP server (default [`ServerConfig::default`]).
    pub fn server(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }

    /// Outbound fetches (proxy, `getKeyPackages`, DID resolution) to public addresses
    /// only, as in production; by default the development allowance admits loopback.
    pub fn public_only(mut self) -> Self {
        self.loopback = false;
        self
    }

    /// DS-only mode without the development PLC directory: DIDs resolve nowhere, so no
    /// mailbox can be created over HTTP (tests that write the store directly).
    pub fn without_plc(mut self) -> Self {
        self.plc = false;
        self
    }

    /// Starts over a new [`MemoryStore`] or, with [`Self::data_dir`], the SQLite file
    /// there (the startup guard on when that file existed). Panics on failure: this is
    /// test support.
    pub async fn start(self) -> TestServer {
        self.try_start().await.expect("the test server starts")
    }

    /// As [`Self::start`], with the error instead of a panic.
    pub async fn try_start(self) -> Result<TestServer, StartError> {
        match (self.mode, self.data_dir.clone()) {
            (Mode::Embedded, _) => self.start_embedded().await,
            (Mode::HostOnly, _) => self.start_host().await,
            (Mode::DsOnly, None) => self.try_start_on(MemoryStore::new(), false).await,
            (Mode::DsOnly, Some(dir)) => {
                atmls_fs::private_dir(&dir).map_err(|e| StartError(e.to_string()))?;
                let path = dir.join(DS_DATABASE);
                let restarted = path.exists();
                let store = SqliteStore::open(&path).map_err(|e| StartError(e.to_string()))?;
                self.try_start_on(store, restarted).await
            }
        }
    }

    /// The DS alone over `store` (any backend: memory, SQLite, PostgreSQL), startup guard
    /// off.
    pub async fn start_on<S: Store + Send + 'static>(self, store: S) -> TestServer {
        let mut builder = self;
        builder.mode = Mode::DsOnly;
        builder
            .try_start_on(store, false)
            .await
            .expect("the test server starts")
    }

    fn shared_clock(&self) -> Arc<dyn Clock> {
        if self.system_clock {
            Arc::new(SystemClock)
        } else {
            Arc::new(self.clock.clone())
        }
    }

    fn outbound(&self) -> Outbound {
        Outbound::with_policy(AddressPolicy::public_only().with_loopback(self.loopback))
    }

    async fn start_embedded(self) -> Result<TestServer, StartError> {
        assert!(
            self.ds.is_none() && self.host.is_none(),
            "the embedded composition configures its shells itself: use ds_only() or host_only() to tune one"
        );
        let mut config = match &self.data_dir {
            Some(dir) => EmbeddedConfig::new(dir),
            None => EmbeddedConfig::in_memory(),
        }
        .with_listen(self.listen)
        .with_clock(self.shared_clock())
        .with_core(self.core.clone())
        .with_server(self.server.clone())
        .with_development_loopback(self.loopback)
        .with_key_packages(self.key_packages.clone());
        if let Some(shares) = self.shares {
            config = config.with_ds_shares(shares);
        }
        let embedded = Embedded::start(config)
            .await
            .map_err(|e| StartError(e.to_string()))?;
        Ok(TestServer {
            addr: embedded.local_addr(),
            url: embedded.url().to_owned(),
            clock: self.clock,
            ds_did: Some(embedded.ds_did().clone()),
            ds: Some(embedded.ds().clone()),
            host: Some(embedded.host().clone()),
            plc: None,
            running: Running::Embedded(Some(embedded)),
        })
    }

    async fn start_host(self) -> Result<TestServer, StartError> {
        let (listener, addr, url) = bind(self.listen).await?;
        let mut config = HostConfig::new(&url)
            .with_clock(self.shared_clock())
            .with_outbound(self.outbound());
        if let Some(dir) = &self.data_dir {
            config = config.with_data_dir(dir);
        }
        if let Some(tune) = self.host {
            config = tune(config);
        }
        let host = Host::open(config).map_err(|e| StartError(e.to_string()))?;
        let server = Server::from_listener(listener, self.server, host.router())
            .map_err(|e| StartError(e.to_string()))?
            .spawn();
        Ok(TestServer {
            addr,
            url,
            clock: self.clock,
            ds_did: None,
            ds: None,
            host: Some(host),
            plc: None,
            running: Running::Parts(Some(server)),
        })
    }

    async fn try_start_on<S: Store + Send + 'static>(
        self,
        store: S,
        restarted: bool,
    ) -> Result<TestServer, StartError> {
        let plc = if self.plc {
            Some(Plc::start().await?)
        } else {
            None
        };
        let resolver: Arc<dyn DidResolver> = match &plc {
            Some(plc) => plc.resolver(),
            None => Arc::new(HttpResolver::new(ResolverConfig::default())),
        };
        let (listener, addr, url) = bind(self.listen).await?;
        let did = Did::new(DS_ONLY_DID).map_err(|e| StartError(e.to_string()))?;
        let mut config = self
            .shares
            .unwrap_or_default()
            .apply(DsServiceConfig::new(did.clone(), &url))
            .with_core(self.core.clone())
            .with_clock(self.shared_clock())
            .with_startup_guard(restarted)
            .with_key_packages(self.key_packages.clone().with_allow_http(self.loopback))
            .with_outbound(self.outbound());
        if let Some(tune) = self.ds {
            config = tune(config);
        }
        let ds =
            DsService::start(store, config, resolver).map_err(|e| StartError(e.to_string()))?;
        let router = ds.router().map_err(|e| StartError(e.to_string()))?;
        let server = Server::from_listener(listener, self.server, router)
            .map_err(|e| StartError(e.to_string()))?
            .spawn();
        Ok(TestServer {
            addr,
            url,
            clock: self.clock,
            ds_did: Some(did),
            ds: Some(ds),
            host: None,
            plc,
            running: Running::Parts(Some(server)),
        })
    }
}

/// A listener on `addr` (port 0: a free one) and the URL it is reached at.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr, String), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(e.to_string()))?;
    Ok((listener, addr, format!("http://{addr}")))
}

/// A test server did not start.
#[derive(Debug, thiserror::Error)]
#[error("test server: {0}")]
pub struct StartError(String);

enum Running {
    Embedded(Option<Embedded>),
    Parts(Option<ServerHandle>),
}

/// A running server; dropping it aborts the server, [`Self::shutdown`] stops it cleanly
/// (and the DS writer commits what it holds).
pub struct TestServer {
    addr: SocketAddr,
    url: String,
    clock: ManualClock,
    ds_did: Option<Did>,
    ds: Option<DsService>,
    host: Option<Host>,
    plc: Option<Plc>,
    running: Running,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("ds", &self.ds.is_some())
            .field("host", &self.host.is_some())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// The defaults: embedded, in memory, a manual clock, loopback allowed.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The manual clock the services read (unless started on the system clock).
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The delivery service; panics in host-only mode.
    pub fn ds(&self) -> &DsService {
        self.ds.as_ref().expect("a DS was started")
    }

    /// The DS's DID; panics in host-only mode.
    pub fn ds_did(&self) -> &Did {
        self.ds_did.as_ref().expect("a DS was started")
    }

    /// The host; panics in DS-only mode.
    pub fn host(&self) -> &Host {
        self.host.as_ref().expect("a host was started")
    }

    /// The development PLC directory beside a DS-only server; panics otherwise (the
    /// host serves its own directory at [`Self::url`]).
    pub fn plc(&self) -> &Plc {
        self.plc
            .as_ref()
            .expect("a DS-only server with its PLC directory")
    }

    /// Stops the server gracefully, then the DS; panics if that fails or takes longer
    /// than 20 s.
    pub async fn shutdown(mut self) {
        let stopping = async {
            match &mut self.running {
                Running::Embedded(e) => {
                    if let Some(e) = e.take() {
                        e.shutdown().await.expect("clean shutdown");
                    }
                }
                Running::Parts(server) => {
                    if let Some(server) = server.take() {
                        server.shutdown().await.expect("clean shutdown");
                    }
                    if let Some(ds) = &self.ds {
                        ds.shutdown().await;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), stopping)
            .await
            .expect("shutdown in time");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Running::Parts(Some(server)) = &mut self.running {
            server.start_shutdown();
        }
    }
}

/// A development PLC directory on loopback, for a DS-only server to resolve accounts in.
pub struct Plc {
    addr: SocketAddr,
    url: String,
    directory: Arc<Directory>,
    task: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Plc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plc")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for Plc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An account registered in a [`Plc`]: its DID and the key its service-auth tokens are
/// signed with.
#[derive(Debug)]
pub struct Account {
    /// The did:plc.
    pub did: String,
    /// The account's signing key (`#atproto`).
    pub key: SigningKey,
}

impl Plc {
    /// A new, empty directory on a free loopback port.
    pub async fn start() -> Result<Plc, StartError> {
        let (listener, addr, url) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let directory = Arc::new(Directory::in_memory());
        let task = tokio::spawn(DirectoryService::new(directory.clone()).serve(listener));
        Ok(Plc {
            addr,
            url,
            directory,
            task,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory itself.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Registers a new did:plc whose PDS is `pds`.
    pub fn account(&self, pds: &str) -> Account {
        let rotation = SigningKey::generate(Algorithm::Es256k);
        let key = SigningKey::generate(Algorithm::Es256k);
        let op = GenesisBuilder::new(&rotation.public_key(), &key.public_key())
            .pds(pds)
            .sign(&rotation);
        let did = op.did().expect("genesis did");
        self.directory
            .submit(&did, op, SystemClock.now())
            .expect("submit genesis");
        Account {
            did: did.as_str().to_owned(),
            key,
        }
    }

    /// A cached resolver of this directory (plain http on loopback).
    pub fn resolver(&self) -> Arc<dyn DidResolver> {
        let http = HttpResolver::new(
            ResolverConfig::default()
                .with_plc_url(self.url.clone())
                .allow_loopback_http(true)
                .with_timeout(Duration::from_secs(5)),
        );
        Arc::new(CachingResolver::new(http, CacheConfig::default()))
    }
}
