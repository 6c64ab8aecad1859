//! CIDs in string form, as the Lexicon `cid` string format uses them.

use cid::Cid;
use thiserror::Error;

/// A content identifier written as a multibase string (e.g. `bafyrei…`).
///
/// The Lexicon `cid` format is a syntax check: 8 to 256 characters of `A-Za-z0-9+=`, and
/// not a legacy CIDv0 (`Qm…`, which atproto does not use). On top of that the string is
/// decoded with the `cid` crate, and [`CidString::cid`] gives the result.
///
/// A string that passes the syntax check but does not decode is still accepted, with
/// `cid()` returning `None`: the atproto test vectors list such strings (contrived
/// multibase strings with truncated multihashes) as valid `cid` syntax. Use
/// [`CidString::new_decoded`] where an actual CID is needed, as for `$link` values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CidString {
    raw: String,
    cid: Option<Cid>,
}

/// Why a string is not a [`CidString`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CidStringError {
    /// Shorter than 8 or longer than 256 characters.
    #[error("CID string must be 8 to 256 characters")]
    BadLength,
    /// A character outside `A-Za-z0-9+=`.
    #[error("CID string contains {0:?}, which is not allowed")]
    BadCharacter(char),
    /// A CIDv0 (`Qm…`), which atproto does not use.
    #[error("CIDv0 is not supported; use CIDv1")]
    Version0,
    /// The multibase or multihash did not decode (only from [`CidString::new_decoded`]).
    #[error("not a decodable CID: {0}")]
    Decode(String),
}

impl CidString {
    /// Checks the syntax of `s` and wraps it, decoding it if it decodes.
    pub fn new(s: impl Into<String>) -> Result<Self, CidStringError> {
        Self::parse_owned(s.into())
    }

    /// Like [`CidString::new`], but also requires the string to decode as a CIDv1.
    pub fn new_decoded(s: impl Into<String>) -> Result<Self, CidStringError> {
        let raw = s.into();
        check(&raw)?;
        let cid = Cid::try_from(raw.as_str()).map_err(|e| CidStringError::Decode(e.to_string()))?;
        if cid.version() == cid::Version::V0 {
            return Err(CidStringError::Version0);
        }
        Ok(CidString {
            raw,
            cid: Some(cid),
        })
    }

    fn parse_owned(raw: String) -> Result<Self, CidStringError> {
        check(&raw)?;
        let cid = Cid::try_from(raw.as_str()).ok();
        if cid.is_some_and(|c| c.version() == cid::Version::V0) {
            return Err(CidStringError::Version0);
        }
        Ok(CidString { raw, cid })
    }

    /// The decoded CID, if the string decodes.
    pub fn cid(&self) -> Option<&Cid> {
        self.cid.as_ref()
    }
}

super::string_format!(CidString, CidStringError);

fn check(s: &str) -> Result<(), CidStringError> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '=')))
    {
        return Err(CidStringError::BadCharacter(c));
    }
    if s.len() < 8 || s.len() > 256 {
        return Err(CidStringError::BadLength);
    }
    // A CIDv0 is a bare base58btc multihash: 46 characters starting with "Qm".
    if s.len() == 46 && s.starts_with("Qm") {
        return Err(CidStringError::Version0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";

    #[test]
    fn decodes_when_it_can() {
        assert!(CidString::new(CID).unwrap().cid().is_some());
        assert!(
            CidString::new("z7x3CtScH765HvShXT")
                .unwrap()
                .cid()
                .is_none()
        );
        assert!(matches!(
            CidString::new_decoded("z7x3CtScH765HvShXT"),
            Err(CidStringError::Decode(_))
        ));
        assert_eq!(
            CidString::new("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"),
            Err(CidStringError::Version0)
        );
    }
}
