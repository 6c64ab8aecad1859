//! Signed repo commits (format v3): `{did, version: 3, data, rev, prev: null, sig}`, the
//! signature made over the DAG-CBOR of the same object without `sig`.

use atmls_crypto::{CryptoError, PublicKey, SigningKey};
use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};
use crate::syntax::Did;
use atmls_syntax::{Tid, TidError};

/// The repo format version this crate reads and writes.
pub const VERSION: u64 = 3;

/// Why a commit is malformed or its signature is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Not canonical DAG-CBOR of a commit object.
    #[error("commit encoding: {0}")]
    Cbor(#[from] CborError),
    /// A repo format version other than 3.
    #[error("unsupported repo version {0}")]
    Version(u64),
    /// A field with a bad value (DID, rev).
    #[error("invalid commit field {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature does not verify against the key.
    #[error("commit signature does not verify: {0}")]
    BadSignature(#[source] CryptoError),
}

#[derive(Serialize)]
struct UnsignedData<'a> {
    did: &'a str,
    version: u64,
    data: Cid,
    rev: String,
    prev: Option<Cid>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitData {
    did: String,
    version: u64,
    data: Cid,
    rev: String,
    prev: Option<Cid>,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

/// A commit before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedCommit {
    /// The repo's DID.
    pub did: Did,
    /// Root of the MST.
    pub data: Cid,
    /// Revision: a TID greater than every earlier commit's.
    pub rev: Tid,
    /// The previous commit (atmls writes `null`, as current atproto does).
    pub prev: Option<Cid>,
}

impl UnsignedCommit {
    /// The bytes that are signed.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(&UnsignedData {
            did: self.did.as_str(),
            version: VERSION,
            data: self.data,
            rev: self.rev.to_string(),
            prev: self.prev,
        })
    }

    /// Signs the commit.
    pub fn sign(self, key: &SigningKey) -> Result<Commit, CborError> {
        let sig = key.sign(&self.to_bytes()?).to_vec();
        Ok(Commit {
            unsigned: self,
            sig,
        })
    }
}

/// A signed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    unsigned: UnsignedCommit,
    sig: Vec<u8>,
}

impl Commit {
    /// Decodes a commit block, refusing non-canonical encodings and versions other than 3.
    pub fn decode(bytes: &[u8]) -> Result<Self, CommitError> {
        let data: CommitData = cbor::decode(bytes)?;
        if data.version != VERSION {
            return Err(CommitError::Version(data.version));
        }
        let did = Did::new(data.did).map_err(|e| CommitError::Field {
            field: "did",
            reason: e.to_string(),
        })?;
        let rev: Tid = data.rev.parse().map_err(|e: TidError| CommitError::Field {
            field: "rev",
            reason: e.to_string(),
        })?;
        let commit = Commit {
            unsigned: UnsignedCommit {
                did,
                data: data.data,
                rev,
                prev: data.prev,
            },
            sig: data.sig,
        };
        // Omitted `prev`, or any other departure from the canonical form, would make the
        // signed bytes differ from what the signer meant: refuse it.
        if commit.to_bytes()? != bytes {
            return Err(CommitError::Cbor(CborError::Shape(
                "commit is not in canonical form".into(),
            )));
        }
        Ok(commit)
    }

    /// The commit block.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(&CommitData {
            did: self.unsigned.did.to_string(),
            version: VERSION,
            data: self.unsigned.data,
            rev: self.unsigned.rev.to_string(),
            prev: self.unsigned.prev,
            sig: self.sig.clone(),
        })
    }

    /// Checks the signature against `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CommitError> {
        key.verify(&self.unsigned.to_bytes()?, &self.sig)
            .map_err(CommitError::BadSignature)
    }

    /// The repo's DID.
    pub fn did(&self) -> &Did {
        &self.unsigned.did
    }

    /// Root of the MST.
    pub fn data(&self) -> Cid {
        self.unsigned.data
    }

    /// The revision.
    pub fn rev(&self) -> Tid {
        self.unsigned.rev
    }

    /// The previous commit, if recorded.
    pub fn prev(&self) -> Option<Cid> {
        self.unsigned.prev
    }

    /// The signature bytes.
    pub fn sig(&self) -> &[u8] {
        &self.sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmls_crypto::Algorithm;

    #[test]
    fn sign_encode_decode_verify() {
        let key = SigningKey::generate(Algorithm::Es256k);
        let commit = UnsignedCommit {
            did: Did::new("did:plc:abc").unwrap(),
            data: crate::cid::dag_cbor(b"\xa0"),
            rev: "3kpaaaaaaaaa2".parse().unwrap(),
            prev: None,
        }
        .sign(&key)
        .unwrap();
        let bytes = commit.to_bytes().unwrap();
        let back = Commit::decode(&bytes).unwrap();
        assert_eq!(back, commit);
        back.verify(&key.public_key()).unwrap();
        let other = SigningKey::generate(Algorithm::Es256k);
        assert!(matches!(
            back.verify(&other.public_key()),
            Err(CommitError::BadSignature(_))
        ));
    }

    /// The rev is the one TID type of the workspace (`atmls_syntax::Tid`), not a
    /// repo-local copy: a lexicon `tid` string and a commit rev compare directly.
    #[test]
    fn rev_is_the_syntax_tid() {
        let rev: atmls_syntax::Tid = "3kpaaaaaaaaa2".parse().unwrap();
        let key = SigningKey::generate(Algorithm::Es256k);
        let commit = UnsignedCommit {
            did: Did::new("did:plc:abc").unwrap(),
            data: crate::cid::dag_cbor(b"\xa0"),
            rev,
            prev: None,
        }
        .sign(&key)
        .unwrap();
        let back: atmls_syntax::Tid = Commit::decode(&commit.to_bytes().unwrap()).unwrap().rev();
        assert_eq!(back, rev);
        assert_eq!(back.as_str(), "3kpaaaaaaaaa2");
    }
}
