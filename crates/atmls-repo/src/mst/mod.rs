//! The Merkle search tree of repo format v3.
//!
//! Each key sits at the layer given by [`key_height`]; a node holds the keys of one layer
//! in order, with links to the subtrees of the layer below between them. The shape depends
//! only on the set of keys, never on the order they were added, so equal key sets give
//! equal root CIDs.
//!
//! [`Mst`] loads nodes lazily from a [`BlockSource`], keeps the nodes it touched in memory,
//! and [`Mst::unstored_blocks`] encodes the changed ones.

use cid::Cid;

use crate::cbor::CborError;
use crate::store::{BlockMap, BlockSource, StoreError};

mod node;
mod ops;
mod walk;

pub use node::{MAX_KEY_LEN, MAX_NODE_KEY_BYTES, common_prefix_len, decode_node_block, key_height};
pub use walk::DiffOp;

use node::{Node, Sub};

/// Why an MST operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MstError {
    /// A node the operation needs is not in the block source.
    #[error("missing MST block {0}")]
    MissingBlock(Cid),
    /// A node block that is not valid DAG-CBOR of the right shape.
    #[error("MST node: {0}")]
    Cbor(#[from] CborError),
    /// A node that breaks the tree's rules (order, layers, canonical form).
    #[error("invalid MST node: {0}")]
    InvalidNode(String),
    /// Insert of a key that is already present.
    #[error("key already present: {0}")]
    KeyExists(String),
    /// Update or delete of a key that is absent.
    #[error("key not found: {0}")]
    KeyNotFound(String),
    /// The empty key.
    #[error("empty key")]
    EmptyKey,
    /// A key longer than [`MAX_KEY_LEN`] bytes (in a node, or given to insert).
    #[error("key of {len} bytes, longer than {max}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A node, or a proof walk, whose keys add up to more than `max` bytes.
    #[error("more than {max} bytes of keys")]
    TooManyKeyBytes {
        /// The limit.
        max: usize,
    },
    /// The block source failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A decoded node, read-only, for strict walks over untrusted blocks.
#[derive(Debug)]
pub(crate) struct NodeView(Node);

/// Decodes a node block (canonical form and key order checked).
pub(crate) fn decode_node(bytes: &[u8], cid: Cid) -> Result<NodeView, MstError> {
    node::decode(bytes, cid).map(NodeView)
}

impl NodeView {
    pub(crate) fn keys(&self) -> Vec<&[u8]> {
        self.0.entries.iter().map(|e| e.key.as_slice()).collect()
    }

    pub(crate) fn has_left(&self) -> bool {
        self.0.left.is_some()
    }

    pub(crate) fn value_at(&self, idx: usize) -> Option<Cid> {
        self.0.entries.get(idx).map(|e| e.value)
    }

    pub(crate) fn gap_link(&self, idx: usize) -> Option<Cid> {
        match self.0.gap(idx) {
            Some(Sub::Stored(cid)) => Some(*cid),
            Some(Sub::Loaded(node)) => node.cid,
            None => None,
        }
    }
}

pub(crate) fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Keys and values in key order.
pub type Entries = Vec<(Vec<u8>, Cid)>;

/// A Merkle search tree over a block source.
#[derive(Debug, Clone)]
pub struct Mst {
    root: Sub,
}

impl Default for Mst {
    fn default() -> Self {
        Self::new()
    }
}

impl Mst {
    /// The empty tree.
    pub fn new() -> Self {
        Mst {
            root: Sub::Loaded(Box::default()),
        }
    }

    /// The tree whose root node is `root` (loaded lazily).
    pub fn load(root: Cid) -> Self {
        Mst {
            root: Sub::Stored(root),
        }
    }

    /// The value stored under `key`.
    pub fn get(&self, src: &dyn BlockSource, key: &[u8]) -> Result<Option<Cid>, MstError> {
        walk::get(src, &self.root, key)
    }

    /// Adds `key`; fails with [`MstError::KeyExists`] if it is present.
    pub fn insert(
        &mut self,
        src: &dyn BlockSource,
        key: &[u8],
        value: Cid,
    ) -> Result<(), MstError> {
        if key.is_empty() {
            return Err(MstError::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(MstError::KeyTooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        ops::insert_root(src, &mut self.root, key, value)
    }

    /// Replaces the value of `key`; fails with [`MstError::KeyNotFound`] if absent.
    /// Returns the old value.
    pub fn update(
        &mut self,
        src: &dyn BlockSource,
        key: &[u8],
        value: Cid,
    ) -> Result<Cid, MstError> {
        ops::update_root(src, &mut self.root, key, value)
    }

    /// Adds or replaces `key`, returning the old value.
    pub fn put(
        &mut self,
        src: &dyn BlockSource,
        key: &[u8],
        value: Cid,
    ) -> Result<Option<Cid>, MstError> {
        match self.get(src, key)? {
            Some(_) => self.update(src, key, value).map(Some),
            None => self.insert(src, key, value).map(|()| None),
        }
    }

    /// Removes `key`; fails with [`MstError::KeyNotFound`] if absent. Returns its value.
    pub fn delete(&mut self, src: &dyn BlockSource, key: &[u8]) -> Result<Cid, MstError> {
        ops::delete_root(src, &mut self.root, key)
    }

    /// The root CID, encoding changed nodes as needed.
    pub fn root_cid(&mut self) -> Result<Cid, MstError> {
        let mut sink = BlockMap::new();
        ops::persist(&mut self.root, &mut sink)
    }

    /// The root CID and the blocks of every node changed since the tree was loaded or
    /// this method was last called.
    pub fn unstored_blocks(&mut self) -> Result<(Cid, BlockMap), MstError> {
        let mut out = BlockMap::new();
        let cid = ops::persist(&mut self.root, &mut out)?;
        Ok((cid, out))
    }

    /// Entries in key order with keys greater than `after` (all if `None`), stopping
    /// after `limit` entries or at the first key not starting with `prefix`.
    pub fn list(
        &self,
        src: &dyn BlockSource,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cid)>, MstError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let from = match after {
            Some(a) if a >= prefix => Some(a),
            _ => None,
        };
        walk::walk_from(src, &self.root, from, prefix, &mut |k, v| {
            out.push((k.to_vec(), v));
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Every entry in key order.
    pub fn entries(&self, src: &dyn BlockSource) -> Result<Vec<(Vec<u8>, Cid)>, MstError> {
        self.list(src, b"", None, usize::MAX)
    }

    /// The entries reachable with the blocks `src` holds, in key order, and the number of
    /// subtrees skipped because their node is missing (0 for a complete tree). For
    /// inspecting partial CARs such as record proofs.
    pub fn reachable_entries(&self, src: &dyn BlockSource) -> Result<(Entries, usize), MstError> {
        let mut out = Vec::new();
        let mut missing = 0;
        walk::walk_available(src, &self.root, &mut out, &mut missing)?;
        Ok((out, missing))
    }

    /// Visits every node block (CID and bytes), root first, then in key order, with each
    /// entry's value CID reported through `on_leaf` between the subtrees around it.
    pub fn visit_blocks(
        &mut self,
        src: &dyn BlockSource,
        on_node: &mut dyn FnMut(Cid, Vec<u8>),
        on_leaf: &mut dyn FnMut(&[u8], Cid),
    ) -> Result<(), MstError> {
        self.root_cid()?;
        walk::visit_blocks(src, &self.root, on_node, on_leaf)
    }

    /// The node blocks on the path from the root to where `key` is or would be.
    pub fn path_blocks(&mut self, src: &dyn BlockSource, key: &[u8]) -> Result<BlockMap, MstError> {
        self.root_cid()?;
        let mut out = BlockMap::new();
        walk::path_blocks(src, &self.root, key, &mut out)?;
        Ok(out)
    }

    /// The blocks that prove `key`'s presence or absence and allow inverting its insertion
    /// or deletion: the paths to `key` and to its neighbours on either side.
    pub fn covering_proof(
        &mut self,
        src: &dyn BlockSource,
        key: &[u8],
    ) -> Result<BlockMap, MstError> {
        let mut out = self.path_blocks(src, key)?;
        if let Some((before, _)) = walk::last_before(src, &self.root, key)? {
            walk::path_blocks(src, &self.root, &before, &mut out)?;
        }
        let mut after = None;
        walk::walk_from(src, &self.root, Some(key), b"", &mut |k, _| {
            after = Some(k.to_vec());
            false
        })?;
        if let Some(after) = after {
            walk::path_blocks(src, &self.root, &after, &mut out)?;
        }
        Ok(out)
    }
}

/// The changes from the tree at `old` to the tree at `new`, both read from `src`, in key
/// order; subtrees with equal CIDs are skipped without being read.
pub fn diff(src: &dyn BlockSource, old: Cid, new: Cid) -> Result<Vec<DiffOp>, MstError> {
    walk::diff(src, old, new)
}

#[cfg(test)]
mod tests;
