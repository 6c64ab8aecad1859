//! Attached mode: the delivery service alone, beside an existing PDS (the official one
//! included). It serves its own `did:web` document at `/.well-known/did.json` with the
//! `#chat_mls_ds` entry, so the PDS can forward `atproto-proxy` calls to it, and resolves
//! account DIDs through a PLC directory (did:plc) or over https (did:web).
//!
//! ```no_run
//! use atmls_server::attached::{Attached, AttachedConfig};
//!
//! # async fn run() -> Result<(), atmls_server::attached::AttachedError> {
//! let ds = Attached::start(
//!     AttachedConfig::new("/var/lib/atmls", "https://pds.example.com")
//!         .with_public_url("https://ds.example.com"),
//! )
//! .await?;
//! println!("DS {} at {}", ds.ds_did(), ds.url());
//! ds.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atmls_ds::{DsConfig, SqliteStore};
use atmls_ds_xrpc::{DsError, DsService, DsServiceConfig, KeyPackageConfig};
use atmls_identity::resolve::{
    CacheConfig, CachingResolver, DidResolver, HttpResolver, ResolverConfig,
};
use atmls_lexicon::syntax::Did;
use atmls_xrpc::{
    AddressPolicy, Outbound, ServeError, Server, ServerConfig, ServerHandle, StaticDir, StaticError,
};

use crate::embedded::{DS_DATABASE, DsShares, WEB_PATH, web_did};
use crate::scaled::{PgDs, ScaledError};
use atmls_ds_postgres::PgConfig;

/// What to start.
#[derive(Debug, Clone)]
pub struct AttachedConfig {
    listen: SocketAddr,
    data_dir: PathBuf,
    pds_url: String,
    public_url: Option<String>,
    ds_did: Option<String>,
    plc_url: Option<String>,
    core: DsConfig,
    shares: DsShares,
    only_pds_accounts: bool,
    development_loopback: bool,
    server: ServerConfig,
    database: Option<PgConfig>,
    web_dir: Option<PathBuf>,
}

impl AttachedConfig {
    /// The DS beside the PDS at `pds_url` (an `http://` or `https://` URL), its database
    /// in `data_dir`, on `127.0.0.1:0` (a free port), serving any account with a valid
    /// service-auth token, public addresses only for outbound fetches.
    pub fn new(data_dir: impl Into<PathBuf>, pds_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            pds_url: pds_url.into().trim_end_matches('/').to_owned(),
            public_url: None,
            ds_did: None,
            plc_url: None,
            core: DsConfig::default(),
            shares: DsShares::default(),
            only_pds_accounts: false,
            development_loopback: false,
            server: ServerConfig::default(),
            database: None,
            web_dir: None,
        }
    }

    /// Serves the browser device's page (a build folder, e.g. `web/dist`) at
    /// [`crate::embedded::WEB_PATH`]`/`, read once at start (`atmls_xrpc::StaticDir`).
    #[must_use]
    pub fn with_web_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.web_dir = dir;
        self
    }

    /// Runs the DS on PostgreSQL (as one of possibly several processes over the same
    /// database, [`crate::scaled`]) instead of the SQLite file in the data directory.
    #[must_use]
    pub fn with_database(mut self, database: PgConfig) -> Self {
        self.database = Some(database);
        self
    }

    /// The address to listen on (port 0 picks a free port).
    #[must_use]
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The URL clients and the PDS reach the DS at, written into its DID document
    /// (default: `http://localhost:<port>` on a loopback address, since the official PDS
    /// fetches a `did:web` document over plain http only for the host name `localhost`;
    /// else `http://<listening address>`).
    #[must_use]
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// The delivery service's DID (default `did:web` of the public URL's host and port).
    #[must_use]
    pub fn with_ds_did(mut self, did: impl Into<String>) -> Self {
        self.ds_did = Some(did.into());
        self
    }

    /// The PLC directory account DIDs are resolved in (default: the resolver's default
    /// directory).
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

    /// The DS service's per-principal shares (default: [`DsServiceConfig::new`]'s).
    #[must_use]
    pub fn with_ds_shares(mut self, shares: DsShares) -> Self {
        self.shares = shares;
        self
    }

    /// Create mailboxes only for accounts whose DID document names the PDS URL as their
    /// PDS (others get 403 `AccountNotServed`; default off).
    #[must_use]
    pub fn with_only_pds_accounts(mut self, only: bool) -> Self {
        self.only_pds_accounts = only;
        self
    }

    /// The development allowance (default off): outbound fetches may reach loopback
    /// addresses, and did:web documents on `localhost` are fetched over plain http.
    /// Private, link-local and metadata addresses stay refused either way.
    #[must_use]
    pub fn with_development_loopback(mut self, allow: bool) -> Self {
        self.development_loopback = allow;
        self
    }

    /// Limits and timeouts of the HTTP server.
    #[must_use]
    pub fn with_server(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }
}

/// Why the attached DS did not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachedError {
    /// The browser page's folder cannot be served.
    #[error(transparent)]
    Web(#[from] StaticError),
    /// The PDS URL is not an `http://` or `https://` URL with a host.
    #[error("invalid PDS URL {0:?}: expected an http:// or https:// URL")]
    PdsUrl(String),
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
    /// The DS DID given (or derived from the public URL) is not a DID.
    #[error("invalid DS DID {did:?}: {message}")]
    DsDid {
        /// The text.
        did: String,
        /// Why.
        message: String,
    },
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
    /// The delivery service cannot start on PostgreSQL.
    #[error(transparent)]
    Scaled(#[from] ScaledError),
    /// The HTTP server failed.
    #[error(transparent)]
    Server(#[from] ServeError),
}

/// The running DS. Dropping the handle aborts the server; [`Self::shutdown`] stops it
/// gracefully (open requests finish, the DS writer commits what it holds).
#[derive(Debug)]
pub struct Attached {
    url: String,
    addr: SocketAddr,
    ds_did: Did,
    pds_url: String,
    database: PathBuf,
    ds: DsService,
    pg: Option<PgDs>,
    server: ServerHandle,
}

impl Attached {
    /// Opens (or creates) the DS database in the data directory and starts serving; call
    /// it inside a tokio runtime. The startup guard (replay protection across restarts)
    /// is on only when the database existed before.
    pub async fn start(config: AttachedConfig) -> Result<Self, AttachedError> {
        let pds_url = config.pds_url;
        if !(pds_url.starts_with("http://") || pds_url.starts_with("https://"))
            || web_did(&pds_url).is_none()
        {
            return Err(AttachedError::PdsUrl(pds_url));
        }
        let data_dir = config.data_dir;
        atmls_fs::private_dir(&data_dir).map_err(|source| AttachedError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let listen = config.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| AttachedError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| AttachedError::Listen {
                addr: listen,
                source,
            })?;
        let url = config
            .public_url
            .unwrap_or_else(|| default_url(addr))
            .trim_end_matches('/')
            .to_owned();
        let ds_did = match config.ds_did {
            Some(did) => did,
            None => web_did(&url).ok_or_else(|| AttachedError::DsDid {
                did: url.clone(),
                message: "no host".into(),
            })?,
        };
        let ds_did = Did::new(&ds_did).map_err(|e| AttachedError::DsDid {
            did: ds_did.clone(),
            message: e.to_string(),
        })?;
        // Account DIDs: did:plc in the configured directory, did:web over https; cached,
        // as every createMailbox resolves its issuer. Loopback (and plain http to
        // localhost) only with the explicit development allowance.
        let mut resolver_config =
            ResolverConfig::default().allow_loopback_http(config.development_loopback);
        if let Some(plc) = &config.plc_url {
            resolver_config = resolver_config.with_plc_url(plc);
        }
        let resolver: Arc<dyn DidResolver> = Arc::new(CachingResolver::new(
            HttpResolver::new(resolver_config),
            CacheConfig::default(),
        ));
        // The process's one outbound client: getKeyPackages fetches PDSes through it
        // (https endpoints only, as in every non-embedded setup).
        let outbound = Outbound::with_policy(
            AddressPolicy::public_only().with_loopback(config.development_loopback),
        );
        let database = data_dir.join(DS_DATABASE);
        let restarted = database.exists();
        let mut ds_config = config
            .shares
            .apply(DsServiceConfig::new(ds_did.clone(), &url))
            .with_core(config.core)
            .with_startup_guard(restarted)
            // getKeyPackages fetches repos over plain http (on loopback only) under the
            // same development allowance as every other outbound fetch, as in embedded
            // mode: without it a development PDS on loopback was always `unreachable`.
            .with_key_packages(
                KeyPackageConfig::default().with_allow_http(config.development_loopback),
            )
            .with_outbound(outbound);
        if config.only_pds_accounts {
            ds_config = ds_config.with_account_pds(vec![pds_url.clone()]);
        }
        let (ds, pg, router) = match &config.database {
            Some(pg) => {
                // Shared state lives in the database: no process forgets what another
                // accepted, and no startup guard is needed.
                let pg = PgDs::start(pg, ds_config.with_startup_guard(false), resolver).await?;
                let router = pg.router()?;
                (pg.ds().clone(), Some(pg), router)
            }
            None => {
                let store = SqliteStore::open(&database).map_err(|e| AttachedError::DsStore {
                    path: database.clone(),
                    message: e.to_string(),
                })?;
                let ds = DsService::start(store, ds_config, resolver)?;
                let router = ds.router()?;
                (ds, None, router)
            }
        };
        let router = match &config.web_dir {
            Some(dir) => StaticDir::read(dir)?.mount(router, WEB_PATH)?,
            None => router,
        };
        let server = Server::from_listener(listener, config.server, router)?.spawn();
        Ok(Self {
            url,
            addr,
            ds_did,
            pds_url,
            database,
            ds,
            pg,
            server,
        })
    }

    /// The DS's public URL (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The delivery service's DID.
    pub fn ds_did(&self) -> &Did {
        &self.ds_did
    }

    /// The PDS this DS is attached to (no trailing slash).
    pub fn pds_url(&self) -> &str {
        &self.pds_url
    }

    /// The delivery service's SQLite file (unused when it runs on PostgreSQL).
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// The delivery service.
    pub fn ds(&self) -> &DsService {
        &self.ds
    }

    /// Stops the server gracefully, then the delivery service (which commits what it
    /// holds).
    pub async fn shutdown(self) -> Result<(), AttachedError> {
        let served = self.server.shutdown().await;
        match self.pg {
            Some(pg) => pg.shutdown().await,
            None => self.ds.shutdown().await,
        }
        served.map_err(AttachedError::from)
    }
}

/// The public URL of an attached DS when none is given: `http://localhost:<port>` on a
/// loopback address (the official PDS fetches a `did:web` document over plain http only
/// for the host name `localhost`), else `http://<address>`.
fn default_url(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_prefers_localhost_on_loopback() {
        assert_eq!(
            default_url("127.0.0.1:2584".parse().unwrap()),
            "http://localhost:2584"
        );
        assert_eq!(
            default_url("10.0.0.5:2584".parse().unwrap()),
            "http://10.0.0.5:2584"
        );
    }

    #[tokio::test]
    async fn a_pds_url_that_is_not_http_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["ftp://pds.example.com", "pds.example.com", "http://"] {
            let err = Attached::start(AttachedConfig::new(dir.path(), bad))
                .await
                .unwrap_err();
            assert!(matches!(err, AttachedError::PdsUrl(_)), "{bad}: {err}");
        }
    }
}
