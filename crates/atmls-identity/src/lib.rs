//! Identity for atmls: who a DID is, which key speaks for it, and whether a request
//! really comes from it.
//!
//! The default build does no I/O and links no HTTP stack, runtime or database: HTTP
//! resolution and the development PLC directory are features (see the crate's
//! `Cargo.toml`); each adds API and changes nothing of the default.
//!
//! - [`Did`] and [`Handle`]: the checked string types of [`atmls_syntax`],
//!   re-exported; [`AtprotoDid`], [`PlcDid`], [`WebDid`]: DIDs of the methods atproto
//!   supports, built on [`Did`].
//! - [`DidDocument`]: the document model, with [`DidDocument::atproto_key`],
//!   [`DidDocument::pds_endpoint`] and [`DidDocument::service`].
//! - [`DidHistory`]: a DID's documents over time (the key in force at an instant), from
//!   a PLC audit log.
//! - [`resolve`]: the [`DidResolver`] trait and a bounded TTL cache; with the feature
//!   `resolve-http`, an HTTP(S) resolver.
//! - [`plc`]: did:plc operations (build, sign, validate, derive the DID); with the
//!   feature `plc-directory`, `plc::directory`, a PLC-compatible development directory
//!   (`plc-directory-sqlite` persists it, `plc-directory-http` serves it).
//! - [`service_auth`]: service-auth JWTs, issue and verify.
//!
//! ```
//! use atmls_crypto::{Algorithm, SigningKey};
//! use atmls_identity::plc::GenesisBuilder;
//! use atmls_identity::DidDocument;
//!
//! let rotation = SigningKey::generate(Algorithm::Es256k);
//! let signing = SigningKey::generate(Algorithm::Es256k);
//! let genesis = GenesisBuilder::new(&rotation.public_key(), &signing.public_key())
//!     .handle("alice.example.com")
//!     .pds("https://pds.example.com")
//!     .sign(&rotation);
//! let did = genesis.did()?;
//! assert!(did.as_str().starts_with("did:plc:"));
//!
//! let doc: DidDocument = genesis.state(&did)?.document();
//! assert_eq!(doc.atproto_key()?, signing.public_key());
//! assert_eq!(doc.pds_endpoint()?, "https://pds.example.com");
//! assert_eq!(doc.handle().unwrap().as_str(), "alice.example.com");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod did;
mod document;
mod history;
pub mod plc;
pub mod resolve;
pub mod service_auth;

pub use atmls_syntax::{Handle, HandleError};
pub use did::{AtprotoDid, AtprotoDidError, Did, DidError, MAX_DID_LEN, PlcDid, WebDid};
pub use document::{
    ATPROTO_KEY_FRAGMENT, ATPROTO_PDS_FRAGMENT, ATPROTO_PDS_TYPE, DidDocument, DocumentError,
    Service, VerificationMethod,
};
pub use history::{AuditLogError, DidHistory, HistoryEntry, HistoryError};
pub use resolve::{DidResolver, HandleResolver, ResolveError};
