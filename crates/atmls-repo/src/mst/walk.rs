//! Reading the tree: lookups, ordered walks, paths and diffs. Nothing here changes it.

use std::cmp::Ordering;
use std::ops::Deref;

use cid::Cid;

use super::MstError;
use super::node::{self, Node, Sub, key_height};
use crate::store::{BlockMap, BlockSource};

enum NodeRef<'a> {
    Borrowed(&'a Node),
    Owned(Box<Node>),
}

impl Deref for NodeRef<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        match self {
            NodeRef::Borrowed(n) => n,
            NodeRef::Owned(n) => n,
        }
    }
}

fn resolve<'a>(src: &dyn BlockSource, sub: &'a Sub) -> Result<NodeRef<'a>, MstError> {
    match sub {
        Sub::Loaded(node) => Ok(NodeRef::Borrowed(node)),
        Sub::Stored(cid) => Ok(NodeRef::Owned(Box::new(node::fetch(src, cid)?))),
    }
}

pub(crate) fn get(src: &dyn BlockSource, sub: &Sub, key: &[u8]) -> Result<Option<Cid>, MstError> {
    let node = resolve(src, sub)?;
    let idx = node.entries.partition_point(|e| e.key.as_slice() < key);
    if let Some(e) = node.entries.get(idx).filter(|e| e.key == key) {
        return Ok(Some(e.value));
    }
    match node.gap(idx) {
        None => Ok(None),
        Some(child) => get(src, child, key),
    }
}

/// Calls `f` on entries in order, starting at the first key that is at least `prefix`
/// and greater than `after`; stops when `f` returns false or a key leaves `prefix`.
/// Returns false if stopped.
pub(crate) fn walk_from(
    src: &dyn BlockSource,
    sub: &Sub,
    after: Option<&[u8]>,
    prefix: &[u8],
    f: &mut dyn FnMut(&[u8], Cid) -> bool,
) -> Result<bool, MstError> {
    let node = resolve(src, sub)?;
    let idx = node.entries.partition_point(|e| {
        e.key.as_slice() < prefix || after.is_some_and(|a| e.key.as_slice() <= a)
    });
    if let Some(gap) = node.gap(idx)
        && !walk_from(src, gap, after, prefix, f)?
    {
        return Ok(false);
    }
    for entry in &node.entries[idx..] {
        if !entry.key.starts_with(prefix) || !f(&entry.key, entry.value) {
            return Ok(false);
        }
        if let Some(right) = &entry.right
            && !walk_from(src, right, None, prefix, f)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The greatest entry with a key less than `before`.
pub(crate) fn last_before(
    src: &dyn BlockSource,
    sub: &Sub,
    before: &[u8],
) -> Result<Option<(Vec<u8>, Cid)>, MstError> {
    let node = resolve(src, sub)?;
    let idx = node.entries.partition_point(|e| e.key.as_slice() < before);
    if let Some(gap) = node.gap(idx)
        && let Some(found) = last_before(src, gap, before)?
    {
        return Ok(Some(found));
    }
    Ok(idx
        .checked_sub(1)
        .map(|i| (node.entries[i].key.clone(), node.entries[i].value)))
}

fn node_block(src: &dyn BlockSource, sub: &Sub) -> Result<(Cid, Vec<u8>), MstError> {
    match sub {
        Sub::Stored(cid) => {
            let bytes = src.block(cid)?.ok_or(MstError::MissingBlock(*cid))?;
            Ok((*cid, bytes))
        }
        Sub::Loaded(node) => {
            let cid = node
                .cid
                .ok_or_else(|| MstError::InvalidNode("node not encoded yet".into()))?;
            Ok((cid, node::encode(node)?))
        }
    }
}

pub(crate) fn path_blocks(
    src: &dyn BlockSource,
    sub: &Sub,
    key: &[u8],
    out: &mut BlockMap,
) -> Result<(), MstError> {
    let (cid, bytes) = node_block(src, sub)?;
    out.insert(cid, bytes);
    let node = resolve(src, sub)?;
    let idx = node.entries.partition_point(|e| e.key.as_slice() < key);
    if node.entries.get(idx).is_some_and(|e| e.key == key) {
        return Ok(());
    }
    match node.gap(idx) {
        None => Ok(()),
        Some(child) => path_blocks(src, child, key, out),
    }
}

pub(crate) fn visit_blocks(
    src: &dyn BlockSource,
    sub: &Sub,
    on_node: &mut dyn FnMut(Cid, Vec<u8>),
    on_leaf: &mut dyn FnMut(&[u8], Cid),
) -> Result<(), MstError> {
    let (cid, bytes) = node_block(src, sub)?;
    on_node(cid, bytes);
    let node = resolve(src, sub)?;
    if let Some(left) = &node.left {
        visit_blocks(src, left, on_node, on_leaf)?;
    }
    for entry in &node.entries {
        on_leaf(&entry.key, entry.value);
        if let Some(right) = &entry.right {
            visit_blocks(src, right, on_node, on_leaf)?;
        }
    }
    Ok(())
}

/// One difference between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiffOp {
    /// A key only in the new tree.
    Create {
        /// The key.
        key: Vec<u8>,
        /// Its value.
        cid: Cid,
    },
    /// A key in both with different values.
    Update {
        /// The key.
        key: Vec<u8>,
        /// The value in the old tree.
        old: Cid,
        /// The value in the new tree.
        new: Cid,
    },
    /// A key only in the old tree.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// Its value in the old tree.
        cid: Cid,
    },
}

enum Item {
    Leaf(Vec<u8>, Cid),
    Tree(Cid, u32),
}

/// The layer of the node `cid`, descending through entry-less nodes.
fn stored_layer(src: &dyn BlockSource, cid: &Cid) -> Result<u32, MstError> {
    let node = node::fetch(src, cid)?;
    match (node.entries.first(), &node.left) {
        (Some(e), _) => Ok(key_height(&e.key)),
        (None, Some(Sub::Stored(child))) => Ok(stored_layer(src, child)? + 1),
        _ => Ok(0),
    }
}

fn expand(
    src: &dyn BlockSource,
    stack: &mut Vec<Item>,
    cid: Cid,
    layer: u32,
) -> Result<(), MstError> {
    let node = node::fetch(src, &cid)?;
    let child_layer = layer.saturating_sub(1);
    for entry in node.entries.into_iter().rev() {
        if let Some(Sub::Stored(right)) = entry.right {
            stack.push(Item::Tree(right, child_layer));
        }
        stack.push(Item::Leaf(entry.key, entry.value));
    }
    if let Some(Sub::Stored(left)) = node.left {
        stack.push(Item::Tree(left, child_layer));
    }
    Ok(())
}

pub(crate) fn diff(src: &dyn BlockSource, old: Cid, new: Cid) -> Result<Vec<DiffOp>, MstError> {
    let mut ops = Vec::new();
    if old == new {
        return Ok(ops);
    }
    let mut a = vec![Item::Tree(old, stored_layer(src, &old)?)];
    let mut b = vec![Item::Tree(new, stored_layer(src, &new)?)];
    loop {
        match (a.last(), b.last()) {
            (None, None) => break,
            (Some(Item::Tree(ca, la)), Some(Item::Tree(cb, lb))) => {
                let (ca, la, cb, lb) = (*ca, *la, *cb, *lb);
                if ca == cb {
                    a.pop();
                    b.pop();
                    continue;
                }
                if la >= lb {
                    a.pop();
                    expand(src, &mut a, ca, la)?;
                }
                if lb >= la {
                    b.pop();
                    expand(src, &mut b, cb, lb)?;
                }
            }
            (Some(Item::Tree(ca, la)), _) => {
                let (ca, la) = (*ca, *la);
                a.pop();
                expand(src, &mut a, ca, la)?;
            }
            (_, Some(Item::Tree(cb, lb))) => {
                let (cb, lb) = (*cb, *lb);
                b.pop();
                expand(src, &mut b, cb, lb)?;
            }
            (Some(Item::Leaf(ka, va)), Some(Item::Leaf(kb, vb))) => match ka.cmp(kb) {
                Ordering::Equal => {
                    if va != vb {
                        ops.push(DiffOp::Update {
                            key: ka.clone(),
                            old: *va,
                            new: *vb,
                        });
                    }
                    a.pop();
                    b.pop();
                }
                Ordering::Less => {
                    ops.push(DiffOp::Delete {
                        key: ka.clone(),
                        cid: *va,
                    });
                    a.pop();
                }
                Ordering::Greater => {
                    ops.push(DiffOp::Create {
                        key: kb.clone(),
                        cid: *vb,
                    });
                    b.pop();
                }
            },
            (Some(Item::Leaf(ka, va)), None) => {
                ops.push(DiffOp::Delete {
                    key: ka.clone(),
                    cid: *va,
                });
                a.pop();
            }
            (None, Some(Item::Leaf(kb, vb))) => {
                ops.push(DiffOp::Create {
                    key: kb.clone(),
                    cid: *vb,
                });
                b.pop();
            }
        }
    }
    Ok(ops)
}

/// Collects the entries reachable with the blocks at hand, counting missing subtrees.
pub(crate) fn walk_available(
    src: &dyn BlockSource,
    sub: &Sub,
    out: &mut Vec<(Vec<u8>, Cid)>,
    missing: &mut usize,
) -> Result<(), MstError> {
    if let Sub::Stored(cid) = sub
        && src.block(cid)?.is_none()
    {
        *missing += 1;
        return Ok(());
    }
    let node = resolve(src, sub)?;
    if let Some(left) = &node.left {
        walk_available(src, left, out, missing)?;
    }
    for entry in &node.entries {
        out.push((entry.key.clone(), entry.value));
        if let Some(right) = &entry.right {
            walk_available(src, right, out, missing)?;
        }
    }
    Ok(())
}
