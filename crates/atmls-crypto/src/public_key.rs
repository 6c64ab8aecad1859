//! Public keys: parsing from multikey, did:key, SEC1 and legacy multibase; verification.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k256::ecdsa::signature::Verifier as _;

use crate::multikey::{decode_base58btc, encode_base58btc, read_varint, write_varint};
use crate::{Algorithm, CryptoError, DID_KEY_PREFIX, SIGNATURE_LEN};

/// A public key on one of the atproto curves.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: Inner,
}

#[derive(Clone, PartialEq, Eq)]
enum Inner {
    K256(k256::ecdsa::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parses a multikey: base58btc multibase (`z…`) of the multicodec varint
    /// (`0xe7` secp256k1-pub or `0x1200` p256-pub) followed by the 33-byte compressed
    /// SEC1 point. Uncompressed points are refused, as the atproto spec requires.
    pub fn from_multikey(multikey: &str) -> Result<Self, CryptoError> {
        let bytes = decode_base58btc(multikey)?;
        let (code, key) = read_varint(&bytes)?;
        let alg = match code {
            0xe7 => Algorithm::Es256k,
            0x1200 => Algorithm::Es256,
            other => return Err(CryptoError::UnsupportedMulticodec(other)),
        };
        if key.len() != 33 {
            return Err(CryptoError::InvalidPublicKey(alg));
        }
        PublicKey::from_sec1_bytes(alg, key)
    }

    /// Encodes this key as a multikey (`z…`, compressed point).
    pub fn to_multikey(&self) -> String {
        let mut bytes = Vec::with_capacity(35);
        write_varint(self.algorithm().multicodec(), &mut bytes);
        bytes.extend_from_slice(&self.to_sec1_compressed());
        encode_base58btc(&bytes)
    }

    /// Parses a `did:key:z…` string.
    pub fn from_did_key(did_key: &str) -> Result<Self, CryptoError> {
        let multikey = did_key
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(CryptoError::NotDidKey)?;
        PublicKey::from_multikey(multikey)
    }

    /// Encodes this key as `did:key:` + multikey.
    pub fn to_did_key(&self) -> String {
        format!("{DID_KEY_PREFIX}{}", self.to_multikey())
    }

    /// Parses the legacy DID-document form (`EcdsaSecp256k1VerificationKey2019` /
    /// `EcdsaSecp256r1VerificationKey2019`): base58btc multibase of the raw SEC1 point,
    /// compressed or uncompressed, with no multicodec prefix.
    pub fn from_legacy_multibase(alg: Algorithm, multibase: &str) -> Result<Self, CryptoError> {
        let bytes = decode_base58btc(multibase)?;
        PublicKey::from_sec1_bytes(alg, &bytes)
    }

    /// Parses a SEC1 point, compressed (33 bytes) or uncompressed (65 bytes).
    pub fn from_sec1_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 33 && bytes.len() != 65 {
            return Err(CryptoError::InvalidPublicKey(alg));
        }
        let inner = match alg {
            Algorithm::Es256k => k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map(Inner::K256)
                .map_err(|_| CryptoError::InvalidPublicKey(alg))?,
            Algorithm::Es256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map(Inner::P256)
                .map_err(|_| CryptoError::InvalidPublicKey(alg))?,
        };
        Ok(PublicKey { inner })
    }

    /// The 33-byte compressed SEC1 encoding.
    pub fn to_sec1_compressed(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        match &self.inner {
            Inner::K256(k) => out.copy_from_slice(k.to_encoded_point(true).as_bytes()),
            Inner::P256(k) => out.copy_from_slice(k.to_encoded_point(true).as_bytes()),
        }
        out
    }

    /// The curve of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::K256(_) => Algorithm::Es256k,
            Inner::P256(_) => Algorithm::Es256,
        }
    }

    /// Verifies a 64-byte `r || s` signature over SHA-256 of `msg`.
    ///
    /// DER signatures (wrong length) and high-S signatures are refused.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        if sig.len() != SIGNATURE_LEN {
            return Err(CryptoError::SignatureLength(sig.len()));
        }
        match &self.inner {
            Inner::K256(key) => {
                let sig = k256::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| CryptoError::MalformedSignature)?;
                if sig.normalize_s().is_some() {
                    return Err(CryptoError::HighS);
                }
                key.verify(msg, &sig).map_err(|_| CryptoError::BadSignature)
            }
            Inner::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| CryptoError::MalformedSignature)?;
                if sig.normalize_s().is_some() {
                    return Err(CryptoError::HighS);
                }
                key.verify(msg, &sig).map_err(|_| CryptoError::BadSignature)
            }
        }
    }

    pub(crate) fn from_k256(key: k256::ecdsa::VerifyingKey) -> Self {
        PublicKey {
            inner: Inner::K256(key),
        }
    }

    pub(crate) fn from_p256(key: p256::ecdsa::VerifyingKey) -> Self {
        PublicKey {
            inner: Inner::P256(key),
        }
    }
}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.algorithm().hash(state);
        self.to_sec1_compressed().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_did_key())
    }
}

/// Displays the key as `did:key:z…`.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_key())
    }
}

/// Parses a `did:key:z…` string.
impl FromStr for PublicKey {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::from_did_key(s)
    }
}
