//! An in-memory block store, for tests and short-lived tools.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use cid::Cid;

use super::{BlockMap, BlockSource, BlockStore, CommitUpdate, RepoHead, StoreError};

#[derive(Debug, Default)]
struct Inner {
    blocks: BlockMap,
    heads: BTreeMap<String, RepoHead>,
}

/// Blocks and heads in memory behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryBlockStore {
    inner: Mutex<Inner>,
}

impl MemoryBlockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.lock().blocks.len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-operation; every
        // operation below completes its mutation in one step, so the data is consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlockSource for MemoryBlockStore {
    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().blocks.get(cid).cloned())
    }
}

impl BlockStore for MemoryBlockStore {
    fn put_blocks(&self, blocks: &BlockMap) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for (cid, bytes) in blocks {
            inner.blocks.entry(*cid).or_insert_with(|| bytes.clone());
        }
        Ok(())
    }

    fn head(&self, did: &str) -> Result<Option<RepoHead>, StoreError> {
        Ok(self.lock().heads.get(did).copied())
    }

    fn apply_commit(&self, update: &CommitUpdate<'_>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let found = inner.heads.get(update.did).map(|h| h.commit);
        if found != update.prev {
            return Err(StoreError::head_mismatch(update.prev, found));
        }
        for (cid, bytes) in update.blocks {
            inner.blocks.entry(*cid).or_insert_with(|| bytes.clone());
        }
        inner.heads.insert(update.did.to_owned(), update.head);
        Ok(())
    }

    fn repos(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().heads.keys().cloned().collect())
    }
}
