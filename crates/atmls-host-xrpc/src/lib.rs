//! The embedded PDS-compatible host over XRPC: maps `com.atproto.server.*`,
//! `com.atproto.repo.*`, `com.atproto.sync.*` and `com.atproto.identity.resolveHandle`
//! onto the [`atmls_host::Host`] core, forwards `atproto-proxy` calls with a fresh
//! service-auth token, and serves the development PLC directory (`GET /:did`, …) and
//! `/.well-known/atproto-did` on the same listener through the router's fallback.
//!
//! ```no_run
//! use atmls_host_xrpc::{Host, HostConfig};
//! use atmls_xrpc::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let host = Host::open(HostConfig::new(&url).with_data_dir("/tmp/atmls-data"))?;
//! let server = Server::from_listener(listener, ServerConfig::default(), host.router())?;
//! println!("host and PLC directory at {url}");
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod fallback;
mod lexicons;
mod password_work;
mod proxy;
mod repo;
mod server;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;

use atmls_host::{
    Caller, Clock, Host as HostCore, HostConfig as CoreConfig, HostError as CoreError,
    LocalResolver, SystemClock, Timestamp,
};
use atmls_identity::DidResolver;
use atmls_identity::plc::PlcError;
use atmls_identity::plc::directory::Directory;
use atmls_lexicon::validate::{Catalog, CatalogError};
use hyper::StatusCode;

pub use atmls_net::AddressPolicy;
pub use lexicons::catalog;

use atmls_xrpc::Router;
use atmls_xrpc::XrpcRequest;
use atmls_xrpc::{Outbound, XrpcError};
use password_work::PasswordWork;

/// File name of the development PLC directory inside the data directory.
pub const PLC_FILE: &str = "plc.sqlite";

/// Settings of a [`Host`].
#[derive(Clone)]
#[non_exhaustive]
pub struct HostConfig {
    /// The core's settings (public URL, token lifetimes, handle domains, blob limit).
    pub core: CoreConfig,
    /// Where the SQLite files live; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// The clock the core is given. Default: the system clock.
    pub clock: Arc<dyn Clock>,
    /// Resolves DIDs that are not in the local directory (proxy targets). Default: none,
    /// so only local did:plc DIDs can be proxied to.
    pub resolver: Option<Arc<dyn DidResolver>>,
    /// The client `atproto-proxy` calls are forwarded through, and so which addresses
    /// they may reach: the process's one [`Outbound`]. Default: public addresses only;
    /// [`AddressPolicy::development`] also admits loopback.
    pub outbound: Outbound,
    /// Most password hashes (Argon2, in `createSession` and `createAccount`) computed at
    /// once. Default: the number of CPUs.
    pub max_password_hashes: usize,
    /// Most password checks waiting for a turn; past that, 429 `RateLimitExceeded`.
    /// Default: 4 per hash allowed at once.
    pub max_password_waiters: usize,
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig")
            .field("core", &self.core)
            .field("data_dir", &self.data_dir)
            .field("clock", &self.clock)
            .field("resolver", &self.resolver.is_some())
            .field("outbound", &self.outbound)
            .field("max_password_hashes", &self.max_password_hashes)
            .field("max_password_waiters", &self.max_password_waiters)
            .finish()
    }
}

impl HostConfig {
    /// Defaults for a host reached at `public_url`, kept in memory.
    pub fn new(public_url: &str) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        HostConfig {
            core: CoreConfig::new(public_url),
            data_dir: None,
            clock: Arc::new(SystemClock),
            resolver: None,
            outbound: Outbound::default(),
            max_password_hashes: cpus,
            max_password_waiters: 4 * cpus,
        }
    }

    /// Sets [`HostConfig::core`].
    pub fn with_core(mut self, core: CoreConfig) -> Self {
        self.core = core;
        self
    }

    /// Sets [`HostConfig::data_dir`].
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets [`HostConfig::clock`].
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`HostConfig::resolver`].
    pub fn with_resolver(mut self, resolver: Arc<dyn DidResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Sets [`HostConfig::max_password_hashes`] (at least 1) and
    /// [`HostConfig::max_password_waiters`].
    pub fn with_password_work(mut self, hashes: usize, waiters: usize) -> Self {
        self.max_password_hashes = hashes.max(1);
        self.max_password_waiters = waiters;
        self
    }

    /// Sets [`HostConfig::outbound`].
    pub fn with_outbound(mut self, outbound: Outbound) -> Self {
        self.outbound = outbound;
        self
    }
}

/// The host could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The embedded lexicons do not load (a build defect).
    #[error("embedded lexicons: {0}")]
    Catalog(#[from] CatalogError),
    /// The PLC directory's database cannot be opened.
    #[error("PLC directory: {0}")]
    Directory(#[from] PlcError),
    /// The host's databases cannot be opened.
    #[error("host: {0}")]
    Core(#[from] CoreError),
}

/// The embedded host, ready to mount on a [`Router`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Host {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) core: Arc<HostCore>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) resolver: LocalResolver,
    pub(crate) client: Outbound,
    pub(crate) password_work: PasswordWork,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("core", &self.core)
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Opens the host: the PLC directory (`plc.sqlite`) and the core's files in the data
    /// directory, or everything in memory.
    pub fn open(config: HostConfig) -> Result<Host, HostError> {
        let catalog = Arc::new(catalog()?);
        let (directory, core) = match &config.data_dir {
            Some(dir) => {
                atmls_fs::private_dir(dir).map_err(|e| CoreError::Internal(e.to_string()))?;
                let directory = Arc::new(Directory::open_sqlite(dir.join(PLC_FILE))?);
                let core = HostCore::open(dir, config.core, directory.clone(), catalog.clone())?;
                (directory, core)
            }
            None => {
                let directory = Arc::new(Directory::in_memory());
                let core = HostCore::in_memory(config.core, directory.clone(), catalog.clone())?;
                (directory, core)
            }
        };
        Ok(Host {
            inner: Arc::new(Inner {
                core: Arc::new(core),
                catalog,
                clock: config.clock,
                resolver: LocalResolver::new(directory, config.resolver),
                client: config.outbound,
                password_work: PasswordWork::new(
                    config.max_password_hashes,
                    config.max_password_waiters,
                ),
            }),
        })
    }

    /// The core.
    pub fn core(&self) -> &Arc<HostCore> {
        &self.inner.core
    }

    /// The catalog requests and records are validated against.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// The development PLC directory.
    pub fn directory(&self) -> &Arc<Directory> {
        self.inner.core.directory()
    }

    /// A router serving the host's methods, the `atproto-proxy` forwarding, and (as its
    /// fallback) the PLC directory and `/.well-known/atproto-did`. Merge other routers
    /// (e.g. the delivery service's) into it with [`Router::merge`].
    pub fn router(&self) -> Router {
        let router = Router::with_catalog(self.inner.catalog.clone());
        let router = server::mount(self, router);
        let router = repo::mount(self, router);
        let router = sync::mount(self, router);
        let router = proxy::mount(self, router);
        fallback::mount(self, router)
    }

    /// The time of a request: read once, when it starts, and handed to every core call
    /// it makes.
    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Runs blocking core work off the async threads, at the time read now.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, XrpcError>
    where
        T: Send + 'static,
        F: FnOnce(&HostCore, Timestamp) -> Result<T, CoreError> + Send + 'static,
    {
        self.run_at(self.now(), work).await
    }

    /// [`Host::run`] at a time the request already read.
    pub(crate) async fn run_at<T, F>(&self, now: Timestamp, work: F) -> Result<T, XrpcError>
    where
        T: Send + 'static,
        F: FnOnce(&HostCore, Timestamp) -> Result<T, CoreError> + Send + 'static,
    {
        let core = self.inner.core.clone();
        tokio::task::spawn_blocking(move || work(&core, now))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "host task failed");
                XrpcError::internal("internal server error")
            })?
            .map_err(xrpc_error)
    }

    /// Like [`Host::run`], for the caller authenticated by the request's access token.
    pub(crate) async fn run_as<T, F>(&self, req: &XrpcRequest, work: F) -> Result<T, XrpcError>
    where
        T: Send + 'static,
        F: FnOnce(&HostCore, &Caller, Timestamp) -> Result<T, CoreError> + Send + 'static,
    {
        let token = bearer(req)?;
        self.run(move |core, now| {
            let caller = core.authenticate(&token, now)?;
            work(core, &caller, now)
        })
        .await
    }
}

/// The request's bearer token, or 401 `AuthenticationRequired`.
pub(crate) fn bearer(req: &XrpcRequest) -> Result<String, XrpcError> {
    req.bearer_token()
        .map(str::to_owned)
        .ok_or_else(|| XrpcError::unauthorized("AuthenticationRequired", "authentication required"))
}

/// The XRPC form of a core error; internal details are logged, not sent.
pub(crate) fn xrpc_error(e: CoreError) -> XrpcError {
    if let CoreError::Internal(detail) = &e {
        tracing::error!(error = %detail, "host error");
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let limited = matches!(e, CoreError::RateLimited { .. });
    let error = XrpcError::new(status, e.name(), e.client_message());
    if limited {
        error.with_limit("host_password_throttle")
    } else {
        error
    }
}
