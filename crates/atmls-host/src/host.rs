//! The host: its stores, keys and settings. The operations are in `accounts`, `records`,
//! `sync`, `blobs` and `service` (one `impl Host` block each).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::plc::directory::Directory;
use atmls_lexicon::validate::Catalog;
use atmls_repo::{SqliteBlockStore, SqliteConfig};
use atmls_syntax::TidGenerator;

use crate::config::HostConfig;
use crate::db::Db;
use crate::error::HostError;
use crate::throttle::Throttle;

/// File names inside a data directory.
pub(crate) const ACCOUNTS_FILE: &str = "accounts.sqlite";
pub(crate) const REPOS_FILE: &str = "repos.sqlite";

/// The embedded PDS-compatible host: accounts, sessions, repos, blobs, service auth.
///
/// It does no network I/O and reads no clock: every method that depends on time takes
/// `now_ms` (milliseconds since the Unix epoch). Methods block on SQLite; call them from
/// a blocking-friendly context (e.g. `tokio::task::spawn_blocking`). A `Host` is `Sync`:
/// share it in an `Arc`; writes to one repo are serialized, other work runs concurrently.
pub struct Host {
    pub(crate) config: HostConfig,
    pub(crate) db: Db,
    pub(crate) blocks: SqliteBlockStore,
    pub(crate) directory: Arc<Directory>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) secret: Vec<u8>,
    pub(crate) rotation_key: SigningKey,
    repo_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub(crate) tids: Mutex<TidGenerator>,
    pub(crate) throttle: Throttle,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Opens (or creates) the host's files in `dir` (`accounts.sqlite`,
    /// `repos.sqlite`). `directory` is the PLC directory new DIDs are registered in and
    /// `catalog` holds the lexicons records of known collections are validated against.
    pub fn open(
        dir: impl AsRef<Path>,
        config: HostConfig,
        directory: Arc<Directory>,
        catalog: Arc<Catalog>,
    ) -> Result<Self, HostError> {
        let dir = dir.as_ref();
        atmls_fs::private_dir(dir).map_err(HostError::internal)?;
        let db = Db::open(&dir.join(ACCOUNTS_FILE))?;
        let blocks = SqliteBlockStore::open(dir.join(REPOS_FILE), &SqliteConfig::new())?;
        Self::with_stores(db, blocks, config, directory, catalog)
    }

    /// A host kept entirely in memory (tests, examples).
    pub fn in_memory(
        config: HostConfig,
        directory: Arc<Directory>,
        catalog: Arc<Catalog>,
    ) -> Result<Self, HostError> {
        let db = Db::in_memory()?;
        let blocks = SqliteBlockStore::open_in_memory()?;
        Self::with_stores(db, blocks, config, directory, catalog)
    }

    fn with_stores(
        db: Db,
        blocks: SqliteBlockStore,
        config: HostConfig,
        directory: Arc<Directory>,
        catalog: Arc<Catalog>,
    ) -> Result<Self, HostError> {
        let secret = db.meta_or_init("jwt_secret", || rand::random::<[u8; 32]>().to_vec())?;
        let rotation = db.meta_or_init("plc_rotation_key", || {
            SigningKey::generate(Algorithm::Es256k).to_bytes().to_vec()
        })?;
        let rotation_key =
            SigningKey::from_bytes(Algorithm::Es256k, &rotation).map_err(HostError::internal)?;
        let throttle = Throttle::new(&config.throttle);
        Ok(Host {
            config,
            db,
            blocks,
            directory,
            catalog,
            secret,
            rotation_key,
            repo_locks: Mutex::new(HashMap::new()),
            throttle,
            tids: Mutex::new(TidGenerator::default()),
        })
    }

    /// The rate limits of the password paths; the shell, which knows a caller's address,
    /// applies the per-source ones before any work.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The settings.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The PLC directory new accounts are registered in.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The lexicons records are validated against.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The block store holding every repo.
    pub fn block_store(&self) -> &SqliteBlockStore {
        &self.blocks
    }

    /// The lock serializing writes to the repo of `did`.
    pub(crate) fn repo_lock(&self, did: &str) -> Arc<Mutex<()>> {
        let mut locks = self.repo_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(did.to_owned()).or_default().clone()
    }

    /// A fresh TID (record keys of `createRecord`).
    pub(crate) fn next_tid(&self) -> String {
        let mut tids = self.tids.lock().unwrap_or_else(|e| e.into_inner());
        tids.next_now().to_string()
    }
}
