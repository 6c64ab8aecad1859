//! Datetime syntax: the intersection of RFC 3339, ISO 8601 and WHATWG HTML that atproto
//! uses for the Lexicon `datetime` format.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use thiserror::Error;

/// Largest datetime string accepted, in bytes.
const MAX_LEN: usize = 64;

/// A full-precision timestamp with a timezone, such as `1985-04-12T23:20:50.123Z`.
///
/// Shape: `YYYY-MM-DDTHH:MM:SS`, optional `.` and one or more fraction digits, then `Z` or
/// `±HH:MM` (not `-00:00`). Upper-case `T` and `Z` only. Beyond the shape, the values must
/// name a real instant: month `01`–`12`, a day that exists in that month, hour `00`–`23`,
/// minute and second `00`–`59` (no leap seconds), and the instant in UTC must not fall
/// before year 0. Such semantic failures are [`DatetimeError::OutOfRange`].
///
/// The string is kept exactly as given (round-tripping must not change a record's bytes);
/// [`Datetime::to_chrono`] gives the instant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Datetime {
    raw: String,
    instant: DateTime<FixedOffset>,
}

/// Why a string is not a [`Datetime`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DatetimeError {
    /// The string does not have the required shape.
    #[error("datetime syntax: {0}")]
    Syntax(&'static str),
    /// The shape is right but the values do not name a valid instant.
    #[error("datetime out of range: {0}")]
    OutOfRange(&'static str),
}

impl Datetime {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, DatetimeError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, DatetimeError> {
        let instant = parse(&raw)?;
        Ok(Datetime { raw, instant })
    }

    /// The instant, with the offset the string was written in.
    pub fn to_chrono(&self) -> DateTime<FixedOffset> {
        self.instant
    }
}

super::string_format!(Datetime, DatetimeError);

/// Reads the fixed-shape parts left to right.
struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, DatetimeError> {
        let part = self
            .s
            .get(self.at..self.at + n)
            .ok_or(DatetimeError::Syntax(what))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(DatetimeError::Syntax(what));
        }
        self.at += n;
        Ok(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    fn literal(&mut self, c: u8, what: &'static str) -> Result<(), DatetimeError> {
        if self.s.get(self.at) != Some(&c) {
            return Err(DatetimeError::Syntax(what));
        }
        self.at += 1;
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
}

fn parse(s: &str) -> Result<DateTime<FixedOffset>, DatetimeError> {
    use DatetimeError::{OutOfRange, Syntax};

    if s.len() > MAX_LEN {
        return Err(Syntax("longer than 64 bytes"));
    }
    let mut c = Cursor {
        s: s.as_bytes(),
        at: 0,
    };
    let year = c.digits(4, "year must be 4 digits")?;
    c.literal(b'-', "expected '-' after year")?;
    let month = c.digits(2, "month must be 2 digits")?;
    c.literal(b'-', "expected '-' after month")?;
    let day = c.digits(2, "day must be 2 digits")?;
    c.literal(b'T', "expected upper-case 'T' between date and time")?;
    let hour = c.digits(2, "hour must be 2 digits")?;
    c.literal(b':', "expected ':' after hour")?;
    let minute = c.digits(2, "minute must be 2 digits")?;
    c.literal(b':', "expected ':' after minute (seconds are required)")?;
    let second = c.digits(2, "second must be 2 digits")?;
    let mut nanos = 0u32;
    if c.peek() == Some(b'.') {
        c.at += 1;
        let start = c.at;
        while c.peek().is_some_and(|d| d.is_ascii_digit()) {
            if c.at - start < 9 {
                nanos = nanos * 10 + u32::from(c.s[c.at] - b'0');
            }
            c.at += 1;
        }
        let len = c.at - start;
        if len == 0 {
            return Err(Syntax("expected digits after '.'"));
        }
        nanos *= 10u32.pow(9u32.saturating_sub(len as u32));
    }
    let offset_secs: i32 = match c.peek() {
        Some(b'Z') => {
            c.at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.at += 1;
            let hh = c.digits(2, "offset hours must be 2 digits")?;
            c.literal(b':', "offset must be written ±HH:MM")?;
            let mm = c.digits(2, "offset minutes must be 2 digits")?;
            if sign == b'-' && hh == 0 && mm == 0 {
                return Err(Syntax("offset -00:00 is not allowed"));
            }
            if hh > 23 || mm > 59 {
                return Err(OutOfRange("offset out of range"));
            }
            let secs = (hh * 3600 + mm * 60) as i32;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(Syntax("timezone is required ('Z' or ±HH:MM)")),
    };
    if c.at != s.len() {
        return Err(Syntax("unexpected characters after the timezone"));
    }

    if !(1..=12).contains(&month) {
        return Err(OutOfRange("month must be 01 to 12"));
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or(OutOfRange("day does not exist in that month"))?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(OutOfRange(
            "time of day out of range (leap seconds are not allowed)",
        ));
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
        .ok_or(OutOfRange("time of day out of range"))?;
    let offset = FixedOffset::east_opt(offset_secs).ok_or(OutOfRange("offset out of range"))?;
    let local = NaiveDateTime::new(date, time);
    let instant = local
        .and_local_timezone(offset)
        .single()
        .ok_or(OutOfRange("not a single instant"))?;
    if instant.naive_utc().year() < 0 {
        return Err(OutOfRange("falls before year 0 in UTC"));
    }
    Ok(instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_string_and_reads_the_instant() {
        let dt: Datetime = "1985-04-12T23:20:50.123-07:00".parse().unwrap();
        assert_eq!(dt.as_str(), "1985-04-12T23:20:50.123-07:00");
        assert_eq!(dt.to_chrono().timestamp_subsec_millis(), 123);
        assert_eq!(dt.to_chrono().offset().local_minus_utc(), -7 * 3600);
    }

    #[test]
    fn syntax_and_range_errors_differ() {
        assert!(matches!(
            Datetime::new("1985-04-12T23:20:50"),
            Err(DatetimeError::Syntax(_))
        ));
        assert!(matches!(
            Datetime::new("1985-02-29T23:20:50Z"),
            Err(DatetimeError::OutOfRange(_))
        ));
    }
}
