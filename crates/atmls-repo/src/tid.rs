//! TIDs: 13-character base32-sortable timestamps used for commit revisions and record keys.
//!
//! A TID is a 64-bit integer, top bit zero, then 53 bits of microseconds since the UNIX
//! epoch and 10 bits of clock identifier, written in the alphabet
//! `234567abcdefghijklmnopqrstuvwxyz` so that string order is time order.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use atmls_lexicon::syntax;

pub use atmls_lexicon::syntax::TidError;

/// Length of every TID.
pub const TID_LEN: usize = 13;

/// A timestamp identifier, held as its integer so that it is `Copy` and cheap to compare.
///
/// The string form is read and written through [`atmls_lexicon::syntax::Tid`], the one
/// place the TID syntax is checked; [`From`] converts between the two.
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

    /// The string form.
    pub fn to_syntax(self) -> syntax::Tid {
        // Both constructors (`from_parts`, and parsing a checked string) leave the top bit
        // clear, which is all `from_u64` asks for.
        syntax::Tid::from_u64(self.0).unwrap_or_else(|_| unreachable!("TID top bit is clear"))
    }
}

impl From<syntax::Tid> for Tid {
    fn from(tid: syntax::Tid) -> Self {
        Tid(tid.to_u64())
    }
}

impl From<&syntax::Tid> for Tid {
    fn from(tid: &syntax::Tid) -> Self {
        Tid(tid.to_u64())
    }
}

impl From<Tid> for syntax::Tid {
    fn from(tid: Tid) -> Self {
        tid.to_syntax()
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_syntax().as_str())
    }
}

impl FromStr for Tid {
    type Err = TidError;

    fn from_str(s: &str) -> Result<Self, TidError> {
        s.parse::<syntax::Tid>().map(Tid::from)
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
        assert_eq!("3jzfcijpj2z2".parse::<Tid>(), Err(TidError::BadLength));
        assert_eq!("kjzfcijpj2z2a".parse::<Tid>(), Err(TidError::HighBitSet));
        assert_eq!(
            "3jzfcijpj2z2A".parse::<Tid>(),
            Err(TidError::BadCharacter('A'))
        );
        let max = Tid::from_parts(u64::MAX, 0x3ff);
        assert_eq!(max.to_string().parse::<Tid>(), Ok(max));
        assert_eq!(Tid::from(max.to_syntax()), max);
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
