//! Handle and at-identifier syntax (<https://atproto.com/specs/handle>).

use thiserror::Error;

use super::{Did, DidError, is_domain_label};

/// Largest handle accepted, in characters.
const MAX_LEN: usize = 253;

/// A handle: a DNS name such as `alice.example.com`.
///
/// The case is kept as given; handles compare case-insensitively in atproto, so use
/// [`Handle::to_normalized`] before comparing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    raw: String,
}

/// Why a string is not a [`Handle`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Longer than 253 characters.
    #[error("handle is longer than {MAX_LEN} characters")]
    TooLong,
    /// Fewer than two labels.
    #[error("handle must have at least two dot-separated labels")]
    TooFewLabels,
    /// A label that is empty, longer than 63 characters, has a character other than
    /// ASCII letters, digits and `-`, or starts or ends with `-`.
    #[error("handle label {0:?} is not a valid DNS label")]
    BadLabel(String),
    /// The last label starts with a digit.
    #[error("the top-level domain of a handle must not start with a digit")]
    NumericTld,
}

impl Handle {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, HandleError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, HandleError> {
        check(&raw)?;
        Ok(Handle { raw })
    }

    /// The handle in lowercase, the form used to compare handles.
    pub fn to_normalized(&self) -> Handle {
        Handle {
            raw: self.raw.to_ascii_lowercase(),
        }
    }
}

super::string_format!(Handle, HandleError);

fn check(s: &str) -> Result<(), HandleError> {
    if s.len() > MAX_LEN {
        return Err(HandleError::TooLong);
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return Err(HandleError::TooFewLabels);
    }
    if let Some(bad) = labels.iter().find(|l| !is_domain_label(l)) {
        return Err(HandleError::BadLabel((*bad).to_owned()));
    }
    let tld = labels[labels.len() - 1];
    if tld.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(HandleError::NumericTld);
    }
    Ok(())
}

/// Either a [`Did`] or a [`Handle`]; strings starting with `did:` are read as DIDs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle.
    Handle(Handle),
}

/// Why a string is not an [`AtIdentifier`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AtIdentifierError {
    /// Starts with `did:` but is not a valid DID.
    #[error("invalid DID: {0}")]
    Did(#[from] DidError),
    /// Is not a valid handle.
    #[error("invalid handle: {0}")]
    Handle(#[from] HandleError),
}

impl AtIdentifier {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, AtIdentifierError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, AtIdentifierError> {
        if raw.starts_with("did:") {
            Ok(AtIdentifier::Did(Did::new(raw)?))
        } else {
            Ok(AtIdentifier::Handle(Handle::new(raw)?))
        }
    }

    /// The identifier as given.
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(d) => d.as_str(),
            AtIdentifier::Handle(h) => h.as_str(),
        }
    }
}

super::string_format!(custom_as_str AtIdentifier, AtIdentifierError);

impl From<Did> for AtIdentifier {
    fn from(d: Did) -> Self {
        AtIdentifier::Did(d)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(h: Handle) -> Self {
        AtIdentifier::Handle(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_problem() {
        assert_eq!("john".parse::<Handle>(), Err(HandleError::TooFewLabels));
        assert_eq!("john.0".parse::<Handle>(), Err(HandleError::NumericTld));
        assert_eq!(
            "jo_hn.test".parse::<Handle>(),
            Err(HandleError::BadLabel("jo_hn".into()))
        );
        assert!(matches!(
            "did:x".parse::<AtIdentifier>(),
            Err(AtIdentifierError::Did(_))
        ));
        let h: Handle = "John.Test".parse().unwrap();
        assert_eq!(h.to_normalized().as_str(), "john.test");
    }
}
