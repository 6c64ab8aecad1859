//! NSID syntax (<https://atproto.com/specs/nsid>).

use thiserror::Error;

use super::is_domain_label;

/// Largest NSID accepted, in characters.
const MAX_LEN: usize = 317;

/// A namespaced identifier such as `com.example.fooBar`: a reversed domain authority
/// followed by a name. It has no `#fragment`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid {
    raw: String,
}

/// Why a string is not an [`Nsid`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NsidError {
    /// Longer than 317 characters.
    #[error("NSID is too long")]
    TooLong,
    /// Fewer than three segments.
    #[error("NSID must have at least three dot-separated segments")]
    TooFewSegments,
    /// An authority segment that is not a valid DNS label.
    #[error("NSID segment {0:?} is not a valid domain label")]
    BadSegment(String),
    /// The first segment starts with a digit.
    #[error("the first segment of an NSID must not start with a digit")]
    NumericTld,
    /// The name (last segment) is not letters and digits starting with a letter.
    #[error("NSID name {0:?} must be 1 to 63 letters and digits, starting with a letter")]
    BadName(String),
}

impl Nsid {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, NsidError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, NsidError> {
        check(&raw)?;
        Ok(Nsid { raw })
    }

    /// The domain authority, e.g. `example.com` for `com.example.fooBar` (segments reversed).
    pub fn authority(&self) -> String {
        let (authority, _) = self.raw.rsplit_once('.').unwrap_or_default();
        authority.split('.').rev().collect::<Vec<_>>().join(".")
    }

    /// The name, i.e. the last segment (`fooBar` for `com.example.fooBar`).
    pub fn name(&self) -> &str {
        self.raw.rsplit('.').next().unwrap_or_default()
    }
}

super::string_format!(Nsid, NsidError);

fn check(s: &str) -> Result<(), NsidError> {
    if s.len() > MAX_LEN {
        return Err(NsidError::TooLong);
    }
    let (authority, name) = s.rsplit_once('.').ok_or(NsidError::TooFewSegments)?;
    let segments: Vec<&str> = authority.split('.').collect();
    if segments.len() < 2 {
        return Err(NsidError::TooFewSegments);
    }
    if let Some(bad) = segments.iter().find(|seg| !is_domain_label(seg)) {
        return Err(NsidError::BadSegment((*bad).to_owned()));
    }
    if segments[0].starts_with(|c: char| c.is_ascii_digit()) {
        return Err(NsidError::NumericTld);
    }
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|c| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(NsidError::BadName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let nsid: Nsid = "com.example.fooBar".parse().unwrap();
        assert_eq!(nsid.authority(), "example.com");
        assert_eq!(nsid.name(), "fooBar");
        assert_eq!(
            "com.example.2".parse::<Nsid>(),
            Err(NsidError::BadName("2".into()))
        );
        assert_eq!(
            "example.com".parse::<Nsid>(),
            Err(NsidError::TooFewSegments)
        );
    }
}
