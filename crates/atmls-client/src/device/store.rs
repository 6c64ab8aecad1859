//! The device's SQLite file: openmls' tables (openmls_sqlite_storage) and ours, on one
//! connection so that a step changing both is one transaction. The file is encrypted page
//! by page (SQLCipher) with a key from a [`KeySource`] that is never written into it.

use std::path::Path;

use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use openmls_traits::OpenMlsProvider;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::at_rest::KeySource;
use crate::error::StoreError;

/// serde_json as the openmls storage codec.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonCodec;

impl Codec for JsonCodec {
    type Error = serde_json::Error;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}

/// The openmls storage over the device's connection.
pub(crate) type Storage<'a> = SqliteStorageProvider<JsonCodec, &'a Connection>;

/// The crypto provider of every suite the client speaks: libcrux, for 0x0001 and X-Wing
/// alike (docs/decisions/0027-xwing-and-crypto-provider.md).
pub(crate) type Crypto = openmls_libcrux_crypto::CryptoProvider;

/// A fresh crypto provider (its DRBG seeded from the operating system).
pub(crate) fn new_crypto() -> Result<Crypto, StoreError> {
    Crypto::new().map_err(|_| StoreError::Entropy)
}

/// The libcrux crypto plus the SQLite storage: the provider every openmls call gets.
/// Cheap to build (two references), so one is made per operation.
pub(crate) struct Provider<'a> {
    crypto: &'a Crypto,
    storage: Storage<'a>,
}

impl<'a> Provider<'a> {
    pub(crate) fn new(crypto: &'a Crypto, conn: &'a Connection) -> Self {
        Self {
            crypto,
            storage: SqliteStorageProvider::new(conn),
        }
    }
}

impl<'a> OpenMlsProvider for Provider<'a> {
    type CryptoProvider = Crypto;
    type RandProvider = Crypto;
    type StorageProvider = Storage<'a>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        self.crypto
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    did TEXT NOT NULL,
    device_id TEXT NOT NULL,
    ciphersuite INTEGER NOT NULL,
    signature_public BLOB NOT NULL,
    inbox_ds TEXT NOT NULL,
    inbox_mailbox BLOB NOT NULL,
    inbox_key BLOB NOT NULL,
    inbox_cursor INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS atmls_groups (
    group_id BLOB NOT NULL PRIMARY KEY,
    ds TEXT NOT NULL,
    mailbox BLOB NOT NULL,
    cursor INTEGER NOT NULL,
    signature_public BLOB NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS atmls_pending (
    group_id BLOB NOT NULL PRIMARY KEY,
    intent TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    digest BLOB NOT NULL,
    welcomes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS atmls_sent (
    group_id BLOB NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (group_id, digest)
);
CREATE TABLE IF NOT EXISTS atmls_key_packages (
    ref BLOB NOT NULL PRIMARY KEY,
    rkey TEXT NOT NULL,
    last_resort INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
-- The suite of each published KeyPackage (§11.19); a package without a row is in the
-- device's suite (databases from before X-Wing).
CREATE TABLE IF NOT EXISTS atmls_key_package_suites (
    ref BLOB NOT NULL PRIMARY KEY,
    ciphersuite INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS atmls_updates (
    group_id BLOB NOT NULL PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS atmls_revs (
    did TEXT NOT NULL PRIMARY KEY,
    rev TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS atmls_outbox (
    item INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id BLOB NOT NULL,
    id TEXT NOT NULL,
    plaintext BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    failed TEXT
);
CREATE INDEX IF NOT EXISTS atmls_outbox_group ON atmls_outbox (group_id, item);
CREATE TABLE IF NOT EXISTS atmls_outbox_digests (
    group_id BLOB NOT NULL,
    digest BLOB NOT NULL,
    item INTEGER NOT NULL,
    PRIMARY KEY (group_id, digest)
);
CREATE TABLE IF NOT EXISTS atmls_seen (
    group_id BLOB NOT NULL,
    sender TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (group_id, sender, id)
);
CREATE INDEX IF NOT EXISTS atmls_seen_seq ON atmls_seen (group_id, seq);
CREATE TABLE IF NOT EXISTS atmls_deferred (
    seq INTEGER NOT NULL PRIMARY KEY,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    next_at INTEGER NOT NULL
);
";

/// Opens (creating if needed) the device database, encrypted with the key from `key`
/// (docs/spec.md §11.11), and runs both migrations. A key that does not open an existing
/// database is [`StoreError::WrongKey`].
pub(crate) fn open(path: &Path, key: &dyn KeySource) -> Result<Connection, StoreError> {
    let creating = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let key = key.key(path, creating)?;
    atmls_fs::private_sqlite(path)?;
    let mut conn = Connection::open(path)?;
    // The key first: SQLCipher reads nothing before it. A library without SQLCipher
    // would take `PRAGMA key` silently and write plaintext, so that is checked.
    conn.execute_batch(&format!(
        "PRAGMA key = {};",
        key.sqlcipher_literal().as_str()
    ))?;
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    if cipher.is_none_or(|v| v.is_empty()) {
        return Err(StoreError::NoEncryption);
    }
    // SQLCipher logs a failed page check to stderr by default (process-wide); a wrong key
    // is reported as a typed error instead.
    conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))
        .optional()?;
    // The first read decrypts page 1: a wrong key fails here, before anything is written.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Err(StoreError::WrongKey);
        }
        Err(e) => return Err(e.into()),
    }
    configure(&mut conn)?;
    Ok(conn)
}

/// An in-memory database (tests, benchmarks).
pub(crate) fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &mut Connection) -> Result<(), StoreError> {
    // Forward secrecy: deleted key material is overwritten in the file (secure_delete) and
    // the WAL is truncated after deleting steps ([`checkpoint`]).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    SqliteStorageProvider::<JsonCodec, &mut Connection>::new(conn)
        .run_migrations()
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(super::recovery::rows::SCHEMA)?;
    conn.execute_batch(super::tree_blobs::SCHEMA)?;
    conn.execute_batch(super::resend::SCHEMA)?;
    conn.execute_batch(super::vanish::SCHEMA)?;
    conn.execute_batch(super::rotation::SCHEMA)?;
    conn.execute_batch(super::device_key::SCHEMA)?;
    conn.execute_batch(super::used_key_packages::SCHEMA)?;
    Ok(())
}

/// Copies the WAL into the database and truncates it, so no page image of deleted
/// key material stays in the WAL file.
pub(crate) fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .optional()?;
    Ok(())
}

/// The device row.
#[derive(Debug, Clone)]
pub(crate) struct DeviceRow {
    pub(crate) did: String,
    pub(crate) device_id: String,
    pub(crate) ciphersuite: u16,
    pub(crate) signature_public: Vec<u8>,
    pub(crate) inbox_ds: String,
    pub(crate) inbox_mailbox: [u8; 32],
    pub(crate) inbox_key: [u8; 32],
    pub(crate) inbox_cursor: u64,
}

pub(crate) fn read_device(conn: &Connection) -> Result<Option<DeviceRow>, StoreError> {
    let row = conn
        .query_row(
            "SELECT did, device_id, ciphersuite, signature_public, inbox_ds, inbox_mailbox,
                    inbox_key, inbox_cursor FROM atmls_device WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u16>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((did, device_id, ciphersuite, signature_public, inbox_ds, mailbox, key, cursor)) = row
    else {
        return Ok(None);
    };
    Ok(Some(DeviceRow {
        did,
        device_id,
        ciphersuite,
        signature_public,
        inbox_ds,
        inbox_mailbox: fixed(&mailbox)?,
        inbox_key: fixed(&key)?,
        inbox_cursor: u64::try_from(cursor).map_err(|_| StoreError::Corrupt("cursor"))?,
    }))
}

pub(crate) fn write_device(conn: &Connection, d: &DeviceRow) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_device (id, did, device_id, ciphersuite, signature_public, inbox_ds,
             inbox_mailbox, inbox_key, inbox_cursor) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            d.did,
            d.device_id,
            d.ciphersuite,
            d.signature_public,
            d.inbox_ds,
            d.inbox_mailbox.as_slice(),
            d.inbox_key.as_slice(),
            to_i64(d.inbox_cursor)?
        ],
    )?;
    Ok(())
}

pub(crate) fn set_inbox_cursor(conn: &Connection, cursor: u64) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_device SET inbox_cursor = ?1 WHERE id = 1",
        [to_i64(cursor)?],
    )?;
    Ok(())
}

/// One group of this device.
#[derive(Debug, Clone)]
pub(crate) struct GroupRow {
    pub(crate) group_id: Vec<u8>,
    pub(crate) ds: String,
    pub(crate) mailbox: [u8; 32],
    pub(crate) cursor: u64,
    pub(crate) signature_public: Vec<u8>,
    pub(crate) active: bool,
}

pub(crate) fn insert_group(conn: &Connection, g: &GroupRow) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT OR REPLACE INTO atmls_groups (group_id, ds, mailbox, cursor, signature_public, active)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            g.group_id,
            g.ds,
            g.mailbox.as_slice(),
            to_i64(g.cursor)?,
            g.signature_public,
            g.active
        ],
    )?;
    Ok(())
}

pub(crate) fn groups(conn: &Connection) -> Result<Vec<GroupRow>, StoreError> {
    group_rows(conn, None)
}

/// One group's row.
pub(crate) fn group(conn: &Connection, group_id: &[u8]) -> Result<Option<GroupRow>, StoreError> {
    Ok(group_rows(conn, Some(group_id))?.pop())
}

/// Every group's row (`None`) or one group's.
fn group_rows(conn: &Connection, only: Option<&[u8]>) -> Result<Vec<GroupRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_id, ds, mailbox, cursor, signature_public, active FROM atmls_groups
         WHERE ?1 IS NULL OR group_id = ?1 ORDER BY group_id",
    )?;
    let rows = stmt.query_map([only], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Vec<u8>>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (group_id, ds, mailbox, cursor, signature_public, active) = row?;
        out.push(GroupRow {
            group_id,
            ds,
            mailbox: fixed(&mailbox)?,
            cursor: u64::try_from(cursor).map_err(|_| StoreError::Corrupt("cursor"))?,
            signature_public,
            active,
        });
    }
    Ok(out)
}

pub(crate) fn set_group_cursor(
    conn: &Connection,
    group_id: &[u8],
    cursor: u64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_groups SET cursor = ?2 WHERE group_id = ?1",
        params![group_id, to_i64(cursor)?],
    )?;
    Ok(())
}

pub(crate) fn set_group_signer(
    conn: &Connection,
    group_id: &[u8],
    public: &[u8],
) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_groups SET signature_public = ?2 WHERE group_id = ?1",
        params![group_id, public],
    )?;
    Ok(())
}

pub(crate) fn deactivate_group(conn: &Connection, group_id: &[u8]) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE atmls_groups SET active = 0 WHERE group_id = ?1",
        params![group_id],
    )?;
    exec(
        conn,
        "DELETE FROM atmls_pending WHERE group_id = ?1",
        params![group_id],
    )?;
    exec(
        conn,
        "DELETE FROM atmls_sent WHERE group_id = ?1",
        params![group_id],
    )?;
    exec(
        conn,
        "DELETE FROM atmls_seen WHERE group_id = ?1",
        params![group_id],
    )?;
    Ok(())
}

/// A commit sent (or about to be) and not yet known to be accepted or refused.
#[derive(Debug, Clone)]
pub(crate) struct PendingRow {
    pub(crate) intent: String,
    pub(crate) epoch: u64,
    pub(crate) digest: Vec<u8>,
    pub(crate) welcomes: String,
}

pub(crate) fn write_pending(
    conn: &Connection,
    group_id: &[u8],
    p: &PendingRow,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT OR REPLACE INTO atmls_pending (group_id, intent, epoch, digest, welcomes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![group_id, p.intent, to_i64(p.epoch)?, p.digest, p.welcomes],
    )?;
    Ok(())
}

pub(crate) fn pending(
    conn: &Connection,
    group_id: &[u8],
) -> Result<Option<PendingRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT intent, epoch, digest, welcomes FROM atmls_pending WHERE group_id = ?1",
        )?
        .query_row([group_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    row.map(|(intent, epoch, digest, welcomes)| {
        Ok(PendingRow {
            intent,
            epoch: u64::try_from(epoch).map_err(|_| StoreError::Corrupt("epoch"))?,
            digest,
            welcomes,
        })
    })
    .transpose()
}

pub(crate) fn delete_pending(conn: &Connection, group_id: &[u8]) -> Result<(), StoreError> {
    exec(
        conn,
        "DELETE FROM atmls_pending WHERE group_id = ?1",
        [group_id],
    )?;
    Ok(())
}

pub(crate) fn record_sent(
    conn: &Connection,
    group_id: &[u8],
    digest: &[u8],
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT OR IGNORE INTO atmls_sent (group_id, digest) VALUES (?1, ?2)",
        params![group_id, digest],
    )?;
    Ok(())
}

/// Whether `digest` is one of our own sent payloads; forgets it (each echo comes once).
pub(crate) fn take_sent(
    conn: &Connection,
    group_id: &[u8],
    digest: &[u8],
) -> Result<bool, StoreError> {
    let n = exec(
        conn,
        "DELETE FROM atmls_sent WHERE group_id = ?1 AND digest = ?2",
        params![group_id, digest],
    )?;
    Ok(n > 0)
}

/// One of our published KeyPackages.
#[derive(Debug, Clone)]
pub(crate) struct KeyPackageRow {
    pub(crate) key_package_ref: Vec<u8>,
    pub(crate) rkey: String,
    pub(crate) last_resort: bool,
    pub(crate) expires_at: i64,
    /// Its ciphersuite.
    pub(crate) ciphersuite: u16,
}

pub(crate) fn insert_key_package(conn: &Connection, k: &KeyPackageRow) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_key_packages (ref, rkey, last_resort, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![k.key_package_ref, k.rkey, k.last_resort, k.expires_at],
    )?;
    exec(
        conn,
        "INSERT OR REPLACE INTO atmls_key_package_suites (ref, ciphersuite) VALUES (?1, ?2)",
        params![k.key_package_ref, k.ciphersuite],
    )?;
    Ok(())
}

pub(crate) fn key_packages(conn: &Connection) -> Result<Vec<KeyPackageRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT k.ref, k.rkey, k.last_resort, k.expires_at, \
         coalesce(s.ciphersuite, (SELECT ciphersuite FROM atmls_device LIMIT 1), 1) \
         FROM atmls_key_packages k LEFT JOIN atmls_key_package_suites s ON s.ref = k.ref \
         ORDER BY k.last_resort DESC, k.rkey",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyPackageRow {
            key_package_ref: r.get(0)?,
            rkey: r.get(1)?,
            last_resort: r.get(2)?,
            expires_at: r.get(3)?,
            ciphersuite: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete_key_package(
    conn: &Connection,
    key_package_ref: &[u8],
) -> Result<(), StoreError> {
    exec(
        conn,
        "DELETE FROM atmls_key_packages WHERE ref = ?1",
        [key_package_ref],
    )?;
    exec(
        conn,
        "DELETE FROM atmls_key_package_suites WHERE ref = ?1",
        [key_package_ref],
    )?;
    Ok(())
}

pub(crate) fn rev(conn: &Connection, did: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT rev FROM atmls_revs WHERE did = ?1", [did], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn set_rev(conn: &Connection, did: &str, rev: &str) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_revs (did, rev) VALUES (?1, ?2)
         ON CONFLICT (did) DO UPDATE SET rev = excluded.rev",
        params![did, rev],
    )?;
    Ok(())
}

/// Runs one statement, prepared once per connection (the statement cache): the message
/// path runs the same few statements on every envelope.
pub(crate) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

fn fixed(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("32-byte column"))
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt("integer out of range"))
}

/// An inbox item set aside after a transient failure (docs/spec.md §11.14): its payload
/// and how many attempts failed.
#[derive(Debug, Clone)]
pub(crate) struct DeferredRow {
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
    pub(crate) attempts: u32,
}

/// Sets an inbox item aside (or records one more failed attempt of one set aside).
pub(crate) fn defer(
    conn: &Connection,
    seq: u64,
    payload: &[u8],
    attempts: u32,
    next_at_ms: i64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_deferred (seq, payload, attempts, next_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (seq) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at",
        params![to_i64(seq)?, payload, attempts, next_at_ms],
    )?;
    Ok(())
}

/// At most `limit` items set aside whose next attempt is due at `now_ms`, oldest first.
pub(crate) fn deferred_due(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<DeferredRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, payload, attempts FROM atmls_deferred WHERE next_at <= ?1
         ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, u32>(2)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, payload, attempts) = row?;
        out.push(DeferredRow {
            seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt("deferred seq"))?,
            payload,
            attempts,
        });
    }
    Ok(out)
}

/// How many inbox items are set aside.
pub(crate) fn deferred_count(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM atmls_deferred", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Forgets an item set aside (joined or refused).
pub(crate) fn release_deferred(conn: &Connection, seq: u64) -> Result<(), StoreError> {
    exec(
        conn,
        "DELETE FROM atmls_deferred WHERE seq = ?1",
        [to_i64(seq)?],
    )?;
    Ok(())
}

/// When this device last updated its leaf in the group (Unix seconds); set to `now` the
/// first time it is asked.
pub(crate) fn last_update(conn: &Connection, group_id: &[u8], now: i64) -> Result<i64, StoreError> {
    exec(
        conn,
        "INSERT OR IGNORE INTO atmls_updates (group_id, at) VALUES (?1, ?2)",
        params![group_id, now],
    )?;
    Ok(conn.query_row(
        "SELECT at FROM atmls_updates WHERE group_id = ?1",
        [group_id],
        |r| r.get(0),
    )?)
}

pub(crate) fn set_last_update(
    conn: &Connection,
    group_id: &[u8],
    at: i64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_updates (group_id, at) VALUES (?1, ?2)
         ON CONFLICT (group_id) DO UPDATE SET at = excluded.at",
        params![group_id, at],
    )?;
    Ok(())
}
