//! Mailbox ids, mailbox kinds and envelope kinds.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

/// Length of a mailbox id in bytes.
pub const MAILBOX_ID_LEN: usize = 32;

/// Length of a mailbox id's text form: lowercase base32 without padding.
pub const MAILBOX_ID_TEXT_LEN: usize = 52;

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A mailbox id: 32 random bytes chosen by the delivery service.
///
/// Its text form is lowercase RFC 4648 base32 without padding, exactly 52 characters of
/// `a-z2-7`; the last character carries 1 bit of data and 4 zero bits, so there is
/// exactly one text form per id and parsing refuses any other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId([u8; MAILBOX_ID_LEN]);

impl MailboxId {
    /// A mailbox id from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; MAILBOX_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random mailbox id drawn from `rng` (which must be a CSPRNG in production).
    pub fn random(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; MAILBOX_ID_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; MAILBOX_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; MAILBOX_ID_TEXT_LEN];
        let mut acc: u16 = 0;
        let mut bits = 0u32;
        let mut n = 0;
        for &b in &self.0 {
            acc = (acc << 8) | u16::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out[n] = BASE32_ALPHABET[usize::from((acc >> bits) & 31)];
                n += 1;
            }
        }
        // 256 = 51 * 5 + 1: one bit left, padded with four zero bits.
        out[n] = BASE32_ALPHABET[usize::from((acc << (5 - bits)) & 31)];
        // The alphabet is ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({self})")
    }
}

/// Why a string is not a mailbox id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseMailboxIdError {
    /// The string is not exactly 52 characters long.
    #[error("a mailbox id is 52 characters, got {0}")]
    Length(usize),
    /// A character outside lowercase `a-z2-7`.
    #[error("invalid character at position {0} (lowercase base32 a-z2-7 only)")]
    Character(usize),
    /// The last character has non-zero padding bits (not the canonical encoding).
    #[error("non-canonical mailbox id: trailing bits are not zero")]
    TrailingBits,
}

impl FromStr for MailboxId {
    type Err = ParseMailboxIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.as_bytes();
        if text.len() != MAILBOX_ID_TEXT_LEN {
            return Err(ParseMailboxIdError::Length(text.len()));
        }
        let mut out = [0u8; MAILBOX_ID_LEN];
        let mut acc: u16 = 0;
        let mut bits = 0u32;
        let mut n = 0;
        for (i, &c) in text.iter().enumerate() {
            let v = match c {
                b'a'..=b'z' => c - b'a',
                b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(ParseMailboxIdError::Character(i)),
            };
            acc = ((acc << 5) | u16::from(v)) & 0x1fff;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                if n < MAILBOX_ID_LEN {
                    out[n] = (acc >> bits) as u8;
                    n += 1;
                }
            }
        }
        if acc & ((1 << bits) - 1) != 0 {
            return Err(ParseMailboxIdError::TrailingBits);
        }
        Ok(Self(out))
    }
}

/// What a mailbox is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailboxKind {
    /// A group mailbox: MLS messages and commits, authorised by per-epoch keys.
    Group,
    /// A device inbox: sealed welcomes, read by the owner key, deposited by anyone.
    Inbox,
}

impl MailboxKind {
    /// The lexicon name: `group` or `inbox`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Inbox => "inbox",
        }
    }
}

impl fmt::Display for MailboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known mailbox or envelope kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for MailboxKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "group" => Ok(Self::Group),
            "inbox" => Ok(Self::Inbox),
            other => Err(UnknownKind(other.to_owned())),
        }
    }
}

/// What an envelope carries, as far as the delivery service must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeKind {
    /// Any MLS message that is not a commit (group mailboxes).
    Message,
    /// An MLS commit, ordered by compare-and-swap on the epoch (group mailboxes).
    Commit,
    /// A sealed welcome (inboxes).
    Welcome,
}

impl EnvelopeKind {
    /// The lexicon name: `message`, `commit` or `welcome`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Commit => "commit",
            Self::Welcome => "welcome",
        }
    }

    /// The kind of mailbox this kind of envelope lives in.
    pub const fn mailbox_kind(self) -> MailboxKind {
        match self {
            Self::Message | Self::Commit => MailboxKind::Group,
            Self::Welcome => MailboxKind::Inbox,
        }
    }
}

impl fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvelopeKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "message" => Ok(Self::Message),
            "commit" => Ok(Self::Commit),
            "welcome" => Ok(Self::Welcome),
            other => Err(UnknownKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            MailboxId::from_bytes([0; 32]).to_string(),
            "a".repeat(MAILBOX_ID_TEXT_LEN)
        );
        let ff = MailboxId::from_bytes([0xff; 32]).to_string();
        assert_eq!(ff, format!("{}q", "7".repeat(51)));
        assert_eq!(
            ff.parse::<MailboxId>(),
            Ok(MailboxId::from_bytes([0xff; 32]))
        );
        // RFC 4648 test vector "foobar" -> MZXW6YTBOI, extended by zero bytes.
        let mut b = [0u8; 32];
        b[..6].copy_from_slice(b"foobar");
        assert!(
            MailboxId::from_bytes(b)
                .to_string()
                .starts_with("mzxw6ytboi")
        );
    }

    #[test]
    fn round_trip_all_byte_positions() {
        for i in 0..32 {
            for v in [1u8, 0x80, 0x55, 0xaa] {
                let mut b = [0u8; 32];
                b[i] = v;
                let id = MailboxId::from_bytes(b);
                let text = id.to_string();
                assert_eq!(text.len(), MAILBOX_ID_TEXT_LEN);
                assert_eq!(text.parse::<MailboxId>(), Ok(id));
            }
        }
    }

    #[test]
    fn rejects() {
        let good = MailboxId::from_bytes([7; 32]).to_string();
        assert_eq!(
            good[..51].parse::<MailboxId>(),
            Err(ParseMailboxIdError::Length(51))
        );
        assert_eq!(
            format!("{good}a").parse::<MailboxId>(),
            Err(ParseMailboxIdError::Length(53))
        );
        assert_eq!(
            good.to_uppercase().parse::<MailboxId>(),
            Err(ParseMailboxIdError::Character(0))
        );
        let mut bad = good.clone().into_bytes();
        bad[10] = b'1';
        let bad = String::from_utf8(bad).expect("ascii");
        assert_eq!(
            bad.parse::<MailboxId>(),
            Err(ParseMailboxIdError::Character(10))
        );
        // 'b' as the last character sets a padding bit.
        let noncanonical = format!("{}b", "a".repeat(51));
        assert_eq!(
            noncanonical.parse::<MailboxId>(),
            Err(ParseMailboxIdError::TrailingBits)
        );
        let padded = format!("{}====", &good[..48]);
        assert!(padded.parse::<MailboxId>().is_err());
        // Multi-byte UTF-8 of the right byte length.
        let utf8 = format!("é{}", &good[2..]);
        assert_eq!(
            utf8.parse::<MailboxId>(),
            Err(ParseMailboxIdError::Character(0))
        );
    }
}
