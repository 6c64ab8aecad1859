//! AT-URI syntax, in the strict form Lexicon `at-uri` strings use
//! (<https://atproto.com/specs/at-uri-scheme>).

use thiserror::Error;

use super::{AtIdentifier, AtIdentifierError, Nsid, NsidError, RecordKey, RecordKeyError};

/// Largest AT-URI accepted, in bytes (8 KB).
const MAX_LEN: usize = 8192;

/// An AT-URI: `at://` authority, then optionally `/` collection NSID, then optionally `/`
/// record key. No query, fragment or trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtUri {
    raw: String,
    authority: AtIdentifier,
    collection: Option<Nsid>,
    rkey: Option<RecordKey>,
}

/// Why a string is not an [`AtUri`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AtUriError {
    /// Longer than 8192 bytes.
    #[error("AT-URI is longer than {MAX_LEN} bytes")]
    TooLong,
    /// Does not start with `at://`.
    #[error("AT-URI must start with \"at://\"")]
    MissingScheme,
    /// Has a `?query` or `#fragment`, which Lexicon AT-URIs do not allow.
    #[error("AT-URI must not have a query or fragment")]
    QueryOrFragment,
    /// The authority is neither a DID nor a handle.
    #[error("AT-URI authority is invalid: {0}")]
    Authority(#[source] AtIdentifierError),
    /// The collection is not an NSID.
    #[error("AT-URI collection is not an NSID: {0}")]
    Collection(#[source] NsidError),
    /// The record key is invalid.
    #[error("AT-URI record key is invalid: {0}")]
    RecordKey(#[source] RecordKeyError),
    /// More than three path parts, or an empty one (e.g. a trailing slash).
    #[error("AT-URI path must be at most /collection/rkey, with no empty parts")]
    BadPath,
}

impl AtUri {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, AtUriError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, AtUriError> {
        if raw.len() > MAX_LEN {
            return Err(AtUriError::TooLong);
        }
        let rest = raw.strip_prefix("at://").ok_or(AtUriError::MissingScheme)?;
        if rest.contains(['?', '#']) {
            return Err(AtUriError::QueryOrFragment);
        }
        let mut parts = rest.split('/');
        let authority =
            AtIdentifier::new(parts.next().unwrap_or_default()).map_err(AtUriError::Authority)?;
        let collection = parts.next().map(part).transpose()?;
        let rkey = parts.next().map(part).transpose()?;
        if parts.next().is_some() {
            return Err(AtUriError::BadPath);
        }
        let collection = collection
            .map(Nsid::new)
            .transpose()
            .map_err(AtUriError::Collection)?;
        let rkey = rkey
            .map(RecordKey::new)
            .transpose()
            .map_err(AtUriError::RecordKey)?;
        Ok(AtUri {
            raw,
            authority,
            collection,
            rkey,
        })
    }

    /// The repository: a DID or a handle.
    pub fn authority(&self) -> &AtIdentifier {
        &self.authority
    }

    /// The collection, if the URI has one.
    pub fn collection(&self) -> Option<&Nsid> {
        self.collection.as_ref()
    }

    /// The record key, if the URI has one.
    pub fn rkey(&self) -> Option<&RecordKey> {
        self.rkey.as_ref()
    }
}

fn part(s: &str) -> Result<&str, AtUriError> {
    if s.is_empty() {
        Err(AtUriError::BadPath)
    } else {
        Ok(s)
    }
}

super::string_format!(AtUri, AtUriError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let uri: AtUri = "at://did:plc:asdf123/com.example.post/3jzfcijpj2z2a"
            .parse()
            .unwrap();
        assert_eq!(uri.authority().as_str(), "did:plc:asdf123");
        assert_eq!(uri.collection().map(Nsid::as_str), Some("com.example.post"));
        assert_eq!(uri.rkey().map(RecordKey::as_str), Some("3jzfcijpj2z2a"));
        assert_eq!("at://a.com/".parse::<AtUri>(), Err(AtUriError::BadPath));
    }
}
