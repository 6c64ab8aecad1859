//! Identity for atmls: who a DID is, which key speaks for it, and whether a request
//! really comes from it.
//!
//! - [`Did`] and [`Handle`]: the checked string types of [`atmls_lexicon::syntax`],
//!   re-exported; [`AtprotoDid`], [`PlcDid`], [`WebDid`]: DIDs of the methods atproto
//!   supports, built on [`Did`].
//! - [`DidDocument`]: the document model, with [`DidDocument::atproto_key`],
//!   [`DidDocument::pds_endpoint`] and [`DidDocument::service`].
//! - [`resolve`]: the [`DidResolver`] trait, an HTTP(S) resolver and a bounded TTL cache.
//! - [`plc`]: did:plc operations (build, sign, validate, derive the DID) and
//!   [`plc::directory`], a PLC-compatible development directory.
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
pub mod plc;
pub mod resolve;
pub mod service_auth;

pub use atmls_lexicon::syntax::{Handle, HandleError};
pub use did::{AtprotoDid, AtprotoDidError, Did, DidError, MAX_DID_LEN, PlcDid, WebDid};
pub use document::{
    ATPROTO_KEY_FRAGMENT, ATPROTO_PDS_FRAGMENT, ATPROTO_PDS_TYPE, DidDocument, DocumentError,
    Service, VerificationMethod,
};
pub use resolve::{DidResolver, HandleResolver, ResolveError};
