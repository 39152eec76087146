//! The time formats CloudTrail writes, parsed to microseconds since the Unix epoch (UTC).
//!
//! `eventTime` is almost always `YYYY-MM-DDTHH:MM:SSZ`, so that shape has a hand-written fast path;
//! everything else (fractions, offsets, a space instead of `T`, the two English formats STS uses for
//! `credentials.expiration`) goes through chrono.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

const MICROS_PER_SECOND: i64 = 1_000_000;

/// `eventTime` and `sessionContext.attributes.creationDate`.
pub fn parse_event_time(text: &str) -> Option<i64> {
    parse_canonical(text).or_else(|| parse_iso_like(text))
}

/// True when `text` is exactly what [`format_event_time`] writes back, so the column alone keeps it.
pub fn is_canonical(text: &str) -> bool {
    parse_canonical(text).is_some()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form CloudTrail writes.
pub fn format_event_time(micros: i64) -> Option<String> {
    let time = DateTime::from_timestamp_micros(micros)?;
    Some(time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// `YYYY-MM-DD` of a timestamp, for the `date=` partition.
pub fn date_of(micros: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_micros(micros).map(|t| t.date_naive())
}

/// `credentials.expiration` in STS responses: "Jul 30, 2021 12:56:03 AM" (older) and
/// "Jul 10, 2023, 12:31:14 PM" (newer), both UTC; ISO 8601 is accepted too.
pub fn parse_expiration(text: &str) -> Option<i64> {
    const FORMATS: [&str; 2] = ["%b %d, %Y, %I:%M:%S %p", "%b %d, %Y %I:%M:%S %p"];
    FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
        .and_then(|naive| checked_micros(naive.and_utc().timestamp_micros()))
        .or_else(|| parse_event_time(text))
}

fn parse_canonical(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let time = date.and_hms_opt(hour, minute, second)?;
    checked_micros(time.and_utc().timestamp() * MICROS_PER_SECOND)
}

fn parse_iso_like(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return checked_micros(time.timestamp_micros());
    }
    // Exports and hand-made events drop the zone or use a space: read those as UTC.
    const NAIVE: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ];
    NAIVE
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .and_then(|naive| checked_micros(naive.and_utc().timestamp_micros()))
}

/// Years 1..=9999 only: partition names and every downstream reader assume four-digit years.
fn checked_micros(micros: i64) -> Option<i64> {
    const MIN: i64 = -62_135_596_800 * MICROS_PER_SECOND; // 0001-01-01
    const MAX: i64 = 253_402_300_799 * MICROS_PER_SECOND; // 9999-12-31T23:59:59
    (MIN..=MAX).contains(&micros).then_some(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn event_times() {
        let cases = [
            ("2023-07-10T12:31:14Z", Some("2023-07-10T12:31:14Z")),
            ("2020-09-14T00:44:23.000Z", Some("2020-09-14T00:44:23Z")),
            ("2021-01-01 10:00:00", Some("2021-01-01T10:00:00Z")),
            (
                "2021-01-01 10:00:00.123456789",
                Some("2021-01-01T10:00:00.123456Z"),
            ),
            ("2021-01-01T12:00:00+02:00", Some("2021-01-01T10:00:00Z")),
            ("2023-02-30T12:31:14Z", None),
            ("redacted", None),
            ("...", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_event_time(input), expected.map(at), "{input}");
        }
    }

    #[test]
    fn canonical_round_trip() {
        assert!(is_canonical("2023-07-10T12:31:14Z"));
        assert!(!is_canonical("2023-07-10T12:31:14.000Z"));
        let micros = parse_event_time("2023-07-10T12:31:14Z").unwrap();
        assert_eq!(format_event_time(micros).unwrap(), "2023-07-10T12:31:14Z");
    }

    #[test]
    fn expirations() {
        let cases = [
            ("Jul 30, 2021 12:56:03 AM", Some("2021-07-30T00:56:03Z")),
            ("Jul 10, 2023, 12:31:14 PM", Some("2023-07-10T12:31:14Z")),
            ("Jan 5, 2024, 1:02:03 PM", Some("2024-01-05T13:02:03Z")),
            ("2024-01-05T13:02:03Z", Some("2024-01-05T13:02:03Z")),
            ("tomorrow", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_expiration(input), expected.map(at), "{input}");
        }
    }
}
