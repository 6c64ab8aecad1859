//! SQLite persistence of the directory's audit logs.

use std::collections::HashMap;
use std::path::Path;

use atmls_syntax::Timestamp;
use rusqlite::{Connection, params};

use super::format_timestamp;
use crate::PlcDid;
use crate::plc::{AuditEntry, PlcError, SignedOperation};

#[derive(Debug)]
pub(super) struct Db {
    conn: Connection,
}

fn storage(e: impl std::fmt::Display) -> PlcError {
    PlcError::Storage(e.to_string())
}

impl Db {
    pub(super) fn open(path: &Path) -> Result<Self, PlcError> {
        atmls_fs::private_sqlite(path).map_err(storage)?;
        let conn = Connection::open(path).map_err(storage)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS plc_operation (
                 did TEXT NOT NULL,
                 seq INTEGER NOT NULL,
                 cid TEXT NOT NULL,
                 operation TEXT NOT NULL,
                 nullified INTEGER NOT NULL DEFAULT 0,
                 created_at_ms INTEGER NOT NULL,
                 signer_index INTEGER NOT NULL,
                 PRIMARY KEY (did, seq)
             ) WITHOUT ROWID;",
        )
        .map_err(storage)?;
        Ok(Db { conn })
    }

    pub(super) fn load(&self) -> Result<HashMap<PlcDid, Vec<AuditEntry>>, PlcError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT did, cid, operation, nullified, created_at_ms, signer_index
                 FROM plc_operation ORDER BY did, seq",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(storage)?;
        let mut logs: HashMap<PlcDid, Vec<AuditEntry>> = HashMap::new();
        for row in rows {
            let (did, cid, op, nullified, created, signer) = row.map_err(storage)?;
            let did = PlcDid::new(did).map_err(storage)?;
            let operation = SignedOperation::from_json(op.as_bytes())?;
            let accepted_at = Timestamp::from_millis(u64::try_from(created).map_err(storage)?);
            logs.entry(did.clone()).or_default().push(AuditEntry {
                did,
                operation,
                cid,
                nullified,
                created_at: format_timestamp(accepted_at),
                accepted_at,
                signer_index: usize::try_from(signer).map_err(storage)?,
            });
        }
        Ok(logs)
    }

    pub(super) fn append(
        &mut self,
        entry: &AuditEntry,
        seq: usize,
        nullify: &[usize],
    ) -> Result<(), PlcError> {
        let tx = self.conn.transaction().map_err(storage)?;
        for &i in nullify {
            tx.execute(
                "UPDATE plc_operation SET nullified = 1 WHERE did = ?1 AND seq = ?2",
                params![entry.did.as_str(), i as i64],
            )
            .map_err(storage)?;
        }
        tx.execute(
            "INSERT INTO plc_operation
                 (did, seq, cid, operation, nullified, created_at_ms, signer_index)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
            params![
                entry.did.as_str(),
                seq as i64,
                entry.cid,
                entry.operation.to_json().to_string(),
                i64::try_from(entry.accepted_at.as_millis()).map_err(storage)?,
                entry.signer_index as i64,
            ],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)
    }
}
