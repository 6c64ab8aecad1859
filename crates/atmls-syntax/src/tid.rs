//! TID syntax (<https://atproto.com/specs/tid>).

use thiserror::Error;

/// The base32-sortable alphabet TIDs are written in.
const ALPHABET: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A timestamp identifier: 13 characters of base32-sortable, encoding a 64-bit integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    raw: String,
}

/// Why a string is not a [`Tid`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TidError {
    /// Not exactly 13 characters.
    #[error("TID must be exactly 13 characters")]
    BadLength,
    /// A character outside `234567a-z`.
    #[error("TID contains {0:?}, which is not in the base32-sortable alphabet")]
    BadCharacter(char),
    /// The first character does not fit in 64 bits.
    #[error("TID's first character must be one of 234567abcdefghij")]
    HighBitSet,
}

impl Tid {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, TidError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, TidError> {
        check(&raw)?;
        Ok(Tid { raw })
    }

    /// The TID that encodes `value`; fails with [`TidError::HighBitSet`] if the top bit of
    /// `value` is set (13 characters of 5 bits hold 65 bits, and the first must be clear).
    pub fn from_u64(value: u64) -> Result<Self, TidError> {
        if value >> 63 != 0 {
            return Err(TidError::HighBitSet);
        }
        let raw = (0..13)
            .rev()
            .map(|i| char::from(ALPHABET[((value >> (5 * i)) & 31) as usize]))
            .collect();
        Ok(Tid { raw })
    }

    /// The integer the TID encodes.
    pub fn to_u64(&self) -> u64 {
        self.raw.bytes().fold(0u64, |acc, c| {
            let digit = ALPHABET.iter().position(|a| *a == c).unwrap_or_default();
            (acc << 5) | digit as u64
        })
    }
}

super::string_format!(Tid, TidError);

fn check(s: &str) -> Result<(), TidError> {
    if let Some(c) = s
        .chars()
        .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
    {
        return Err(TidError::BadCharacter(c));
    }
    if s.len() != 13 {
        return Err(TidError::BadLength);
    }
    // Each character carries 5 bits and 13 * 5 = 65, one more than 64: the first
    // character must leave its top bit clear, i.e. be one of the first 16 of the alphabet.
    if !ALPHABET[..16].contains(&s.as_bytes()[0]) {
        return Err(TidError::HighBitSet);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_errors() {
        assert_eq!(Tid::new("2222222222222").unwrap().to_u64(), 0);
        assert_eq!(Tid::new("222222222222z").unwrap().to_u64(), 31);
        assert_eq!(Tid::new("kjzfcijpj2z2a"), Err(TidError::HighBitSet));
        assert_eq!(Tid::new("3jzfcijpj2z2"), Err(TidError::BadLength));
        for v in [0, 31, 1 << 62, u64::MAX >> 1] {
            let tid = Tid::from_u64(v).unwrap();
            assert_eq!(Tid::new(tid.as_str()).as_ref(), Ok(&tid));
            assert_eq!(tid.to_u64(), v);
        }
        assert_eq!(Tid::from_u64(0).unwrap().as_str(), "2222222222222");
        assert_eq!(Tid::from_u64(1 << 63), Err(TidError::HighBitSet));
    }
}
