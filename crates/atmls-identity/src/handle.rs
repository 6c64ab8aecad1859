//! Handle syntax (`alice.example.com`).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why a string is not a valid handle.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Longer than 253 characters.
    #[error("handle longer than 253 characters")]
    TooLong,
    /// Fewer than two labels.
    #[error("handle needs at least two labels")]
    TooFewLabels,
    /// A label that is empty, too long, or has a bad character or hyphen placement.
    #[error("invalid handle label {0:?}")]
    InvalidLabel(String),
    /// The last label (top-level domain) starts with a digit.
    #[error("handle top-level domain must not start with a digit")]
    NumericTld,
}

/// A syntactically valid handle, stored lowercased.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// Checks `s` against the atproto handle syntax and normalises it to lowercase.
    pub fn new(s: &str) -> Result<Self, HandleError> {
        if s.len() > 253 {
            return Err(HandleError::TooLong);
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(HandleError::TooFewLabels);
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(HandleError::InvalidLabel((*label).to_owned()));
            }
        }
        if labels
            .last()
            .and_then(|l| l.bytes().next())
            .is_some_and(|b| b.is_ascii_digit())
        {
            return Err(HandleError::NumericTld);
        }
        Ok(Handle(s.to_ascii_lowercase()))
    }

    /// The handle as a (lowercase) string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.0)
    }
}

impl FromStr for Handle {
    type Err = HandleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Handle::new(s)
    }
}
