//! Canonical DAG-CBOR as atproto restricts it.
//!
//! Encoding goes through `serde_ipld_dagcbor`, which writes map keys in canonical order
//! (shorter keys first, then bytewise). Decoding first runs a strict scanner over the raw
//! bytes, so that anything a peer sends is refused unless it is exactly the canonical form:
//! minimal integer and length encodings, map keys that are text and strictly sorted, no
//! floats, no indefinite lengths, no tags but 42 (CID links), no trailing bytes. Only then
//! are the bytes handed to `serde_ipld_dagcbor` to build a typed value.

use cid::Cid;
use ipld_core::ipld::Ipld;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Deepest nesting of arrays and maps the decoder accepts.
pub const MAX_DEPTH: usize = 64;

/// Why bytes are not canonical atproto DAG-CBOR, or could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The input ended in the middle of an item.
    #[error("unexpected end of input at byte {0}")]
    UnexpectedEnd(usize),
    /// Bytes are left after the top-level item.
    #[error("trailing bytes after the item at byte {0}")]
    TrailingBytes(usize),
    /// An integer or length is not in its shortest encoding.
    #[error("non-minimal integer or length encoding at byte {0}")]
    NonMinimal(usize),
    /// An indefinite-length item or a break code.
    #[error("indefinite length at byte {0}")]
    IndefiniteLength(usize),
    /// A floating-point number (atproto's data model has none).
    #[error("floating-point number at byte {0}")]
    Float(usize),
    /// A map key that is not a text string.
    #[error("map key is not a string at byte {0}")]
    NonStringKey(usize),
    /// Map keys out of canonical order.
    #[error("map keys out of canonical order at byte {0}")]
    UnsortedKeys(usize),
    /// The same map key twice.
    #[error("duplicate map key at byte {0}")]
    DuplicateKey(usize),
    /// A text string that is not UTF-8.
    #[error("invalid UTF-8 in a text string at byte {0}")]
    InvalidUtf8(usize),
    /// A tag other than 42.
    #[error("unsupported tag {tag} at byte {at}")]
    UnsupportedTag {
        /// The tag number.
        tag: u64,
        /// Where it starts.
        at: usize,
    },
    /// Tag 42 whose content is not a byte string `0x00 || CID`.
    #[error("invalid CID link at byte {0}")]
    InvalidCid(usize),
    /// A simple value other than false, true and null (e.g. `undefined`).
    #[error("unsupported simple value {value} at byte {at}")]
    UnsupportedSimple {
        /// The simple value.
        value: u8,
        /// Where it starts.
        at: usize,
    },
    /// An integer outside the signed 64-bit range.
    #[error("integer out of the signed 64-bit range at byte {0}")]
    IntegerOutOfRange(usize),
    /// Arrays and maps nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} at byte {0}")]
    TooDeep(usize),
    /// Reserved additional-information values 28..30.
    #[error("reserved additional information at byte {0}")]
    Reserved(usize),
    /// Canonical CBOR, but not the shape the caller expected.
    #[error("unexpected shape: {0}")]
    Shape(String),
    /// A value that cannot be encoded (e.g. an integer beyond 64 bits).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Encodes `value` as canonical DAG-CBOR.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| CborError::Encode(e.to_string()))
}

/// Decodes canonical DAG-CBOR into `T`, refusing any non-canonical input.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    validate(bytes)?;
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| CborError::Shape(e.to_string()))
}

/// Decodes canonical DAG-CBOR into the generic data model.
pub fn decode_ipld(bytes: &[u8]) -> Result<Ipld, CborError> {
    decode(bytes)
}

/// Checks that `bytes` is exactly one canonical atproto DAG-CBOR item.
pub fn validate(bytes: &[u8]) -> Result<(), CborError> {
    let mut scanner = Scanner { bytes, pos: 0 };
    scanner.item(0)?;
    if scanner.pos != bytes.len() {
        return Err(CborError::TrailingBytes(scanner.pos));
    }
    Ok(())
}

/// Parses a binary CID that must fill `bytes` exactly, in its shortest encoding.
pub(crate) fn parse_cid_exact(bytes: &[u8]) -> Option<Cid> {
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest).ok()?;
    if !rest.is_empty() || cid.to_bytes() != bytes {
        return None;
    }
    Some(cid)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CborError::UnexpectedEnd(self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        Ok(self.take(1)?[0])
    }

    /// Reads the head of an item: major type and argument, checking minimality.
    fn head(&mut self) -> Result<(u8, u64), CborError> {
        let at = self.pos;
        let first = self.byte()?;
        let major = first >> 5;
        let info = first & 0x1f;
        if major == 7 {
            // Simple values and floats: handled by the caller from `info`.
            return Ok((7, u64::from(info)));
        }
        let arg = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                if v < 24 {
                    return Err(CborError::NonMinimal(at));
                }
                v
            }
            25 => {
                let b = self.take(2)?;
                let v = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if v <= 0xff {
                    return Err(CborError::NonMinimal(at));
                }
                v
            }
            26 => {
                let b = self.take(4)?;
                let v = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if v <= 0xffff {
                    return Err(CborError::NonMinimal(at));
                }
                v
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let v = u64::from_be_bytes(a);
                if v <= 0xffff_ffff {
                    return Err(CborError::NonMinimal(at));
                }
                v
            }
            31 => return Err(CborError::IndefiniteLength(at)),
            _ => return Err(CborError::Reserved(at)),
        };
        Ok((major, arg))
    }

    fn len(&self, arg: u64) -> Result<usize, CborError> {
        usize::try_from(arg).map_err(|_| CborError::UnexpectedEnd(self.pos))
    }

    fn text(&mut self, arg: u64, at: usize) -> Result<&'a [u8], CborError> {
        let n = self.len(arg)?;
        let s = self.take(n)?;
        if std::str::from_utf8(s).is_err() {
            return Err(CborError::InvalidUtf8(at));
        }
        Ok(s)
    }

    fn item(&mut self, depth: usize) -> Result<(), CborError> {
        let at = self.pos;
        let (major, arg) = self.head()?;
        match major {
            0 | 1 => {
                if arg > i64::MAX as u64 {
                    return Err(CborError::IntegerOutOfRange(at));
                }
            }
            2 => {
                let n = self.len(arg)?;
                self.take(n)?;
            }
            3 => {
                self.text(arg, at)?;
            }
            4 => {
                if depth >= MAX_DEPTH {
                    return Err(CborError::TooDeep(at));
                }
                for _ in 0..arg {
                    self.item(depth + 1)?;
                }
            }
            5 => {
                if depth >= MAX_DEPTH {
                    return Err(CborError::TooDeep(at));
                }
                let mut prev: Option<&[u8]> = None;
                for _ in 0..arg {
                    let key_at = self.pos;
                    let (kmajor, karg) = match self.head() {
                        Ok((7, _)) => return Err(CborError::NonStringKey(key_at)),
                        Ok(h) => h,
                        Err(CborError::IndefiniteLength(p)) => {
                            // An indefinite text key is still a non-canonical key.
                            return Err(CborError::IndefiniteLength(p));
                        }
                        Err(e) => return Err(e),
                    };
                    if kmajor != 3 {
                        return Err(CborError::NonStringKey(key_at));
                    }
                    let key = self.text(karg, key_at)?;
                    if let Some(prev) = prev {
                        match (prev.len(), prev).cmp(&(key.len(), key)) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => {
                                return Err(CborError::DuplicateKey(key_at));
                            }
                            std::cmp::Ordering::Greater => {
                                return Err(CborError::UnsortedKeys(key_at));
                            }
                        }
                    }
                    prev = Some(key);
                    self.item(depth + 1)?;
                }
            }
            6 => {
                if arg != 42 {
                    return Err(CborError::UnsupportedTag { tag: arg, at });
                }
                let inner_at = self.pos;
                let (imajor, iarg) = self.head().map_err(|_| CborError::InvalidCid(inner_at))?;
                if imajor != 2 {
                    return Err(CborError::InvalidCid(inner_at));
                }
                let n = self.len(iarg)?;
                let raw = self.take(n)?;
                match raw.split_first() {
                    Some((0, cid_bytes)) if parse_cid_exact(cid_bytes).is_some() => {}
                    _ => return Err(CborError::InvalidCid(inner_at)),
                }
            }
            _ => match arg {
                20..=22 => {}
                25..=27 => return Err(CborError::Float(at)),
                31 => return Err(CborError::IndefiniteLength(at)),
                28..=30 => return Err(CborError::Reserved(at)),
                24 => {
                    let value = self.byte()?;
                    return Err(CborError::UnsupportedSimple { value, at });
                }
                v => {
                    return Err(CborError::UnsupportedSimple {
                        value: u8::try_from(v).unwrap_or(u8::MAX),
                        at,
                    });
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> CborError {
        validate(bytes).unwrap_err()
    }

    #[test]
    fn accepts_canonical() {
        for ok in [
            &[0xa0][..],
            &[0x80],
            &[0x17],
            &[0x18, 0x18],
            &[0x20],
            &[0xf4],
            &[0xf5],
            &[0xf6],
            &[0x62, b'h', b'i'],
            &[0xa2, 0x61, b'a', 0x01, 0x62, b'a', b'a', 0x02],
        ] {
            validate(ok).unwrap();
        }
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(err(&[0x18, 0x01]), CborError::NonMinimal(0));
        assert_eq!(err(&[0x19, 0x00, 0x10]), CborError::NonMinimal(0));
        assert_eq!(err(&[0x9f, 0xff]), CborError::IndefiniteLength(0));
        assert_eq!(err(&[0x5f, 0xff]), CborError::IndefiniteLength(0));
        assert_eq!(err(&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0]), CborError::Float(0));
        assert_eq!(err(&[0xf9, 0, 0]), CborError::Float(0));
        assert_eq!(err(&[0xa1, 0x01, 0x01]), CborError::NonStringKey(1));
        assert_eq!(
            err(&[0xa2, 0x62, b'a', b'a', 0x01, 0x61, b'b', 0x02]),
            CborError::UnsortedKeys(5)
        );
        assert_eq!(
            err(&[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02]),
            CborError::DuplicateKey(4)
        );
        assert_eq!(err(&[0x01, 0x02]), CborError::TrailingBytes(1));
        assert_eq!(err(&[0x62, 0xff, 0xfe]), CborError::InvalidUtf8(0));
        assert_eq!(
            err(&[0xc1, 0x01]),
            CborError::UnsupportedTag { tag: 1, at: 0 }
        );
        assert_eq!(err(&[0xd8, 0x2a, 0x41, 0x00]), CborError::InvalidCid(2));
        assert_eq!(
            err(&[0xf7]),
            CborError::UnsupportedSimple { value: 23, at: 0 }
        );
        assert_eq!(
            err(&[0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            CborError::IntegerOutOfRange(0)
        );
        assert_eq!(err(&[0x1c]), CborError::Reserved(0));
        assert_eq!(err(&[0x82, 0x01]), CborError::UnexpectedEnd(2));
        assert_eq!(err(&[]), CborError::UnexpectedEnd(0));
        let deep = vec![0x81; MAX_DEPTH + 1];
        assert!(matches!(err(&deep), CborError::TooDeep(_)));
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        assert!(matches!(
            err(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            CborError::UnexpectedEnd(_)
        ));
        assert!(matches!(
            err(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            CborError::UnexpectedEnd(_)
        ));
    }
}
