//! Option values shared by the command line and checks files: durations, sizes, counts,
//! status sets, methods and headers, parsed with messages that name what is wrong (and never
//! quote a header value, which is often a secret); and durations written back for people.

use std::fs;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;

/// A set of HTTP status codes, written as comma-separated codes and ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusSet {
    ranges: Vec<(u16, u16)>,
    written: String,
}

impl StatusSet {
    /// Parses `200,204,300-399`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (low, high) = match part.split_once('-') {
                Some((low, high)) => (parse_status(low)?, parse_status(high)?),
                None => (parse_status(part)?, parse_status(part)?),
            };
            if low > high {
                return Err(format!("range '{part}' runs backwards"));
            }
            ranges.push((low, high));
        }
        Ok(StatusSet {
            ranges,
            written: text.to_owned(),
        })
    }

    /// Whether `status` is in the set.
    pub(crate) fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }

    /// The set as the user wrote it.
    pub(crate) fn as_written(&self) -> &str {
        &self.written
    }
}

fn parse_status(text: &str) -> Result<u16, String> {
    let text = text.trim();
    match text.parse::<u16>() {
        Ok(code) if (100..=999).contains(&code) => Ok(code),
        _ if text.is_empty() => Err("empty status code".to_owned()),
        _ => Err(format!("'{text}' is not a status code (100 to 999)")),
    }
}

/// Parses a count that must be at least 1.
pub(crate) fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

/// Splits `1.5MiB` into its number and its unit (from the first letter on).
fn split_unit(text: &str) -> (&str, &str) {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    text.split_at(split)
}

/// Longest duration accepted: a year is past any run, and far within what the clock can add
/// to now without overflowing.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Shortest limit a timer keeps: tokio's timers tick in whole milliseconds.
const MIN_TIMER: Duration = Duration::from_millis(1);

/// Parses a limit a timer keeps (`--timeout`, `--deadline`): a duration of at least 1ms.
pub(crate) fn parse_timer(text: &str) -> Result<Duration, String> {
    timer(parse_duration(text)?)
}

/// `duration`, if a timer can keep it.
pub(crate) fn timer(duration: Duration) -> Result<Duration, String> {
    if duration < MIN_TIMER {
        return Err("must be at least 1ms: timers keep whole milliseconds".to_owned());
    }
    Ok(duration)
}

/// A positive number of seconds as a duration, within [`MAX_DURATION`].
pub(crate) fn seconds(seconds: f64) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if duration <= MAX_DURATION => Ok(duration),
        _ => Err(format!(
            "is too long (at most {}h)",
            MAX_DURATION.as_secs() / 3600
        )),
    }
}

/// Parses `250ms`, `1.5s`, `2m`, `1h`, or a bare number of seconds; zero is refused.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = split_unit(text);
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit '{unit}' (use ms, s, m or h)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 250ms, 1.5s, 2m)"))?;
    if !value.is_finite() {
        return Err(format!("'{text}' is not a duration (e.g. 250ms, 1.5s, 2m)"));
    }
    if value <= 0.0 {
        return Err("must be greater than zero".to_owned());
    }
    seconds(value * seconds_per_unit)
}

/// Parses a byte count: a bare number, or one with `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = split_unit(text);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' (use B, KB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 4096, 64KiB, 1MB)"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err("is out of range".to_owned());
    }
    Ok(bytes as u64)
}

/// Parses an HTTP method; lower case is accepted and sent upper case.
pub(crate) fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{text}' is not an HTTP method"))
}

/// Parses the `-H` options into request headers: `Name: value`, or `@FILE` for a file of
/// such lines, which keeps secrets out of `ps` and shell history.
///
/// Done here rather than by clap because clap would quote a rejected value in its
/// message, and header values are often secrets.
pub(crate) fn parse_headers(headers: &[String]) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (index, header) in headers.iter().enumerate() {
        let Some(file) = header.strip_prefix('@') else {
            let (name, value) = parse_header_line(header)
                .with_context(|| format!("invalid value for '--header' (#{})", index + 1))?;
            map.append(name, value);
            continue;
        };
        let text = fs::read_to_string(file)
            .with_context(|| format!("cannot read the header file '{file}' given to '--header'"))?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = parse_header_line(line)
                .with_context(|| format!("invalid header in '{file}' line {}", number + 1))?;
            map.append(name, value);
        }
    }
    Ok(map)
}

/// Parses one `Name: value` line.
fn parse_header_line(text: &str) -> Result<(HeaderName, HeaderValue), HeaderError> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(HeaderError::NoColon);
    };
    parse_header(name, value)
}

/// Checks one header, for `-H` and for checks files alike.
pub(crate) fn parse_header(
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), HeaderError> {
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| HeaderError::BadName)?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|_| HeaderError::BadValue(name.clone()))?;
    Ok((name, value))
}

/// Why a header was refused; it never holds the value, which is often a secret.
#[derive(Debug)]
pub(crate) enum HeaderError {
    /// There is no colon between name and value.
    NoColon,
    /// The name is not a valid header name.
    BadName,
    /// The value of the header with this name has characters a header cannot carry.
    BadValue(HeaderName),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::NoColon => f.write_str("expected 'Name: value', found no colon"),
            HeaderError::BadName => f.write_str("bad header name"),
            HeaderError::BadValue(name) => {
                write!(
                    f,
                    "'{name}: <redacted>' has characters a header value cannot carry"
                )
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// A duration as people write it: `850ms`, `1.5s`, `2m30s`.
pub(crate) fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        let seconds = duration.as_secs_f64();
        let text = format!("{seconds:.1}");
        format!("{}s", text.trim_end_matches(".0"))
    } else {
        let seconds = duration.as_secs();
        match seconds % 60 {
            0 => format!("{}m", seconds / 60),
            rest => format!("{}m{rest}s", seconds / 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(150)), "2m30s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn durations_take_the_contract_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        assert!(parse_duration("5x")
            .unwrap_err()
            .contains("unknown unit 'x'"));
        assert!(parse_duration("fast").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("ms").unwrap_err().contains("not a duration"));
        assert!(parse_duration("0")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_duration("-1s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_duration("NaN").unwrap_err().contains("unknown unit"));
        let endless = "9".repeat(400);
        assert!(parse_duration(&endless)
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_size("1TB")
            .unwrap_err()
            .contains("GB, KiB, MiB or GiB"));
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
        assert!(parse_duration("3000000000000000h")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_timer("0.5ms").unwrap_err().contains("at least 1ms"));
        assert_eq!(parse_timer("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("2KB"), Ok(2_000));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert!(parse_size("1TB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").unwrap_err().contains("unknown unit"));
        assert!(parse_size("KiB").unwrap_err().contains("not a size"));
    }

    #[test]
    fn status_sets_take_codes_and_ranges() {
        let set = StatusSet::parse("200,204,300-399").unwrap();
        assert!(set.contains(200) && set.contains(204) && set.contains(301));
        assert!(!set.contains(201) && !set.contains(400));
        assert_eq!(set.as_written(), "200,204,300-399");
    }

    #[test]
    fn bad_status_sets_name_the_bad_part() {
        assert!(StatusSet::parse("99").unwrap_err().contains("'99'"));
        assert!(StatusSet::parse("2xx").unwrap_err().contains("'2xx'"));
        assert!(StatusSet::parse("300-200")
            .unwrap_err()
            .contains("backwards"));
        assert!(StatusSet::parse("200,").unwrap_err().contains("empty"));
    }

    #[test]
    fn counts_must_be_positive() {
        assert_eq!(parse_count("8"), Ok(8));
        assert!(parse_count("0").unwrap_err().contains("at least 1"));
        assert!(parse_count("-3").unwrap_err().contains("whole number"));
    }

    #[test]
    fn methods_are_upper_cased() {
        assert_eq!(parse_method("head"), Ok(Method::HEAD));
        assert!(parse_method("GE T").is_err());
    }

    #[test]
    fn headers_parse_and_rejections_never_quote_the_value() {
        let map = parse_headers(&["Authorization: Bearer s3cret".to_owned()]).unwrap();
        assert_eq!(map["authorization"], "Bearer s3cret");
        let err = parse_headers(&["Authorization Bearer s3cret".to_owned()]).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("--header") && message.contains("no colon"));
        assert!(!message.contains("s3cret"));
        let err = parse_headers(&["X-Token: bad\u{7f}s3cret".to_owned()]).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("x-token: <redacted>") && !message.contains("s3cret"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn duration_parsing_never_panics_and_always_explains(text in "\\PC{0,12}") {
                if let Err(message) = parse_duration(&text) {
                    prop_assert!(!message.is_empty());
                }
            }

            #[test]
            fn written_durations_read_back(amount in 1u64..100_000, unit in prop::sample::select(vec!["ms", "s", "m", ""])) {
                let millis_per_unit = match unit { "ms" => 1, "m" => 60_000, _ => 1000 };
                let parsed = parse_duration(&format!("{amount}{unit}"));
                prop_assert_eq!(parsed, Ok(Duration::from_millis(amount * millis_per_unit)));
            }

            #[test]
            fn status_list_parsing_never_panics_and_names_the_bad_part(text in "[0-9,\\- x]{0,16}") {
                if let Err(message) = StatusSet::parse(&text) {
                    prop_assert!(
                        message.contains('\'') || message.contains("empty"),
                        "{message}"
                    );
                }
            }

            #[test]
            fn written_status_lists_contain_their_codes(codes in prop::collection::vec(100u16..=999, 1..6)) {
                let text = codes.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
                let set = StatusSet::parse(&text).unwrap();
                prop_assert!(codes.iter().all(|&code| set.contains(code)));
            }

            #[test]
            fn size_parsing_never_panics_and_always_explains(text in "\\PC{0,12}") {
                if let Err(message) = parse_size(&text) {
                    prop_assert!(!message.is_empty());
                }
            }
        }
    }
}
