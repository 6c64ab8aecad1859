//! The two curves atproto accepts.

use std::fmt;
use std::str::FromStr;

use crate::CryptoError;

/// A signature algorithm allowed by atproto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on secp256k1 with SHA-256 (`ES256K`), the usual atproto key.
    Es256k,
    /// ECDSA on NIST P-256 with SHA-256 (`ES256`).
    Es256,
}

impl Algorithm {
    /// The JWT `alg` name: `"ES256K"` or `"ES256"`.
    pub fn jwt_name(self) -> &'static str {
        match self {
            Algorithm::Es256k => "ES256K",
            Algorithm::Es256 => "ES256",
        }
    }

    /// Parses a JWT `alg` name; anything but `ES256K` and `ES256` is refused.
    pub fn from_jwt_name(name: &str) -> Result<Self, CryptoError> {
        match name {
            "ES256K" => Ok(Algorithm::Es256k),
            "ES256" => Ok(Algorithm::Es256),
            other => Err(CryptoError::UnsupportedAlgorithm(other.to_owned())),
        }
    }

    /// The multicodec code of this curve's compressed public key
    /// (`0xe7` secp256k1-pub, `0x1200` p256-pub).
    pub fn multicodec(self) -> u64 {
        match self {
            Algorithm::Es256k => 0xe7,
            Algorithm::Es256 => 0x1200,
        }
    }

    /// The legacy DID-document verification method type for this curve
    /// (`EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`).
    pub fn legacy_did_doc_suite(self) -> &'static str {
        match self {
            Algorithm::Es256k => "EcdsaSecp256k1VerificationKey2019",
            Algorithm::Es256 => "EcdsaSecp256r1VerificationKey2019",
        }
    }

    /// The curve named by a legacy DID-document verification method type, if any.
    pub fn from_legacy_did_doc_suite(suite: &str) -> Option<Self> {
        match suite {
            "EcdsaSecp256k1VerificationKey2019" => Some(Algorithm::Es256k),
            "EcdsaSecp256r1VerificationKey2019" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwt_name())
    }
}

impl FromStr for Algorithm {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_jwt_name(s)
    }
}
