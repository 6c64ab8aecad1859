//! Record proofs as `com.atproto.sync.getRecord` returns them: a CAR whose root is the
//! signed commit, holding the MST nodes on the path to the record's key and, when the
//! record exists, the record block.
//!
//! [`verify_record_proof`] checks, in order: the CAR (every block against its CID), the
//! single root and its commit block, the commit's DID, the commit signature against the
//! given key, then the MST path from the commit's `data` to the key (canonical nodes,
//! ordered keys within the bounds of the path, key heights matching their layer), and
//! finally the record block. Absence is proven only when the walk ends in a node whose
//! gap at the key has no subtree, with the neighbouring keys present in that node.

use atmls_crypto::PublicKey;
use cid::Cid;
use ipld_core::ipld::Ipld;

use crate::car::{self, Car, CarError};
use crate::cbor::{self, CborError};
use crate::commit::{Commit, CommitError};
use crate::mst::{MstError, key_height};
use crate::store::{BlockMap, BlockSource};
use crate::syntax::{Did, RepoPath};

/// Why a proof does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The CAR file is malformed or a block does not match its CID.
    #[error("CAR: {0}")]
    Car(#[from] CarError),
    /// The CAR does not have exactly one root.
    #[error("expected exactly one root, found {0}")]
    Roots(usize),
    /// A block the proof needs is not in the CAR.
    #[error("block {0} missing from the proof")]
    MissingBlock(Cid),
    /// The commit is malformed or its signature does not verify.
    #[error("commit: {0}")]
    Commit(#[from] CommitError),
    /// The commit is for another repo.
    #[error("commit is for {found}, expected {expected}")]
    DidMismatch {
        /// The DID asked for.
        expected: Did,
        /// The DID in the commit.
        found: Did,
    },
    /// An MST node on the path is malformed or out of place.
    #[error("MST: {0}")]
    Mst(#[from] MstError),
    /// The record block is not canonical DAG-CBOR, or not an object.
    #[error("record: {0}")]
    Record(CborError),
}

/// A verified answer: the commit, and the record if it exists.
#[derive(Debug, Clone)]
pub struct RecordProof {
    commit_cid: Cid,
    commit: Commit,
    record: Option<(Cid, Ipld)>,
}

impl RecordProof {
    /// CID of the verified commit.
    pub fn commit_cid(&self) -> Cid {
        self.commit_cid
    }

    /// The verified commit.
    pub fn commit(&self) -> &Commit {
        &self.commit
    }

    /// The record's CID and value if the proof shows it present, `None` if it proves
    /// absence.
    pub fn record(&self) -> Option<(&Cid, &Ipld)> {
        self.record.as_ref().map(|(c, v)| (c, v))
    }
}

/// Verifies a `getRecord` CAR for `path` in the repo of `did`, signed by `key`.
pub fn verify_record_proof(
    car_bytes: &[u8],
    did: &Did,
    key: &PublicKey,
    path: &RepoPath,
) -> Result<RecordProof, ProofError> {
    let car = car::read(car_bytes)?;
    verify_record_in_car(&car, did, key, path)
}

/// Like [`verify_record_proof`] on an already parsed CAR.
pub fn verify_record_in_car(
    car: &Car,
    did: &Did,
    key: &PublicKey,
    path: &RepoPath,
) -> Result<RecordProof, ProofError> {
    let (commit_cid, commit) = signed_commit(car, did, key)?;
    let record_key = path.to_key();
    let record = match find(&car.blocks, commit.data(), record_key.as_bytes())? {
        None => None,
        Some(cid) => {
            let bytes = car.blocks.get(&cid).ok_or(ProofError::MissingBlock(cid))?;
            let value = cbor::decode_ipld(bytes).map_err(ProofError::Record)?;
            if !matches!(value, Ipld::Map(_)) {
                return Err(ProofError::Record(CborError::Shape(
                    "record is not an object".into(),
                )));
            }
            Some((cid, value))
        }
    };
    Ok(RecordProof {
        commit_cid,
        commit,
        record,
    })
}

/// The CAR's single root as a commit for `did`, with its signature checked against `key`.
pub fn signed_commit(car: &Car, did: &Did, key: &PublicKey) -> Result<(Cid, Commit), ProofError> {
    let (cid, commit) = root_commit(car)?;
    if commit.did() != did {
        return Err(ProofError::DidMismatch {
            expected: did.clone(),
            found: commit.did().clone(),
        });
    }
    commit.verify(key)?;
    Ok((cid, commit))
}

/// The CAR's single root decoded as a commit (signature not checked).
pub fn root_commit(car: &Car) -> Result<(Cid, Commit), ProofError> {
    let [root] = car.roots.as_slice() else {
        return Err(ProofError::Roots(car.roots.len()));
    };
    let bytes = car
        .blocks
        .get(root)
        .ok_or(ProofError::MissingBlock(*root))?;
    Ok((*root, Commit::decode(bytes)?))
}

fn invalid(msg: impl Into<String>) -> ProofError {
    ProofError::Mst(MstError::InvalidNode(msg.into()))
}

/// Most bytes of keys one proof walk may rebuild, over all its nodes (each node is also
/// held to [`MAX_NODE_KEY_BYTES`](crate::mst::MAX_NODE_KEY_BYTES)). A real walk visits
/// a few nodes of a few keys each.
pub const MAX_WALK_KEY_BYTES: usize = 1 << 20;

/// Walks the MST at `root` to `key` strictly, using only `blocks`: the value if present,
/// `None` if the walk proves absence.
pub fn find(blocks: &BlockMap, root: Cid, key: &[u8]) -> Result<Option<Cid>, ProofError> {
    find_within(blocks, root, key, MAX_WALK_KEY_BYTES)
}

fn find_within(
    blocks: &BlockMap,
    root: Cid,
    key: &[u8],
    max_key_bytes: usize,
) -> Result<Option<Cid>, ProofError> {
    let mut walked = 0usize;
    let mut cid = root;
    let mut layer: Option<u32> = None;
    let mut lo: Option<Vec<u8>> = None;
    let mut hi: Option<Vec<u8>> = None;
    let mut is_root = true;
    loop {
        let bytes = blocks.block(&cid).map_err(MstError::from)?;
        let bytes = bytes.ok_or(ProofError::MissingBlock(cid))?;
        let node = crate::mst::decode_node(&bytes, cid)?;
        let keys = node.keys();
        walked += keys.iter().map(|k| k.len()).sum::<usize>();
        if walked > max_key_bytes {
            return Err(ProofError::Mst(MstError::TooManyKeyBytes {
                max: max_key_bytes,
            }));
        }
        // Heights: every entry of a node sits at the node's layer.
        let own = match keys.first() {
            Some(first) => {
                let h = key_height(first);
                if keys.iter().any(|k| key_height(k) != h) {
                    return Err(invalid("entries of different heights"));
                }
                Some(h)
            }
            None if node.has_left() => None,
            None if is_root => return Ok(None),
            None => return Err(invalid("empty non-root node")),
        };
        match (own, layer) {
            (Some(h), Some(l)) if h != l => {
                return Err(invalid(format!("key of height {h} at layer {l}")));
            }
            (Some(h), _) => layer = Some(h),
            (None, _) => {}
        }
        // Bounds: the node's keys lie strictly between its neighbours in the parent.
        if let (Some(first), Some(lo)) = (keys.first(), &lo)
            && *first <= lo.as_slice()
        {
            return Err(invalid("key below the subtree's lower bound"));
        }
        if let (Some(last), Some(hi)) = (keys.last(), &hi)
            && *last >= hi.as_slice()
        {
            return Err(invalid("key above the subtree's upper bound"));
        }
        let idx = keys.partition_point(|k| *k < key);
        if let Some(value) = node.value_at(idx).filter(|_| keys[idx] == key) {
            return Ok(Some(value));
        }
        let Some(child) = node.gap_link(idx) else {
            // Absent: the neighbours keys[idx-1] < key < keys[idx] are in this node and
            // nothing lies between them.
            return Ok(None);
        };
        if layer == Some(0) {
            return Err(invalid("subtree below layer 0"));
        }
        if let Some(k) = idx.checked_sub(1).map(|i| keys[i].to_vec()) {
            lo = Some(k);
        }
        if let Some(k) = keys.get(idx) {
            hi = Some(k.to_vec());
        }
        layer = layer.map(|l| l - 1);
        cid = child;
        is_root = false;
    }
}

/// Builds a `getRecord` CAR from blocks: the commit block, the MST path to `path`, and the
/// record block if present.
pub fn build_record_proof(
    src: &dyn BlockSource,
    commit_cid: Cid,
    path: &RepoPath,
) -> Result<Vec<u8>, ProofError> {
    let commit_bytes = src
        .block(&commit_cid)
        .map_err(MstError::from)?
        .ok_or(ProofError::MissingBlock(commit_cid))?;
    let commit = Commit::decode(&commit_bytes)?;
    let mut mst = crate::mst::Mst::load(commit.data());
    let key = path.to_key();
    let mut blocks: Vec<(Cid, Vec<u8>)> = vec![(commit_cid, commit_bytes)];
    blocks.extend(mst.path_blocks(src, key.as_bytes())?);
    if let Some(record_cid) = mst.get(src, key.as_bytes())? {
        let record = src
            .block(&record_cid)
            .map_err(MstError::from)?
            .ok_or(ProofError::MissingBlock(record_cid))?;
        blocks.push((record_cid, record));
    }
    car::write(&[commit_cid], blocks.iter().map(|(c, b)| (c, b.as_slice())))
        .map_err(|e| ProofError::Commit(CommitError::Cbor(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mst::Mst;
    use crate::store::MemoryBlockStore;

    #[test]
    fn key_bytes_of_a_walk_are_capped() {
        let store = MemoryBlockStore::default();
        let leaf = crate::cid::dag_cbor(b"leaf");
        let mut mst = Mst::new();
        let keys: Vec<String> = (0..200).map(|i| format!("com.example.k/{i:04}")).collect();
        for k in &keys {
            mst.insert(&store, k.as_bytes(), leaf).unwrap();
        }
        let (root, blocks) = mst.unstored_blocks().unwrap();
        let key = keys[123].as_bytes();
        assert_eq!(find(&blocks, root, key).unwrap(), Some(leaf));
        // The same walk under a small budget: refused, typed.
        assert!(matches!(
            find_within(&blocks, root, key, 64),
            Err(ProofError::Mst(MstError::TooManyKeyBytes { max: 64 }))
        ));
    }
}
