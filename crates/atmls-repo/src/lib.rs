//! The AT repository layer: canonical DAG-CBOR and CIDs, the Merkle search tree, signed
//! commits, CAR files, record proofs, and block stores (memory and SQLite).
//!
//! atmls keeps public KeyPackages as records in the user's own AT repo and verifies
//! records fetched from other users' repos with [`proof::verify_record_proof`], against the
//! `#atproto` key of their DID document.
//!
//! ```
//! use atmls_crypto::{Algorithm, SigningKey};
//! use atmls_repo::{MemoryBlockStore, Repo, RepoPath, Write};
//!
//! let key = SigningKey::generate(Algorithm::Es256k);
//! let store = MemoryBlockStore::new();
//! let mut repo = Repo::create(&store, "did:plc:alice".parse()?, key.clone())?;
//! let path = RepoPath::parse("chat.mls.declaration/self")?;
//! let record = atmls_repo::json::record_to_ipld(&serde_json::json!({
//!     "$type": "chat.mls.declaration", "ds": "did:web:ds.example"
//! }))?;
//! repo.apply_writes(vec![Write::create(path.clone(), record)], None)?;
//!
//! // Anyone holding the public key can check the record's proof.
//! let car = repo.record_proof(&path)?;
//! let proof = atmls_repo::proof::verify_record_proof(
//!     &car, repo.did(), &key.public_key(), &path,
//! )?;
//! assert!(proof.record().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod car;
pub mod cbor;
pub mod cid;
pub mod commit;
pub mod json;
pub mod mst;
pub mod proof;
mod repo;
pub mod store;
pub mod syntax;

pub use ::cid::Cid;
pub use atmls_syntax::{Tid, TidError, TidGenerator};
pub use ipld_core::ipld::Ipld;
pub use mst::Mst;
pub use repo::{CommitOutcome, InvalidSwap, Repo, RepoError, Write, WriteResult};
pub use store::{BlockMap, BlockSource, BlockStore, MemoryBlockStore, RepoHead, StoreError};
#[cfg(feature = "sqlite")]
pub use store::{SqliteBlockStore, SqliteConfig};
pub use syntax::{Did, Nsid, RecordKey, RepoPath, RepoPathError};
