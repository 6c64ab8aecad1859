//! atproto cryptography: ES256K (secp256k1) and ES256 (P-256) keys, low-S signatures, multikey and did:key encodings. Shared by the repo layer (commit signatures) and identity (DID documents, service-auth JWTs).
//!
//! Status: skeleton. Built by issue 3.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
