//! The delivery service on PostgreSQL (issue 16), in this process: one or more DS
//! "processes" over one database, each started exactly as `atmls serve --database` starts
//! its DS ([`PgDs::start`]: its own `PgStore` with its own pool and runtime, its own
//! notification listener, the service-auth replay store in the database), each on its own
//! loopback listener, all resolving accounts in one dev PLC directory. Every deployment
//! gets a schema of its own (dropped on close), so each scenario starts on empty tables as
//! the SQLite target starts on a new file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use atmls_ds_postgres::{PgConfig, SchemaName};
use atmls_ds_xrpc::{DsConfig, DsServiceConfig, KeyPackageConfig, SystemClock};
use atmls_identity::Did;
use atmls_server::embedded::DsShares;
use atmls_server::scaled::PgDs;
use atmls_testkit::server::{DS_ONLY_DID, Plc};
use atmls_xrpc::{AddressPolicy, Outbound, Server, ServerConfig, ServerHandle};
use tokio::net::TcpListener;

use crate::LoadgenError;

/// Most DS processes one run starts.
pub const MAX_PROCESSES: usize = 8;

/// A PostgreSQL database to run the DS on, and how many DS processes share it.
#[derive(Clone)]
pub struct Database {
    url: String,
    processes: usize,
    pool_size: usize,
    writer_lanes: usize,
}

impl std::fmt::Debug for Database {
    // The URL may hold a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("processes", &self.processes)
            .field("pool_size", &self.pool_size)
            .field("writer_lanes", &self.writer_lanes)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// A `postgres://` URL (or `key=value` connection string), checked now; one process,
    /// a pool of 8 connections per process.
    pub fn new(url: &str) -> Result<Self, LoadgenError> {
        PgConfig::new(url).map_err(|e| LoadgenError::Database(e.to_string()))?;
        Ok(Self {
            url: url.to_owned(),
            processes: 1,
            pool_size: 8,
            writer_lanes: atmls_ds_postgres::DEFAULT_WRITER_LANES,
        })
    }

    /// DS processes over the database (1 to [`MAX_PROCESSES`]).
    pub fn with_processes(mut self, n: usize) -> Self {
        self.processes = n.clamp(1, MAX_PROCESSES);
        self
    }

    /// Connections in each process's pool (at least 1).
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Writer lanes in each DS process (at least 1; default
    /// [`atmls_ds_postgres::DEFAULT_WRITER_LANES`]): how many group commits one process
    /// has in flight. The pool grows to cover them.
    pub fn with_writer_lanes(mut self, n: usize) -> Self {
        self.writer_lanes = n.max(1);
        self
    }

    /// DS processes.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The connection string (for the raw baseline's own connections; never print it).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A configuration of the DS's store in `schema`.
    fn config(&self, schema: &SchemaName) -> Result<PgConfig, LoadgenError> {
        Ok(PgConfig::new(&self.url)
            .map_err(|e| LoadgenError::Database(e.to_string()))?
            .with_schema(schema.clone())
            .with_pool_size(self.pool_size)
            .with_writer_lanes(self.writer_lanes))
    }
}

/// A schema name no other deployment of any run uses.
pub(crate) fn fresh_schema(prefix: &str) -> Result<SchemaName, LoadgenError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .parse()
    .map_err(|_| LoadgenError::Database("schema name".into()))
}

/// One DS process: the service over its own store and listener, and its HTTP server.
struct Process {
    ds: PgDs,
    server: ServerHandle,
    addr: SocketAddr,
}

/// Several DS processes over one schema, and the PLC directory they resolve from.
pub(crate) struct Deployment {
    plc: Plc,
    processes: Vec<Process>,
    schema: SchemaName,
    url: String,
}

impl Deployment {
    /// Starts `db.processes()` DS processes over a new schema, one after the other (the
    /// first creates the tables).
    pub(crate) async fn start(
        db: &Database,
        core: &DsConfig,
        shares: &DsShares,
        server: &ServerConfig,
    ) -> Result<Self, LoadgenError> {
        let start = |e: &dyn std::fmt::Display| LoadgenError::Start(e.to_string());
        let schema = fresh_schema("loadgen")?;
        let config = db.config(&schema)?;
        let plc = Plc::start().await.map_err(|e| start(&e))?;
        let did = Did::new(DS_ONLY_DID).map_err(|e| start(&e))?;
        let mut deployment = Self {
            plc,
            processes: Vec::with_capacity(db.processes),
            schema,
            url: db.url.clone(),
        };
        for _ in 0..db.processes {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let addr = listener.local_addr()?;
            let service = shares
                .apply(DsServiceConfig::new(did.clone(), format!("http://{addr}")))
                .with_core(core.clone())
                .with_clock(Arc::new(SystemClock))
                .with_key_packages(KeyPackageConfig::default().with_allow_http(true))
                .with_outbound(Outbound::with_policy(
                    AddressPolicy::public_only().with_loopback(true),
                ));
            let ds = PgDs::start(&config, service, deployment.plc.resolver())
                .await
                .map_err(|e| start(&e))?;
            let router = ds.router().map_err(|e| start(&e))?;
            let server = Server::from_listener(listener, server.clone(), router)
                .map_err(|e| start(&e))?
                .spawn();
            deployment.processes.push(Process { ds, server, addr });
        }
        Ok(deployment)
    }

    /// The listeners, in start order.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.processes.iter().map(|p| p.addr).collect()
    }

    /// The PLC directory's address.
    pub(crate) fn plc_addr(&self) -> SocketAddr {
        self.plc.addr()
    }

    /// Stops every server, then every DS (each commits what it holds), then drops the
    /// schema. Errors are not reported: the run's figures are already taken.
    pub(crate) async fn close(self) {
        for p in self.processes {
            let _ = p.server.shutdown().await;
            p.ds.shutdown().await;
        }
        drop_schema(&self.url, &self.schema).await;
        drop(self.plc);
    }
}

/// Drops `schema` and everything in it; best effort.
pub(crate) async fn drop_schema(url: &str, schema: &SchemaName) {
    if let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        let task = tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                schema.as_str()
            ))
            .await;
        drop(client);
        let _ = task.await;
    }
}
