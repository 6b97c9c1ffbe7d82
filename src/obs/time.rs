//! Calendar time without a date crate: converts `SystemTime` to UTC civil fields and
//! formats/parses RFC 3339 timestamps (`2024-02-29T23:59:59.123Z`). Log lines, SigV4
//! dates and credential expiry times all build on it.
//!
//! It only does proleptic Gregorian arithmetic in UTC: no time zones, no leap seconds,
//! no reading of the clock (callers pass the `SystemTime` they want formatted). Years
//! outside 0000..=9999 cannot be written in RFC 3339, so formatting clamps to that range.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01 in the shifted calendar below.
const DAYS_0000_03_01_TO_EPOCH: i64 = 719_468;
const DAYS_PER_ERA: i64 = 146_097;

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z as Unix milliseconds: the range
/// RFC 3339 can spell.
const MIN_UNIX_MILLIS: i64 = -62_167_219_200_000;
const MAX_UNIX_MILLIS: i64 = 253_402_300_799_999;

/// A UTC instant broken into calendar fields, millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcDateTime {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millisecond: u16,
}

/// Milliseconds since the Unix epoch; negative before 1970. Saturates far outside the
/// representable calendar range instead of overflowing.
pub fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            // Round toward negative infinity so 1ms before the epoch is -1, not 0.
            let whole = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
            let partial = i64::from(before.subsec_nanos() % 1_000_000 != 0);
            whole.saturating_add(partial).saturating_neg()
        }
    }
}

/// Whole seconds since the Unix epoch (floor), e.g. for JWT `iat`/`exp`.
pub fn unix_seconds(time: SystemTime) -> i64 {
    unix_millis(time).div_euclid(1000)
}

/// The `SystemTime` for a count of Unix milliseconds.
pub fn system_time_from_unix_millis(millis: i64) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// (year, month 1..=12, day 1..=31) of the given day number, day 0 being 1970-01-01.
///
/// Works in eras of 400 years (146097 days) with years starting on March 1st, so the
/// leap day is the last day of the shifted year and month lengths follow a fixed
/// 153-day pattern per five months.
pub fn civil_from_days(days_since_epoch: i64) -> (i64, u8, u8) {
    let shifted = days_since_epoch + DAYS_0000_03_01_TO_EPOCH;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA); // 0..=146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // The ranges above are guaranteed by the arithmetic; the casts cannot truncate.
    (year, month as u8, day as u8)
}

/// The day number (0 = 1970-01-01) of a calendar date. `month` 1..=12, `day` 1..=31;
/// out-of-range days roll over arithmetically (Feb 30 = Mar 1 or 2).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - DAYS_0000_03_01_TO_EPOCH
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl UtcDateTime {
    pub fn from_system_time(time: SystemTime) -> UtcDateTime {
        UtcDateTime::from_unix_millis(unix_millis(time))
    }

    /// Whole Unix seconds (a signing clock), clamped like [`UtcDateTime::from_unix_millis`].
    pub fn from_unix_seconds(seconds: i64) -> UtcDateTime {
        UtcDateTime::from_unix_millis(seconds.saturating_mul(1000))
    }

    /// Clamped to 0000-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z.
    pub fn from_unix_millis(millis: i64) -> UtcDateTime {
        let millis = millis.clamp(MIN_UNIX_MILLIS, MAX_UNIX_MILLIS);
        let seconds = millis.div_euclid(1000);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year: year as i32,
            month,
            day,
            hour: (second_of_day / 3600) as u8,
            minute: (second_of_day / 60 % 60) as u8,
            second: (second_of_day % 60) as u8,
            millisecond: millis.rem_euclid(1000) as u16,
        }
    }

    pub fn to_unix_millis(&self) -> i64 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        let seconds = days * SECONDS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        seconds * 1000 + i64::from(self.millisecond)
    }

    pub fn to_system_time(&self) -> SystemTime {
        system_time_from_unix_millis(self.to_unix_millis())
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, always 24 bytes.
    pub fn rfc3339_millis(&self) -> String {
        let mut out = String::with_capacity(24);
        self.write_rfc3339_millis(&mut out);
        out
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out` (lets the logger reuse its line buffer).
    pub fn write_rfc3339_millis(&self, out: &mut String) {
        self.write_rfc3339_seconds_without_zone(out);
        out.push('.');
        push_padded(out, u32::from(self.millisecond), 3);
        out.push('Z');
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the form many cloud APIs use.
    pub fn rfc3339_seconds(&self) -> String {
        let mut out = String::with_capacity(20);
        self.write_rfc3339_seconds_without_zone(&mut out);
        out.push('Z');
        out
    }

    fn write_rfc3339_seconds_without_zone(&self, out: &mut String) {
        push_padded(out, self.year.clamp(0, 9999) as u32, 4);
        out.push('-');
        push_padded(out, u32::from(self.month), 2);
        out.push('-');
        push_padded(out, u32::from(self.day), 2);
        out.push('T');
        push_padded(out, u32::from(self.hour), 2);
        out.push(':');
        push_padded(out, u32::from(self.minute), 2);
        out.push(':');
        push_padded(out, u32::from(self.second), 2);
    }
}

/// Writes `value` with leading zeros to exactly `width` digits (the value always fits).
fn push_padded(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width.saturating_sub(1));
    while divisor > 0 {
        let digit = (value / divisor) % 10;
        out.push(char::from(b'0' + digit as u8));
        divisor /= 10;
    }
}

/// `SystemTime` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds truncated).
pub fn rfc3339_millis(time: SystemTime) -> String {
    UtcDateTime::from_system_time(time).rfc3339_millis()
}

/// Parses an RFC 3339 timestamp: `YYYY-MM-DD(T|t| )HH:MM:SS(.fraction)?(Z|z|±HH:MM)`.
/// Fractions beyond milliseconds are truncated. Returns None for anything else,
/// including impossible dates (Feb 30). A leap second (`:60`) counts as the next second.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    parse_rfc3339_unix_millis(text).map(system_time_from_unix_millis)
}

/// Like [`parse_rfc3339`], as Unix milliseconds.
pub fn parse_rfc3339_unix_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let mut cursor = Cursor { bytes, pos: 0 };
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    match cursor.next()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let hour = cursor.digits(2)?;
    cursor.expect(b':')?;
    let minute = cursor.digits(2)?;
    cursor.expect(b':')?;
    let second = cursor.digits(2)?;

    let mut millisecond = 0u32;
    if cursor.peek() == Some(b'.') {
        cursor.pos += 1;
        let mut fraction_digits = 0u32;
        while let Some(digit) = cursor.peek().filter(u8::is_ascii_digit) {
            if fraction_digits < 3 {
                millisecond = millisecond * 10 + u32::from(digit - b'0');
            }
            fraction_digits += 1;
            cursor.pos += 1;
        }
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..3 {
            millisecond *= 10;
        }
    }

    let offset_minutes: i64 = match cursor.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let offset_hour = cursor.digits(2)?;
            cursor.expect(b':')?;
            let offset_minute = cursor.digits(2)?;
            if offset_hour > 23 || offset_minute > 59 {
                return None;
            }
            let magnitude = i64::from(offset_hour * 60 + offset_minute);
            if sign == b'+' {
                magnitude
            } else {
                -magnitude
            }
        }
        _ => return None,
    };
    if cursor.pos != bytes.len() {
        return None;
    }

    let year = i64::from(year);
    let month = u8::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let day = u8::try_from(day)
        .ok()
        .filter(|d| *d >= 1 && *d <= days_in_month(year, month))?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local_seconds = days * SECONDS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second);
    let utc_seconds = local_seconds - offset_minutes * 60;
    Some(utc_seconds * 1000 + i64::from(millisecond))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    fn digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = self.next().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(byte - b'0');
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> String {
        UtcDateTime::from_unix_millis(millis).rfc3339_millis()
    }

    #[test]
    fn known_instants_format_exactly() {
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(at(1_234_567_890_123), "2009-02-13T23:31:30.123Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(2_147_483_647_000), "2038-01-19T03:14:07.000Z");
        assert_eq!(at(MIN_UNIX_MILLIS), "0000-01-01T00:00:00.000Z");
        assert_eq!(at(MAX_UNIX_MILLIS), "9999-12-31T23:59:59.999Z");
        assert_eq!(at(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(at(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn system_time_round_trips_through_fields() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 987_654_321);
        let fields = UtcDateTime::from_system_time(t);
        assert_eq!(fields.rfc3339_millis(), "2023-11-14T22:13:20.987Z");
        assert_eq!(fields.rfc3339_seconds(), "2023-11-14T22:13:20Z");
        assert_eq!(fields.to_unix_millis(), 1_700_000_000_987);
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.987Z");
        let before = UNIX_EPOCH - Duration::from_micros(1500);
        assert_eq!(unix_millis(before), -2);
        assert_eq!(unix_seconds(before), -1);
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        let mut expected = (1900i64, 1u8, 1u8);
        for day in start..end {
            let civil = civil_from_days(day);
            assert_eq!(civil, expected, "day {day}");
            assert_eq!(days_from_civil(civil.0, civil.1, civil.2), day);
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn parses_rfc3339_variants() {
        assert_eq!(
            parse_rfc3339_unix_millis("2009-02-13T23:31:30.123Z"),
            Some(1_234_567_890_123)
        );
        assert_eq!(
            parse_rfc3339_unix_millis("2009-02-13t23:31:30z"),
            Some(1_234_567_890_000)
        );
        assert_eq!(
            parse_rfc3339_unix_millis("2009-02-14T01:01:30.1234567+01:30"),
            Some(1_234_567_890_123)
        );
        assert_eq!(
            parse_rfc3339_unix_millis("2009-02-13 18:31:30.5-05:00"),
            Some(1_234_567_890_500)
        );
        assert_eq!(
            parse_rfc3339_unix_millis("1969-12-31T23:59:59.999Z"),
            Some(-1)
        );
        assert_eq!(
            parse_rfc3339(&rfc3339_millis(UNIX_EPOCH + Duration::from_millis(42))),
            Some(UNIX_EPOCH + Duration::from_millis(42))
        );
    }

    #[test]
    fn rejects_malformed_rfc3339() {
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+24:00",
            "24-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_unix_millis(bad), None, "{bad:?}");
        }
    }
}
