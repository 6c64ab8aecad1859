//! DID syntax (<https://atproto.com/specs/did>).

use thiserror::Error;

/// Largest DID accepted, in bytes (the atproto spec's 2 KB limit).
const MAX_LEN: usize = 2048;

/// A decentralized identifier such as `did:plc:7iza6de2dwap2sbkpav7c6c6`.
///
/// Only the generic atproto DID syntax is checked (any method); whether the method is
/// supported is an application question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did {
    raw: String,
}

/// Why a string is not a [`Did`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DidError {
    /// Longer than 2048 bytes.
    #[error("DID is longer than {MAX_LEN} bytes")]
    TooLong,
    /// Does not start with `did:`.
    #[error("DID must start with \"did:\"")]
    MissingPrefix,
    /// The method is empty or not lowercase ASCII letters.
    #[error("DID method must be one or more lowercase letters")]
    BadMethod,
    /// The method-specific identifier is empty.
    #[error("DID has no method-specific identifier")]
    EmptyIdentifier,
    /// A character outside `A-Za-z0-9._:%-`.
    #[error("DID contains the character {0:?}, which is not allowed")]
    BadCharacter(char),
    /// Ends with `:` or `%`.
    #[error("DID must not end with ':' or '%'")]
    BadEnd,
    /// A `%` not followed by two hex digits.
    #[error("DID has a '%' that is not followed by two hex digits")]
    BadPercentEncoding,
}

impl Did {
    /// Largest DID accepted, in bytes.
    pub const MAX_LEN: usize = MAX_LEN;

    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, DidError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, DidError> {
        check(&raw)?;
        Ok(Did { raw })
    }

    /// The method, e.g. `plc` for `did:plc:…`.
    pub fn method(&self) -> &str {
        self.raw[4..].split(':').next().unwrap_or_default()
    }

    /// The method-specific identifier, e.g. `7iza6de2dwap2sbkpav7c6c6` for
    /// `did:plc:7iza6de2dwap2sbkpav7c6c6` (everything after the method's `:`).
    pub fn identifier(&self) -> &str {
        self.raw[4..].split_once(':').map_or("", |(_, id)| id)
    }
}

super::string_format!(Did, DidError);

fn check(s: &str) -> Result<(), DidError> {
    if s.len() > MAX_LEN {
        return Err(DidError::TooLong);
    }
    let rest = s.strip_prefix("did:").ok_or(DidError::MissingPrefix)?;
    let (method, id) = rest.split_once(':').ok_or(DidError::BadMethod)?;
    if method.is_empty() || !method.bytes().all(|c| c.is_ascii_lowercase()) {
        return Err(DidError::BadMethod);
    }
    if id.is_empty() {
        return Err(DidError::EmptyIdentifier);
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '%' | '-')))
    {
        return Err(DidError::BadCharacter(c));
    }
    if id.ends_with([':', '%']) {
        return Err(DidError::BadEnd);
    }
    let bytes = id.as_bytes();
    for (i, _) in id.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
        if hex.len() != 2 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(DidError::BadPercentEncoding);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_errors() {
        let did: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap();
        assert_eq!(did.method(), "plc");
        assert_eq!(did.identifier(), "7iza6de2dwap2sbkpav7c6c6");
        assert_eq!(
            Did::new("did:web:a.com:u:x").unwrap().identifier(),
            "a.com:u:x"
        );
        assert_eq!("did:METHOD:x".parse::<Did>(), Err(DidError::BadMethod));
        assert_eq!(
            "did:m:a%zz".parse::<Did>(),
            Err(DidError::BadPercentEncoding)
        );
    }
}
