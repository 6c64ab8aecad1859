//! Tree edits: insert, update and delete by splitting and merging subtrees along the path
//! of the key, plus encoding of the changed nodes.

use cid::Cid;

use super::node::{self, Entry, Node, Sub, key_height};
use super::{MstError, key_text};
use crate::store::{BlockMap, BlockSource};

/// Makes `sub` a loaded node (fetching it if needed) and returns it, checking its layer.
fn open<'a>(
    src: &dyn BlockSource,
    sub: &'a mut Sub,
    layer: u32,
    is_root: bool,
) -> Result<&'a mut Node, MstError> {
    if let Sub::Stored(cid) = sub {
        let node = node::fetch(src, cid)?;
        node.check_layer(layer, is_root)?;
        *sub = Sub::Loaded(Box::new(node));
    }
    match sub {
        Sub::Loaded(node) => Ok(node),
        Sub::Stored(_) => unreachable!("loaded just above"),
    }
}

/// Takes ownership of a subtree as a loaded node.
fn take(src: &dyn BlockSource, sub: Sub, layer: u32) -> Result<Box<Node>, MstError> {
    match sub {
        Sub::Loaded(node) => Ok(node),
        Sub::Stored(cid) => {
            let node = node::fetch(src, &cid)?;
            node.check_layer(layer, false)?;
            Ok(Box::new(node))
        }
    }
}

fn below(layer: u32) -> Result<u32, MstError> {
    layer
        .checked_sub(1)
        .ok_or_else(|| MstError::InvalidNode("subtree below layer 0".into()))
}

/// The layer of the root, loading the leftmost spine if the root holds no entries.
fn root_layer(src: &dyn BlockSource, root: &mut Sub) -> Result<Option<u32>, MstError> {
    if let Sub::Stored(cid) = root {
        let node = node::fetch(src, cid)?;
        node.own_height()?;
        *root = Sub::Loaded(Box::new(node));
    }
    let Sub::Loaded(node) = root else {
        unreachable!("loaded just above")
    };
    if let Some(h) = node.own_height()? {
        return Ok(Some(h));
    }
    match node.left.as_mut() {
        None => Ok(None),
        Some(child) => match root_layer(src, child)? {
            Some(h) => Ok(Some(h + 1)),
            None => Err(MstError::InvalidNode("empty non-root node".into())),
        },
    }
}

pub(crate) fn insert_root(
    src: &dyn BlockSource,
    root: &mut Sub,
    key: &[u8],
    value: Cid,
) -> Result<(), MstError> {
    let height = key_height(key);
    let layer = match root_layer(src, root)? {
        None => {
            *root = Sub::Loaded(Box::new(Node {
                left: None,
                entries: vec![Entry {
                    key: key.to_vec(),
                    value,
                    right: None,
                }],
                cid: None,
            }));
            return Ok(());
        }
        Some(layer) => layer,
    };
    let mut layer = layer;
    // A key above the root: stack entry-less parents on top until the root is at its
    // height; the insert below then splits them.
    while layer < height {
        let old = std::mem::replace(root, Sub::Loaded(Box::default()));
        *root = Sub::Loaded(Box::new(Node {
            left: Some(old),
            entries: Vec::new(),
            cid: None,
        }));
        layer += 1;
    }
    let node = open(src, root, layer, true)?;
    insert(src, node, layer, key, value, height)
}

fn insert(
    src: &dyn BlockSource,
    node: &mut Node,
    layer: u32,
    key: &[u8],
    value: Cid,
    height: u32,
) -> Result<(), MstError> {
    let idx = node.entries.partition_point(|e| e.key.as_slice() < key);
    if node.entries.get(idx).is_some_and(|e| e.key == key) {
        return Err(MstError::KeyExists(key_text(key)));
    }
    node.cid = None;
    if height == layer {
        let gap = node.gap_mut(idx).take();
        let (left, right) = match gap {
            None => (None, None),
            Some(sub) => split(src, sub, below(layer)?, key)?,
        };
        *node.gap_mut(idx) = left;
        node.entries.insert(
            idx,
            Entry {
                key: key.to_vec(),
                value,
                right,
            },
        );
        return Ok(());
    }
    let child_layer = below(layer)?;
    let gap = node.gap_mut(idx);
    let sub = gap.get_or_insert_with(|| Sub::Loaded(Box::default()));
    let child = open(src, sub, child_layer, true)?;
    insert(src, child, child_layer, key, value, height)
}

fn some_node(node: Node) -> Option<Sub> {
    if node.is_empty() {
        None
    } else {
        Some(Sub::Loaded(Box::new(node)))
    }
}

/// Splits a subtree at `layer` into the parts before and after `key` (absent from it).
fn split(
    src: &dyn BlockSource,
    sub: Sub,
    layer: u32,
    key: &[u8],
) -> Result<(Option<Sub>, Option<Sub>), MstError> {
    let mut node = take(src, sub, layer)?;
    let idx = node.entries.partition_point(|e| e.key.as_slice() < key);
    if node.entries.get(idx).is_some_and(|e| e.key == key) {
        return Err(MstError::KeyExists(key_text(key)));
    }
    let right_entries = node.entries.split_off(idx);
    let gap = node.gap_mut(idx).take();
    let (gap_left, gap_right) = match gap {
        None => (None, None),
        Some(sub) => split(src, sub, below(layer)?, key)?,
    };
    *node.gap_mut(idx) = gap_left;
    node.cid = None;
    let right = Node {
        left: gap_right,
        entries: right_entries,
        cid: None,
    };
    Ok((some_node(*node), some_node(right)))
}

/// Joins two subtrees at `layer` whose keys are all in order (`a` before `b`).
fn merge(
    src: &dyn BlockSource,
    a: Option<Sub>,
    b: Option<Sub>,
    layer: u32,
) -> Result<Option<Sub>, MstError> {
    let (a, b) = match (a, b) {
        (None, x) | (x, None) => return Ok(x),
        (Some(a), Some(b)) => (a, b),
    };
    let mut a = take(src, a, layer)?;
    let mut b = take(src, b, layer)?;
    let last = a.entries.len();
    let a_tail = a.gap_mut(last).take();
    let b_head = b.left.take();
    let middle = if a_tail.is_some() && b_head.is_some() {
        merge(src, a_tail, b_head, below(layer)?)?
    } else {
        a_tail.or(b_head)
    };
    *a.gap_mut(last) = middle;
    a.entries.append(&mut b.entries);
    a.cid = None;
    Ok(Some(Sub::Loaded(a)))
}

pub(crate) fn update_root(
    src: &dyn BlockSource,
    root: &mut Sub,
    key: &[u8],
    value: Cid,
) -> Result<Cid, MstError> {
    let Some(layer) = root_layer(src, root)? else {
        return Err(MstError::KeyNotFound(key_text(key)));
    };
    let mut node = open(src, root, layer, true)?;
    let mut layer = layer;
    loop {
        let idx = node.entries.partition_point(|e| e.key.as_slice() < key);
        node.cid = None;
        if let Some(entry) = node.entries.get_mut(idx).filter(|e| e.key == key) {
            return Ok(std::mem::replace(&mut entry.value, value));
        }
        let Some(sub) = node.gap_mut(idx).as_mut() else {
            return Err(MstError::KeyNotFound(key_text(key)));
        };
        layer = below(layer)?;
        node = open(src, sub, layer, false)?;
    }
}

pub(crate) fn delete_root(
    src: &dyn BlockSource,
    root: &mut Sub,
    key: &[u8],
) -> Result<Cid, MstError> {
    let Some(layer) = root_layer(src, root)? else {
        return Err(MstError::KeyNotFound(key_text(key)));
    };
    let node = open(src, root, layer, true)?;
    let old = delete(src, node, layer, key)?;
    // Trim entry-less roots: the tree's root sits at the height of its highest key.
    let mut layer = layer;
    loop {
        let node = open(src, root, layer, true)?;
        if !node.entries.is_empty() {
            break;
        }
        match node.left.take() {
            None => {
                *root = Sub::Loaded(Box::default());
                break;
            }
            Some(child) => {
                *root = child;
                layer = below(layer)?;
            }
        }
    }
    Ok(old)
}

fn delete(src: &dyn BlockSource, node: &mut Node, layer: u32, key: &[u8]) -> Result<Cid, MstError> {
    let idx = node.entries.partition_point(|e| e.key.as_slice() < key);
    if node.entries.get(idx).is_some_and(|e| e.key == key) {
        node.cid = None;
        let removed = node.entries.remove(idx);
        let left = node.gap_mut(idx).take();
        let merged = if left.is_some() && removed.right.is_some() {
            merge(src, left, removed.right, below(layer)?)?
        } else {
            left.or(removed.right)
        };
        *node.gap_mut(idx) = merged;
        return Ok(removed.value);
    }
    let child_layer = below(layer).map_err(|_| MstError::KeyNotFound(key_text(key)))?;
    node.cid = None;
    let Some(sub) = node.gap_mut(idx).as_mut() else {
        return Err(MstError::KeyNotFound(key_text(key)));
    };
    let child = open(src, sub, child_layer, false)?;
    let old = delete(src, child, child_layer, key)?;
    if child.is_empty() {
        *node.gap_mut(idx) = None;
    }
    Ok(old)
}

/// Encodes every changed node below and including `sub`, adding the new blocks to `out`.
pub(crate) fn persist(sub: &mut Sub, out: &mut BlockMap) -> Result<Cid, MstError> {
    let node = match sub {
        Sub::Stored(cid) => return Ok(*cid),
        Sub::Loaded(node) => node,
    };
    if let Some(cid) = node.cid {
        return Ok(cid);
    }
    if let Some(left) = node.left.as_mut() {
        persist(left, out)?;
    }
    for entry in &mut node.entries {
        if let Some(right) = entry.right.as_mut() {
            persist(right, out)?;
        }
    }
    let bytes = node::encode(node)?;
    let cid = crate::cid::dag_cbor(&bytes);
    out.insert(cid, bytes);
    node.cid = Some(cid);
    Ok(cid)
}
