//! A DID's documents over time: which document (and so which `#atproto` key) was in force
//! at a given instant (docs/spec.md §11.13, decision 0026).
//!
//! For did:plc the history comes from the PLC directory's audit log
//! (`GET /:did/log/audit`): the valid (non-nullified) operations, their chain checked
//! (the genesis derives the DID, each later operation names the one before and is signed
//! by one of its rotation keys), each in force from the directory's `createdAt`. The
//! `createdAt` times themselves are the directory's word, as the current document is.
//! For did:web there is no history: the current document stands for every instant.

use atmls_syntax::{Datetime, Timestamp};
use thiserror::Error;

use crate::plc::{AuditEntry, PlcError, UnsignedOperation};
use crate::{Did, DidDocument, PlcDid};

/// One period of a [`DidHistory`]: from `from` on (until the next entry), `document`
/// was the DID's document, or the DID was deactivated (`None`, a tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// When this entry took effect.
    pub from: Timestamp,
    /// The document in force, `None` once tombstoned.
    pub document: Option<DidDocument>,
}

/// The documents of one DID over time, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct DidHistory {
    did: Did,
    entries: Vec<HistoryEntry>,
}

/// Why a [`DidHistory`] names no document at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The DID did not exist yet at that instant.
    #[error("the DID did not exist yet at that time")]
    NotYetCreated,
    /// The DID was tombstoned (deactivated) at that instant: a permanent refusal.
    #[error("the DID was tombstoned at that time")]
    Tombstoned,
}

/// Why an audit log does not make a [`DidHistory`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuditLogError {
    /// No valid (non-nullified) operation.
    #[error("the audit log has no valid operation")]
    Empty,
    /// An entry names another DID.
    #[error("an audit log entry is for another DID")]
    WrongDid,
    /// A `createdAt` that is not an atproto datetime, or is before the epoch.
    #[error("invalid createdAt {0:?}")]
    CreatedAt(String),
    /// The valid operations are not in `createdAt` order.
    #[error("the audit log is not in time order")]
    OutOfOrder,
    /// The chain of valid operations does not verify.
    #[error("the operation chain does not verify: {0}")]
    Chain(#[from] PlcError),
}

impl DidHistory {
    /// A DID without history (did:web, or a resolver that only knows the present): its
    /// current document stands for every instant.
    pub fn current(document: DidDocument) -> Self {
        DidHistory {
            did: document.id.clone(),
            entries: vec![HistoryEntry {
                from: Timestamp::EPOCH,
                document: Some(document),
            }],
        }
    }

    /// A history from its periods (oldest first; a resolver that keeps its own, or a
    /// test): [`AuditLogError::Empty`] without any, [`AuditLogError::OutOfOrder`] if
    /// they are not in time order.
    pub fn from_entries(did: Did, entries: Vec<HistoryEntry>) -> Result<Self, AuditLogError> {
        if entries.is_empty() {
            return Err(AuditLogError::Empty);
        }
        if entries.windows(2).any(|w| w[0].from > w[1].from) {
            return Err(AuditLogError::OutOfOrder);
        }
        Ok(DidHistory { did, entries })
    }

    /// The history of a did:plc from its audit log (`GET /:did/log/audit`, the PLC
    /// directory's JSON). Nullified operations are left out (a recovery undid them); the
    /// remaining chain is verified; each operation is in force from its `createdAt`.
    pub fn from_plc_audit_log(did: &PlcDid, log: &[AuditEntry]) -> Result<Self, AuditLogError> {
        let valid: Vec<&AuditEntry> = log.iter().filter(|e| !e.nullified).collect();
        let (first, rest) = valid.split_first().ok_or(AuditLogError::Empty)?;
        if valid.iter().any(|e| &e.did != did) {
            return Err(AuditLogError::WrongDid);
        }
        crate::plc::check_genesis(did, &first.operation)?;
        let mut prev = &first.operation;
        for e in rest {
            let cid = prev.cid()?.to_string();
            crate::plc::check_successor(prev, &cid, &e.operation)?;
            prev = &e.operation;
        }
        let mut entries: Vec<HistoryEntry> = Vec::with_capacity(valid.len());
        for e in &valid {
            let from = parse_created_at(&e.created_at)?;
            if entries.last().is_some_and(|last| last.from > from) {
                return Err(AuditLogError::OutOfOrder);
            }
            let document = match &e.operation.op {
                UnsignedOperation::Tombstone(_) => None,
                _ => Some(e.operation.state(did)?.document()),
            };
            entries.push(HistoryEntry { from, document });
        }
        Ok(DidHistory {
            did: did.as_did().clone(),
            entries,
        })
    }

    /// The DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The periods, oldest first.
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// The document in force at `at`: that of the latest entry from at or before `at`.
    pub fn at(&self, at: Timestamp) -> Result<&DidDocument, HistoryError> {
        let entry = self
            .entries
            .iter()
            .rev()
            .find(|e| e.from <= at)
            .ok_or(HistoryError::NotYetCreated)?;
        entry.document.as_ref().ok_or(HistoryError::Tombstoned)
    }

    /// The current document (`None` once tombstoned).
    pub fn latest(&self) -> Option<&DidDocument> {
        self.entries.last().and_then(|e| e.document.as_ref())
    }
}

fn parse_created_at(s: &str) -> Result<Timestamp, AuditLogError> {
    let bad = || AuditLogError::CreatedAt(s.to_owned());
    let ms = Datetime::new(s)
        .map_err(|_| bad())?
        .to_chrono()
        .timestamp_millis();
    u64::try_from(ms)
        .map(Timestamp::from_millis)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use atmls_crypto::{Algorithm, SigningKey};

    use super::*;
    use crate::plc::{GenesisBuilder, SignedOperation};

    fn entry(did: &PlcDid, op: &SignedOperation, created_at: &str, nullified: bool) -> AuditEntry {
        AuditEntry {
            did: did.clone(),
            operation: op.clone(),
            cid: op.cid().unwrap().to_string(),
            nullified,
            created_at: created_at.to_owned(),
            accepted_at: Timestamp::EPOCH,
            signer_index: 0,
        }
    }

    fn ms(s: &str) -> Timestamp {
        parse_created_at(s).unwrap()
    }

    /// A genesis with key 1, an update to key 2, a nullified update to key 3, an update
    /// to key 4: at each instant the key of the latest valid operation before it.
    #[test]
    fn key_in_force_at_each_instant() {
        let rotation = SigningKey::generate(Algorithm::Es256k);
        let keys: Vec<SigningKey> = (0..4)
            .map(|_| SigningKey::generate(Algorithm::Es256k))
            .collect();
        let genesis = GenesisBuilder::new(&rotation.public_key(), &keys[0].public_key())
            .handle("a.test")
            .pds("https://pds.test")
            .sign(&rotation);
        let did = genesis.did().unwrap();
        let update = |prev: &SignedOperation, key: &SigningKey| {
            let mut op = prev
                .state(&did)
                .unwrap()
                .to_update(&prev.cid().unwrap().to_string());
            op.verification_methods
                .insert("atproto".into(), key.public_key().to_did_key());
            op.sign(&rotation)
        };
        let second = update(&genesis, &keys[1]);
        let nullified = update(&second, &keys[2]);
        let fourth = update(&second, &keys[3]);
        let log = vec![
            entry(&did, &genesis, "2026-01-01T00:00:00.000Z", false),
            entry(&did, &second, "2026-01-02T00:00:00.000Z", false),
            entry(&did, &nullified, "2026-01-03T00:00:00.000Z", true),
            entry(&did, &fourth, "2026-01-04T00:00:00.000Z", false),
        ];
        let h = DidHistory::from_plc_audit_log(&did, &log).unwrap();
        let key_at = |s: &str| h.at(ms(s)).unwrap().atproto_key().unwrap();
        assert_eq!(
            h.at(ms("2025-12-31T23:59:59.999Z")),
            Err(HistoryError::NotYetCreated)
        );
        assert_eq!(key_at("2026-01-01T00:00:00.000Z"), keys[0].public_key());
        assert_eq!(key_at("2026-01-01T23:59:59.999Z"), keys[0].public_key());
        assert_eq!(key_at("2026-01-02T00:00:00.000Z"), keys[1].public_key());
        // The nullified operation never counts.
        assert_eq!(key_at("2026-01-03T12:00:00.000Z"), keys[1].public_key());
        assert_eq!(key_at("2027-01-01T00:00:00.000Z"), keys[3].public_key());
        assert_eq!(
            h.latest().unwrap().atproto_key().unwrap(),
            keys[3].public_key()
        );

        // Out of order, a broken chain, another DID's entry: refused.
        let mut swapped = log.clone();
        swapped[1].created_at = "2025-01-01T00:00:00.000Z".into();
        assert_eq!(
            DidHistory::from_plc_audit_log(&did, &swapped),
            Err(AuditLogError::OutOfOrder)
        );
        let forged = {
            let intruder = SigningKey::generate(Algorithm::Es256k);
            let mut op = genesis
                .state(&did)
                .unwrap()
                .to_update(&genesis.cid().unwrap().to_string());
            op.verification_methods
                .insert("atproto".into(), keys[2].public_key().to_did_key());
            op.sign(&intruder)
        };
        let mut broken = log[..1].to_vec();
        broken.push(entry(&did, &forged, "2026-01-02T00:00:00.000Z", false));
        assert!(matches!(
            DidHistory::from_plc_audit_log(&did, &broken),
            Err(AuditLogError::Chain(_))
        ));
        assert_eq!(
            DidHistory::from_plc_audit_log(&did, &[]),
            Err(AuditLogError::Empty)
        );
    }

    #[test]
    fn tombstone_and_no_history() {
        let rotation = SigningKey::generate(Algorithm::Es256k);
        let key = SigningKey::generate(Algorithm::Es256k);
        let genesis = GenesisBuilder::new(&rotation.public_key(), &key.public_key())
            .handle("a.test")
            .pds("https://pds.test")
            .sign(&rotation);
        let did = genesis.did().unwrap();
        let tomb = crate::plc::Tombstone {
            prev: genesis.cid().unwrap().to_string(),
        }
        .sign(&rotation);
        let log = vec![
            entry(&did, &genesis, "2026-01-01T00:00:00.000Z", false),
            entry(&did, &tomb, "2026-02-01T00:00:00.000Z", false),
        ];
        let h = DidHistory::from_plc_audit_log(&did, &log).unwrap();
        assert!(h.at(ms("2026-01-15T00:00:00.000Z")).is_ok());
        assert_eq!(
            h.at(ms("2026-02-01T00:00:00.000Z")),
            Err(HistoryError::Tombstoned)
        );
        assert!(h.latest().is_none());

        let doc = genesis.state(&did).unwrap().document();
        let h = DidHistory::current(doc.clone());
        assert_eq!(h.at(Timestamp::EPOCH), Ok(&doc));
        assert_eq!(h.at(Timestamp::from_millis(u64::MAX)), Ok(&doc));
    }
}
