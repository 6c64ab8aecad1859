//! A writable repo: records under `collection/rkey` keys in an MST, each batch of writes a
//! signed commit applied to the block store atomically.

use std::collections::BTreeSet;

use atmls_crypto::SigningKey;
use cid::Cid;
use ipld_core::ipld::Ipld;

use crate::car;
use crate::cbor::{self, CborError};
use crate::commit::{Commit, CommitError, UnsignedCommit};
use crate::mst::{DiffOp, Mst, MstError};
use crate::proof::{self, ProofError};
use crate::store::{BlockMap, BlockStore, CommitUpdate, RepoHead, StoreError};
use crate::syntax::{Did, Nsid, RecordKey, RepoPath};
use atmls_syntax::{Tid, TidGenerator};

/// Why a repo operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// `swapCommit` or `swapRecord` did not match the current state.
    #[error("{0}")]
    InvalidSwap(Box<InvalidSwap>),
    /// Create of a record that exists.
    #[error("record already exists: {0}")]
    RecordExists(RepoPath),
    /// Update or delete of a record that does not exist.
    #[error("record not found: {0}")]
    RecordNotFound(RepoPath),
    /// Two writes to the same record in one commit.
    #[error("two writes to {0} in one commit")]
    DuplicateWrite(RepoPath),
    /// A record value that is not an object.
    #[error("a record must be an object")]
    RecordNotObject,
    /// No repo for this DID in the store.
    #[error("no repo for {0}")]
    RepoNotFound(Did),
    /// A repo for this DID exists already.
    #[error("repo for {0} already exists")]
    RepoExists(Did),
    /// Another writer committed first (the head moved under us).
    #[error("concurrent commit: {0}")]
    Conflict(#[source] StoreError),
    /// Encoding failed.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// A stored commit is malformed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The MST is malformed or incomplete.
    #[error(transparent)]
    Mst(#[from] MstError),
    /// Building a proof failed.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::HeadMismatch(_) => RepoError::Conflict(e),
            other => RepoError::Store(other),
        }
    }
}

/// A `swapCommit` or `swapRecord` that did not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid swap on {}: expected {expected:?}, found {found:?}", target.as_ref().map_or("commit".to_owned(), |p| p.to_string()))]
pub struct InvalidSwap {
    /// The record, or `None` for the commit.
    pub target: Option<RepoPath>,
    /// The CID the writer expected.
    pub expected: Option<Cid>,
    /// The current CID.
    pub found: Option<Cid>,
}

fn invalid_swap(target: Option<RepoPath>, expected: Option<Cid>, found: Option<Cid>) -> RepoError {
    RepoError::InvalidSwap(Box::new(InvalidSwap {
        target,
        expected,
        found,
    }))
}

/// One write of a commit.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Create a record that must not exist.
    Create {
        /// Where.
        path: RepoPath,
        /// The record (an object).
        record: Ipld,
    },
    /// Replace a record that must exist; if `swap_record` is set, its current CID must be
    /// that.
    Update {
        /// Where.
        path: RepoPath,
        /// The new record.
        record: Ipld,
        /// The expected current CID.
        swap_record: Option<Cid>,
    },
    /// Delete a record that must exist; if `swap_record` is set, its current CID must be
    /// that.
    Delete {
        /// Where.
        path: RepoPath,
        /// The expected current CID.
        swap_record: Option<Cid>,
    },
}

impl Write {
    /// A create.
    pub fn create(path: RepoPath, record: Ipld) -> Self {
        Write::Create { path, record }
    }

    /// An update without a swap check.
    pub fn update(path: RepoPath, record: Ipld) -> Self {
        Write::Update {
            path,
            record,
            swap_record: None,
        }
    }

    /// A delete without a swap check.
    pub fn delete(path: RepoPath) -> Self {
        Write::Delete {
            path,
            swap_record: None,
        }
    }

    /// Requires the record's current CID to be `cid` (updates and deletes).
    pub fn with_swap_record(mut self, cid: Cid) -> Self {
        if let Write::Update { swap_record, .. } | Write::Delete { swap_record, .. } = &mut self {
            *swap_record = Some(cid);
        }
        self
    }

    /// The record the write touches.
    pub fn path(&self) -> &RepoPath {
        match self {
            Write::Create { path, .. }
            | Write::Update { path, .. }
            | Write::Delete { path, .. } => path,
        }
    }
}

/// What one write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    /// The record.
    pub path: RepoPath,
    /// Its new CID (`None` after a delete).
    pub cid: Option<Cid>,
    /// Its previous CID (`None` after a create).
    pub prev: Option<Cid>,
}

/// A commit that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// CID of the new commit.
    pub cid: Cid,
    /// Its revision.
    pub rev: Tid,
    /// One result per write, in order.
    pub results: Vec<WriteResult>,
}

/// A repo in a block store, writable with the owner's signing key.
pub struct Repo<'s, S: BlockStore + ?Sized> {
    store: &'s S,
    did: Did,
    key: SigningKey,
    head: RepoHead,
    data: Cid,
    mst: Mst,
    tids: TidGenerator,
}

impl<S: BlockStore + ?Sized> std::fmt::Debug for Repo<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("did", &self.did)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl<'s, S: BlockStore + ?Sized> Repo<'s, S> {
    /// Creates a new, empty repo for `did` with a first signed commit.
    pub fn create(store: &'s S, did: Did, key: SigningKey) -> Result<Self, RepoError> {
        if store.head(did.as_str())?.is_some() {
            return Err(RepoError::RepoExists(did));
        }
        let mut mst = Mst::new();
        let (data, mut blocks) = mst.unstored_blocks()?;
        let mut tids = TidGenerator::default();
        let rev = tids.next_now();
        let commit = UnsignedCommit {
            did: did.clone(),
            data,
            rev,
            prev: None,
        }
        .sign(&key)?;
        let bytes = commit.to_bytes()?;
        let cid = crate::cid::dag_cbor(&bytes);
        blocks.insert(cid, bytes);
        let head = RepoHead { commit: cid, rev };
        store.apply_commit(&CommitUpdate {
            did: did.as_str(),
            blocks: &blocks,
            head,
            prev: None,
        })?;
        Ok(Repo {
            store,
            did,
            key,
            head,
            data,
            mst,
            tids,
        })
    }

    /// Opens the existing repo of `did`.
    pub fn open(store: &'s S, did: Did, key: SigningKey) -> Result<Self, RepoError> {
        let head = store
            .head(did.as_str())?
            .ok_or_else(|| RepoError::RepoNotFound(did.clone()))?;
        let commit = load_commit(store, &head.commit)?;
        let mut tids = TidGenerator::default();
        tids.observe(head.rev);
        Ok(Repo {
            store,
            did,
            key,
            head,
            data: commit.data(),
            mst: Mst::load(commit.data()),
            tids,
        })
    }

    /// The repo's DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The current commit and rev.
    pub fn head(&self) -> RepoHead {
        self.head
    }

    /// The current MST root.
    pub fn data(&self) -> Cid {
        self.data
    }

    /// Applies writes as one signed commit. With `swap_commit`, the current commit must be
    /// that one. Either every write lands in one commit or none does.
    pub fn apply_writes(
        &mut self,
        writes: Vec<Write>,
        swap_commit: Option<Cid>,
    ) -> Result<CommitOutcome, RepoError> {
        if let Some(expected) = swap_commit
            && expected != self.head.commit
        {
            return Err(invalid_swap(None, Some(expected), Some(self.head.commit)));
        }
        let mut seen = BTreeSet::new();
        for w in &writes {
            if !seen.insert(w.path()) {
                return Err(RepoError::DuplicateWrite(w.path().clone()));
            }
        }
        let result = self.commit(writes);
        if result.is_err() {
            // Forget the half-edited tree: the store still has the old head.
            self.mst = Mst::load(self.data);
        }
        result
    }

    fn commit(&mut self, writes: Vec<Write>) -> Result<CommitOutcome, RepoError> {
        let src: &dyn crate::store::BlockSource = &self.store;
        let mut blocks = BlockMap::new();
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            let (path, record, swap, must_exist) = match write {
                Write::Create { path, record } => (path, Some(record), None, false),
                Write::Update {
                    path,
                    record,
                    swap_record,
                } => (path, Some(record), swap_record, true),
                Write::Delete { path, swap_record } => (path, None, swap_record, true),
            };
            let key = path.to_key();
            let current = self.mst.get(src, key.as_bytes())?;
            if let Some(expected) = swap
                && current != Some(expected)
            {
                return Err(invalid_swap(Some(path), Some(expected), current));
            }
            match (must_exist, current) {
                (false, Some(_)) => return Err(RepoError::RecordExists(path)),
                (true, None) => return Err(RepoError::RecordNotFound(path)),
                _ => {}
            }
            let cid = match record {
                Some(record) => {
                    if !matches!(record, Ipld::Map(_)) {
                        return Err(RepoError::RecordNotObject);
                    }
                    let bytes = cbor::encode(&record)?;
                    let cid = crate::cid::dag_cbor(&bytes);
                    blocks.insert(cid, bytes);
                    Some(cid)
                }
                None => None,
            };
            match (cid, current) {
                (Some(cid), None) => self.mst.insert(src, key.as_bytes(), cid)?,
                (Some(cid), Some(_)) => {
                    self.mst.update(src, key.as_bytes(), cid)?;
                }
                (None, _) => {
                    self.mst.delete(src, key.as_bytes())?;
                }
            }
            results.push(WriteResult {
                path,
                cid,
                prev: current,
            });
        }
        let (data, mst_blocks) = self.mst.unstored_blocks()?;
        blocks.extend(mst_blocks);
        self.tids.observe(self.head.rev);
        let rev = self.tids.next_now();
        let commit = UnsignedCommit {
            did: self.did.clone(),
            data,
            rev,
            prev: None,
        }
        .sign(&self.key)?;
        let bytes = commit.to_bytes()?;
        let cid = crate::cid::dag_cbor(&bytes);
        blocks.insert(cid, bytes);
        let head = RepoHead { commit: cid, rev };
        self.store.apply_commit(&CommitUpdate {
            did: self.did.as_str(),
            blocks: &blocks,
            head,
            prev: Some(self.head.commit),
        })?;
        self.head = head;
        self.data = data;
        Ok(CommitOutcome { cid, rev, results })
    }

    /// The CID of the record at `path`.
    pub fn record_cid(&self, path: &RepoPath) -> Result<Option<Cid>, RepoError> {
        Ok(self.mst.get(&self.store, path.to_key().as_bytes())?)
    }

    /// The record at `path` with its CID.
    pub fn record(&self, path: &RepoPath) -> Result<Option<(Cid, Ipld)>, RepoError> {
        let Some(cid) = self.record_cid(path)? else {
            return Ok(None);
        };
        let bytes = self.store.block(&cid)?.ok_or(MstError::MissingBlock(cid))?;
        Ok(Some((cid, cbor::decode_ipld(&bytes)?)))
    }

    /// Up to `limit` records of `collection` in record-key order, starting after
    /// `cursor`; the last key returned is the next cursor.
    pub fn list_records(
        &self,
        collection: &Nsid,
        cursor: Option<&RecordKey>,
        limit: usize,
    ) -> Result<Vec<(RepoPath, Cid)>, RepoError> {
        let prefix = format!("{collection}/");
        let after = cursor.map(|c| format!("{collection}/{c}"));
        let entries = self.mst.list(
            &self.store,
            prefix.as_bytes(),
            after.as_deref().map(str::as_bytes),
            limit,
        )?;
        entries
            .into_iter()
            .map(|(key, cid)| {
                let key = String::from_utf8(key)
                    .map_err(|_| MstError::InvalidNode("key is not UTF-8".into()))?;
                let path =
                    RepoPath::parse(&key).map_err(|e| MstError::InvalidNode(e.to_string()))?;
                Ok((path, cid))
            })
            .collect()
    }

    /// The record changes between an earlier commit of this repo and the current one.
    pub fn diff_since(&self, commit: &Cid) -> Result<Vec<DiffOp>, RepoError> {
        let old = load_commit(self.store, commit)?;
        Ok(crate::mst::diff(&self.store, old.data(), self.data)?)
    }

    /// The whole repo as a CAR (`com.atproto.sync.getRepo`): the commit first, then MST
    /// nodes depth-first in key order, each record right after its entry's node.
    pub fn export_car(&mut self) -> Result<Vec<u8>, RepoError> {
        let commit = self
            .store
            .block(&self.head.commit)?
            .ok_or(MstError::MissingBlock(self.head.commit))?;
        // Records go right after the node that holds their entry.
        let ordered = std::cell::RefCell::new(vec![(self.head.commit, Some(commit))]);
        let store = self.store;
        self.mst.visit_blocks(
            &store,
            &mut |cid, bytes| ordered.borrow_mut().push((cid, Some(bytes))),
            &mut |_, cid| ordered.borrow_mut().push((cid, None)),
        )?;
        let mut ordered = ordered
            .into_inner()
            .into_iter()
            .map(|(cid, bytes)| match bytes {
                Some(bytes) => Ok((cid, bytes)),
                None => store
                    .block(&cid)?
                    .map(|b| (cid, b))
                    .ok_or(RepoError::Mst(MstError::MissingBlock(cid))),
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        let mut seen = BTreeSet::new();
        ordered.retain(|(cid, _)| seen.insert(*cid));
        Ok(car::write(
            &[self.head.commit],
            ordered.iter().map(|(c, b)| (c, b.as_slice())),
        )?)
    }

    /// A `getRecord` proof CAR for `path` at the current commit (inclusion or absence).
    pub fn record_proof(&self, path: &RepoPath) -> Result<Vec<u8>, RepoError> {
        Ok(proof::build_record_proof(
            &self.store,
            self.head.commit,
            path,
        )?)
    }
}

fn load_commit<S: BlockStore + ?Sized>(store: &S, cid: &Cid) -> Result<Commit, RepoError> {
    let bytes = store.block(cid)?.ok_or(MstError::MissingBlock(*cid))?;
    Ok(Commit::decode(&bytes)?)
}
