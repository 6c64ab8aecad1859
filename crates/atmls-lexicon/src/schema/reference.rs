//! References between definitions: `#name`, `nsid` and `nsid#name`.

use std::fmt;

use crate::syntax::Nsid;

/// A resolved-in-form reference to a definition: the NSID of its document and its name.
///
/// Local references (`#name`) are made absolute against the document they appear in, and
/// a bare NSID means `main`. [`fmt::Display`] writes the canonical form used in `$type`:
/// `nsid` for `main`, `nsid#name` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    nsid: Nsid,
    name: String,
}

impl Reference {
    /// Reads `raw` as written in the document `base`; `None` if it is malformed.
    pub fn parse(raw: &str, base: &Nsid) -> Option<Self> {
        let (nsid, name) = match raw.split_once('#') {
            Some(("", name)) => (base.clone(), name),
            Some((nsid, name)) => (Nsid::new(nsid).ok()?, name),
            None => (Nsid::new(raw).ok()?, "main"),
        };
        if name.is_empty() || name.contains('#') {
            return None;
        }
        Some(Reference {
            nsid,
            name: name.to_owned(),
        })
    }

    /// Reads an absolute reference (`nsid` or `nsid#name`, as in `$type` values); `None`
    /// if it is malformed or local (`#name`).
    pub fn parse_absolute(raw: &str) -> Option<Self> {
        if raw.starts_with('#') {
            return None;
        }
        let (nsid, name) = raw.split_once('#').unwrap_or((raw, "main"));
        if name.is_empty() || name.contains('#') {
            return None;
        }
        Some(Reference {
            nsid: Nsid::new(nsid).ok()?,
            name: name.to_owned(),
        })
    }

    /// A reference to definition `name` of document `nsid`.
    pub fn new(nsid: Nsid, name: impl Into<String>) -> Self {
        Reference {
            nsid,
            name: name.into(),
        }
    }

    /// The document.
    pub fn nsid(&self) -> &Nsid {
        &self.nsid
    }

    /// The definition name (`main` for a bare NSID).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name == "main" {
            write!(f, "{}", self.nsid)
        } else {
            write!(f, "{}#{}", self.nsid, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let base = Nsid::new("com.example.doc").unwrap();
        assert_eq!(
            Reference::parse("#view", &base).unwrap().to_string(),
            "com.example.doc#view"
        );
        assert_eq!(
            Reference::parse("com.example.rec", &base).unwrap().name(),
            "main"
        );
        assert_eq!(
            Reference::parse("com.example.rec#main", &base)
                .unwrap()
                .to_string(),
            "com.example.rec"
        );
        assert!(Reference::parse("#", &base).is_none());
        assert!(Reference::parse("bad#x", &base).is_none());
    }
}
