//! The host's SQLite database: server secrets, accounts, sessions and blobs. Repo blocks
//! live in a separate [`SqliteBlockStore`](atmls_repo::SqliteBlockStore) file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::HostError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accounts (
    did            TEXT PRIMARY KEY,
    handle         TEXT NOT NULL UNIQUE,
    email          TEXT UNIQUE,
    password_hash  TEXT NOT NULL,
    key_alg        TEXT NOT NULL,
    signing_key    BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    deactivated_at TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    did         TEXT NOT NULL,
    refresh_jti TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_did ON sessions (did);
CREATE TABLE IF NOT EXISTS blobs (
    did        TEXT NOT NULL,
    cid        TEXT NOT NULL,
    mime_type  TEXT NOT NULL,
    size       INTEGER NOT NULL,
    data       BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (did, cid)
) WITHOUT ROWID;
";

/// The database connection, shared by the host's modules.
#[derive(Debug)]
pub(crate) struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Self, HostError> {
        atmls_fs::private_sqlite(path).map_err(HostError::internal)?;
        Self::init(Connection::open(path)?, true)
    }

    pub(crate) fn in_memory() -> Result<Self, HostError> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(conn: Connection, wal: bool) -> Result<Self, HostError> {
        if wal {
            let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // Every change is one statement or one transaction: a panicking holder leaves
        // nothing half-written, so the poison flag carries no information.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key` in `meta`, created with `make` on first use.
    pub(crate) fn meta_or_init(
        &self,
        key: &str,
        make: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, HostError> {
        let conn = self.lock();
        let found: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(v) = found {
            return Ok(v);
        }
        let value = make();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(value)
    }
}
