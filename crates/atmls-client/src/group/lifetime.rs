//! The message lifetime of a group (disappearing messages, spec §11.18): how long members
//! and the DS keep an application message after the DS received it.

use std::time::Duration;

/// The shortest lifetime a group may set (one minute).
pub const MIN_MESSAGE_LIFETIME: Duration = Duration::from_secs(60);
/// The longest lifetime a group may set (365 days).
pub const MAX_MESSAGE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A message lifetime within [`MIN_MESSAGE_LIFETIME`]..=[`MAX_MESSAGE_LIFETIME`], in whole
/// seconds.
///
/// ```
/// use std::time::Duration;
/// use atmls_client::group::MessageLifetime;
/// let l = MessageLifetime::new(Duration::from_secs(3600)).unwrap();
/// assert_eq!(l.seconds(), 3600);
/// assert!(MessageLifetime::new(Duration::from_secs(59)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageLifetime(u32);

/// A lifetime outside the bounds, or not a whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message lifetime must be whole seconds between 60 s and 365 days")]
#[non_exhaustive]
pub struct LifetimeOutOfBounds;

impl MessageLifetime {
    /// Checks the bounds (whole seconds, 60 s to 365 days).
    pub fn new(lifetime: Duration) -> Result<Self, LifetimeOutOfBounds> {
        if lifetime.subsec_nanos() != 0
            || lifetime < MIN_MESSAGE_LIFETIME
            || lifetime > MAX_MESSAGE_LIFETIME
        {
            return Err(LifetimeOutOfBounds);
        }
        u32::try_from(lifetime.as_secs())
            .map(Self)
            .map_err(|_| LifetimeOutOfBounds)
    }

    /// From the wire value in seconds: 0 is "off" (`None`), other values must be within
    /// the bounds.
    pub fn from_seconds(seconds: u32) -> Result<Option<Self>, LifetimeOutOfBounds> {
        if seconds == 0 {
            return Ok(None);
        }
        Self::new(Duration::from_secs(u64::from(seconds))).map(Some)
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// The lifetime.
    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

/// The wire value of an optional lifetime (0 = off).
pub fn lifetime_seconds(lifetime: Option<MessageLifetime>) -> u32 {
    lifetime.map_or(0, MessageLifetime::seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(MessageLifetime::from_seconds(0), Ok(None));
        assert_eq!(MessageLifetime::from_seconds(59), Err(LifetimeOutOfBounds));
        assert_eq!(
            MessageLifetime::from_seconds(60)
                .unwrap()
                .map(MessageLifetime::seconds),
            Some(60)
        );
        assert!(MessageLifetime::from_seconds(31_536_000).unwrap().is_some());
        assert_eq!(
            MessageLifetime::from_seconds(31_536_001),
            Err(LifetimeOutOfBounds)
        );
        assert_eq!(
            MessageLifetime::new(Duration::from_millis(60_500)),
            Err(LifetimeOutOfBounds)
        );
    }
}
