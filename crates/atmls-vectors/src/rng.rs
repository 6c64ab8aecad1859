//! Fixed randomness: a ChaCha20 stream from a named seed, and an openmls provider whose
//! randomness is that stream (so KeyPackages come out the same on every run).

use std::sync::Mutex;

use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use openmls_traits::OpenMlsProvider;
use openmls_traits::random::OpenMlsRand;
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest as _, Sha256};

/// A deterministic byte stream: ChaCha20 keyed with SHA-256(`label`).
pub(crate) fn stream(label: &str) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(Sha256::digest(label.as_bytes()).into())
}

/// `n` fixed bytes named `label`.
pub(crate) fn bytes(label: &str, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    stream(label).fill_bytes(&mut out);
    out
}

/// `N` fixed bytes named `label`.
pub(crate) fn array<const N: usize>(label: &str) -> [u8; N] {
    let mut out = [0; N];
    stream(label).fill_bytes(&mut out);
    out
}

#[derive(Debug, thiserror::Error)]
#[error("fixed randomness failed")]
pub(crate) struct RandError;

/// openmls randomness from a fixed stream.
pub(crate) struct FixedRand(Mutex<ChaCha20Rng>);

impl OpenMlsRand for FixedRand {
    type Error = RandError;

    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let mut out = [0; N];
        self.0.lock().map_err(|_| RandError)?.fill_bytes(&mut out);
        Ok(out)
    }

    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        let mut out = vec![0; len];
        self.0.lock().map_err(|_| RandError)?.fill_bytes(&mut out);
        Ok(out)
    }
}

/// RustCrypto with fixed randomness and in-memory storage.
pub(crate) struct FixedProvider {
    crypto: RustCrypto,
    rand: FixedRand,
    storage: MemoryStorage,
}

impl FixedProvider {
    pub(crate) fn new(label: &str) -> Self {
        Self {
            crypto: RustCrypto::default(),
            rand: FixedRand(Mutex::new(stream(label))),
            storage: MemoryStorage::default(),
        }
    }
}

impl OpenMlsProvider for FixedProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = FixedRand;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.rand
    }
}
