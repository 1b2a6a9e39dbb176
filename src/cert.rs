//! Certificate expiry: the leaf certificate's notAfter, read straight from its DER, and the
//! calendar arithmetic to print it as RFC 3339.
//!
//! Only the path to `tbsCertificate.validity.notAfter` is walked (RFC 5280, section 4.1):
//! five fields at fixed positions, so a small reader is enough and no X.509 library with
//! its dependency tree is needed. Anything unexpected is an error, never a panic.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// DER tags met on the way to notAfter.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A certificate that could not be read as far as its notAfter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertError(&'static str);

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read the certificate's expiry: {}", self.0)
    }
}

impl std::error::Error for CertError {}

/// When a certificate expires, and how many whole days were left when it was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertExpiry {
    /// notAfter, in Unix seconds.
    pub not_after: i64,
    /// Whole days from `now` to notAfter, rounded down: 0 in its last day, negative once expired.
    pub days_left: i64,
}

impl CertExpiry {
    /// The expiry `not_after` as seen at Unix time `now`.
    pub fn seen_at(not_after: i64, now: i64) -> Self {
        CertExpiry {
            not_after,
            days_left: (not_after - now).div_euclid(DAY),
        }
    }

    /// The expiry of the DER certificate `der`, as seen now.
    pub fn of_der(der: &[u8]) -> Result<Self, CertError> {
        Ok(CertExpiry::seen_at(not_after(der)?, unix_now()))
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The notAfter of the DER-encoded X.509 certificate `der`, in Unix seconds.
pub fn not_after(der: &[u8]) -> Result<i64, CertError> {
    let (certificate, _) = expect(der, SEQUENCE, "not a DER certificate")?;
    let (mut tbs, _) = expect(certificate, SEQUENCE, "no tbsCertificate")?;
    if tbs.first() == Some(&VERSION) {
        tbs = read(tbs)?.2;
    }
    let (_, tbs) = expect(tbs, INTEGER, "no serial number")?;
    let (_, tbs) = expect(tbs, SEQUENCE, "no signature algorithm")?;
    let (_, tbs) = expect(tbs, SEQUENCE, "no issuer")?;
    let (validity, _) = expect(tbs, SEQUENCE, "no validity")?;
    let (_, _, validity) = read(validity)?;
    let (tag, time, _) = read(validity)?;
    match tag {
        UTC_TIME => parse_utc_time(time),
        GENERALIZED_TIME => parse_generalized_time(time),
        _ => Err(CertError("notAfter is not a time")),
    }
}

/// Reads one element with tag `tag`: its content and what follows it.
fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    otherwise: &'static str,
) -> Result<(&'a [u8], &'a [u8]), CertError> {
    match read(input)? {
        (found, content, rest) if found == tag => Ok((content, rest)),
        _ => Err(CertError(otherwise)),
    }
}

/// Reads one DER element: its tag, its content, and what follows it.
fn read(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let truncated = CertError("truncated");
    let (&tag, rest) = input.split_first().ok_or(truncated.clone())?;
    if tag & 0x1f == 0x1f {
        return Err(CertError("unexpected multi-byte tag"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(truncated.clone())?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(CertError("bad length"));
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte))
    };
    if rest.len() < length {
        return Err(truncated);
    }
    let (content, rest) = rest.split_at(length);
    Ok((tag, content, rest))
}

/// `YYMMDDHHMMSSZ`; years 50 to 99 are 1950 to 1999 (RFC 5280, 4.1.2.5.1).
fn parse_utc_time(text: &[u8]) -> Result<i64, CertError> {
    if text.len() != 13 {
        return Err(CertError("UTCTime is not YYMMDDHHMMSSZ"));
    }
    let year = digits(&text[..2])?;
    let year = if year < 50 { 2000 + year } else { 1900 + year };
    timestamp(year, &text[2..])
}

/// `YYYYMMDDHHMMSSZ` (RFC 5280, 4.1.2.5.2: no fractional seconds).
fn parse_generalized_time(text: &[u8]) -> Result<i64, CertError> {
    if text.len() != 15 {
        return Err(CertError("GeneralizedTime is not YYYYMMDDHHMMSSZ"));
    }
    timestamp(digits(&text[..4])?, &text[4..])
}

/// `MMDDHHMMSSZ` of `year`, in Unix seconds.
fn timestamp(year: i64, text: &[u8]) -> Result<i64, CertError> {
    if text.last() != Some(&b'Z') {
        return Err(CertError("time is not in UTC"));
    }
    let field = |at: usize| digits(&text[at..at + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(CertError("time out of range"));
    }
    Ok(days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second)
}

fn digits(text: &[u8]) -> Result<i64, CertError> {
    text.iter().try_fold(0i64, |value, &byte| {
        if byte.is_ascii_digit() {
            Ok(value * 10 + i64::from(byte - b'0'))
        } else {
            Err(CertError("time has a non-digit"))
        }
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as RFC 3339 in UTC: `2030-01-31T23:59:59Z`.
pub fn rfc3339(unix: i64) -> String {
    let (date, time) = (unix.div_euclid(DAY), unix.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(date);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid until `not_after` (Unix seconds), as DER.
    fn certificate(not_after: i64) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(0).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn days_round_trip_through_the_calendar() {
        for days in (-800_000..3_000_000).step_by(97) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month));
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
        }
    }

    #[test]
    fn not_after_is_read_from_utc_and_generalized_times() {
        // rcgen writes UTCTime before 2050 and GeneralizedTime from 2050 on, as RFC 5280 asks.
        for expiry in [1_700_000_000, 2_524_607_999, 2_524_608_000, 4_102_444_800] {
            assert_eq!(not_after(&certificate(expiry)), Ok(expiry));
        }
    }

    #[test]
    fn truncated_or_foreign_input_is_an_error_not_a_panic() {
        let der = certificate(1_700_000_000);
        for end in 0..der.len() {
            assert!(not_after(&der[..end]).is_err(), "prefix of {end} bytes");
        }
        assert!(not_after(b"not a certificate").is_err());
        assert!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(not_after(&[0x30, 0x80, 0, 0]).is_err());
    }

    #[test]
    fn bad_times_are_refused() {
        assert_eq!(parse_utc_time(b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(parse_utc_time(b"500101000000Z"), Ok(-631_152_000));
        assert!(parse_utc_time(b"491331235959Z").is_err());
        assert!(parse_utc_time(b"490230000000Z").is_err());
        assert!(parse_utc_time(b"4912312359Z").is_err());
        assert!(parse_utc_time(b"491231235959+").is_err());
        assert!(parse_generalized_time(b"20500101000000Z").is_ok());
        assert!(parse_generalized_time(b"2050010100000aZ").is_err());
        assert!(parse_generalized_time(b"20500101000000.5Z").is_err());
    }

    #[test]
    fn days_left_round_down_and_go_negative() {
        let now = 1_000_000_000;
        assert_eq!(CertExpiry::seen_at(now + 3 * DAY + 5, now).days_left, 3);
        assert_eq!(CertExpiry::seen_at(now + 3 * DAY - 5, now).days_left, 2);
        assert_eq!(CertExpiry::seen_at(now + 10, now).days_left, 0);
        assert_eq!(CertExpiry::seen_at(now - 10, now).days_left, -1);
        assert_eq!(CertExpiry::seen_at(now - 3 * DAY, now).days_left, -3);
    }
}
