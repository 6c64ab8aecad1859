//! atproto cryptography: ES256K (secp256k1) and ES256 (P-256) keys, low-S compact
//! signatures, and the multikey / did:key / legacy multibase encodings used in DID
//! documents. Shared by the repo layer (commit signatures) and identity (DID documents,
//! service-auth JWTs).
//!
//! Every signature is ECDSA over SHA-256 of the message, encoded as 64 bytes `r || s`.
//! Signing always produces the low-S form; verification refuses high-S and DER
//! signatures, as the atproto cryptography spec requires.
//!
//! ```
//! use atmls_crypto::{Algorithm, PublicKey, SigningKey};
//!
//! let key = SigningKey::generate(Algorithm::Es256k);
//! let sig = key.sign(b"hello");
//! let did_key = key.public_key().to_did_key();
//! assert!(did_key.starts_with("did:key:zQ3s"));
//!
//! let public = PublicKey::from_did_key(&did_key)?;
//! public.verify(b"hello", &sig)?;
//! assert!(public.verify(b"other", &sig).is_err());
//! # Ok::<(), atmls_crypto::CryptoError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod algorithm;
mod error;
mod multikey;
mod public_key;
mod signing_key;

pub use algorithm::Algorithm;
pub use error::CryptoError;
pub use k256::elliptic_curve::zeroize::Zeroizing;
pub use public_key::PublicKey;
pub use signing_key::SigningKey;

/// Length in bytes of a compact `r || s` signature.
pub const SIGNATURE_LEN: usize = 64;

/// The `did:key:` prefix.
pub const DID_KEY_PREFIX: &str = "did:key:";

/// SHA-256 of `data`, the digest every atproto signature is made over.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}
