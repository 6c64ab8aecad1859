//! did:plc: operations, their validation, and (feature `plc-directory`) a PLC-compatible
//! development directory.
//!
//! Follows the did:plc spec v0.1: operations are DAG-CBOR encoded, signed (without the
//! `sig` field) by a rotation key with low-S compact ECDSA, linked by the CID of the
//! previous operation; the DID is `did:plc:` + the first 24 characters of base32 of
//! SHA-256 of the signed genesis operation.

#[cfg(feature = "plc-directory")]
pub mod directory;
mod error;
mod operation;
mod state;
mod validate;

pub use error::PlcError;
pub use operation::{
    GenesisBuilder, LegacyCreate, MAX_OPERATION_BYTES, PlcOperation, PlcService, SignedOperation,
    Tombstone, UnsignedOperation,
};
pub use state::PlcState;
pub use validate::{AuditEntry, RECOVERY_WINDOW, validate_log};
pub(crate) use validate::{check_genesis, check_successor};
