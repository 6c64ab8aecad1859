//! Errors of key parsing, signing and verification.

use thiserror::Error;

/// Why a key could not be parsed or a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The algorithm name is not `ES256K` or `ES256`.
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The string is not valid multibase.
    #[error("invalid multibase encoding")]
    InvalidMultibase,
    /// The multibase prefix is not `z` (base58btc), the only one atproto uses.
    #[error("multibase prefix {0:?} is not base58btc ('z')")]
    UnsupportedMultibase(char),
    /// The multicodec varint prefix is missing or malformed.
    #[error("missing or malformed multicodec prefix")]
    InvalidMulticodec,
    /// The multicodec names a key type other than secp256k1-pub or p256-pub.
    #[error("unsupported multicodec 0x{0:x}")]
    UnsupportedMulticodec(u64),
    /// The string does not start with `did:key:`.
    #[error("not a did:key")]
    NotDidKey,
    /// The bytes are not a valid SEC1 point on the curve.
    #[error("invalid {0} public key")]
    InvalidPublicKey(crate::Algorithm),
    /// The bytes are not a valid 32-byte secret scalar.
    #[error("invalid {0} secret key")]
    InvalidSecretKey(crate::Algorithm),
    /// The signature is not exactly 64 bytes (DER signatures land here).
    #[error("signature is {0} bytes, expected 64-byte compact r||s")]
    SignatureLength(usize),
    /// The 64 bytes do not hold valid `r` and `s` scalars.
    #[error("malformed signature scalars")]
    MalformedSignature,
    /// The signature's `s` is in the upper half of the curve order (malleable form).
    #[error("high-S signature refused")]
    HighS,
    /// The signature does not match the message and key.
    #[error("signature does not verify")]
    BadSignature,
}
