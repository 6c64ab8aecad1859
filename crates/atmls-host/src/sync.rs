//! `com.atproto.sync.*`: record proofs, whole-repo CARs and the latest commit.

use crate::error::HostError;
use crate::host::Host;
use crate::records::{CommitMeta, repo_path_of};

impl Host {
    /// `sync.getRecord`: a CAR proving the record's presence (or absence) at the current
    /// commit: the signed commit, the MST nodes on the record's path, and the record.
    pub fn record_proof(
        &self,
        did: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<Vec<u8>, HostError> {
        let path = repo_path_of(collection, rkey)?;
        self.read_repo(did, |_, repo| Ok(repo.record_proof(&path)?))
    }

    /// `sync.getRepo`: the whole repo as a CAR (commit first, then MST nodes and records).
    pub fn repo_car(&self, did: &str) -> Result<Vec<u8>, HostError> {
        self.read_repo(did, |_, repo| Ok(repo.export_car()?))
    }

    /// `sync.getLatestCommit`.
    pub fn latest_commit(&self, did: &str) -> Result<CommitMeta, HostError> {
        self.read_repo(did, |_, repo| {
            let head = repo.head();
            Ok(CommitMeta {
                cid: head.commit.to_string(),
                rev: head.rev.to_string(),
            })
        })
    }
}
