//! CAR v1 files: a varint-framed DAG-CBOR header `{version: 1, roots: [...]}` followed by
//! varint-framed `CID || block` sections.
//!
//! Reading checks every block against its CID (SHA-256, dag-cbor or raw), so the blocks
//! of a [`Car`] can be trusted to be what their CIDs name.

use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};
use crate::cid::CidError;
use crate::store::BlockMap;

/// Largest section (CID plus block) accepted when reading.
pub const MAX_SECTION_LEN: usize = 2 * 1024 * 1024;
/// Largest header accepted when reading.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// Why a CAR file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CarError {
    /// The input ended inside a varint or a section.
    #[error("truncated CAR at byte {0}")]
    Truncated(usize),
    /// A varint that is too long or not in its shortest form.
    #[error("invalid varint at byte {0}")]
    Varint(usize),
    /// A header or section larger than the limits.
    #[error("section at byte {at} too large ({len} bytes)")]
    TooLarge {
        /// Where the section starts.
        at: usize,
        /// Its declared length.
        len: u64,
    },
    /// The header is not canonical DAG-CBOR `{version, roots}`.
    #[error("CAR header: {0}")]
    Header(CborError),
    /// A header version other than 1.
    #[error("unsupported CAR version {0}")]
    Version(u64),
    /// A section whose CID cannot be parsed.
    #[error("invalid CID in section at byte {0}")]
    Cid(usize),
    /// A block that does not match its CID, or a CID atproto does not use.
    #[error("block at byte {at}: {source}")]
    Block {
        /// Where the section starts.
        at: usize,
        /// What is wrong.
        source: CidError,
    },
    /// The same CID twice with different bytes (impossible unless hashes collide).
    #[error("duplicate block {0}")]
    Duplicate(Cid),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: u64,
    roots: Vec<Cid>,
}

/// A CAR file's roots and verified blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Car {
    /// The roots named in the header.
    pub roots: Vec<Cid>,
    /// The blocks, each checked against its CID.
    pub blocks: BlockMap,
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, CarError> {
    let start = *pos;
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *bytes.get(*pos).ok_or(CarError::Truncated(start))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(CarError::Varint(start));
            }
            return Ok(value);
        }
    }
    Err(CarError::Varint(start))
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section<'a>(bytes: &'a [u8], pos: &mut usize, max: usize) -> Result<&'a [u8], CarError> {
    let at = *pos;
    let len = read_varint(bytes, pos)?;
    if len > max as u64 {
        return Err(CarError::TooLarge { at, len });
    }
    let len = len as usize;
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or(CarError::Truncated(at))?;
    let out = &bytes[*pos..end];
    *pos = end;
    Ok(out)
}

/// Reads a CAR v1 file, checking every block against its CID.
pub fn read(bytes: &[u8]) -> Result<Car, CarError> {
    let mut pos = 0;
    let header = section(bytes, &mut pos, MAX_HEADER_LEN)?;
    let header: Header = cbor::decode(header).map_err(CarError::Header)?;
    if header.version != 1 {
        return Err(CarError::Version(header.version));
    }
    let mut car = Car {
        roots: header.roots,
        blocks: BlockMap::new(),
    };
    while pos < bytes.len() {
        let at = pos;
        let body = section(bytes, &mut pos, MAX_SECTION_LEN)?;
        let mut rest = body;
        let cid = Cid::read_bytes(&mut rest).map_err(|_| CarError::Cid(at))?;
        let cid_len = body.len() - rest.len();
        if cid.to_bytes() != body[..cid_len] {
            return Err(CarError::Cid(at));
        }
        crate::cid::verify_block(&cid, rest).map_err(|source| CarError::Block { at, source })?;
        if let Some(prev) = car.blocks.insert(cid, rest.to_vec())
            && prev != rest
        {
            return Err(CarError::Duplicate(cid));
        }
    }
    Ok(car)
}

/// Writes a CAR v1 file with the given roots and blocks, in the order given.
pub fn write<'a>(
    roots: &[Cid],
    blocks: impl IntoIterator<Item = (&'a Cid, &'a [u8])>,
) -> Result<Vec<u8>, CborError> {
    let header = cbor::encode(&Header {
        version: 1,
        roots: roots.to_vec(),
    })?;
    let mut out = Vec::with_capacity(header.len() + 64);
    write_varint(&mut out, header.len() as u64);
    out.extend_from_slice(&header);
    for (cid, block) in blocks {
        let cid_bytes = cid.to_bytes();
        write_varint(&mut out, (cid_bytes.len() + block.len()) as u64);
        out.extend_from_slice(&cid_bytes);
        out.extend_from_slice(block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let block = b"\xa1\x61a\x01".to_vec();
        let cid = crate::cid::dag_cbor(&block);
        let bytes = write(&[cid], [(&cid, block.as_slice())]).unwrap();
        let car = read(&bytes).unwrap();
        assert_eq!(car.roots, vec![cid]);
        assert_eq!(car.blocks.get(&cid), Some(&block));
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, 1 << 40] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos).unwrap(), v);
            assert_eq!(pos, out.len());
        }
        assert_eq!(read_varint(&[0x80, 0x00], &mut 0), Err(CarError::Varint(0)));
        assert_eq!(read_varint(&[0xff; 10], &mut 0), Err(CarError::Varint(0)));
        assert_eq!(read_varint(&[0x80], &mut 0), Err(CarError::Truncated(0)));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read(b"").is_err());
        assert!(read(b"hello world").is_err());
        assert!(read(&[0x01, 0xa0]).is_err());
    }
}
