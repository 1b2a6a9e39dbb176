//! The command-line interface: the options, their value parsers, and the checks clap cannot make.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum, ValueHint};
use clap_complete::Shell;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;

use crate::rate::Rate;
use crate::shard::Shard;

/// The options and arguments, exactly as the contract names them.
#[derive(Debug, Parser)]
#[command(
    name = "upcheck",
    version,
    about = "Check many HTTP(S) and TCP endpoints at once and say which are healthy.",
    after_help = "Targets: http://..., https://... or tcp://HOST:PORT, one per line; '#' starts a comment.\n\
                  Durations: 250ms, 1.5s, 2m, or seconds. Sizes: bytes, or with KB, MB, KiB, MiB.\n\
                  Exit codes: 0 all healthy, 1 some unhealthy or invalid, 2 usage error or unreadable input,\n\
                  3 deadline passed, 130/143 interrupted by SIGINT/SIGTERM."
)]
pub struct Cli {
    /// Endpoint lists, one target per line; '-' reads standard input
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub files: Vec<PathBuf>,

    /// Add one endpoint (repeatable)
    #[arg(short = 'u', long = "url", value_name = "URL", value_hint = ValueHint::Url)]
    pub urls: Vec<String>,

    /// Check only shard K of N (K from 0 to N-1), split by a stable hash of each target
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,

    /// Probes in flight at once, over all hosts
    #[arg(short = 'c', long, value_name = "N", default_value = "50", value_parser = parse_count)]
    pub concurrency: usize,

    /// Probes in flight at once to one host:port
    #[arg(long, value_name = "N", default_value = "10", value_parser = parse_count)]
    pub per_host: usize,

    /// Start at most N requests per second over the whole run, retries included (0.5: one every 2s)
    #[arg(long, value_name = "N", value_parser = Rate::parse)]
    pub rate: Option<Rate>,

    /// Limit for one attempt: connect, TLS, headers and the body part read
    #[arg(short = 't', long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Limit for the whole run; unfinished targets are reported as 'deadline'
    #[arg(short = 'd', long, value_name = "DUR", value_parser = parse_duration)]
    pub deadline: Option<Duration>,

    /// Extra attempts after a transient failure (timeout, connect/DNS error, 5xx, 429)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// HTTP method
    #[arg(short = 'X', long, value_name = "M", default_value = "GET", value_parser = parse_method)]
    pub method: Method,

    /// Extra request header, 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,

    /// Healthy status codes: comma-separated codes and ranges
    #[arg(long, value_name = "LIST", default_value = "200-399", value_parser = StatusSet::parse)]
    pub expect_status: StatusSet,

    /// Healthy only if the body (first --max-body bytes) contains TEXT
    #[arg(long, value_name = "TEXT")]
    pub body_contains: Option<String>,

    /// Most body bytes read per response
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: u64,

    /// Do not follow redirects (the redirect status is judged by --expect-status)
    #[arg(long)]
    pub no_follow: bool,

    /// Accept invalid TLS certificates
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Output format: text, json or jsonl
    #[arg(short = 'f', long, value_name = "F", value_enum, default_value_t = Format::Text, hide_possible_values = true)]
    pub format: Format,

    /// Text format: print only unhealthy endpoints and the summary
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// When to draw a progress bar on stderr: auto (if stderr is a terminal), always, never
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ProgressWhen::Auto, hide_possible_values = true)]
    pub progress: ProgressWhen,

    /// Print a completion script for bash, zsh or fish (also elvish, powershell) and exit
    #[arg(
        long,
        value_name = "SHELL",
        value_enum,
        exclusive = true,
        hide_possible_values = true
    )]
    pub completions: Option<Shell>,

    /// Print the man page (roff) and exit
    #[arg(long, exclusive = true)]
    pub man: bool,
}

/// How results are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per result as it completes, then a summary line
    Text,
    /// One JSON document with a summary and the results in input order
    Json,
    /// One JSON object per result as it completes
    Jsonl,
}

/// When the progress bar is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressWhen {
    /// Only when stderr is a terminal
    Auto,
    /// Even when stderr is not a terminal
    Always,
    /// Never
    Never,
}

/// A set of HTTP status codes, written as comma-separated codes and ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
    written: String,
}

impl StatusSet {
    /// Parses `200,204,300-399`.
    pub fn parse(text: &str) -> Result<Self, String> {
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
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }

    /// The set as the user wrote it.
    pub fn as_written(&self) -> &str {
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
pub fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

/// Parses `250ms`, `1.5s`, `2m`, `1h`, or a bare number of seconds; zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
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
    if !value.is_finite() || value <= 0.0 {
        return Err("must be greater than zero".to_owned());
    }
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| "is too long".to_owned())
}

/// Parses a byte count: a bare number, or one with `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(format!("unknown unit '{unit}' (use KB, MB, KiB or MiB)")),
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
pub fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{text}' is not an HTTP method"))
}

/// Parses the `-H 'Name: value'` options into request headers.
///
/// Done here rather than by clap because clap would quote a rejected value in its
/// message, and header values are often secrets.
pub fn parse_headers(headers: &[String]) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (index, header) in headers.iter().enumerate() {
        let position = index + 1;
        let Some((name, value)) = header.split_once(':') else {
            bail!("invalid value for '--header' (#{position}): expected 'Name: value', found no colon");
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes()).with_context(|| {
            format!("invalid value for '--header' (#{position}): bad header name")
        })?;
        let value = HeaderValue::from_str(value.trim()).with_context(|| {
            format!("invalid value for '--header' {name}: the value has characters a header cannot carry")
        })?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
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
        assert!(!format!("{err:#}").contains("s3cret"));
    }
}
