//! TIDs: 13-character base32-sortable timestamps used for commit revisions and record keys.
//!
//! A TID is a 64-bit integer, top bit zero, then 53 bits of microseconds since the UNIX
//! epoch and 10 bits of clock identifier, written in the alphabet
//! `234567abcdefghijklmnopqrstuvwxyz` so that string order is time order.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
/// Length of every TID.
pub const TID_LEN: usize = 13;

/// Why a string is not a TID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TidError {
    /// Not exactly 13 characters.
    #[error("a TID has 13 characters, got {0}")]
    Length(usize),
    /// A character outside the base32-sortable alphabet.
    #[error("invalid TID character {0:?}")]
    Character(char),
    /// The first character sets the top bit (it must be one of `234567abcdefghij`).
    #[error("TID has its top bit set")]
    TopBit,
}

/// A timestamp identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(u64);

impl Tid {
    /// Builds a TID from microseconds since the epoch and a 10-bit clock id.
    pub fn from_parts(micros: u64, clock_id: u16) -> Self {
        Tid(((micros & ((1 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff))
    }

    /// The integer value.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Microseconds since the UNIX epoch.
    pub fn micros(self) -> u64 {
        self.0 >> 10
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; TID_LEN];
        let mut v = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        // The alphabet is ASCII.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Tid {
    type Err = TidError;

    fn from_str(s: &str) -> Result<Self, TidError> {
        if s.len() != TID_LEN {
            return Err(TidError::Length(s.chars().count()));
        }
        let mut v: u64 = 0;
        for (i, c) in s.chars().enumerate() {
            let digit = ALPHABET
                .iter()
                .position(|a| char::from(*a) == c)
                .ok_or(TidError::Character(c))? as u64;
            if i == 0 && digit >= 16 {
                return Err(TidError::TopBit);
            }
            v = (v << 5) | digit;
        }
        Ok(Tid(v))
    }
}

impl serde::Serialize for Tid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Makes TIDs from a clock, never going backwards: each one is greater than the last,
/// even if the clock steps back or two calls fall in the same microsecond.
#[derive(Debug, Clone)]
pub struct TidGenerator {
    clock_id: u16,
    last: Option<Tid>,
}

impl TidGenerator {
    /// A generator with the given 10-bit clock id.
    pub fn new(clock_id: u16) -> Self {
        TidGenerator {
            clock_id: clock_id & 0x3ff,
            last: None,
        }
    }

    /// Makes every later TID greater than `tid` (e.g. the repo's current `rev`).
    pub fn observe(&mut self, tid: Tid) {
        if self.last.is_none_or(|last| tid > last) {
            self.last = Some(tid);
        }
    }

    /// The next TID for a clock reading of `now_micros` microseconds since the epoch.
    pub fn next_at(&mut self, now_micros: u64) -> Tid {
        let mut tid = Tid::from_parts(now_micros, self.clock_id);
        if let Some(last) = self.last
            && tid <= last
        {
            tid = Tid::from_parts(last.micros().saturating_add(1), self.clock_id);
        }
        self.last = Some(tid);
        tid
    }

    /// The next TID for the system clock.
    pub fn next_now(&mut self) -> Tid {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.next_at(now)
    }
}

impl Default for TidGenerator {
    fn default() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        TidGenerator::new((nanos % 1024) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let t: Tid = "3jzfcijpj2z2a".parse().unwrap();
        assert_eq!(t.to_string(), "3jzfcijpj2z2a");
        assert_eq!(Tid(0).to_string(), "2222222222222");
        assert!("3jzfcijpj2z2".parse::<Tid>().is_err());
        assert_eq!("kjzfcijpj2z2a".parse::<Tid>(), Err(TidError::TopBit));
        assert_eq!(
            "3jzfcijpj2z2A".parse::<Tid>(),
            Err(TidError::Character('A'))
        );
    }

    #[test]
    fn never_goes_backwards() {
        let mut g = TidGenerator::new(7);
        let a = g.next_at(1_000_000);
        let b = g.next_at(1_000_000);
        let c = g.next_at(10);
        assert!(a < b && b < c);
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
        let mut g = TidGenerator::new(7);
        g.observe(c);
        assert!(g.next_at(5) > c);
    }
}
