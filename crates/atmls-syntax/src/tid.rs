//! TIDs (<https://atproto.com/specs/tid>): 13-character base32-sortable timestamps used for
//! commit revisions and record keys, and a generator that never goes backwards.
//!
//! A TID is a 64-bit integer, top bit zero, then 53 bits of microseconds since the Unix
//! epoch and 10 bits of clock identifier, written in the alphabet
//! `234567abcdefghijklmnopqrstuvwxyz` so that string order is time order.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::time::Timestamp;

/// The base32-sortable alphabet TIDs are written in.
const ALPHABET: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A timestamp identifier: 13 characters of base32-sortable, encoding a 64-bit integer.
///
/// Held as its 13 ASCII bytes, so it is `Copy`, compares (string order is integer order)
/// and prints without allocating. Built only by parsing a checked string or from an
/// integer with the top bit clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    raw: [u8; Tid::LEN],
}

/// Why a string is not a [`Tid`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TidError {
    /// Not exactly 13 characters.
    #[error("TID must be exactly 13 characters")]
    BadLength,
    /// A character outside `234567a-z`.
    #[error("TID contains {0:?}, which is not in the base32-sortable alphabet")]
    BadCharacter(char),
    /// The first character does not fit in 64 bits.
    #[error("TID's first character must be one of 234567abcdefghij")]
    HighBitSet,
}

impl Tid {
    /// Length of every TID.
    pub const LEN: usize = 13;

    /// Checks `s` and wraps it.
    pub fn new(s: impl AsRef<str>) -> Result<Self, TidError> {
        let s = s.as_ref();
        check(s)?;
        let mut raw = [0u8; Tid::LEN];
        raw.copy_from_slice(s.as_bytes());
        Ok(Tid { raw })
    }

    fn parse_owned(raw: String) -> Result<Self, TidError> {
        Self::new(raw)
    }

    /// The TID that encodes `value`; fails with [`TidError::HighBitSet`] if the top bit of
    /// `value` is set (13 characters of 5 bits hold 65 bits, and the first must be clear).
    pub fn from_u64(value: u64) -> Result<Self, TidError> {
        if value >> 63 != 0 {
            return Err(TidError::HighBitSet);
        }
        Ok(Self::encode(value))
    }

    /// The TID of `micros` microseconds since the epoch (its low 53 bits) and a 10-bit
    /// clock id (its low 10 bits).
    pub fn from_parts(micros: u64, clock_id: u16) -> Self {
        Self::encode(((micros & ((1 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff))
    }

    /// The TID of the time `at` (to the microsecond: its milliseconds times 1,000) and a
    /// 10-bit clock id.
    pub fn from_timestamp(at: Timestamp, clock_id: u16) -> Self {
        Self::from_parts(at.as_millis().saturating_mul(1000), clock_id)
    }

    /// `value` must have its top bit clear.
    fn encode(value: u64) -> Self {
        let mut raw = [0u8; Tid::LEN];
        for (i, c) in raw.iter_mut().enumerate() {
            let shift = 5 * (Tid::LEN - 1 - i);
            *c = ALPHABET[((value >> shift) & 31) as usize];
        }
        Tid { raw }
    }

    /// The integer the TID encodes.
    pub fn to_u64(self) -> u64 {
        self.raw.iter().fold(0u64, |acc, c| {
            let digit = ALPHABET.iter().position(|a| a == c).unwrap_or_default();
            (acc << 5) | digit as u64
        })
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> u64 {
        self.to_u64() >> 10
    }

    /// The 10-bit clock id.
    pub fn clock_id(self) -> u16 {
        (self.to_u64() & 0x3ff) as u16
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        // Every constructor writes only bytes of ALPHABET, which are ASCII.
        std::str::from_utf8(&self.raw).unwrap_or_default()
    }
}

impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tid").field(&self.as_str()).finish()
    }
}

super::string_format!(custom_as_str Tid, TidError);

fn check(s: &str) -> Result<(), TidError> {
    if let Some(c) = s
        .chars()
        .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
    {
        return Err(TidError::BadCharacter(c));
    }
    if s.len() != Tid::LEN {
        return Err(TidError::BadLength);
    }
    // Each character carries 5 bits and 13 * 5 = 65, one more than 64: the first
    // character must leave its top bit clear, i.e. be one of the first 16 of the alphabet.
    if !ALPHABET[..16].contains(&s.as_bytes()[0]) {
        return Err(TidError::HighBitSet);
    }
    Ok(())
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

    /// The next TID for the time `now` (see [`Tid::from_timestamp`]).
    pub fn next(&mut self, now: Timestamp) -> Tid {
        self.next_at(now.as_millis().saturating_mul(1000))
    }

    /// The next TID for the system clock, to the microsecond.
    pub fn next_now(&mut self) -> Tid {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.next_at(now)
    }
}

impl Default for TidGenerator {
    /// A generator whose clock id is taken from the system clock's sub-second nanoseconds
    /// (a cheap spread between processes, not a secret).
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
    fn value_and_errors() {
        assert_eq!(Tid::new("2222222222222").unwrap().to_u64(), 0);
        assert_eq!(Tid::new("222222222222z").unwrap().to_u64(), 31);
        assert_eq!(Tid::new("kjzfcijpj2z2a"), Err(TidError::HighBitSet));
        assert_eq!(Tid::new("3jzfcijpj2z2"), Err(TidError::BadLength));
        assert_eq!(Tid::new("3jzfcijpj2z2A"), Err(TidError::BadCharacter('A')));
        assert_eq!(Tid::new("3jzfcijpj2z2é"), Err(TidError::BadCharacter('é')));
        for v in [0, 31, 1 << 62, u64::MAX >> 1] {
            let tid = Tid::from_u64(v).unwrap();
            assert_eq!(Tid::new(tid.as_str()).as_ref(), Ok(&tid));
            assert_eq!(tid.to_u64(), v);
        }
        assert_eq!(Tid::from_u64(0).unwrap().as_str(), "2222222222222");
        assert_eq!(Tid::from_u64(1 << 63), Err(TidError::HighBitSet));
    }

    #[test]
    fn round_trip_and_order() {
        let t: Tid = "3jzfcijpj2z2a".parse().unwrap();
        assert_eq!(t.to_string(), "3jzfcijpj2z2a");
        assert_eq!(format!("{t:?}"), "Tid(\"3jzfcijpj2z2a\")");
        let max = Tid::from_parts(u64::MAX, 0x3ff);
        assert_eq!(max.to_string().parse::<Tid>(), Ok(max));
        assert_eq!(max.clock_id(), 0x3ff);
        assert_eq!(max.micros(), (1 << 53) - 1);
        let a = Tid::from_parts(5, 1);
        let b = Tid::from_parts(5, 2);
        let c = Tid::from_parts(6, 0);
        assert!(a < b && b < c);
        assert!(a.to_u64() < b.to_u64() && b.to_u64() < c.to_u64());
        let at = Tid::from_timestamp(Timestamp::from_millis(1_700_000_000_123), 9);
        assert_eq!(at.micros(), 1_700_000_000_123_000);
        assert_eq!(at.clock_id(), 9);
        assert_eq!(String::from(t), "3jzfcijpj2z2a");
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
        let d = g.next(Timestamp::from_millis(2));
        assert!(d > c);
        assert_eq!(d.clock_id(), 7);
    }
}
