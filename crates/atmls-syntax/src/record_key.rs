//! Record key syntax (<https://atproto.com/specs/record-key>).

use thiserror::Error;

/// Largest record key accepted, in characters.
const MAX_LEN: usize = 512;

/// A record key (general "any" syntax): 1 to 512 characters of `A-Za-z0-9._:~-`, not `.`
/// or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    raw: String,
}

/// Why a string is not a [`RecordKey`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordKeyError {
    /// Empty or longer than 512 characters.
    #[error("record key must be 1 to {MAX_LEN} characters")]
    BadLength,
    /// A character outside `A-Za-z0-9._:~-`.
    #[error("record key contains {0:?}, which is not allowed")]
    BadCharacter(char),
    /// Exactly `.` or `..`.
    #[error("record key must not be \".\" or \"..\"")]
    DotSegment,
}

impl RecordKey {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, RecordKeyError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, RecordKeyError> {
        check(&raw)?;
        Ok(RecordKey { raw })
    }
}

super::string_format!(RecordKey, RecordKeyError);

fn check(s: &str) -> Result<(), RecordKeyError> {
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(RecordKeyError::BadLength);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '~' | '-')))
    {
        return Err(RecordKeyError::BadCharacter(c));
    }
    if s == "." || s == ".." {
        return Err(RecordKeyError::DotSegment);
    }
    Ok(())
}
