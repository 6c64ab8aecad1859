//! DIDs in the atproto profile: the two methods atproto supports and their structure.
//!
//! The general DID syntax is checked in one place, [`atmls_syntax::Did`] (re-exported
//! here as [`Did`]); the types in this module start from such a [`Did`] and add the rules of
//! their method.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

pub use atmls_syntax::{Did, DidError};

/// Longest DID accepted (the atproto DID spec allows 2 KB).
pub const MAX_DID_LEN: usize = Did::MAX_LEN;

/// Why a string is not a DID of the atproto profile ([`AtprotoDid`], [`PlcDid`],
/// [`WebDid`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AtprotoDidError {
    /// Not a DID at all.
    #[error(transparent)]
    Syntax(#[from] DidError),
    /// A method other than the one required.
    #[error("expected a did:{expected}, got did:{found}")]
    WrongMethod {
        /// The method required.
        expected: &'static str,
        /// The method found.
        found: String,
    },
    /// A did:plc identifier that is not 24 characters of base32 (`a-z2-7`).
    #[error("did:plc identifier must be 24 characters of a-z and 2-7")]
    InvalidPlcIdentifier,
    /// A did:web with a path (a `:` separator), which atproto does not allow.
    #[error("did:web with a path is not supported by atproto")]
    WebPath,
    /// A did:web whose host is not a valid host name.
    #[error("did:web host is not a valid host name")]
    WebHost,
    /// A did:web whose `%3A` port is not a number from 1 to 65535.
    #[error("did:web port is invalid")]
    WebPort,
}

/// A DID of a method atproto supports: a [`Did`] whose method is `plc` or `web`, checked
/// further by [`PlcDid`] or [`WebDid`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AtprotoDid {
    /// `did:plc:…`
    Plc(PlcDid),
    /// `did:web:…`
    Web(WebDid),
}

impl AtprotoDid {
    /// Parses a DID and classifies it as one of the methods atproto supports.
    pub fn new(s: impl Into<String>) -> Result<Self, AtprotoDidError> {
        AtprotoDid::try_from(Did::new(s)?)
    }

    /// The general DID.
    pub fn as_did(&self) -> &Did {
        match self {
            AtprotoDid::Plc(plc) => plc.as_did(),
            AtprotoDid::Web(web) => web.as_did(),
        }
    }

    /// The DID as a string.
    pub fn as_str(&self) -> &str {
        self.as_did().as_str()
    }
}

impl TryFrom<Did> for AtprotoDid {
    type Error = AtprotoDidError;

    fn try_from(did: Did) -> Result<Self, AtprotoDidError> {
        match did.method() {
            "plc" => PlcDid::try_from(did).map(AtprotoDid::Plc),
            "web" => WebDid::try_from(did).map(AtprotoDid::Web),
            other => Err(AtprotoDidError::WrongMethod {
                expected: "plc or did:web",
                found: other.to_owned(),
            }),
        }
    }
}

impl TryFrom<&Did> for AtprotoDid {
    type Error = AtprotoDidError;

    fn try_from(did: &Did) -> Result<Self, AtprotoDidError> {
        AtprotoDid::try_from(did.clone())
    }
}

impl fmt::Display for AtprotoDid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `did:plc:` DID: 24 characters of lowercase base32.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlcDid(Did);

impl PlcDid {
    /// Parses a did:plc.
    pub fn new(s: impl Into<String>) -> Result<Self, AtprotoDidError> {
        PlcDid::try_from(Did::new(s)?)
    }

    /// The general DID.
    pub fn as_did(&self) -> &Did {
        &self.0
    }

    /// The DID as a string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<Did> for PlcDid {
    type Error = AtprotoDidError;

    fn try_from(did: Did) -> Result<Self, AtprotoDidError> {
        if did.method() != "plc" {
            return Err(AtprotoDidError::WrongMethod {
                expected: "plc",
                found: did.method().to_owned(),
            });
        }
        let id = did.identifier();
        if id.len() != 24 || !id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
            return Err(AtprotoDidError::InvalidPlcIdentifier);
        }
        Ok(PlcDid(did))
    }
}

impl fmt::Display for PlcDid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for PlcDid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PlcDid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PlcDid::try_from(Did::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A `did:web:` DID in the atproto profile: a host name and optional `%3A` port, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebDid {
    did: Did,
    host: String,
    port: Option<u16>,
}

impl WebDid {
    /// Parses a did:web.
    pub fn new(s: impl Into<String>) -> Result<Self, AtprotoDidError> {
        WebDid::try_from(Did::new(s)?)
    }

    /// The general DID.
    pub fn as_did(&self) -> &Did {
        &self.did
    }

    /// The DID as a string.
    pub fn as_str(&self) -> &str {
        self.did.as_str()
    }

    /// The host name, lowercased.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the DID names one (`%3A1234`).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host` or `host:port`, the authority to fetch `/.well-known/did.json` from.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

impl TryFrom<Did> for WebDid {
    type Error = AtprotoDidError;

    fn try_from(did: Did) -> Result<Self, AtprotoDidError> {
        if did.method() != "web" {
            return Err(AtprotoDidError::WrongMethod {
                expected: "web",
                found: did.method().to_owned(),
            });
        }
        let id = did.identifier();
        if id.contains(':') {
            return Err(AtprotoDidError::WebPath);
        }
        let lower = id.to_ascii_lowercase();
        let (host, port) = match lower.split_once("%3a") {
            Some((host, port)) => {
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(AtprotoDidError::WebPort);
                }
                let port: u16 = port.parse().map_err(|_| AtprotoDidError::WebPort)?;
                if port == 0 {
                    return Err(AtprotoDidError::WebPort);
                }
                (host, Some(port))
            }
            None => (lower.as_str(), None),
        };
        if !is_host_name(host) {
            return Err(AtprotoDidError::WebHost);
        }
        let host = host.to_owned();
        Ok(WebDid { did, host, port })
    }
}

impl fmt::Display for WebDid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.did.fmt(f)
    }
}

/// A DNS host name (or `localhost`): labels of letters, digits and inner hyphens.
pub(crate) fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        let plc = Did::new("did:plc:fh5jrlbsm47qlufaem7aasei").unwrap();
        assert!(matches!(AtprotoDid::try_from(&plc), Ok(AtprotoDid::Plc(_))));
        assert_eq!(AtprotoDid::new(plc.as_str()).unwrap().as_did(), &plc);
        assert_eq!(
            PlcDid::new("did:plc:short"),
            Err(AtprotoDidError::InvalidPlcIdentifier)
        );
        assert_eq!(
            PlcDid::new("did:plc:FH5JRLBSM47QLUFAEM7AASEI"),
            Err(AtprotoDidError::InvalidPlcIdentifier)
        );
        let web = WebDid::new("did:web:localhost%3A2585").unwrap();
        assert_eq!((web.host(), web.port()), ("localhost", Some(2585)));
        assert_eq!(web.authority(), "localhost:2585");
        assert_eq!(WebDid::new("did:web:example.com").unwrap().port(), None);
        assert_eq!(
            WebDid::new("did:web:example.com:u:alice"),
            Err(AtprotoDidError::WebPath)
        );
        assert_eq!(
            WebDid::new("did:web:example.com%3A0"),
            Err(AtprotoDidError::WebPort)
        );
        assert_eq!(
            WebDid::new("did:web:example.com%3A99999"),
            Err(AtprotoDidError::WebPort)
        );
        assert_eq!(
            WebDid::new("did:web:exa%20mple.com"),
            Err(AtprotoDidError::WebHost)
        );
        assert_eq!(
            WebDid::new("did:web:-bad.com"),
            Err(AtprotoDidError::WebHost)
        );
        // The general syntax comes from atmls_syntax, percent-encoding check included.
        assert_eq!(
            WebDid::new("did:web:example.com%3"),
            Err(AtprotoDidError::Syntax(DidError::BadPercentEncoding))
        );
        assert_eq!(
            AtprotoDid::new("did:PLC:x"),
            Err(AtprotoDidError::Syntax(DidError::BadMethod))
        );
        assert!(matches!(
            AtprotoDid::try_from(Did::new("did:key:zQ3sh").unwrap()),
            Err(AtprotoDidError::WrongMethod { .. })
        ));
    }
}
