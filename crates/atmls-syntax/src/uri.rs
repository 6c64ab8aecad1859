//! Generic URI syntax, as the Lexicon `uri` string format uses it.

use thiserror::Error;

/// Largest URI accepted in Lexicon data, in bytes (8 KB).
const MAX_LEN: usize = 8192;

/// A generic URI: an RFC 3986 scheme, `:`, and a non-empty remainder with no whitespace
/// or control characters, at most 8 KB long.
///
/// This is the loose check Lexicon asks for; the remainder is not parsed further.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri {
    raw: String,
}

/// Why a string is not a [`Uri`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UriError {
    /// Longer than 8192 bytes.
    #[error("URI is longer than {MAX_LEN} bytes")]
    TooLong,
    /// No `scheme:` prefix (a letter followed by letters, digits, `+`, `-` or `.`).
    #[error("URI must start with a scheme (a letter, then letters, digits, '+', '-', '.') and ':'")]
    BadScheme,
    /// Nothing after the scheme.
    #[error("URI has nothing after the scheme")]
    Empty,
    /// Whitespace or a control character.
    #[error("URI must not contain whitespace or control characters")]
    BadCharacter,
}

impl Uri {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, UriError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, UriError> {
        check(&raw)?;
        Ok(Uri { raw })
    }

    /// The scheme, e.g. `https`.
    pub fn scheme(&self) -> &str {
        self.raw.split(':').next().unwrap_or_default()
    }
}

super::string_format!(Uri, UriError);

fn check(s: &str) -> Result<(), UriError> {
    if s.len() > MAX_LEN {
        return Err(UriError::TooLong);
    }
    let (scheme, rest) = s.split_once(':').ok_or(UriError::BadScheme)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(UriError::BadScheme);
    }
    if rest.is_empty() {
        return Err(UriError::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UriError::BadCharacter);
    }
    Ok(())
}
