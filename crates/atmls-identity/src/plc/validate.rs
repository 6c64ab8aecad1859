//! Validation of single operations and of whole operation logs.

use std::collections::HashSet;
use std::time::Duration;

use atmls_crypto::PublicKey;
use atmls_syntax::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    MAX_OPERATION_BYTES, PlcError, PlcOperation, PlcState, SignedOperation, UnsignedOperation,
};
use crate::PlcDid;

/// How long after an operation a higher-priority rotation key may still nullify it.
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(72 * 3600);

/// One entry of a DID's audit log (`GET /:did/log/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// The DID.
    pub did: PlcDid,
    /// The operation.
    pub operation: SignedOperation,
    /// Its CID.
    pub cid: String,
    /// Whether a recovery operation nullified it.
    pub nullified: bool,
    /// When the directory accepted it (RFC 3339, UTC, milliseconds).
    pub created_at: String,
    /// `created_at` as a point in time (not part of the PLC format: the epoch when read
    /// from a directory's JSON).
    #[serde(skip)]
    pub accepted_at: Timestamp,
    /// Index of the signing key in the prior rotation keys (not part of the PLC format).
    #[serde(skip)]
    pub signer_index: usize,
}

/// Checks the content rules of an operation (not its signature or place in the log):
/// encoded size, rotation keys (1 to 5 distinct secp256k1/P-256 did:keys), verification
/// methods (at most 10 did:keys), services.
pub(crate) fn check_content(op: &SignedOperation) -> Result<(), PlcError> {
    let size = op.to_dag_cbor()?.len();
    if size > MAX_OPERATION_BYTES {
        return Err(PlcError::TooLarge(size));
    }
    op.signature()?;
    match &op.op {
        UnsignedOperation::Operation(o) => check_plc_operation(o),
        UnsignedOperation::Tombstone(_) => Ok(()),
        UnsignedOperation::LegacyCreate(c) => {
            for k in [&c.signing_key, &c.recovery_key] {
                PublicKey::from_did_key(k).map_err(|_| PlcError::InvalidRotationKey(k.clone()))?;
            }
            Ok(())
        }
    }
}

fn check_plc_operation(op: &PlcOperation) -> Result<(), PlcError> {
    let n = op.rotation_keys.len();
    if !(1..=5).contains(&n) {
        return Err(PlcError::RotationKeyCount(n));
    }
    let mut seen = HashSet::new();
    for k in &op.rotation_keys {
        PublicKey::from_did_key(k).map_err(|_| PlcError::InvalidRotationKey(k.clone()))?;
        if !seen.insert(k) {
            return Err(PlcError::DuplicateRotationKey(k.clone()));
        }
    }
    if op.verification_methods.len() > 10 {
        return Err(PlcError::TooManyVerificationMethods(
            op.verification_methods.len(),
        ));
    }
    for k in op.verification_methods.values() {
        // Any key type is allowed, but it must be did:key + base58btc multibase.
        let valid = k
            .strip_prefix(atmls_crypto::DID_KEY_PREFIX)
            .and_then(|mb| mb.strip_prefix('z'))
            .is_some_and(|b58| !b58.is_empty() && multibase::decode(format!("z{b58}")).is_ok());
        if !valid {
            return Err(PlcError::InvalidVerificationMethod(k.clone()));
        }
    }
    for (name, s) in &op.services {
        if name.is_empty() || s.kind.is_empty() || s.endpoint.is_empty() {
            return Err(PlcError::InvalidService(name.clone()));
        }
    }
    Ok(())
}

/// Validates a genesis operation for `did`: content, a signature by one of its own
/// rotation keys, and the DID derivation. Returns the signer's index.
pub(crate) fn check_genesis(did: &PlcDid, op: &SignedOperation) -> Result<usize, PlcError> {
    if op.op.prev().is_some() || matches!(op.op, UnsignedOperation::Tombstone(_)) {
        return Err(PlcError::NotGenesis);
    }
    check_content(op)?;
    let index = op.signer_index(&op.op.rotation_keys())?;
    let derived = op.did()?;
    if &derived != did {
        return Err(PlcError::DidMismatch {
            expected: did.to_string(),
            derived: derived.to_string(),
        });
    }
    Ok(index)
}

/// Validates an operation that follows `prev` (whose CID it must name): content and a
/// signature by one of `prev`'s rotation keys. Returns the signer's index.
pub(crate) fn check_successor(
    prev: &SignedOperation,
    prev_cid: &str,
    op: &SignedOperation,
) -> Result<usize, PlcError> {
    if matches!(prev.op, UnsignedOperation::Tombstone(_)) {
        return Err(PlcError::Tombstoned);
    }
    if matches!(op.op, UnsignedOperation::LegacyCreate(_)) {
        return Err(PlcError::LegacyCreate);
    }
    let named = op.op.prev().ok_or(PlcError::MissingPrev)?;
    if named != prev_cid {
        return Err(PlcError::PrevMismatch {
            expected: prev_cid.to_owned(),
            found: named.to_owned(),
        });
    }
    check_content(op)?;
    op.signer_index(&prev.op.rotation_keys())
}

/// Validates a DID's log of valid operations (`GET /:did/log`): the genesis derives
/// `did`, every later operation names the CID of the one before and is signed by one of
/// its rotation keys. Returns the final state, or [`PlcError::Tombstoned`].
pub fn validate_log(did: &PlcDid, ops: &[SignedOperation]) -> Result<PlcState, PlcError> {
    let (first, rest) = ops.split_first().ok_or(PlcError::NotFound)?;
    check_genesis(did, first)?;
    let mut prev = first;
    for op in rest {
        let cid = prev.cid()?.to_string();
        check_successor(prev, &cid, op)?;
        prev = op;
    }
    prev.state(did)
}
