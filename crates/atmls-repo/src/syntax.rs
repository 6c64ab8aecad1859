//! Checked names used by the repo: collection NSIDs, record keys, repo paths and DIDs.

use std::fmt;
use std::str::FromStr;

/// Why a name is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// Not a valid NSID.
    #[error("invalid NSID {0:?}")]
    Nsid(String),
    /// Not a valid record key.
    #[error("invalid record key {0:?}")]
    RecordKey(String),
    /// Not a valid repo path `collection/rkey`.
    #[error("invalid repo path {0:?}")]
    RepoPath(String),
    /// Not a valid DID.
    #[error("invalid DID {0:?}")]
    Did(String),
}

macro_rules! string_newtype {
    ($name:ident, $doc:literal, $check:ident, $variant:ident) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `s` and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, SyntaxError> {
                let s = s.into();
                if $check(&s) {
                    Ok($name(s))
                } else {
                    Err(SyntaxError::$variant(s))
                }
            }

            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = SyntaxError;
            fn from_str(s: &str) -> Result<Self, SyntaxError> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    Nsid,
    "A namespaced identifier such as `chat.mls.keyPackage` (a record collection).",
    is_nsid,
    Nsid
);
string_newtype!(
    RecordKey,
    "A record key: 1 to 512 characters of `A-Za-z0-9._:~-`, not `.` or `..`.",
    is_record_key,
    RecordKey
);
string_newtype!(Did, "A DID such as `did:plc:…` (syntax only).", is_did, Did);

fn is_nsid(s: &str) -> bool {
    if s.is_empty() || s.len() > 317 || !s.is_ascii() {
        return false;
    }
    let segments: Vec<&str> = s.split('.').collect();
    if segments.len() < 3 {
        return false;
    }
    let (name, authority) = match segments.split_last() {
        Some(x) => x,
        None => return false,
    };
    let authority_ok = authority.iter().enumerate().all(|(i, seg)| {
        !seg.is_empty()
            && seg.len() <= 63
            && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !seg.starts_with('-')
            && !seg.ends_with('-')
            && (i != 0 || !seg.as_bytes()[0].is_ascii_digit())
    });
    authority_ok
        && !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
        && !name.as_bytes()[0].is_ascii_digit()
}

fn is_record_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:~-".contains(&b))
}

fn is_did(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("did:") else {
        return false;
    };
    let Some((method, id)) = rest.split_once(':') else {
        return false;
    };
    s.len() <= 2048
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_lowercase())
        && !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b))
        && !id.ends_with(':')
        && !id.ends_with('%')
}

/// A key in the repo's MST: `collection/rkey`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath {
    collection: Nsid,
    rkey: RecordKey,
}

impl RepoPath {
    /// Joins a collection and a record key.
    pub fn new(collection: Nsid, rkey: RecordKey) -> Self {
        RepoPath { collection, rkey }
    }

    /// Parses `collection/rkey`.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        let bad = || SyntaxError::RepoPath(s.to_owned());
        let (c, r) = s.split_once('/').ok_or_else(bad)?;
        Ok(RepoPath {
            collection: Nsid::new(c).map_err(|_| bad())?,
            rkey: RecordKey::new(r).map_err(|_| bad())?,
        })
    }

    /// The collection.
    pub fn collection(&self) -> &Nsid {
        &self.collection
    }

    /// The record key.
    pub fn rkey(&self) -> &RecordKey {
        &self.rkey
    }

    /// The MST key bytes.
    pub fn to_key(&self) -> String {
        format!("{}/{}", self.collection, self.rkey)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection, self.rkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Nsid::new("chat.mls.keyPackage").is_ok());
        assert!(Nsid::new("chat.mls").is_err());
        assert!(Nsid::new("chat.mls.1x").is_err());
        assert!(RecordKey::new("3kpaaaaaaaaa2").is_ok());
        assert!(RecordKey::new("..").is_err());
        assert!(RecordKey::new("a/b").is_err());
        assert!(Did::new("did:plc:fh5jrlbsm47qlufaem7aasei").is_ok());
        assert!(Did::new("did:PLC:x").is_err());
        let p = RepoPath::parse("chat.mls.declaration/self").unwrap();
        assert_eq!(p.collection().as_str(), "chat.mls.declaration");
        assert_eq!(p.to_key(), "chat.mls.declaration/self");
        assert!(RepoPath::parse("chat.mls.declaration").is_err());
    }
}
