//! MST node blocks: the wire format `{l, e: [{p, k, v, t}]}` and key heights.

use cid::Cid;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::MstError;
use crate::cbor;
use crate::store::BlockSource;

/// The height (layer) of a key: leading zero bits of SHA-256(key), counted in 2-bit
/// chunks, so that each layer holds about a quarter of the keys of the one below.
pub fn key_height(key: &[u8]) -> u32 {
    let digest = Sha256::digest(key);
    let mut zeros = 0;
    for byte in digest {
        if byte == 0 {
            zeros += 8;
            continue;
        }
        zeros += byte.leading_zeros();
        break;
    }
    zeros / 2
}

/// Length of the common prefix of two keys, in bytes.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryData {
    p: u64,
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    v: Cid,
    t: Option<Cid>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeData {
    l: Option<Cid>,
    e: Vec<EntryData>,
}

/// A pointer to a subtree: either only its CID, or the node itself in memory.
#[derive(Debug, Clone)]
pub(crate) enum Sub {
    Stored(Cid),
    Loaded(Box<Node>),
}

/// A decoded node with full keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) left: Option<Sub>,
    pub(crate) entries: Vec<Entry>,
    /// The node's CID while it is unchanged since it was loaded or last encoded.
    pub(crate) cid: Option<Cid>,
}

/// One key in a node with the subtree to its right.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Cid,
    pub(crate) right: Option<Sub>,
}

impl Node {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// The subtree before entry `idx` (the left link for 0).
    pub(crate) fn gap_mut(&mut self, idx: usize) -> &mut Option<Sub> {
        match idx.checked_sub(1) {
            None => &mut self.left,
            Some(i) => &mut self.entries[i].right,
        }
    }

    pub(crate) fn gap(&self, idx: usize) -> Option<&Sub> {
        match idx.checked_sub(1) {
            None => self.left.as_ref(),
            Some(i) => self.entries[i].right.as_ref(),
        }
    }

    /// The height of this node's entries, if it has any; checks they all agree.
    pub(crate) fn own_height(&self) -> Result<Option<u32>, MstError> {
        let mut heights = self.entries.iter().map(|e| key_height(&e.key));
        let Some(first) = heights.next() else {
            return Ok(None);
        };
        if heights.any(|h| h != first) {
            return Err(MstError::InvalidNode("entries of different heights".into()));
        }
        Ok(Some(first))
    }

    /// Checks that this node may sit at `layer`.
    pub(crate) fn check_layer(&self, layer: u32, is_root: bool) -> Result<(), MstError> {
        if let Some(h) = self.own_height()?
            && h != layer
        {
            return Err(MstError::InvalidNode(format!(
                "entries of height {h} in a node at layer {layer}"
            )));
        }
        if layer == 0 && (self.left.is_some() || self.entries.iter().any(|e| e.right.is_some())) {
            return Err(MstError::InvalidNode("subtree below layer 0".into()));
        }
        if !is_root && self.is_empty() {
            return Err(MstError::InvalidNode("empty non-root node".into()));
        }
        Ok(())
    }
}

fn link(sub: &Option<Sub>) -> Result<Option<Cid>, MstError> {
    match sub {
        None => Ok(None),
        Some(Sub::Stored(cid)) => Ok(Some(*cid)),
        Some(Sub::Loaded(node)) => node
            .cid
            .map(Some)
            .ok_or_else(|| MstError::InvalidNode("child not encoded yet".into())),
    }
}

/// Encodes a node whose children all have CIDs.
pub(crate) fn encode(node: &Node) -> Result<Vec<u8>, MstError> {
    let mut prev: &[u8] = &[];
    let mut e = Vec::with_capacity(node.entries.len());
    for entry in &node.entries {
        let p = common_prefix_len(prev, &entry.key);
        e.push(EntryData {
            p: p as u64,
            k: entry.key[p..].to_vec(),
            v: entry.value,
            t: link(&entry.right)?,
        });
        prev = &entry.key;
    }
    let data = NodeData {
        l: link(&node.left)?,
        e,
    };
    Ok(cbor::encode(&data)?)
}

/// Decodes a node block, refusing anything that is not the canonical encoding of a node
/// with strictly increasing keys.
pub(crate) fn decode(bytes: &[u8], cid: Cid) -> Result<Node, MstError> {
    let data: NodeData = cbor::decode(bytes)?;
    let mut entries: Vec<Entry> = Vec::with_capacity(data.e.len());
    for e in data.e {
        let prev: &[u8] = entries.last().map(|x| x.key.as_slice()).unwrap_or(&[]);
        let p = usize::try_from(e.p).unwrap_or(usize::MAX);
        if p > prev.len() {
            return Err(MstError::InvalidNode(
                "prefix longer than previous key".into(),
            ));
        }
        let mut key = prev[..p].to_vec();
        key.extend_from_slice(&e.k);
        if key.is_empty() || key.as_slice() <= prev {
            return Err(MstError::InvalidNode("keys not strictly increasing".into()));
        }
        entries.push(Entry {
            key,
            value: e.v,
            right: e.t.map(Sub::Stored),
        });
    }
    let node = Node {
        left: data.l.map(Sub::Stored),
        entries,
        cid: Some(cid),
    };
    // Re-encoding must give the same bytes: this refuses omitted nulls and prefix
    // lengths shorter than the common prefix.
    if encode(&node)? != bytes {
        return Err(MstError::InvalidNode("non-canonical node encoding".into()));
    }
    Ok(node)
}

/// Fetches and decodes the node `cid`.
pub(crate) fn fetch(src: &dyn BlockSource, cid: &Cid) -> Result<Node, MstError> {
    let bytes = src.block(cid)?.ok_or(MstError::MissingBlock(*cid))?;
    decode(&bytes, *cid)
}

/// Decodes an MST node block from untrusted bytes (for fuzzing and tools): the number of
/// entries it holds.
pub fn decode_node_block(bytes: &[u8]) -> Result<usize, MstError> {
    let node = decode(bytes, crate::cid::dag_cbor(bytes))?;
    node.own_height()?;
    Ok(node.entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_from_spec() {
        assert_eq!(key_height(b""), 0);
        assert_eq!(key_height(b"asdf"), 0);
        assert_eq!(key_height(b"blue"), 1);
        assert_eq!(key_height(b"app.bsky.feed.post/9adeb165882c"), 8);
    }
}
