//! A PLC-compatible development DID directory (feature `plc-directory`): the core (this
//! module, no HTTP), a SQLite persistence (feature `plc-directory-sqlite`), and a hyper
//! service, `DirectoryService` (feature `plc-directory-http`).
//!
//! The core takes the time as an argument (`now`), so recovery windows are tested
//! without sleeping.

#[cfg(feature = "plc-directory-http")]
mod http;
#[cfg(feature = "plc-directory-sqlite")]
mod sqlite;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use atmls_syntax::Timestamp;

#[cfg(feature = "plc-directory-http")]
pub use http::DirectoryService;

use super::validate::{check_genesis, check_successor};
use super::{AuditEntry, PlcError, PlcState, RECOVERY_WINDOW, SignedOperation};
use crate::{DidDocument, PlcDid};

/// The directory state: every DID's audit log, optionally persisted in SQLite.
#[derive(Debug)]
pub struct Directory {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    logs: HashMap<PlcDid, Vec<AuditEntry>>,
    #[cfg(feature = "plc-directory-sqlite")]
    db: Option<sqlite::Db>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory::in_memory()
    }
}

impl Directory {
    /// An empty directory kept in memory only.
    pub fn in_memory() -> Self {
        Directory {
            inner: Mutex::new(Inner {
                logs: HashMap::new(),
                #[cfg(feature = "plc-directory-sqlite")]
                db: None,
            }),
        }
    }

    /// A directory persisted in the SQLite file at `path` (created if missing); its
    /// operations are loaded into memory.
    #[cfg(feature = "plc-directory-sqlite")]
    pub fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<Self, PlcError> {
        let db = sqlite::Db::open(path.as_ref())?;
        let logs = db.load()?;
        Ok(Directory {
            inner: Mutex::new(Inner { logs, db: Some(db) }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation below is applied only after all checks pass: a panic cannot
        // leave a half-applied state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Validates and applies an operation submitted for `did` at time `now`: a genesis for a new DID, an update or
    /// tombstone chained to its latest operation, or a recovery fork within 72 hours
    /// signed by a higher-priority rotation key. Re-submitting an accepted operation is
    /// a no-op.
    pub fn submit(
        &self,
        did: &PlcDid,
        op: SignedOperation,
        now: Timestamp,
    ) -> Result<(), PlcError> {
        let cid = op.cid()?.to_string();
        let mut inner = self.lock();
        let Inner {
            logs,
            #[cfg(feature = "plc-directory-sqlite")]
            db,
        } = &mut *inner;
        let log = logs.get(did).map(Vec::as_slice).unwrap_or_default();
        if log.iter().any(|e| !e.nullified && e.cid == cid) {
            return Ok(());
        }
        let active: Vec<usize> = (0..log.len()).filter(|&i| !log[i].nullified).collect();
        let (signer_index, nullify) = if active.is_empty() {
            (check_genesis(did, &op)?, Vec::new())
        } else {
            let prev_cid = op.op.prev().ok_or(PlcError::MissingPrev)?;
            let pos = active
                .iter()
                .position(|&i| log[i].cid == prev_cid)
                .ok_or_else(|| PlcError::PrevNotFound(prev_cid.to_owned()))?;
            let signer = check_successor(&log[active[pos]].operation, prev_cid, &op)?;
            let nullify = active[pos + 1..].to_vec();
            if let Some(&first) = nullify.first() {
                if signer >= log[first].signer_index {
                    return Err(PlcError::RecoveryKeyNotHigher);
                }
                if now.saturating_sub(RECOVERY_WINDOW) > log[first].accepted_at {
                    return Err(PlcError::RecoveryWindowExpired);
                }
            }
            (signer, nullify)
        };
        let entry = AuditEntry {
            did: did.clone(),
            operation: op,
            cid,
            nullified: false,
            created_at: format_timestamp(now),
            accepted_at: now,
            signer_index,
        };
        #[cfg(feature = "plc-directory-sqlite")]
        if let Some(db) = db {
            db.append(&entry, log.len(), &nullify)?;
        }
        let log = logs.entry(did.clone()).or_default();
        for i in nullify {
            log[i].nullified = true;
        }
        log.push(entry);
        Ok(())
    }

    /// The full audit log of `did`, nullified operations included.
    pub fn audit_log(&self, did: &PlcDid) -> Result<Vec<AuditEntry>, PlcError> {
        self.lock().logs.get(did).cloned().ok_or(PlcError::NotFound)
    }

    /// The valid operations of `did`, oldest first.
    pub fn log(&self, did: &PlcDid) -> Result<Vec<SignedOperation>, PlcError> {
        let inner = self.lock();
        let log = inner.logs.get(did).ok_or(PlcError::NotFound)?;
        Ok(log
            .iter()
            .filter(|e| !e.nullified)
            .map(|e| e.operation.clone())
            .collect())
    }

    /// The latest valid operation of `did` and its CID.
    pub fn last_operation(&self, did: &PlcDid) -> Result<(SignedOperation, String), PlcError> {
        let inner = self.lock();
        let log = inner.logs.get(did).ok_or(PlcError::NotFound)?;
        log.iter()
            .rev()
            .find(|e| !e.nullified)
            .map(|e| (e.operation.clone(), e.cid.clone()))
            .ok_or(PlcError::NotFound)
    }

    /// The current data of `did` ([`PlcError::Tombstoned`] once deactivated).
    pub fn state(&self, did: &PlcDid) -> Result<PlcState, PlcError> {
        self.last_operation(did)?.0.state(did)
    }

    /// The current DID document of `did`.
    pub fn document(&self, did: &PlcDid) -> Result<DidDocument, PlcError> {
        Ok(self.state(did)?.document())
    }

    /// Number of registered DIDs.
    pub fn len(&self) -> usize {
        self.lock().logs.len()
    }

    /// Whether no DID is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `YYYY-MM-DDTHH:mm:ss.sssZ`, as the PLC directory writes `createdAt`.
pub(crate) fn format_timestamp(at: Timestamp) -> String {
    let ms = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
