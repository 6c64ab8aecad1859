//! The MLS ciphersuites this client speaks, the device's X-Wing policy, and how a new
//! group's suite is chosen (docs/spec.md §11.19).

use std::fmt;
use std::str::FromStr;

use openmls::prelude::Ciphersuite;

/// 0x0001: `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (classical).
pub const CLASSIC: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// 0x004D: `MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519`, the hybrid post-quantum suite
/// (X-Wing: ML-KEM-768 + X25519).
pub const XWING: Ciphersuite = Ciphersuite::MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519;

/// Every suite this client implements: KeyPackages in these are verified whatever the
/// policy (the policy decides what this device publishes and which suite a new group
/// gets).
pub const ALL: &[Ciphersuite] = &[XWING, CLASSIC];

/// How a device uses the X-Wing suite.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuitePolicy {
    /// KeyPackages in X-Wing and 0x0001; new groups use X-Wing when every first device
    /// has an X-Wing KeyPackage, else 0x0001.
    Prefer,
    /// KeyPackages in X-Wing only; new groups are X-Wing or are not created.
    Require,
    /// KeyPackages in 0x0001 only; every group this device creates is 0x0001.
    #[default]
    Off,
}

impl SuitePolicy {
    /// The suites this device publishes KeyPackages in and accepts, most preferred first.
    pub fn suites(self) -> Vec<Ciphersuite> {
        match self {
            Self::Prefer => vec![XWING, CLASSIC],
            Self::Require => vec![XWING],
            Self::Off => vec![CLASSIC],
        }
    }

    /// The suite of a new group whose first devices offer `offers` (each device's
    /// suites): the first of [`Self::suites`] every device offers.
    pub fn choose<'a>(
        self,
        offers: impl IntoIterator<Item = &'a [Ciphersuite]> + Clone,
    ) -> Result<Ciphersuite, SuiteRefusal> {
        self.suites()
            .into_iter()
            .find(|s| offers.clone().into_iter().all(|o| o.contains(s)))
            .ok_or(SuiteRefusal::NoCommonSuite { policy: self })
    }
}

impl fmt::Display for SuitePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::Off => "off",
        })
    }
}

/// A policy name that is not `prefer`, `require` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown X-Wing policy {0:?} (prefer, require or off)")]
pub struct UnknownPolicy(pub String);

impl FromStr for SuitePolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "off" => Ok(Self::Off),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }
}

/// Why no suite could be chosen for a new group.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuiteRefusal {
    /// Some first device offers none of the suites the policy allows.
    #[error("no ciphersuite every device offers is allowed by the X-Wing policy {policy}")]
    NoCommonSuite {
        /// This device's policy.
        policy: SuitePolicy,
    },
}

/// A short name of a suite for people: `X-Wing (0x004D)`, `X25519 (0x0001)`.
pub fn describe(suite: Ciphersuite) -> String {
    describe_code(u16::from(suite))
}

/// [`describe`] from a code point.
pub fn describe_code(code: u16) -> String {
    if code == u16::from(XWING) {
        format!("X-Wing (0x{code:04X})")
    } else if code == u16::from(CLASSIC) {
        format!("X25519 (0x{code:04X})")
    } else {
        format!("0x{code:04X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_points() {
        assert_eq!(u16::from(CLASSIC), 0x0001);
        assert_eq!(u16::from(XWING), 0x004D);
        assert_eq!(describe(XWING), "X-Wing (0x004D)");
    }

    #[test]
    fn choice_follows_every_device_and_the_policy() {
        let both = [XWING, CLASSIC];
        let classic = [CLASSIC];
        let xwing = [XWING];
        let all: [&[Ciphersuite]; 2] = [&both, &both];
        assert_eq!(SuitePolicy::Prefer.choose(all), Ok(XWING));
        let mixed: [&[Ciphersuite]; 2] = [&both, &classic];
        assert_eq!(SuitePolicy::Prefer.choose(mixed), Ok(CLASSIC));
        assert_eq!(SuitePolicy::Off.choose(all), Ok(CLASSIC));
        assert!(SuitePolicy::Require.choose(mixed).is_err());
        let only: [&[Ciphersuite]; 2] = [&xwing, &classic];
        assert!(SuitePolicy::Prefer.choose(only).is_err());
        // A group of one: the policy's first suite.
        let none: [&[Ciphersuite]; 0] = [];
        assert_eq!(SuitePolicy::Prefer.choose(none), Ok(XWING));
        for p in [SuitePolicy::Prefer, SuitePolicy::Require, SuitePolicy::Off] {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
        assert!("maybe".parse::<SuitePolicy>().is_err());
    }
}
