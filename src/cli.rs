//! The command-line interface: the options as clap declares them, and nothing more; their
//! values are parsed by the domain modules that own them ([`crate::values`], [`Rate`],
//! [`Shard`]) and turned into settings by [`crate::settings`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueHint};
use clap_complete::Shell;
use reqwest::Method;

use crate::probe::Pin;
use crate::progress::ProgressWhen;
use crate::rate::Rate;
use crate::report::Format;
use crate::shard::Shard;
use crate::values::{
    parse_count, parse_duration, parse_method, parse_size, parse_timer, StatusSet,
};

/// The options and arguments, exactly as the contract names them.
#[derive(Debug, Parser)]
#[command(
    name = "upcheck",
    version,
    about = "Check many HTTP(S), TCP and ICMP endpoints at once and say which are healthy.",
    after_help = "Targets: http://..., https://..., tcp://HOST:PORT or icmp://HOST, one per line; '#' starts a comment.\n\
                  Ranges: icmp://10.50.1.0/24, tcp://10.50.1.1-254:22, icmp://[fd00::]/120.\n\
                  Durations: 250ms, 1.5s, 2m, or seconds. Sizes: bytes, or with KB, MB, KiB, MiB.\n\
                  Exit codes: 0 all healthy, 1 some unhealthy or invalid (or slow, with --fail-slow),\n\
                  2 usage error or unreadable input, 3 deadline passed, 129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM.\n\
                  With --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
)]
pub struct Cli {
    /// Endpoint lists, one target per line; '-' reads standard input
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) files: Vec<PathBuf>,

    /// Add one endpoint (repeatable)
    #[arg(short = 'u', long = "url", value_name = "URL", value_hint = ValueHint::Url)]
    pub(crate) urls: Vec<String>,

    /// Checks files: TOML `[[check]]` tables, each with its own settings.
    #[arg(
        long = "checks",
        value_name = "FILE",
        help = "Checks file: [[check]] tables in TOML, each with its own settings (repeatable)"
    )]
    pub(crate) checks: Vec<PathBuf>,
    /// Check only shard K of N (K from 0 to N-1), split by a stable hash of each target
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub(crate) shard: Option<Shard>,

    /// Probes in flight at once, over all hosts
    #[arg(short = 'c', long, value_name = "N", default_value = "50", value_parser = parse_count)]
    pub(crate) concurrency: usize,

    /// Probes in flight at once to one host:port
    #[arg(long, value_name = "N", default_value = "10", value_parser = parse_count)]
    pub(crate) per_host: usize,

    /// Worker threads, each checking the hosts that hash to it [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) threads: Option<usize>,

    /// Start at most N requests per second over the whole run, retries included (0.5: one every 2s)
    #[arg(long, value_name = "N", value_parser = Rate::parse)]
    pub(crate) rate: Option<Rate>,

    /// Limit for one attempt: connect, TLS, headers and the body part read
    #[arg(short = 't', long, value_name = "DUR", default_value = "5s", value_parser = parse_timer)]
    pub(crate) timeout: Duration,

    /// Limit for the whole run; unfinished targets are reported as 'deadline'
    #[arg(short = 'd', long, value_name = "DUR", value_parser = parse_timer)]
    pub(crate) deadline: Option<Duration>,

    /// Extra attempts after a transient failure (timeout, connect/DNS error, 5xx, 429)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) retries: u32,

    /// HTTP method
    #[arg(short = 'X', long, value_name = "M", default_value = "GET", value_parser = parse_method)]
    pub(crate) method: Method,

    /// Extra request header, 'Name: value', or @FILE with one header per line (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    pub(crate) headers: Vec<String>,

    /// Healthy status codes: comma-separated codes and ranges
    #[arg(long, value_name = "LIST", default_value = "200-399", value_parser = StatusSet::parse)]
    pub(crate) expect_status: StatusSet,

    /// Healthy only if the body (first --max-body bytes) contains TEXT
    #[arg(long, value_name = "TEXT")]
    pub(crate) body_contains: Option<String>,

    /// tcp:// targets: also read what the server sends first, healthy only if it contains TEXT
    #[arg(long, value_name = "TEXT")]
    pub(crate) banner_contains: Option<String>,

    /// Most body bytes read per response (and banner bytes per tcp:// target)
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub(crate) max_body: u64,

    /// Do not follow redirects (the redirect status is judged by --expect-status)
    #[arg(long)]
    pub(crate) no_follow: bool,

    /// Accept invalid TLS certificates
    #[arg(short = 'k', long)]
    pub(crate) insecure: bool,

    /// Trust only the CA certificates in FILE (PEM), instead of the system's
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) cacert: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; its private key too, unless --key is given
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) cert: Option<PathBuf>,

    /// Private key (PEM) of the --cert client certificate
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, requires = "cert")]
    pub(crate) key: Option<PathBuf>,

    /// Connect to ADDR (or ADDR,ADDR...) for HOST and PORT without asking DNS (repeatable)
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR", value_parser = Pin::parse)]
    pub(crate) resolve: Vec<Pin>,

    /// Use IPv4 addresses only, with no fallback to IPv6
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub(crate) ipv4: bool,

    /// Use IPv6 addresses only, with no fallback to IPv4
    #[arg(short = '6', long = "ipv6")]
    pub(crate) ipv6: bool,

    /// Unhealthy (cert_expiry) when the TLS certificate expires within N days
    #[arg(long, value_name = "N")]
    pub(crate) cert_min_days: Option<u32>,

    /// Mark healthy responses slower than DUR as slow
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) slow: Option<Duration>,

    /// Exit 1 when any response is slow (needs --slow)
    #[arg(long, requires = "slow")]
    pub(crate) fail_slow: bool,

    /// Output format: text, json, jsonl, prometheus or nagios
    #[arg(short = 'f', long, value_name = "F", value_enum, default_value_t = Format::Text, hide_possible_values = true)]
    pub(crate) format: Format,

    /// Write the report to FILE, replacing it atomically when complete, instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Text format: print only unhealthy endpoints and the summary
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,

    /// Remember each target's health in FILE between runs, to say what changed since the last
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) state: Option<PathBuf>,

    /// Start the --state file afresh, ignoring what it holds: every target is new
    #[arg(long, requires = "state")]
    pub(crate) state_reset: bool,

    /// Text format: print only targets whose health changed since the --state run, and the summary
    #[arg(long, requires = "state")]
    pub(crate) changes_only: bool,

    /// Text format: draw the latency histogram even when stdout is not a terminal
    #[arg(long)]
    pub(crate) histogram: bool,

    /// When to draw a progress bar on stderr: auto (if stderr is a terminal), always, never
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ProgressWhen::Auto, hide_possible_values = true)]
    pub(crate) progress: ProgressWhen,

    /// Print a completion script for bash, zsh or fish (also elvish, powershell) and exit
    #[arg(
        long,
        value_name = "SHELL",
        value_enum,
        exclusive = true,
        hide_possible_values = true
    )]
    pub(crate) completions: Option<Shell>,

    /// Print the man page (roff) and exit
    #[arg(long, exclusive = true)]
    pub(crate) man: bool,
}

/// Whether `args` (the program name first) ask for `--format nagios`, as far as can be told
/// without parsing them: used when parsing fails, to answer in the plugin format.
pub(crate) fn asks_for_nagios(args: &[std::ffi::OsString]) -> bool {
    use clap::CommandFactory;
    let command = Cli::command();
    let takes_value = |arg: &&clap::Arg| arg.get_action().takes_values();
    let short_with_value: Vec<char> = command
        .get_arguments()
        .filter(takes_value)
        .filter_map(clap::Arg::get_short)
        .collect();
    let long_with_value: Vec<&str> = command
        .get_arguments()
        .filter(takes_value)
        .filter_map(clap::Arg::get_long)
        .collect();
    let mut args = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        let (is_format, value) = if arg == "--" {
            return false;
        } else if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => (name == "format", Some(value.to_owned())),
                None if long_with_value.contains(&long) => (long == "format", None),
                None => continue,
            }
        } else if let Some(shorts) = arg.strip_prefix('-') {
            // A cluster of short flags ends at the first one that takes a value.
            let Some((at, short)) = shorts
                .char_indices()
                .find(|(_, c)| short_with_value.contains(c))
            else {
                continue;
            };
            let rest = &shorts[at + short.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            (short == 'f', (!rest.is_empty()).then(|| rest.to_owned()))
        } else {
            continue;
        };
        let value = match value {
            Some(value) => value,
            None => match args.next() {
                Some(value) => value.into_owned(),
                None => return false,
            },
        };
        if is_format && value == "nagios" {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nagios_is_spotted_in_every_spelling_clap_accepts() {
        let asks = |args: &[&str]| {
            let args: Vec<std::ffi::OsString> = std::iter::once("upcheck")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect();
            asks_for_nagios(&args)
        };
        assert!(asks(&["-f", "nagios", "x"]));
        assert!(asks(&["--format", "nagios"]));
        assert!(asks(&["--format=nagios"]));
        assert!(asks(&["-fnagios"]));
        assert!(asks(&["-qf", "nagios"]));
        assert!(asks(&["-kfnagios", "-c", "0"]));
        assert!(!asks(&["-f", "json"]));
        assert!(!asks(&["-H", "-f nagios"]));
        assert!(!asks(&["-Hfnagios"]));
        assert!(!asks(&["--header", "--format=nagios"]));
        assert!(!asks(&["--", "-f", "nagios"]));
        assert!(!asks(&["-f"]));
    }
}
