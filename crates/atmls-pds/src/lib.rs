//! The embedded PDS-compatible host (accounts, sessions, `com.atproto.repo.*`, `com.atproto.sync.*`, service auth, `atproto-proxy`) and the development DID directory.
//!
//! Status: skeleton. Built by issue 5.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
