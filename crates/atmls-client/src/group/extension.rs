//! The chat.mls group data extension: a private-use GroupContext extension (type
//! [`GROUP_DATA_EXTENSION_TYPE`]) carrying where the group's mailbox is, its name,
//! description, admins, padding policy and message lifetime. Layout (RFC 9420 TLS presentation language,
//! `<V>` = MLS variable-length vector with a QUIC-style varint length, §2.1.2):
//!
//! ```text
//! struct {
//!     uint8 version;            // 2
//!     opaque ds<V>;             // DID of the delivery service, UTF-8
//!     opaque mailbox[32];       // group mailbox id, raw
//!     opaque name<V>;           // UTF-8, at most 1024 bytes
//!     opaque description<V>;    // UTF-8, at most 4096 bytes
//!     opaque admins<V>;         // concatenation of opaque did<V>, at most 64 DIDs
//!     uint8 padding;            // 0 = none, 1 = buckets v1
//!     uint32 lifetime_seconds;  // 0 = off, else 60..=31536000 (§11.18)
//! } GroupData;
//! ```

use atmls_identity::Did;

use super::lifetime::{MessageLifetime, lifetime_seconds};

/// The extension type (private-use range 0xF000–0xFFFF of the MLS Extension Types
/// registry).
pub const GROUP_DATA_EXTENSION_TYPE: u16 = 0xF0A7;

/// Version 2 appended `lifetime_seconds`; version 1 (no lifetime) is no longer read
/// (pre-1.0: no group of version 1 is kept, spec §11.2).
const VERSION: u8 = 2;
const MAX_NAME: usize = 1024;
const MAX_DESCRIPTION: usize = 4096;
const MAX_ADMINS: usize = 64;
const MAX_DID: usize = 2048;

/// How application payloads are padded before they go to the DS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PaddingPolicy {
    /// No bucket padding (MLS padding only).
    None,
    /// Buckets v1: see [`crate::content::padded_len`].
    BucketsV1,
}

/// The group's data, as the extension carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupData {
    /// The delivery service hosting the group mailbox.
    pub ds: Did,
    /// The group mailbox id (raw).
    pub mailbox: [u8; 32],
    /// Group name.
    pub name: String,
    /// Group description.
    pub description: String,
    /// Accounts that may add and remove members, rename and change admins.
    pub admins: Vec<Did>,
    /// Padding policy.
    pub padding: PaddingPolicy,
    /// How long members and the DS keep application messages (§11.18); `None`: no
    /// lifetime.
    pub message_lifetime: Option<MessageLifetime>,
}

/// Why extension bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupDataError {
    /// Unknown format version.
    #[error("unknown version {0}")]
    Version(u8),
    /// The bytes end early, or have bytes left over.
    #[error("truncated or trailing bytes")]
    Length,
    /// A varint is not minimally encoded or uses the reserved prefix.
    #[error("bad varint")]
    Varint,
    /// A field is over its limit.
    #[error("{0} too long")]
    TooLong(&'static str),
    /// A string is not UTF-8 or a DID is not a DID.
    #[error("{0} is not valid")]
    Invalid(&'static str),
    /// An unknown padding policy.
    #[error("unknown padding policy {0}")]
    Padding(u8),
    /// A message lifetime outside 60 s..=365 days (and not 0).
    #[error("message lifetime {0} s out of bounds")]
    Lifetime(u32),
}

impl GroupData {
    /// Whether `did` is an admin.
    pub fn is_admin(&self, did: &str) -> bool {
        self.admins.iter().any(|a| a.as_str() == did)
    }

    /// The TLS encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.name.len() + self.description.len());
        out.push(VERSION);
        put_vec(&mut out, self.ds.as_str().as_bytes());
        out.extend_from_slice(&self.mailbox);
        put_vec(&mut out, self.name.as_bytes());
        put_vec(&mut out, self.description.as_bytes());
        let mut admins = Vec::new();
        for a in &self.admins {
            put_vec(&mut admins, a.as_str().as_bytes());
        }
        put_vec(&mut out, &admins);
        out.push(match self.padding {
            PaddingPolicy::None => 0,
            PaddingPolicy::BucketsV1 => 1,
        });
        out.extend_from_slice(&lifetime_seconds(self.message_lifetime).to_be_bytes());
        out
    }

    /// Parses untrusted extension bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupDataError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(GroupDataError::Version(version));
        }
        let ds = did(r.vec(MAX_DID, "ds")?, "ds")?;
        let mailbox: [u8; 32] = r.take(32)?.try_into().map_err(|_| GroupDataError::Length)?;
        let name = utf8(r.vec(MAX_NAME, "name")?, "name")?;
        let description = utf8(r.vec(MAX_DESCRIPTION, "description")?, "description")?;
        let mut list = Reader(r.vec(MAX_ADMINS * (MAX_DID + 2), "admins")?);
        let mut admins = Vec::new();
        while !list.0.is_empty() {
            if admins.len() == MAX_ADMINS {
                return Err(GroupDataError::TooLong("admins"));
            }
            admins.push(did(list.vec(MAX_DID, "admin")?, "admin")?);
        }
        let padding = match r.u8()? {
            0 => PaddingPolicy::None,
            1 => PaddingPolicy::BucketsV1,
            p => return Err(GroupDataError::Padding(p)),
        };
        let seconds =
            u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| GroupDataError::Length)?);
        let message_lifetime = MessageLifetime::from_seconds(seconds)
            .map_err(|_| GroupDataError::Lifetime(seconds))?;
        if !r.0.is_empty() {
            return Err(GroupDataError::Length);
        }
        Ok(Self {
            ds,
            mailbox,
            name,
            description,
            admins,
            padding,
            message_lifetime,
        })
    }
}

fn utf8(b: &[u8], what: &'static str) -> Result<String, GroupDataError> {
    String::from_utf8(b.to_vec()).map_err(|_| GroupDataError::Invalid(what))
}

fn did(b: &[u8], what: &'static str) -> Result<Did, GroupDataError> {
    utf8(b, what)?
        .parse()
        .map_err(|_| GroupDataError::Invalid(what))
}

/// Appends an MLS variable-length vector (RFC 9420 §2.1.2 varint length prefix).
pub(super) fn put_vec(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len();
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(data);
}

pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], GroupDataError> {
        if self.0.len() < n {
            return Err(GroupDataError::Length);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, GroupDataError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<usize, GroupDataError> {
        let first = self.u8()?;
        let (len, value) = match first >> 6 {
            0 => (1, u32::from(first)),
            1 => (2, u32::from(first & 0x3f)),
            2 => (4, u32::from(first & 0x3f)),
            _ => return Err(GroupDataError::Varint),
        };
        let mut v = value;
        for b in self.take(len - 1)? {
            v = (v << 8) | u32::from(*b);
        }
        // Minimal encoding (RFC 9420 §2.1.2).
        let minimal = match len {
            1 => true,
            2 => v >= 1 << 6,
            _ => v >= 1 << 14,
        };
        if !minimal {
            return Err(GroupDataError::Varint);
        }
        usize::try_from(v).map_err(|_| GroupDataError::Varint)
    }

    pub(super) fn vec(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<&'a [u8], GroupDataError> {
        let n = self.varint()?;
        if n > max {
            return Err(GroupDataError::TooLong(what));
        }
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GroupData {
        GroupData {
            ds: "did:web:ds.example.com".parse().unwrap(),
            mailbox: [1; 32],
            name: "tea".into(),
            description: String::new(),
            admins: vec!["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap()],
            padding: PaddingPolicy::BucketsV1,
            message_lifetime: None,
        }
    }

    /// The test vector printed in docs/spec.md §11.2.
    #[test]
    fn vector() {
        let bytes = sample().to_bytes();
        let mut expected = vec![0x02, 22];
        expected.extend_from_slice(b"did:web:ds.example.com");
        expected.extend_from_slice(&[1; 32]);
        expected.extend_from_slice(&[3, b't', b'e', b'a', 0, 33, 32]);
        expected.extend_from_slice(b"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
        expected.extend_from_slice(&[1, 0, 0, 0, 0]);
        assert_eq!(bytes, expected);
        assert_eq!(GroupData::from_bytes(&bytes).unwrap(), sample());
    }

    #[test]
    fn lifetime_round_trips_and_bounds_are_refused() {
        let day = GroupData {
            message_lifetime: MessageLifetime::from_seconds(86_400).unwrap(),
            ..sample()
        };
        let bytes = day.to_bytes();
        assert_eq!(&bytes[bytes.len() - 4..], &86_400u32.to_be_bytes());
        assert_eq!(GroupData::from_bytes(&bytes).unwrap(), day);
        for bad in [1u32, 59, 31_536_001, u32::MAX] {
            let mut b = bytes.clone();
            let n = b.len();
            b[n - 4..].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(
                GroupData::from_bytes(&b),
                Err(GroupDataError::Lifetime(bad))
            );
        }
        // Version 1 (no lifetime field) is refused, not read as "no lifetime".
        let mut v1 = sample().to_bytes();
        v1.truncate(v1.len() - 4);
        v1[0] = 1;
        assert_eq!(GroupData::from_bytes(&v1), Err(GroupDataError::Version(1)));
    }

    #[test]
    fn refuses_bad_bytes() {
        let bytes = sample().to_bytes();
        for cut in 0..bytes.len() {
            assert!(GroupData::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            GroupData::from_bytes(&trailing),
            Err(GroupDataError::Length)
        );
        let mut version = bytes.clone();
        version[0] = 3;
        assert_eq!(
            GroupData::from_bytes(&version),
            Err(GroupDataError::Version(3))
        );
        let mut non_minimal = vec![0x02, 0x40, 22];
        non_minimal.extend_from_slice(&bytes[2..]);
        assert_eq!(
            GroupData::from_bytes(&non_minimal),
            Err(GroupDataError::Varint)
        );
        let long = GroupData {
            name: "x".repeat(300),
            ..sample()
        };
        assert_eq!(GroupData::from_bytes(&long.to_bytes()).unwrap(), long);
    }
}
