//! The delivery service over HTTP and WebSocket: every `chat.mls.ds.*` method, the DS's
//! `did:web` document, retention, and `getKeyPackages`. The rules are the core's
//! (`atmls-ds`); this crate only moves requests in and answers out, on the generic XRPC
//! layer of `atmls-xrpc`. The wire format is in `docs/spec.md`.
//!
//! - One **writer thread** owns the core and its store. Requests reach it through a
//!   bounded queue; the batches of concurrent `sendEnvelopes` / `sendWelcome` requests
//!   are written in one transaction (group commit), and each is answered only after that
//!   transaction committed. A request whose client disconnects is still carried out
//!   whole, or not at all.
//! - `createMailbox` takes a service-auth JWT (`Authorization: Bearer`), directly or
//!   through a PDS's `atproto-proxy`; mailbox methods take `Authorization:
//!   ChatMls-Mailbox <token>`; `subscribeEnvelopes` takes one `auth` parameter per
//!   mailbox.
//! - The replay cache lives in memory; a clean stop ([`DsService::shutdown`]) saves it
//!   into the store and the next start takes it back. After a start without a recorded
//!   clean stop (a crash), mailbox tokens signed before `start + request_max_age` are
//!   refused with 503, unless the startup guard is off (spec §10.2.1).
//!
//! ```no_run
//! use std::sync::Arc;
//! use atmls_ds::SqliteStore;
//! use atmls_identity::Did;
//! use atmls_identity::resolve::{CacheConfig, CachingResolver, HttpResolver, ResolverConfig};
//! use atmls_ds_xrpc::{DsService, DsServiceConfig};
//! use atmls_xrpc::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = DsServiceConfig::new(Did::new("did:web:ds.example.com")?, "https://ds.example.com");
//! let resolver = Arc::new(CachingResolver::new(
//!     HttpResolver::new(ResolverConfig::default()),
//!     CacheConfig::default(),
//! ));
//! let ds = DsService::start(SqliteStore::open("ds.sqlite")?, config, resolver)?;
//! let server = Server::bind(ServerConfig::default(), ds.router()?).await?;
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! ds.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod budget;
mod config;
mod endpoint;
mod handlers;
mod keypackages;
mod lexicons;
mod subscribe;
pub mod wire;
mod writer;

/// The DS core's configuration and stores, for callers that start a [`DsService`].
pub use atmls_ds::{DsConfig, MemoryStore, SqliteStore};
pub use config::{
    Clock, DsServiceConfig, KeyPackageConfig, ManualClock, SERVICE_FRAGMENT, SERVICE_TYPE,
    SystemClock,
};
pub use keypackages::{DidResult, DidStatus, KeyPackageFetcher, ProvenRecord};
pub use lexicons::{catalog, lexicon_docs};

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use atmls_ds::auth::RequestSource;
use atmls_ds::{Expired, MailboxId, Restart, Store, Timestamp};
use atmls_identity::DidResolver;
use atmls_identity::service_auth::{MemoryReplayStore, ServiceAuthVerifier, VerifierConfig};
use atmls_lexicon::chat::mls::ds as lex;
use serde_json::{Value, json};
use tokio::sync::watch;

use atmls_xrpc::XrpcError;
use atmls_xrpc::{AddressPolicy, Outbound, OutboundConfig, Router};
use atmls_xrpc::{HttpRequest, XrpcResponse};
use budget::{Holdings, RateWindows};
use writer::{Command, Lanes, WeakLanes};

/// Most sources with a running welcome window at once.
const MAX_WELCOME_SOURCES: usize = 100_000;

/// Live service-auth tokens the replay store holds at most.
const SERVICE_AUTH_TOKENS: usize = 100_000;

/// The path of the DS's DID document.
pub const WELL_KNOWN_DID_PATH: &str = "/.well-known/did.json";

/// Why the delivery service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DsError {
    /// Not called inside a tokio runtime.
    #[error("the delivery service must be started inside a tokio runtime")]
    NoRuntime,
    /// The writer thread could not be spawned.
    #[error("cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The embedded lexicons do not load.
    #[error("embedded lexicons: {0}")]
    Lexicons(String),
}

/// The delivery service's HTTP shell: cheap to clone, shared by every route.
#[derive(Debug, Clone)]
pub struct DsService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DsServiceConfig,
    lanes: Lanes,
    verifier: ServiceAuthVerifier,
    key_packages: KeyPackageFetcher,
    /// Mailbox tokens dated before this are refused (see [`DsServiceConfig::startup_guard`]).
    guard_until: Option<Timestamp>,
    next_subscription: AtomicU64,
    stop: watch::Sender<bool>,
    /// `sendWelcome` calls and bytes per source per minute.
    welcomes: RateWindows<RequestSource>,
    /// `sendWelcome` calls and bytes per source per inbox per minute: a share of the
    /// inbox's own allowance.
    welcomes_into_inbox: RateWindows<(RequestSource, MailboxId)>,
    /// Open subscriptions per source.
    subscriptions_by_source: Holdings<RequestSource>,
    /// Open (authorised) subscriptions per mailbox.
    subscriptions_by_mailbox: Holdings<MailboxId>,
}

impl DsService {
    /// Starts the writer thread over `store` and the retention task; call it inside a
    /// tokio runtime. `resolver` resolves the issuers of service-auth tokens and the DIDs
    /// of `getKeyPackages`.
    pub fn start<S: Store + Send + 'static>(
        store: S,
        config: DsServiceConfig,
        resolver: Arc<dyn DidResolver>,
    ) -> Result<Self, DsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DsError::NoRuntime)?;
        let (lanes, restart) = writer::spawn(store, &config).map_err(DsError::Thread)?;
        let replay_store = config.replay_store().unwrap_or_else(|| {
            Arc::new(
                MemoryReplayStore::new(SERVICE_AUTH_TOKENS)
                    .with_per_issuer(config.tokens_per_account()),
            )
        });
        let verifier = ServiceAuthVerifier::with_replay_store(
            resolver.clone(),
            replay_store,
            VerifierConfig::new(config.did().clone()).with_service_fragment(SERVICE_FRAGMENT),
        );
        let guard_until = startup_guard(&config, restart);
        let (stop, stopped) = watch::channel(false);
        runtime.spawn(retention(
            lanes.downgrade(),
            stopped,
            config.retention_interval(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                key_packages: KeyPackageFetcher::new(
                    resolver,
                    config.key_packages().clone(),
                    config
                        .outbound()
                        .cloned()
                        .unwrap_or_else(|| own_outbound(config.key_packages())),
                ),
                welcomes: RateWindows::new(
                    config.welcomes_per_source_per_minute(),
                    config.welcome_bytes_per_source_per_minute(),
                    MAX_WELCOME_SOURCES,
                ),
                welcomes_into_inbox: RateWindows::new(
                    (u64::from(config.core().inbox_deposits_per_minute())
                        / config.inbox_share_divisor())
                    .max(1),
                    (config.core().inbox_deposit_bytes_per_minute() / config.inbox_share_divisor())
                        .max(1),
                    MAX_WELCOME_SOURCES,
                ),
                subscriptions_by_source: Holdings::new(config.subscriptions_per_source()),
                subscriptions_by_mailbox: Holdings::new(config.subscribers_per_mailbox()),
                config,
                lanes,
                verifier,
                guard_until,
                next_subscription: AtomicU64::new(1),
                stop,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &DsServiceConfig {
        &self.inner.config
    }

    /// How many writer lanes serve the requests: 1, or over a store shared by several
    /// processes, as many as the store offers ([`atmls_ds::Store::more_writers`]).
    pub fn writer_lanes(&self) -> usize {
        self.inner.lanes.len()
    }

    /// The writer lane (`0..writer_lanes()`) serving `mailbox`: always the same one.
    pub fn lane_of(&self, mailbox: &MailboxId) -> usize {
        writer::lane_of(mailbox, self.inner.lanes.len())
    }

    /// Until when (exclusive) mailbox tokens are refused after this start, if the startup
    /// guard applies (it is on and no clean stop was recorded): tokens whose signed
    /// timestamp is earlier get 503.
    pub fn startup_guard_until(&self) -> Option<Timestamp> {
        self.inner.guard_until
    }

    /// Adds every `chat.mls.ds.*` route to `router` (whose catalog must hold the
    /// `chat.mls` lexicons, e.g. [`catalog`]), and the DS's DID document at
    /// `/.well-known/did.json` as an exact-path route (so a host's fallback, e.g. a DID
    /// directory, keeps serving every other path).
    pub fn mount(&self, router: Router) -> Router {
        let config = self.inner.config.clone();
        let router = router.path(WELL_KNOWN_DID_PATH, move |req: HttpRequest| {
            let answer = serve_well_known(&config, &req);
            async move {
                answer.unwrap_or_else(|| Err(XrpcError::not_found("NotFound", "no such path")))
            }
        });
        macro_rules! call {
            ($svc:expr, $method:ident) => {{
                let svc = $svc.clone();
                move |req| {
                    let svc = svc.clone();
                    async move { svc.$method(req).await }
                }
            }};
        }
        let sub = self.clone();
        router
            .query(lex::describe_server::NSID, call!(self, describe_server))
            .procedure(lex::create_mailbox::NSID, call!(self, create_mailbox))
            .query(lex::get_mailbox::NSID, call!(self, get_mailbox))
            .procedure(lex::send_envelopes::NSID, call!(self, send_envelopes))
            .query(lex::get_envelopes::NSID, call!(self, get_envelopes))
            .procedure(lex::send_welcome::NSID, call!(self, send_welcome))
            .query(lex::list_inbox::NSID, call!(self, list_inbox))
            .procedure(
                lex::delete_inbox_items::NSID,
                call!(self, delete_inbox_items),
            )
            .query(lex::get_key_packages::NSID, call!(self, get_key_packages))
            .subscription(lex::subscribe_envelopes::NSID, move |req, sink| {
                let svc = sub.clone();
                async move { svc.subscribe_envelopes(req, sink).await }
            })
    }

    /// A router serving the DS alone: the embedded `chat.mls` lexicons, every route, and
    /// the DID document at `/.well-known/did.json` (other paths 404).
    pub fn router(&self) -> Result<Router, DsError> {
        Ok(self.mount(Router::new(catalog()?)))
    }

    /// Runs retention now (it also runs every [`DsServiceConfig::retention_interval`]).
    pub async fn expire_now(&self) -> Result<Expired, XrpcError> {
        self.call(|reply| Command::Expire { reply: Some(reply) })
            .await?
            .map_err(|e| {
                tracing::error!(error = e.kind(), "retention failed");
                XrpcError::internal("retention failed")
            })
    }

    /// Other processes sharing this DS's store appended to these mailboxes (`(mailbox,
    /// head after the append)`, e.g. from PostgreSQL notifications): the live subscribers
    /// here are fed from the store, after the last seq each mailbox was fed. Only a
    /// wake-up: the store stays the source of truth, so a lost call loses nothing that a
    /// later call (or [`DsService::resync`]) does not bring.
    pub async fn woken(&self, heads: Vec<(MailboxId, u64)>) {
        let _ = self
            .inner
            .lanes
            .send(Command::Wake { heads: Some(heads) })
            .await;
    }

    /// Some appends of other processes may have been missed (a notification channel was
    /// lost): every mailbox with live subscribers here is read again from the store.
    pub async fn resync(&self) {
        let _ = self.inner.lanes.send(Command::Wake { heads: None }).await;
    }

    /// Stops the retention task and the writer (after it committed what it holds and saved
    /// its replay cache with a clean-stop record into the store, so that the next start
    /// needs no startup guard). Later requests get 503. Waits at most 10 s.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let stop = self.call(|reply| Command::Stop { reply });
        let _ = tokio::time::timeout(Duration::from_secs(10), stop).await;
    }
}

/// Until when mailbox tokens are refused after this start, logged with the reason: not
/// at all after a clean stop (the replay cache is back) or with the guard off; else
/// tokens signed before `now + request_max_age`. Logs name no mailbox and no key.
/// The client of a DS given none ([`DsServiceConfig::with_outbound`]): public addresses
/// only, loopback too for plain-http development setups, connections bounded by the
/// request timeout.
fn own_outbound(config: &KeyPackageConfig) -> Outbound {
    Outbound::new(
        &OutboundConfig::new()
            .with_policy(AddressPolicy::public_only().with_loopback(config.allow_http))
            .with_connect_timeout(config.request_timeout),
    )
}

fn startup_guard(config: &DsServiceConfig, restart: Restart) -> Option<Timestamp> {
    match restart {
        Restart::Shared => {
            tracing::info!("startup guard off: the replay cache is shared in the store");
            None
        }
        Restart::Restored { entries } => {
            tracing::info!(
                entries,
                "startup guard off: clean stop recorded, replay cache restored ({entries} entries)"
            );
            None
        }
        _ if config.startup_guard() => {
            let until = config
                .clock()
                .now()
                .saturating_add(config.core().request_max_age());
            tracing::info!(
                until_ms = until.as_millis(),
                "startup guard on: no clean stop recorded; refusing mailbox requests signed \
                 before {} ms (for {} s)",
                until.as_millis(),
                config.core().request_max_age().as_secs()
            );
            Some(until)
        }
        _ => {
            tracing::info!("startup guard off: a new database or a store that does not persist");
            None
        }
    }
}

/// Sends `Expire` to the writer (every lane) every `every` until stopped or the writer is gone.
async fn retention(lanes: WeakLanes, mut stopped: watch::Receiver<bool>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let stop = async { stopped.wait_for(|s| *s).await.is_ok() };
        let go_on = tokio::select! {
            _ = stop => false,
            _ = tick.tick() => true,
        };
        if !go_on {
            return;
        }
        let Some(lanes) = lanes.upgrade() else { return };
        if lanes.send(Command::Expire { reply: None }).await.is_err() {
            return;
        }
    }
}

/// The DS's DID document: its `did:web` id and the `#chat_mls_ds` service entry
/// (`ChatMlsDeliveryService` at its base URL), so PDSes can proxy to it.
pub fn did_document(config: &DsServiceConfig) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": config.did().as_str(),
        "service": [{
            "id": format!("#{SERVICE_FRAGMENT}"),
            "type": SERVICE_TYPE,
            "serviceEndpoint": config.base_url(),
        }],
    })
}

/// `200` with [`did_document`], as `GET /.well-known/did.json` answers.
pub fn well_known_did_document(config: &DsServiceConfig) -> XrpcResponse {
    XrpcResponse::json(did_document(config))
}

/// For a fallback handler: the answer to `GET /.well-known/did.json`, or `None` for any
/// other request (so the caller can try its own paths, e.g. a DID directory).
pub fn serve_well_known(
    config: &DsServiceConfig,
    req: &HttpRequest,
) -> Option<Result<XrpcResponse, XrpcError>> {
    if req.path() != WELL_KNOWN_DID_PATH {
        return None;
    }
    Some(
        if req.method() == hyper::Method::GET || req.method() == hyper::Method::HEAD {
            Ok(well_known_did_document(config))
        } else {
            Err(XrpcError::method_not_allowed("use GET"))
        },
    )
}
