//! Identity: DID syntax and documents, did:plc and did:web resolution, the development DID directory, and service-auth JWT issue and verification.
//!
//! Status: skeleton. Built by issue 4.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
