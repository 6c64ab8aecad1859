//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's `tests/fixtures` folder.
pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A file of `tests/fixtures/official-pds/`.
pub(crate) fn official(name: &str) -> Vec<u8> {
    let path = fixtures().join("official-pds").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use atmls_crypto::PublicKey;
use atmls_identity::resolve::ResolveFuture;
use atmls_identity::{Did, DidDocument, DidResolver, ResolveError, VerificationMethod};

/// A resolver over an in-memory map that tests can change, counting fetches.
#[derive(Default)]
pub(crate) struct MapResolver {
    docs: Mutex<HashMap<Did, DidDocument>>,
    fetches: AtomicUsize,
}

impl MapResolver {
    pub(crate) fn insert(&self, doc: DidDocument) {
        self.docs.lock().unwrap().insert(doc.id.clone(), doc);
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl DidResolver for MapResolver {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let found = self.docs.lock().unwrap().get(did).cloned();
        Box::pin(async move { found.map(Arc::new).ok_or(ResolveError::NotFound) })
    }
}

/// A minimal document for `did` with `key` as `#atproto` (Multikey form).
pub(crate) fn doc_with_key(did: &str, key: &PublicKey) -> DidDocument {
    let did = Did::new(did).unwrap();
    DidDocument {
        context: None,
        verification_method: vec![VerificationMethod::multikey(&did, "atproto", key)],
        id: did,
        also_known_as: Vec::new(),
        service: Vec::new(),
    }
}
