//! Validated Ed25519 mailbox public keys.

use std::fmt;

use ed25519_dalek::VerifyingKey;

/// An Ed25519 public key registered for a mailbox: a group's epoch key or an inbox's
/// owner key. Only constructed from bytes that decode to a curve point that is not of
/// small order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxKey([u8; 32]);

/// Bytes that are not a usable Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid Ed25519 public key")]
pub struct InvalidKey;

impl MailboxKey {
    /// Checks `bytes`: exactly 32 bytes, a valid compressed Edwards point, not of small
    /// order (weak keys would let anyone forge signatures).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidKey> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| InvalidKey)?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| InvalidKey)?;
        if key.is_weak() {
            return Err(InvalidKey);
        }
        Ok(Self(raw))
    }

    /// The 32-byte compressed public key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<&ed25519_dalek::SigningKey> for MailboxKey {
    fn from(key: &ed25519_dalek::SigningKey) -> Self {
        Self(key.verifying_key().to_bytes())
    }
}

impl fmt::Debug for MailboxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}
