//! Certificate expiry: a certificate's notAfter, read straight from its DER.
//!
//! Only the path to `tbsCertificate.validity.notAfter` is walked (RFC 5280, section 4.1):
//! five fields at fixed positions, so a small reader is enough and no X.509 library with
//! its dependency tree is needed. Anything unexpected is an error, never a panic.

use std::fmt;

use crate::calendar::{days_from_civil, days_in_month, DAY};

/// DER tags met on the way to notAfter.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A certificate that could not be read as far as its notAfter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertError(&'static str);

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read the certificate's expiry: {}", self.0)
    }
}

impl std::error::Error for CertError {}

/// The notAfter of the DER-encoded X.509 certificate `der`, in Unix seconds.
pub(crate) fn not_after(der: &[u8]) -> Result<i64, CertError> {
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
}
