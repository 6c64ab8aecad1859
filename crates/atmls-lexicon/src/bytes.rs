//! The lexicon `bytes` type.

use std::fmt;

use base64::Engine as _;
use ipld_core::ipld::Ipld;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes as the atproto data model has them: a CBOR byte string in DAG-CBOR, and
/// `{"$bytes": "<base64, no padding>"}` in JSON.
///
/// Decoding accepts either form whatever the format claims, because serde's buffering
/// (flattened and internally tagged types) hides whether the input is human-readable.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

impl Bytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Unwraps the bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", B64.encode(&self.0))
    }
}

#[derive(Serialize)]
struct Wrapped<'a> {
    #[serde(rename = "$bytes")]
    bytes: &'a str,
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            Wrapped {
                bytes: &B64.encode(&self.0),
            }
            .serialize(serializer)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Ipld::deserialize(deserializer)? {
            Ipld::Bytes(b) => Ok(Self(b)),
            Ipld::Map(map) if map.len() == 1 => match map.get("$bytes") {
                Some(Ipld::String(s)) => {
                    // The data model says no padding; tolerate it on input as the reference
                    // implementation does.
                    let s = s.trim_end_matches('=');
                    B64.decode(s)
                        .map(Self)
                        .map_err(|e| D::Error::custom(format!("invalid $bytes: {e}")))
                }
                _ => Err(D::Error::custom("expected {\"$bytes\": base64 string}")),
            },
            _ => Err(D::Error::custom(
                "expected bytes or {\"$bytes\": base64 string}",
            )),
        }
    }
}
