//! Secret keys: generation, import, low-S signing.

use std::fmt;

use k256::ecdsa::signature::Signer as _;
use k256::elliptic_curve::zeroize::Zeroizing;
use rand::rngs::OsRng;

use crate::{Algorithm, CryptoError, PublicKey, SIGNATURE_LEN};

/// A secret signing key on one of the atproto curves. Its `Debug` output hides the secret.
#[derive(Clone)]
pub struct SigningKey {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    K256(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate(alg: Algorithm) -> Self {
        let inner = match alg {
            Algorithm::Es256k => Inner::K256(k256::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::Es256 => Inner::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        };
        SigningKey { inner }
    }

    /// Imports a 32-byte big-endian secret scalar.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidSecretKey(alg));
        }
        let inner = match alg {
            Algorithm::Es256k => k256::ecdsa::SigningKey::from_slice(bytes)
                .map(Inner::K256)
                .map_err(|_| CryptoError::InvalidSecretKey(alg))?,
            Algorithm::Es256 => p256::ecdsa::SigningKey::from_slice(bytes)
                .map(Inner::P256)
                .map_err(|_| CryptoError::InvalidSecretKey(alg))?,
        };
        Ok(SigningKey { inner })
    }

    /// Exports the 32-byte secret scalar; the buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        match &self.inner {
            Inner::K256(k) => out.copy_from_slice(&k.to_bytes()),
            Inner::P256(k) => out.copy_from_slice(&k.to_bytes()),
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

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            Inner::K256(k) => PublicKey::from_k256(*k.verifying_key()),
            Inner::P256(k) => PublicKey::from_p256(*k.verifying_key()),
        }
    }

    /// Signs SHA-256 of `msg` (RFC 6979 deterministic nonce), returning the low-S
    /// 64-byte `r || s` form.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        match &self.inner {
            Inner::K256(k) => {
                let sig: k256::ecdsa::Signature = k.sign(msg);
                let sig = sig.normalize_s().unwrap_or(sig);
                sig.to_bytes().into()
            }
            Inner::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                let sig = sig.normalize_s().unwrap_or(sig);
                sig.to_bytes().into()
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_both_curves_low_s() {
        for alg in [Algorithm::Es256k, Algorithm::Es256] {
            let key = SigningKey::generate(alg);
            let public = key.public_key();
            assert_eq!(public.algorithm(), alg);
            for i in 0..32u8 {
                let msg = [i; 7];
                let sig = key.sign(&msg);
                public.verify(&msg, &sig).unwrap();
            }
            let sig = key.sign(b"x");
            assert_eq!(public.verify(b"y", &sig), Err(CryptoError::BadSignature));
            let restored = SigningKey::from_bytes(alg, &key.to_bytes()[..]).unwrap();
            assert_eq!(restored.public_key(), public);
        }
    }

    #[test]
    fn secret_key_checks() {
        assert!(SigningKey::from_bytes(Algorithm::Es256k, &[0u8; 32]).is_err());
        assert!(SigningKey::from_bytes(Algorithm::Es256, &[1u8; 31]).is_err());
        let dbg = format!("{:?}", SigningKey::generate(Algorithm::Es256));
        assert!(dbg.contains("did:key:"));
    }
}
