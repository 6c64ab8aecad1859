//! The AT repository layer: DAG-CBOR and CIDs, the Merkle search tree, signed commits, CAR files, record proofs, and block stores (memory and SQLite).
//!
//! Status: skeleton. Built by issue 3.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
