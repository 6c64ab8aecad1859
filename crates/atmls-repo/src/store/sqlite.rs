//! A SQLite block store: one database file for many repos, WAL mode, one transaction per
//! commit (blocks and head together), so a crash leaves either all of a commit or none.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use cid::Cid;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{BlockMap, BlockSource, BlockStore, CommitUpdate, RepoHead, StoreError};
use atmls_syntax::Tid;

/// SQLite's `synchronous` setting: how hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every transaction is on disk before `apply_commit` returns (`FULL`, the default).
    #[default]
    Full,
    /// Transactions stay atomic, but the last ones may be lost on power failure
    /// (`NORMAL`: the WAL is synced only at checkpoints).
    Normal,
}

/// Settings for [`SqliteBlockStore`].
#[derive(Debug, Clone, Default)]
pub struct SqliteConfig {
    synchronous: Synchronous,
}

impl SqliteConfig {
    /// The default: WAL mode with `synchronous = FULL`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `synchronous` level.
    pub fn synchronous(mut self, level: Synchronous) -> Self {
        self.synchronous = level;
        self
    }
}

/// Blocks and repo heads in a SQLite database.
#[derive(Debug)]
pub struct SqliteBlockStore {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl SqliteBlockStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: impl AsRef<Path>, config: &SqliteConfig) -> Result<Self, StoreError> {
        let path = path.as_ref();
        atmls_fs::private_sqlite(path).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn, config)
    }

    /// A private in-memory database (no WAL: there is no file).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend)?;
        Self::init(conn, &SqliteConfig::default())
    }

    fn init(conn: Connection, config: &SqliteConfig) -> Result<Self, StoreError> {
        let sync = match config.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        // journal_mode returns a row, so it goes through a query.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(backend)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync};
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS blocks (
                 cid  BLOB PRIMARY KEY,
                 data BLOB NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS repo_heads (
                 did    TEXT PRIMARY KEY,
                 commit_cid BLOB NOT NULL,
                 rev    TEXT NOT NULL
             ) WITHOUT ROWID;"
        ))
        .map_err(backend)?;
        Ok(SqliteBlockStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // SQLite keeps its own consistency: a transaction a panicking thread left open is
        // rolled back when the next one begins.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn put_all(conn: &Connection, blocks: &BlockMap) -> Result<(), rusqlite::Error> {
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO blocks (cid, data) VALUES (?1, ?2)")?;
    for (cid, bytes) in blocks {
        stmt.execute(params![cid.to_bytes(), bytes])?;
    }
    Ok(())
}

fn read_head(conn: &Connection, did: &str) -> Result<Option<RepoHead>, StoreError> {
    let row: Option<(Vec<u8>, String)> = conn
        .prepare_cached("SELECT commit_cid, rev FROM repo_heads WHERE did = ?1")
        .and_then(|mut s| {
            s.query_row(params![did], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(backend)?;
    let Some((cid, rev)) = row else {
        return Ok(None);
    };
    let commit = Cid::try_from(cid.as_slice())
        .map_err(|e| StoreError::Corrupt(format!("head CID of {did}: {e}")))?;
    let rev: Tid = rev
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("head rev of {did}: {e}")))?;
    Ok(Some(RepoHead { commit, rev }))
}

impl BlockSource for SqliteBlockStore {
    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT data FROM blocks WHERE cid = ?1")
            .map_err(backend)?;
        stmt.query_row(params![cid.to_bytes()], |r| r.get(0))
            .optional()
            .map_err(backend)
    }
}

impl BlockStore for SqliteBlockStore {
    fn has_block(&self, cid: &Cid) -> Result<bool, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM blocks WHERE cid = ?1")
            .map_err(backend)?;
        stmt.exists(params![cid.to_bytes()]).map_err(backend)
    }

    fn put_blocks(&self, blocks: &BlockMap) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(backend)?;
        put_all(&tx, blocks).map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn head(&self, did: &str) -> Result<Option<RepoHead>, StoreError> {
        read_head(&self.lock(), did)
    }

    fn apply_commit(&self, update: &CommitUpdate<'_>) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let found = read_head(&tx, update.did)?.map(|h| h.commit);
        if found != update.prev {
            return Err(StoreError::head_mismatch(update.prev, found));
        }
        put_all(&tx, update.blocks).map_err(backend)?;
        tx.prepare_cached(
            "INSERT INTO repo_heads (did, commit_cid, rev) VALUES (?1, ?2, ?3)
             ON CONFLICT(did) DO UPDATE SET commit_cid = excluded.commit_cid, rev = excluded.rev",
        )
        .and_then(|mut s| {
            s.execute(params![
                update.did,
                update.head.commit.to_bytes(),
                update.head.rev.to_string()
            ])
        })
        .map_err(backend)?;
        // Dropping `tx` without commit (on any error above) rolls everything back.
        tx.commit().map_err(backend)
    }

    fn repos(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT did FROM repo_heads ORDER BY did")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }
}
