//! The embedded default in one call: the PDS-compatible host, the development PLC
//! directory and the delivery service on one listener, with SQLite files in a data
//! directory (or everything in memory). `atmls serve` and `atmls demo` run it; tests
//! start it on `127.0.0.1:0` (through `atmls-testkit`).
//!
//! ```no_run
//! use atmls_server::embedded::{Embedded, EmbeddedConfig};
//!
//! # async fn run() -> Result<(), atmls_server::embedded::EmbeddedError> {
//! let services = Embedded::start(EmbeddedConfig::new("/tmp/atmls-data")).await?;
//! println!("PDS and DS at {}, DS DID {}", services.url(), services.ds_did());
//! services.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atmls_ds::{DsConfig, MemoryStore, SqliteStore};
use atmls_host::{Clock, HostConfig as CoreConfig, LocalResolver, SystemClock};
use atmls_identity::resolve::{DidResolver, HttpResolver, ResolverConfig};
use atmls_lexicon::syntax::Did;

use atmls_ds_xrpc::{DsError, DsService, DsServiceConfig, KeyPackageConfig};
use atmls_host_xrpc::{Host, HostConfig, HostError};
use atmls_xrpc::{
    AddressPolicy, Outbound, ServeError, Server, ServerConfig, ServerHandle, StaticDir, StaticError,
};

/// The delivery service's database in the data directory.
pub const DS_DATABASE: &str = "ds.sqlite";

/// Where the browser device's page is served when a web folder is given.
pub const WEB_PATH: &str = "/web";

/// What to start.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    public_url: Option<String>,
    handle_domains: Vec<String>,
    ds_did: Option<String>,
    plc_url: Option<String>,
    core: DsConfig,
    server: ServerConfig,
    development_loopback: bool,
    ds_shares: Option<DsShares>,
    key_packages: KeyPackageConfig,
    web_dir: Option<PathBuf>,
}

/// The DS service's per-principal shares an operator may set (`None`: the default);
/// see [`DsServiceConfig`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DsShares {
    /// [`DsServiceConfig::with_subscriptions_per_source`].
    pub subscriptions_per_source: Option<usize>,
    /// [`DsServiceConfig::with_subscribers_per_mailbox`].
    pub subscribers_per_mailbox: Option<usize>,
    /// [`DsServiceConfig::with_welcomes_per_source_per_minute`]: calls.
    pub welcomes_per_source_per_minute: Option<u64>,
    /// [`DsServiceConfig::with_welcomes_per_source_per_minute`]: bytes.
    pub welcome_bytes_per_source_per_minute: Option<u64>,
    /// [`DsServiceConfig::with_inbox_share_divisor`].
    pub inbox_share_divisor: Option<u64>,
    /// [`DsServiceConfig::with_tokens_per_account`].
    pub tokens_per_account: Option<usize>,
}

impl DsShares {
    /// `config` with every share that is set.
    pub fn apply(&self, mut config: DsServiceConfig) -> DsServiceConfig {
        if let Some(n) = self.subscriptions_per_source {
            config = config.with_subscriptions_per_source(n);
        }
        if let Some(n) = self.subscribers_per_mailbox {
            config = config.with_subscribers_per_mailbox(n);
        }
        if self.welcomes_per_source_per_minute.is_some()
            || self.welcome_bytes_per_source_per_minute.is_some()
        {
            let count = self
                .welcomes_per_source_per_minute
                .unwrap_or(config.welcomes_per_source_per_minute());
            let bytes = self
                .welcome_bytes_per_source_per_minute
                .unwrap_or(config.welcome_bytes_per_source_per_minute());
            config = config.with_welcomes_per_source_per_minute(count, bytes);
        }
        if let Some(n) = self.inbox_share_divisor {
            config = config.with_inbox_share_divisor(n);
        }
        if let Some(n) = self.tokens_per_account {
            config = config.with_tokens_per_account(n);
        }
        config
    }
}

impl EmbeddedConfig {
    /// Everything on `127.0.0.1:0` (a free port), files in `data_dir`, handles under
    /// `.test`, the DS at `did:web` of the listening address.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: Some(data_dir.into()),
            clock: Arc::new(SystemClock),
            public_url: None,
            handle_domains: vec![".test".to_owned()],
            ds_did: None,
            plc_url: None,
            core: DsConfig::default(),
            server: ServerConfig::default(),
            development_loopback: false,
            ds_shares: None,
            key_packages: KeyPackageConfig::default(),
            web_dir: None,
        }
    }

    /// As [`Self::new`], with nothing on disk: the host's databases and the DS store in
    /// memory, gone when the services stop (tests, demonstrations).
    pub fn in_memory() -> Self {
        Self {
            data_dir: None,
            ..Self::new(PathBuf::new())
        }
    }

    /// The settings of the DS's `getKeyPackages` (default [`KeyPackageConfig::default`]);
    /// whether plain-http PDSes are fetched follows the development allowance
    /// ([`Self::with_development_loopback`]) whatever they say.
    #[must_use]
    pub fn with_key_packages(mut self, config: KeyPackageConfig) -> Self {
        self.key_packages = config;
        self
    }

    /// The clock the host and the DS read (default: the system clock); tests pass a
    /// manual one.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The DS service's per-principal shares (default: [`DsServiceConfig::new`]'s).
    #[must_use]
    pub fn with_ds_shares(mut self, shares: DsShares) -> Self {
        self.ds_shares = Some(shares);
        self
    }

    /// The development allowance (default off): outbound fetches (DID and did:web
    /// resolution, `atproto-proxy` forwarding) may reach loopback addresses, and did:web
    /// documents on `localhost` / `127.0.0.1` are fetched over plain http. A stack whose
    /// services all run on this machine needs it; private, link-local and metadata
    /// addresses stay refused either way.
    #[must_use]
    pub fn with_development_loopback(mut self, allow: bool) -> Self {
        self.development_loopback = allow;
        self
    }

    /// Serves the browser device's page (a build folder, e.g. `web/dist`) at
    /// [`WEB_PATH`]`/`, read once at start (`atmls_xrpc::StaticDir`).
    #[must_use]
    pub fn with_web_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.web_dir = dir;
        self
    }

    /// The address to listen on (port 0 picks a free port).
    #[must_use]
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The URL clients reach the services at, written into new DID documents
    /// (default `http://<listening address>`).
    #[must_use]
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Handle suffixes accounts may be created under (default `.test`).
    #[must_use]
    pub fn with_handle_domains(mut self, domains: Vec<String>) -> Self {
        self.handle_domains = domains;
        self
    }

    /// The delivery service's DID (default `did:web` of the public URL's host and port).
    #[must_use]
    pub fn with_ds_did(mut self, did: impl Into<String>) -> Self {
        self.ds_did = Some(did.into());
        self
    }

    /// Where `did:plc` DIDs not in the local directory are resolved (default: the
    /// resolver's default directory).
    #[must_use]
    pub fn with_plc_url(mut self, url: impl Into<String>) -> Self {
        self.plc_url = Some(url.into());
        self
    }

    /// The delivery service's rules (limits, retention; default [`DsConfig::default`]).
    #[must_use]
    pub fn with_core(mut self, core: DsConfig) -> Self {
        self.core = core;
        self
    }

    /// Limits and timeouts of the HTTP server.
    #[must_use]
    pub fn with_server(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }
}

/// Why the embedded services did not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// The data directory cannot be created or made owner-only, or other users can
    /// write to it.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: atmls_fs::PrivateError,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The host (PDS, PLC directory) cannot open its databases.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The HTTP server failed.
    #[error(transparent)]
    Server(#[from] ServeError),
    /// The browser page's folder cannot be served.
    #[error(transparent)]
    Web(#[from] StaticError),
    /// The delivery service's database cannot be opened.
    #[error("delivery service database {path}: {message}")]
    DsStore {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// The delivery service cannot start.
    #[error("delivery service: {0}")]
    Ds(#[from] DsError),
    /// The DS DID given (or derived from the public URL) is not a DID.
    #[error("invalid DS DID {did:?}: {message}")]
    DsDid {
        /// The text.
        did: String,
        /// Why.
        message: String,
    },
}

/// The running services. Dropping the handle aborts the server; [`Self::shutdown`] stops
/// it gracefully (open requests finish, the DS writer commits what it holds).
#[derive(Debug)]
pub struct Embedded {
    url: String,
    addr: SocketAddr,
    ds_did: Did,
    data_dir: Option<PathBuf>,
    host: Host,
    ds: DsService,
    server: ServerHandle,
}

impl Embedded {
    /// Opens (or creates) the databases in the data directory and starts serving; call it
    /// inside a tokio runtime. The DS's startup guard (replay protection across restarts)
    /// is on only when its database existed before: a new database has no mailbox whose
    /// requests could be replayed.
    pub async fn start(config: EmbeddedConfig) -> Result<Self, EmbeddedError> {
        let data_dir = config.data_dir;
        if let Some(dir) = &data_dir {
            atmls_fs::private_dir(dir).map_err(|source| EmbeddedError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmbeddedError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmbeddedError::Listen {
                addr: config.listen,
                source,
            })?;
        let url = config
            .public_url
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        // DID documents on this machine (the DS's own did:web included) are fetched over
        // plain http, and loopback reached at all, only under the development allowance.
        // One outbound client for the process: the host's proxy and the DS's
        // getKeyPackages share its pool and its address policy.
        let outbound = Outbound::with_policy(
            AddressPolicy::public_only().with_loopback(config.development_loopback),
        );
        let mut resolver_config =
            ResolverConfig::default().allow_loopback_http(config.development_loopback);
        if let Some(plc) = &config.plc_url {
            resolver_config = resolver_config.with_plc_url(plc);
        }
        let http: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(resolver_config));
        let mut host_config = HostConfig::new(&url)
            .with_core(CoreConfig::new(&url).with_handle_domains(config.handle_domains))
            .with_clock(config.clock.clone())
            .with_resolver(http.clone())
            .with_outbound(outbound.clone());
        if let Some(dir) = &data_dir {
            host_config = host_config.with_data_dir(dir);
        }
        let host = Host::open(host_config)?;
        let ds_did = match config.ds_did {
            Some(did) => did,
            None => web_did(&url).ok_or_else(|| EmbeddedError::DsDid {
                did: url.clone(),
                message: "the URL has no host".into(),
            })?,
        };
        let ds_did = Did::new(&ds_did).map_err(|e| EmbeddedError::DsDid {
            did: ds_did.clone(),
            message: e.to_string(),
        })?;
        // The DS resolves account DIDs in the local PLC directory first.
        let resolver = Arc::new(LocalResolver::new(host.directory().clone(), Some(http)));
        let shares = config.ds_shares.unwrap_or_default();
        let ds_config = shares
            .apply(DsServiceConfig::new(ds_did.clone(), &url))
            .with_core(config.core)
            .with_clock(config.clock)
            // The embedded host's accounts live on this (development, loopback) host:
            // getKeyPackages fetches their repos over plain http on loopback only under
            // the same development allowance as every other outbound fetch.
            .with_key_packages(
                config
                    .key_packages
                    .with_allow_http(config.development_loopback),
            )
            .with_outbound(outbound);
        let ds = match &data_dir {
            Some(dir) => {
                let ds_path = dir.join(DS_DATABASE);
                // Over an existing database the guard applies unless a clean stop is
                // recorded.
                let restarted = ds_path.exists();
                let store = SqliteStore::open(&ds_path).map_err(|e| EmbeddedError::DsStore {
                    path: ds_path.clone(),
                    message: e.to_string(),
                })?;
                DsService::start(store, ds_config.with_startup_guard(restarted), resolver)?
            }
            // A new store: no mailbox whose requests could be replayed.
            None => DsService::start(
                MemoryStore::new(),
                ds_config.with_startup_guard(false),
                resolver,
            )?,
        };
        let mut router = ds.mount(host.router());
        if let Some(dir) = &config.web_dir {
            router = StaticDir::read(dir)?.mount(router, WEB_PATH)?;
        }
        let server = Server::from_listener(listener, config.server, router)?.spawn();
        Ok(Self {
            url,
            addr,
            ds_did,
            data_dir,
            host,
            ds,
            server,
        })
    }

    /// The base URL of the host, the PLC directory and the DS (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PLC directory's URL (the same listener: `GET /did:plc:…`).
    pub fn plc_url(&self) -> &str {
        &self.url
    }

    /// The delivery service's DID.
    pub fn ds_did(&self) -> &Did {
        &self.ds_did
    }

    /// The host's own service DID.
    pub fn service_did(&self) -> String {
        self.host.core().config().service_did.to_string()
    }

    /// The data directory (`None` in memory).
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The delivery service's SQLite file (`None` in memory).
    pub fn ds_database(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join(DS_DATABASE))
    }

    /// The host (accounts, repos, PLC directory).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The delivery service.
    pub fn ds(&self) -> &DsService {
        &self.ds
    }

    /// Stops the server gracefully, then the delivery service (which commits what it
    /// holds).
    pub async fn shutdown(self) -> Result<(), EmbeddedError> {
        let served = self.server.shutdown().await;
        self.ds.shutdown().await;
        served.map_err(EmbeddedError::from)
    }
}

/// `did:web:<host>[%3A<port>]` for a base URL such as `http://127.0.0.1:2583`.
pub fn web_did(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(format!("did:web:{}", authority.replace(':', "%3A")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_did_of_a_url() {
        assert_eq!(
            web_did("http://127.0.0.1:2583").as_deref(),
            Some("did:web:127.0.0.1%3A2583")
        );
        assert_eq!(
            web_did("https://ds.example.com/").as_deref(),
            Some("did:web:ds.example.com")
        );
        assert_eq!(web_did("http://"), None);
    }

    /// Starts over a new directory (no startup guard), answers `describeServer`, stops;
    /// starts again over the same files (no guard either: the stop was clean).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_serves_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            Embedded::start(EmbeddedConfig::new(dir.path()).with_development_loopback(true))
                .await
                .unwrap();
        assert!(first.url().starts_with("http://127.0.0.1:"));
        assert_eq!(
            first.ds_did().as_str(),
            format!("did:web:127.0.0.1%3A{}", first.local_addr().port())
        );
        assert_eq!(first.ds().startup_guard_until(), None);
        assert!(first.ds_database().unwrap().exists());
        let answer = get(first.local_addr(), "/xrpc/chat.mls.ds.describeServer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(first.ds_did().as_str()), "{answer}");
        first.shutdown().await.unwrap();

        // A clean stop saved the replay cache: no guard after it.
        let second =
            Embedded::start(EmbeddedConfig::new(dir.path()).with_development_loopback(true))
                .await
                .unwrap();
        assert_eq!(second.ds().startup_guard_until(), None);
        second.shutdown().await.unwrap();
    }

    /// In memory: nothing on disk, the clock given is the one both services read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_in_memory_on_the_clock_given() {
        let clock = Arc::new(atmls_host::ManualClock::new(
            atmls_ds::Timestamp::from_millis(1_700_000_000_000),
        ));
        let services = Embedded::start(
            EmbeddedConfig::in_memory()
                .with_development_loopback(true)
                .with_clock(clock.clone()),
        )
        .await
        .unwrap();
        assert_eq!(services.data_dir(), None);
        assert_eq!(services.ds_database(), None);
        assert_eq!(services.ds().config().clock().now(), clock.now());
        let answer = get(services.local_addr(), "/xrpc/chat.mls.ds.describeServer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        services.shutdown().await.unwrap();
    }

    /// A bare HTTP/1.1 GET (connection closed by the server after the answer).
    async fn get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        answer
    }
}
