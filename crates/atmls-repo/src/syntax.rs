//! Names used by the repo: collection NSIDs, record keys and DIDs (the checked types of
//! [`atmls_syntax`], re-exported) and the repo-specific [`RepoPath`].

use std::fmt;

use thiserror::Error;

pub use atmls_syntax::{Did, DidError, Nsid, NsidError, RecordKey, RecordKeyError};

/// Why a string is not a [`RepoPath`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RepoPathError {
    /// No `/` between collection and record key.
    #[error("invalid repo path {0:?}: expected collection/rkey")]
    MissingSlash(String),
    /// The part before the `/` is not an NSID.
    #[error("invalid repo path {path:?}: {source}")]
    Collection {
        /// The path as given.
        path: String,
        /// Why the collection is not an NSID.
        source: NsidError,
    },
    /// The part after the `/` is not a record key.
    #[error("invalid repo path {path:?}: {source}")]
    RecordKey {
        /// The path as given.
        path: String,
        /// Why the record key is invalid.
        source: RecordKeyError,
    },
}

/// A key in the repo's MST: `collection/rkey`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath {
    collection: Nsid,
    rkey: RecordKey,
}

impl RepoPath {
    /// Joins a collection and a record key.
    pub fn new(collection: Nsid, rkey: RecordKey) -> Self {
        RepoPath { collection, rkey }
    }

    /// Parses `collection/rkey`.
    pub fn parse(s: &str) -> Result<Self, RepoPathError> {
        let (c, r) = s
            .split_once('/')
            .ok_or_else(|| RepoPathError::MissingSlash(s.to_owned()))?;
        let collection = Nsid::new(c).map_err(|source| RepoPathError::Collection {
            path: s.to_owned(),
            source,
        })?;
        let rkey = RecordKey::new(r).map_err(|source| RepoPathError::RecordKey {
            path: s.to_owned(),
            source,
        })?;
        Ok(RepoPath { collection, rkey })
    }

    /// The collection.
    pub fn collection(&self) -> &Nsid {
        &self.collection
    }

    /// The record key.
    pub fn rkey(&self) -> &RecordKey {
        &self.rkey
    }

    /// The MST key bytes.
    pub fn to_key(&self) -> String {
        format!("{}/{}", self.collection, self.rkey)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection, self.rkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Nsid::new("chat.mls.keyPackage").is_ok());
        assert_eq!(Nsid::new("chat.mls"), Err(NsidError::TooFewSegments));
        assert_eq!(
            Nsid::new("chat.mls.1x"),
            Err(NsidError::BadName("1x".into()))
        );
        assert!(RecordKey::new("3kpaaaaaaaaa2").is_ok());
        assert_eq!(RecordKey::new(".."), Err(RecordKeyError::DotSegment));
        assert_eq!(
            RecordKey::new("a/b"),
            Err(RecordKeyError::BadCharacter('/'))
        );
        assert!(Did::new("did:plc:fh5jrlbsm47qlufaem7aasei").is_ok());
        assert_eq!(Did::new("did:PLC:x"), Err(DidError::BadMethod));
        let p = RepoPath::parse("chat.mls.declaration/self").unwrap();
        assert_eq!(p.collection().as_str(), "chat.mls.declaration");
        assert_eq!(p.to_key(), "chat.mls.declaration/self");
        assert_eq!(
            RepoPath::parse("chat.mls.declaration"),
            Err(RepoPathError::MissingSlash("chat.mls.declaration".into()))
        );
        assert!(matches!(
            RepoPath::parse("chat.mls/self"),
            Err(RepoPathError::Collection { .. })
        ));
        assert!(matches!(
            RepoPath::parse("chat.mls.declaration/a/b"),
            Err(RepoPathError::RecordKey { .. })
        ));
    }
}
