//! DID syntax: the general atproto DID form and the two supported methods.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Longest DID accepted (the atproto DID spec allows 2 KB).
pub const MAX_DID_LEN: usize = 2048;

/// Why a string is not an acceptable DID.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DidError {
    /// Longer than [`MAX_DID_LEN`].
    #[error("DID is {0} bytes, longer than 2048")]
    TooLong(usize),
    /// Does not start with `did:`.
    #[error("DID must start with \"did:\"")]
    MissingPrefix,
    /// The method is empty or not lowercase ASCII letters.
    #[error("DID method must be lowercase letters")]
    InvalidMethod,
    /// The method-specific identifier is empty.
    #[error("DID identifier is empty")]
    EmptyIdentifier,
    /// A character outside `[A-Za-z0-9._:%-]`.
    #[error("character {0:?} not allowed in a DID")]
    InvalidCharacter(char),
    /// The identifier ends with `:` or `%`.
    #[error("DID must not end with ':' or '%'")]
    InvalidEnding,
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

/// A DID in the general atproto syntax (any method).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

impl Did {
    /// Checks `s` against the atproto DID syntax.
    pub fn new(s: impl Into<String>) -> Result<Self, DidError> {
        let s = s.into();
        if s.len() > MAX_DID_LEN {
            return Err(DidError::TooLong(s.len()));
        }
        let rest = s.strip_prefix("did:").ok_or(DidError::MissingPrefix)?;
        let (method, ident) = rest.split_once(':').ok_or(DidError::InvalidMethod)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(DidError::InvalidMethod);
        }
        if ident.is_empty() {
            return Err(DidError::EmptyIdentifier);
        }
        if let Some(c) = ident
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '%' | '-')))
        {
            return Err(DidError::InvalidCharacter(c));
        }
        if ident.ends_with(':') || ident.ends_with('%') {
            return Err(DidError::InvalidEnding);
        }
        Ok(Did(s))
    }

    /// The DID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method (`plc`, `web`, …).
    pub fn method(&self) -> &str {
        self.0[4..].split_once(':').map_or("", |(m, _)| m)
    }

    /// The method-specific identifier.
    pub fn identifier(&self) -> &str {
        self.0[4..].split_once(':').map_or("", |(_, i)| i)
    }

    /// Classifies this DID as one of the methods atproto supports.
    pub fn to_atproto(&self) -> Result<AtprotoDid, DidError> {
        match self.method() {
            "plc" => PlcDid::try_from(self.clone()).map(AtprotoDid::Plc),
            "web" => WebDid::try_from(self.clone()).map(AtprotoDid::Web),
            other => Err(DidError::WrongMethod {
                expected: "plc or did:web",
                found: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.0)
    }
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Did::new(s)
    }
}

impl AsRef<str> for Did {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Did {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Did::new(s).map_err(serde::de::Error::custom)
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

/// A DID of a method atproto supports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AtprotoDid {
    /// `did:plc:…`
    Plc(PlcDid),
    /// `did:web:…`
    Web(WebDid),
}

/// A `did:plc:` DID: 24 characters of lowercase base32.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlcDid(Did);

impl PlcDid {
    /// Parses a did:plc.
    pub fn new(s: impl Into<String>) -> Result<Self, DidError> {
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
    type Error = DidError;

    fn try_from(did: Did) -> Result<Self, DidError> {
        if did.method() != "plc" {
            return Err(DidError::WrongMethod {
                expected: "plc",
                found: did.method().to_owned(),
            });
        }
        let id = did.identifier();
        if id.len() != 24 || !id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
            return Err(DidError::InvalidPlcIdentifier);
        }
        Ok(PlcDid(did))
    }
}

impl fmt::Display for PlcDid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
    pub fn new(s: impl Into<String>) -> Result<Self, DidError> {
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
    type Error = DidError;

    fn try_from(did: Did) -> Result<Self, DidError> {
        if did.method() != "web" {
            return Err(DidError::WrongMethod {
                expected: "web",
                found: did.method().to_owned(),
            });
        }
        let id = did.identifier();
        if id.contains(':') {
            return Err(DidError::WebPath);
        }
        let lower = id.to_ascii_lowercase();
        let (host, port) = match lower.split_once("%3a") {
            Some((host, port)) => {
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(DidError::WebPort);
                }
                let port: u16 = port.parse().map_err(|_| DidError::WebPort)?;
                if port == 0 {
                    return Err(DidError::WebPort);
                }
                (host, Some(port))
            }
            None => (lower.as_str(), None),
        };
        if !is_host_name(host) {
            return Err(DidError::WebHost);
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
        assert!(matches!(plc.to_atproto(), Ok(AtprotoDid::Plc(_))));
        assert_eq!(
            PlcDid::new("did:plc:short"),
            Err(DidError::InvalidPlcIdentifier)
        );
        assert_eq!(
            PlcDid::new("did:plc:FH5JRLBSM47QLUFAEM7AASEI"),
            Err(DidError::InvalidPlcIdentifier)
        );
        let web = WebDid::new("did:web:localhost%3A2585").unwrap();
        assert_eq!((web.host(), web.port()), ("localhost", Some(2585)));
        assert_eq!(web.authority(), "localhost:2585");
        assert_eq!(WebDid::new("did:web:example.com").unwrap().port(), None);
        assert_eq!(
            WebDid::new("did:web:example.com:u:alice"),
            Err(DidError::WebPath)
        );
        assert_eq!(
            WebDid::new("did:web:example.com%3A0"),
            Err(DidError::WebPort)
        );
        assert_eq!(
            WebDid::new("did:web:example.com%3A99999"),
            Err(DidError::WebPort)
        );
        assert_eq!(
            WebDid::new("did:web:exa%20mple.com"),
            Err(DidError::WebHost)
        );
        assert_eq!(WebDid::new("did:web:-bad.com"), Err(DidError::WebHost));
        assert!(matches!(
            Did::new("did:key:zQ3sh").unwrap().to_atproto(),
            Err(DidError::WrongMethod { .. })
        ));
    }
}
