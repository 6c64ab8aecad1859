//! The bottom of the atmls crate graph: atproto string formats as parsed newtypes, and
//! time. No I/O, no async, no storage; every other crate may depend on this one.
//!
//! Every string type here is built only through a constructor that checks the format
//! (`FromStr`, `TryFrom<String>`, `new`), so holding a [`Did`] means holding a string that
//! passed the DID syntax rules. Each type has its own error enum naming what went wrong.
//! [`Timestamp`] is the one point-in-time type of the workspace (milliseconds since the
//! Unix epoch); cores take it as an argument and shells read it from a [`Clock`].
//!
//! ```
//! use atmls_syntax::{Clock as _, Did, ManualClock, Tid, Timestamp};
//!
//! let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse()?;
//! assert_eq!(did.method(), "plc");
//! assert!("did:PLC:x".parse::<Did>().is_err());
//! assert!(Tid::new("3jzfcijpj2z2a").is_ok());
//!
//! let clock = ManualClock::new(Timestamp::from_millis(1_800_000_000_000));
//! clock.advance(std::time::Duration::from_secs(1));
//! assert_eq!(clock.now().as_millis(), 1_800_000_001_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The string rules follow the atproto specifications (<https://atproto.com/specs/lexicon>, string
//! formats) and are checked against the atproto interop test vectors. Two groups of
//! fixture strings are syntactically well-formed but semantically wrong; they are handled
//! as follows:
//!
//! - **datetimes** (`datetime_parse_invalid.txt`, e.g. month `13` or second `61`) are
//!   rejected by [`Datetime`], with [`DatetimeError::OutOfRange`] (distinct from
//!   [`DatetimeError::Syntax`]). The Lexicon spec lists such strings as invalid, and a
//!   [`Datetime`] can therefore always be turned into a real point in time.
//! - **language tags** (`language_parse_invalid.txt`, e.g. a repeated variant) are
//!   accepted by [`Language`]: the spec asks only for a "well-formed" BCP 47 tag in
//!   Lexicon validation and says clients should ignore well-formed but not valid tags.
//!   [`Language::check_valid`] reports those cases for callers that care.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod source;
mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use source::source_key;
pub use time::{Timestamp, duration_millis};

mod at_uri;
mod cid;
mod datetime;
mod did;
mod handle;
mod language;
mod nsid;
mod record_key;
mod tid;
mod uri;

pub use at_uri::{AtUri, AtUriError};
pub use cid::{CidString, CidStringError};
pub use datetime::{Datetime, DatetimeError};
pub use did::{Did, DidError};
pub use handle::{AtIdentifier, AtIdentifierError, Handle, HandleError};
pub use language::{Language, LanguageError};
pub use nsid::{Nsid, NsidError};
pub use record_key::{RecordKey, RecordKeyError};
pub use tid::{Tid, TidError, TidGenerator};
pub use uri::{Uri, UriError};

/// Implements the string plumbing shared by every format type: `as_str`, `Display`,
/// `AsRef<str>`, `FromStr`, `TryFrom<String>`, `TryFrom<&str>`, `From<T> for String` and serde
/// (as a plain string, checked on the way in).
///
/// The type must have `fn parse_owned(String) -> Result<Self, $err>` and a `raw: String` field
/// (or an `as_str` of its own when `custom_as_str` is given).
macro_rules! string_format {
    ($ty:ident, $err:ty) => {
        impl $ty {
            /// The string as given.
            pub fn as_str(&self) -> &str {
                &self.raw
            }
        }
        $crate::string_format!(@common $ty, $err);
    };
    (custom_as_str $ty:ident, $err:ty) => {
        $crate::string_format!(@common $ty, $err);
    };
    (@common $ty:ident, $err:ty) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::convert::AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse_owned(s.to_owned())
            }
        }
        impl ::std::convert::TryFrom<String> for $ty {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse_owned(s)
            }
        }
        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = $err;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse_owned(s.to_owned())
            }
        }
        impl ::std::convert::From<$ty> for String {
            fn from(v: $ty) -> String {
                v.as_str().to_owned()
            }
        }
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::parse_owned(s).map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_format;

/// Whether `label` is a DNS-style label: 1 to 63 ASCII letters, digits or hyphens, not
/// starting or ending with a hyphen. Shared by handles and NSID authorities.
pub(crate) fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
