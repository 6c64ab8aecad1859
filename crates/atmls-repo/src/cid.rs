//! CIDv1 for atproto: SHA-256 multihash, `dag-cbor` (0x71) for records, MST nodes and
//! commits, `raw` (0x55) for blobs.

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest as _, Sha256};

/// Multicodec of DAG-CBOR blocks (records, MST nodes, commits).
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec of raw blocks (blobs).
pub const RAW: u64 = 0x55;
/// Multihash code of SHA-256.
pub const SHA2_256: u64 = 0x12;

/// Why a block does not match its CID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidError {
    /// CIDv0, or a version other than 1.
    #[error("CID {0} is not CIDv1")]
    NotV1(Cid),
    /// A codec other than dag-cbor and raw.
    #[error("CID {cid} has unsupported codec {codec:#x}")]
    UnsupportedCodec {
        /// The CID.
        cid: Cid,
        /// Its codec.
        codec: u64,
    },
    /// A hash other than 32-byte SHA-256.
    #[error("CID {0} does not use a 32-byte SHA-256 digest")]
    UnsupportedHash(Cid),
    /// The bytes do not hash to the CID's digest.
    #[error("block does not hash to its CID {0}")]
    DigestMismatch(Cid),
    /// Text that is not a CID.
    #[error("not a CID: {0}")]
    Parse(String),
}

fn cid_of(codec: u64, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    // A 32-byte digest always fits the default 64-byte multihash.
    match Multihash::wrap(SHA2_256, &digest) {
        Ok(mh) => Cid::new_v1(codec, mh),
        Err(_) => unreachable!("32-byte digest fits a 64-byte multihash"),
    }
}

/// The CID of a DAG-CBOR block.
pub fn dag_cbor(bytes: &[u8]) -> Cid {
    cid_of(DAG_CBOR, bytes)
}

/// The CID of a raw block (a blob).
pub fn raw(bytes: &[u8]) -> Cid {
    cid_of(RAW, bytes)
}

/// Checks that `cid` is one atproto accepts: CIDv1, dag-cbor or raw, SHA-256.
pub fn check_format(cid: &Cid) -> Result<(), CidError> {
    if cid.version() != cid::Version::V1 {
        return Err(CidError::NotV1(*cid));
    }
    if cid.codec() != DAG_CBOR && cid.codec() != RAW {
        return Err(CidError::UnsupportedCodec {
            cid: *cid,
            codec: cid.codec(),
        });
    }
    if cid.hash().code() != SHA2_256 || cid.hash().size() != 32 {
        return Err(CidError::UnsupportedHash(*cid));
    }
    Ok(())
}

/// Checks that `bytes` is the block `cid` names.
pub fn verify_block(cid: &Cid, bytes: &[u8]) -> Result<(), CidError> {
    check_format(cid)?;
    let digest = Sha256::digest(bytes);
    if cid.hash().digest() != &digest[..] {
        return Err(CidError::DigestMismatch(*cid));
    }
    Ok(())
}

/// Parses a CID from its string form (base32 `b…` for CIDv1).
pub fn parse(s: &str) -> Result<Cid, CidError> {
    Cid::try_from(s).map_err(|e| CidError::Parse(format!("{s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_cbor_differ_only_in_codec() {
        let a = dag_cbor(b"x");
        let b = raw(b"x");
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.codec(), DAG_CBOR);
        assert_eq!(b.codec(), RAW);
        verify_block(&a, b"x").unwrap();
        assert_eq!(verify_block(&a, b"y"), Err(CidError::DigestMismatch(a)));
        assert!(a.to_string().starts_with("bafyrei"));
        assert!(b.to_string().starts_with("bafkrei"));
    }
}
