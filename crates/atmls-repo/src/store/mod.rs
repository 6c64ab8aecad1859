//! Block stores: content-addressed blocks plus one head (commit CID and rev) per repo.
//!
//! [`BlockStore`] is the contract; [`MemoryBlockStore`] and (feature `sqlite`)
//! [`SqliteBlockStore`] implement it, and one test suite (`atmls_testkit::block_store`, run
//! from `tests/block_store_suite.rs`) runs against both.

use std::collections::BTreeMap;

use cid::Cid;

use crate::tid::Tid;

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryBlockStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteBlockStore, SqliteConfig, Synchronous};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The repo's head is not the one the commit was built on (another writer won).
    #[error("repo head moved: expected {:?}, found {:?}", .0.expected, .0.found)]
    HeadMismatch(Box<HeadMismatch>),
    /// Stored data that cannot be read back (e.g. a bad CID or rev).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The storage backend failed.
    #[error("storage backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The heads of a refused [`BlockStore::apply_commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadMismatch {
    /// The head the writer expected.
    pub expected: Option<Cid>,
    /// The head in the store.
    pub found: Option<Cid>,
}

impl StoreError {
    pub(crate) fn head_mismatch(expected: Option<Cid>, found: Option<Cid>) -> Self {
        StoreError::HeadMismatch(Box::new(HeadMismatch { expected, found }))
    }
}

/// Something blocks can be read from: a store, or the blocks of a CAR file.
pub trait BlockSource {
    /// The block named `cid`, if present.
    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Blocks in CID order, e.g. the new blocks of a commit or the content of a CAR file.
pub type BlockMap = BTreeMap<Cid, Vec<u8>>;

impl BlockSource for BlockMap {
    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(cid).cloned())
    }
}

impl<T: BlockSource + ?Sized> BlockSource for &T {
    fn block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).block(cid)
    }
}

/// A repo's current commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoHead {
    /// CID of the latest commit.
    pub commit: Cid,
    /// Its revision.
    pub rev: Tid,
}

/// Everything one commit writes, applied atomically by [`BlockStore::apply_commit`].
#[derive(Debug, Clone)]
pub struct CommitUpdate<'a> {
    /// The repo.
    pub did: &'a str,
    /// New blocks: records, MST nodes and the commit.
    pub blocks: &'a BlockMap,
    /// The new head.
    pub head: RepoHead,
    /// The head this commit was built on (`None` for a new repo); the store refuses the
    /// update with [`StoreError::HeadMismatch`] if the current head differs.
    pub prev: Option<Cid>,
}

/// Content-addressed block storage for many repos, with one head per repo.
pub trait BlockStore: BlockSource + Send + Sync {
    /// Whether the block is present.
    fn has_block(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.block(cid)?.is_some())
    }

    /// Stores blocks (idempotent), outside any commit.
    fn put_blocks(&self, blocks: &BlockMap) -> Result<(), StoreError>;

    /// The head of the repo `did`, if it exists.
    fn head(&self, did: &str) -> Result<Option<RepoHead>, StoreError>;

    /// Stores a commit's blocks and moves the head, all or nothing, if the head is still
    /// `update.prev`.
    fn apply_commit(&self, update: &CommitUpdate<'_>) -> Result<(), StoreError>;

    /// The DIDs of all repos with a head, sorted.
    fn repos(&self) -> Result<Vec<String>, StoreError>;
}
