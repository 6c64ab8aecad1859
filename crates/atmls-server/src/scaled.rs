//! The delivery service on PostgreSQL: one of several DS processes over one database
//! (issue 16). Everything one process decides that another must know lives in the
//! database ([`atmls_ds_postgres`]); this module wires it to the DS shell:
//!
//! - the DS runs over a [`PgStore`]: the gap-free sequence and the epoch compare-and-swap
//!   are decided by the database, and the mailbox-token replay cache and the inbox
//!   deposit windows are shared through it ([`atmls_ds::Store::shares_state`]);
//! - service-auth token ids are recorded in the database too ([`PgReplayStore`]);
//! - a [`Listener`] hears the appends of every process and wakes the live subscribers
//!   here ([`DsService::woken`]), which read from the store what they have not had yet
//!   ([`DsService::resync`] after a lost notification connection);
//! - `/_health` says whether the database answers, `/metrics` adds the pool's figures
//!   and the notifications heard ([`PgProbe`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atmls_ds::{StoreError, Timestamp};
pub use atmls_ds_postgres::PgStore;
pub use atmls_ds_postgres::{
    CopyError, CopyReport, InvalidUrl, NonEmptyTarget, PgConfig, SchemaName, copy_from_sqlite,
};
use atmls_ds_postgres::{JtiVerdict, Listener, Notices};
use atmls_ds_xrpc::{DsError, DsService, DsServiceConfig};
use atmls_identity::resolve::DidResolver;
use atmls_identity::service_auth::{ReplayStore, ServiceAuthError};
use atmls_xrpc::{Probe, ProbeState, Router};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

/// How long `/_health` waits for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the DS could not start on PostgreSQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaledError {
    /// The database cannot be reached, or its schema cannot be created or upgraded.
    #[error("delivery service database: {0}")]
    Store(#[source] StoreError),
    /// The delivery service cannot start.
    #[error("delivery service: {0}")]
    Ds(#[from] DsError),
}

/// The service-auth replay store (`jti`s) in the database: a token one process accepted
/// is a replay at every other one (threat model T-ID-2).
#[derive(Debug, Clone)]
pub struct PgReplayStore {
    store: PgStore,
    per_issuer: u64,
}

impl PgReplayStore {
    /// Records in `store`, at most `per_issuer` unexpired tokens per issuer.
    pub fn new(store: PgStore, per_issuer: u64) -> Self {
        Self { store, per_issuer }
    }
}

impl ReplayStore for PgReplayStore {
    fn check_and_insert(
        &self,
        iss: &str,
        jti: &str,
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<(), ServiceAuthError> {
        match self.store.claim_jti(
            iss,
            jti,
            exp.as_millis() / 1000,
            now.as_millis() / 1000,
            self.per_issuer,
        ) {
            Ok(JtiVerdict::Fresh) => Ok(()),
            Ok(JtiVerdict::Replayed) => Err(ServiceAuthError::Replayed),
            Ok(JtiVerdict::IssuerShareFull) => Err(ServiceAuthError::IssuerShareFull),
            // 503 `ServiceUnavailable`: the database is unreachable, nothing was recorded.
            Ok(_) | Err(_) => Err(ServiceAuthError::ReplayStoreFull),
        }
    }
}

/// Notification figures, for `/metrics`.
#[derive(Debug, Default)]
struct NoticeStats {
    /// Mailbox wake-ups heard.
    heard: AtomicU64,
    /// Resyncs (a lost notification connection, or too many pending).
    resyncs: AtomicU64,
}

/// `/_health` and `/metrics` for the database.
#[derive(Debug, Clone)]
pub struct PgProbe {
    store: PgStore,
    stats: Arc<NoticeStats>,
}

impl Probe for PgProbe {
    fn check(&self) -> BoxFuture<'static, ProbeState> {
        let store = self.store.clone();
        async move {
            let ping = tokio::task::spawn_blocking(move || store.ping());
            let ok = matches!(
                tokio::time::timeout(PING_TIMEOUT, ping).await,
                Ok(Ok(Ok(())))
            );
            ProbeState {
                name: "database",
                ok,
            }
        }
        .boxed()
    }

    fn metrics(&self) -> String {
        let pool = self.store.pool_status();
        let heard = self.stats.heard.load(Ordering::Relaxed);
        let resyncs = self.stats.resyncs.load(Ordering::Relaxed);
        format!(
            "# HELP atmls_ds_db_pool_connections Database connections of this process's pool, by state.\n\
             # TYPE atmls_ds_db_pool_connections gauge\n\
             atmls_ds_db_pool_connections{{state=\"open\"}} {}\n\
             atmls_ds_db_pool_connections{{state=\"idle\"}} {}\n\
             atmls_ds_db_pool_connections{{state=\"max\"}} {}\n\
             # HELP atmls_ds_db_pool_waiting Calls waiting for a database connection.\n\
             # TYPE atmls_ds_db_pool_waiting gauge\n\
             atmls_ds_db_pool_waiting {}\n\
             # HELP atmls_ds_notifications Append notifications heard from every process (mailbox wake-ups).\n\
             # TYPE atmls_ds_notifications counter\n\
             atmls_ds_notifications_total {heard}\n\
             # HELP atmls_ds_notification_resyncs Re-reads of every live mailbox after notifications may have been lost.\n\
             # TYPE atmls_ds_notification_resyncs counter\n\
             atmls_ds_notification_resyncs_total {resyncs}\n",
            pool.size, pool.available, pool.max_size, pool.waiting,
        )
    }
}

/// A DS process over PostgreSQL: the service, its store and the notification listener.
/// Dropping it stops the listener; [`PgDs::shutdown`] also stops the DS.
#[derive(Debug)]
pub struct PgDs {
    ds: DsService,
    probe: PgProbe,
    listen: JoinHandle<()>,
}

impl PgDs {
    /// Connects (creating or upgrading the schema), starts listening for the appends of
    /// other processes, and starts the DS on the database; call it inside a tokio
    /// runtime. `config`'s service-auth replay store is replaced by the database's.
    pub async fn start(
        database: &PgConfig,
        config: DsServiceConfig,
        resolver: Arc<dyn DidResolver>,
    ) -> Result<Self, ScaledError> {
        let pg = database.clone();
        let store = tokio::task::spawn_blocking(move || PgStore::connect(&pg))
            .await
            .map_err(|e| {
                ScaledError::Store(StoreError::Database {
                    transient: false,
                    source: Box::new(e),
                })
            })?
            .map_err(ScaledError::Store)?;
        // Listening before the DS serves: no append after this point goes unheard.
        let listener = Listener::start(database)
            .await
            .map_err(ScaledError::Store)?;
        let per_issuer = config.tokens_per_account() as u64;
        let config =
            config.with_replay_store(Arc::new(PgReplayStore::new(store.clone(), per_issuer)));
        let stats = Arc::new(NoticeStats::default());
        let probe = PgProbe {
            store: store.clone(),
            stats: stats.clone(),
        };
        let ds = DsService::start(store, config, resolver)?;
        let listen = tokio::spawn(wake_subscribers(listener, ds.clone(), stats));
        Ok(Self { ds, probe, listen })
    }

    /// Feeds the live subscribers of `ds` (a DS already started over a [`PgStore`] of
    /// `database`) with the appends of every process, until the returned task is
    /// aborted. [`PgDs::start`] does this itself; this is for a DS started another way
    /// (e.g. by a test server).
    pub async fn follow(database: &PgConfig, ds: DsService) -> Result<JoinHandle<()>, StoreError> {
        let listener = Listener::start(database).await?;
        Ok(tokio::spawn(wake_subscribers(
            listener,
            ds,
            Arc::new(NoticeStats::default()),
        )))
    }

    /// The delivery service.
    pub fn ds(&self) -> &DsService {
        &self.ds
    }

    /// The health and metrics probe of the database.
    pub fn probe(&self) -> Arc<dyn Probe> {
        Arc::new(self.probe.clone())
    }

    /// A router serving the DS alone (as [`DsService::router`]), with the database in
    /// `/_health` and `/metrics`.
    pub fn router(&self) -> Result<Router, DsError> {
        Ok(self.ds.router()?.probe(self.probe()))
    }

    /// Stops listening, then stops the DS (which commits what it holds).
    pub async fn shutdown(self) {
        self.listen.abort();
        self.ds.shutdown().await;
    }
}

impl Drop for PgDs {
    fn drop(&mut self) {
        self.listen.abort();
    }
}

/// Hands every notification to the DS until it is stopped.
async fn wake_subscribers(mut listener: Listener, ds: DsService, stats: Arc<NoticeStats>) {
    loop {
        match listener.next().await {
            Notices::Appended(heads) => {
                stats.heard.fetch_add(heads.len() as u64, Ordering::Relaxed);
                ds.woken(heads.into_iter().map(|a| (a.mailbox, a.head)).collect())
                    .await;
            }
            _ => {
                stats.resyncs.fetch_add(1, Ordering::Relaxed);
                ds.resync().await;
            }
        }
    }
}
