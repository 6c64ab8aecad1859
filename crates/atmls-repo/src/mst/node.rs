//! MST node blocks: the wire format `{l, e: [{p, k, v, t}]}` and key heights.

use cid::Cid;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::MstError;
use crate::cbor;
use crate::store::BlockSource;

/// Longest MST key accepted, in bytes. A key is a repo path: an NSID (at most 317
/// bytes), `/`, and a record key (at most 512 bytes); 1024 leaves room and bounds what a
/// peer's node can make a decoder build.
pub const MAX_KEY_LEN: usize = 1024;

/// Most bytes of full keys one node may hold. Keys are prefix-compressed on the wire, so
/// without this a node of `n` entries could make a decoder build `n²/2` bytes; a real
/// node holds a handful of keys (fanout 4), and 256 entries of the longest key fit.
pub const MAX_NODE_KEY_BYTES: usize = 256 * MAX_KEY_LEN;

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
    let mut key_bytes = 0usize;
    for e in data.e {
        let prev: &[u8] = entries.last().map(|x| x.key.as_slice()).unwrap_or(&[]);
        let p = usize::try_from(e.p).unwrap_or(usize::MAX);
        if p > prev.len() {
            return Err(MstError::InvalidNode(
                "prefix longer than previous key".into(),
            ));
        }
        // Sizes are checked before the key is built.
        let len = p.saturating_add(e.k.len());
        if len > MAX_KEY_LEN {
            return Err(MstError::KeyTooLong {
                len,
                max: MAX_KEY_LEN,
            });
        }
        key_bytes += len;
        if key_bytes > MAX_NODE_KEY_BYTES {
            return Err(MstError::TooManyKeyBytes {
                max: MAX_NODE_KEY_BYTES,
            });
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

    fn node_bytes(entries: &[(u64, &[u8])]) -> Vec<u8> {
        let leaf = crate::cid::dag_cbor(b"leaf");
        let e = entries
            .iter()
            .map(|(p, k)| EntryData {
                p: *p,
                k: k.to_vec(),
                v: leaf,
                t: None,
            })
            .collect();
        cbor::encode(&NodeData { l: None, e }).unwrap()
    }

    #[test]
    fn key_length_is_capped() {
        let longest = vec![b'a'; MAX_KEY_LEN];
        let bytes = node_bytes(&[(0, &longest)]);
        assert_eq!(decode_node_block(&bytes).unwrap(), 1);
        let too_long = vec![b'a'; MAX_KEY_LEN + 1];
        let bytes = node_bytes(&[(0, &too_long)]);
        assert!(matches!(
            decode_node_block(&bytes),
            Err(MstError::KeyTooLong { len, max: MAX_KEY_LEN }) if len == MAX_KEY_LEN + 1
        ));
        // Built from a prefix: the full length counts.
        let half = vec![b'a'; MAX_KEY_LEN / 2 + 1];
        let bytes = node_bytes(&[(0, &half), (half.len() as u64, &half)]);
        assert!(matches!(
            decode_node_block(&bytes),
            Err(MstError::KeyTooLong { .. })
        ));
    }

    #[test]
    fn key_bytes_per_node_are_capped() {
        // Keys of MAX_KEY_LEN bytes that differ in their last two bytes only: a few wire
        // bytes each, MAX_KEY_LEN bytes built.
        let fits = MAX_NODE_KEY_BYTES / MAX_KEY_LEN;
        let keys: Vec<Vec<u8>> = (0..=fits as u16)
            .map(|i| {
                let mut key = vec![b'k'; MAX_KEY_LEN - 2];
                key.extend_from_slice(&i.to_be_bytes());
                key
            })
            .collect();
        let canonical = |n: usize| -> Vec<u8> {
            let mut prev: &[u8] = &[];
            let mut entries = Vec::new();
            for key in &keys[..n] {
                let p = common_prefix_len(prev, key);
                entries.push((p as u64, &key[p..]));
                prev = key;
            }
            node_bytes(&entries)
        };
        let within = canonical(fits);
        assert!(
            within.len() < 64 * fits + 2 * MAX_KEY_LEN,
            "{}",
            within.len()
        );
        // Within the cap: refused only for mixed heights, if at all.
        assert!(!matches!(
            decode_node_block(&within),
            Err(MstError::TooManyKeyBytes { .. } | MstError::KeyTooLong { .. })
        ));
        assert!(matches!(
            decode_node_block(&canonical(fits + 1)),
            Err(MstError::TooManyKeyBytes {
                max: MAX_NODE_KEY_BYTES
            })
        ));
    }

    #[test]
    fn heights_from_spec() {
        assert_eq!(key_height(b""), 0);
        assert_eq!(key_height(b"asdf"), 0);
        assert_eq!(key_height(b"blue"), 1);
        assert_eq!(key_height(b"app.bsky.feed.post/9adeb165882c"), 8);
    }
}
