//! Errors of did:plc operations.

use thiserror::Error;

/// Why a did:plc operation or log is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlcError {
    /// The JSON is not a PLC operation.
    #[error("malformed operation: {0}")]
    Malformed(String),
    /// The operation could not be encoded as DAG-CBOR.
    #[error("operation cannot be encoded as DAG-CBOR: {0}")]
    Encoding(String),
    /// The DAG-CBOR encoding exceeds the 7500-byte limit.
    #[error("operation is {0} bytes, over the 7500-byte limit")]
    TooLarge(usize),
    /// The `sig` field is not canonical unpadded base64url of 64 bytes.
    #[error("signature is not canonical base64url of 64 bytes")]
    SignatureEncoding,
    /// No allowed rotation key verifies the signature.
    #[error("no rotation key verifies the signature")]
    InvalidSignature,
    /// A rotation key that is not a secp256k1 or P-256 did:key.
    #[error("invalid rotation key {0:?}")]
    InvalidRotationKey(String),
    /// Not between 1 and 5 rotation keys.
    #[error("{0} rotation keys, need 1 to 5")]
    RotationKeyCount(usize),
    /// The same rotation key listed twice.
    #[error("duplicate rotation key {0:?}")]
    DuplicateRotationKey(String),
    /// A verification method that is not a syntactically valid did:key.
    #[error("invalid verification method {0:?}")]
    InvalidVerificationMethod(String),
    /// More than 10 verification methods.
    #[error("{0} verification methods, at most 10")]
    TooManyVerificationMethods(usize),
    /// A service whose type or endpoint is empty.
    #[error("invalid service {0:?}")]
    InvalidService(String),
    /// The DID derived from the genesis operation is not the DID the operation was sent for.
    #[error("genesis operation derives {derived}, not {expected}")]
    DidMismatch {
        /// The DID the operation was submitted or logged under.
        expected: String,
        /// The DID the genesis operation hashes to.
        derived: String,
    },
    /// A first operation that is not a genesis (has `prev`, or is a tombstone).
    #[error("the first operation must be a genesis operation with prev null")]
    NotGenesis,
    /// A later operation with `prev` null.
    #[error("operation after genesis must name prev")]
    MissingPrev,
    /// `prev` is not the CID of the previous operation (log validation).
    #[error("prev {found} does not match the previous operation {expected}")]
    PrevMismatch {
        /// CID of the previous operation.
        expected: String,
        /// The `prev` the operation names.
        found: String,
    },
    /// `prev` names no valid operation of this DID.
    #[error("prev {0} is not a valid operation of this DID")]
    PrevNotFound(String),
    /// The DID is tombstoned: no operation may follow.
    #[error("DID is tombstoned")]
    Tombstoned,
    /// A legacy `create` operation submitted to the directory (accepted only in logs).
    #[error("legacy create operations are not accepted for new DIDs")]
    LegacyCreate,
    /// A fork (recovery) after the 72-hour window.
    #[error("recovery window of 72 hours has passed")]
    RecoveryWindowExpired,
    /// A fork signed by a key without higher priority than the operations it would nullify.
    #[error("recovery needs a rotation key of higher priority than the nullified operation's")]
    RecoveryKeyNotHigher,
    /// The DID is unknown to the directory.
    #[error("DID not registered")]
    NotFound,
    /// The directory's storage failed.
    #[error("storage error: {0}")]
    Storage(String),
}
