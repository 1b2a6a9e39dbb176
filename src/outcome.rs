//! The result of checking one target: the record every target yields exactly once.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::calendar::{rfc3339, DAY};
use crate::target::{Labels, Origin, TargetKind};

/// Why a target is unhealthy; the variants are exactly the contract's `error_kind` strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorKind {
    /// The input line is not a valid target.
    Invalid,
    /// The host name could not be resolved.
    Dns,
    /// The TCP connection could not be established.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// One attempt took longer than `--timeout`.
    Timeout,
    /// Not valid HTTP, or the connection closed before a complete response.
    Protocol,
    /// The final status is not in `--expect-status`.
    Status,
    /// The body does not contain `--body-contains`.
    Body,
    /// Too many redirects, or a redirect to a scheme that is never followed.
    Redirect,
    /// The server asked us to slow down (429, or a `Retry-After` we will not wait for).
    RateLimited,
    /// The TLS certificate expires within `--cert-min-days`.
    CertExpiry,
    /// The run's deadline passed before the target was checked.
    Deadline,
    /// A signal stopped the run before the target was checked.
    Interrupted,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The contract's string for this kind.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Redirect => "redirect",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::CertExpiry => "cert_expiry",
            ErrorKind::Deadline => "deadline",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Other => "other",
        }
    }

    /// Whether a target with this kind was never checked (it counts as skipped, not failed).
    pub(crate) fn is_skip(self) -> bool {
        matches!(self, ErrorKind::Deadline | ErrorKind::Interrupted)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unhealthy verdict: its kind and a short human sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// What went wrong, for machines.
    pub(crate) kind: ErrorKind,
    /// What went wrong, for people.
    pub(crate) message: String,
}

impl Failure {
    /// A failure of `kind` described by `message`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// When a certificate expires, and how many whole days were left when it was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CertExpiry {
    /// notAfter, in Unix seconds.
    pub(crate) not_after: i64,
    /// Whole days from `now` to notAfter, rounded down: 0 in its last day, negative once expired.
    pub(crate) days_left: i64,
}

impl CertExpiry {
    /// The expiry `not_after` as seen at Unix time `now`.
    pub(crate) fn seen_at(not_after: i64, now: i64) -> Self {
        CertExpiry {
            not_after,
            days_left: (not_after - now).div_euclid(DAY),
        }
    }
}

/// Where an attempt's time went, phase by phase, in milliseconds: each phase counts from
/// the end of the one before, and is `None` when it did not happen (a reused connection
/// has no lookup, connect or handshake; plain HTTP has no handshake).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Timings {
    /// Looking up the host name.
    pub(crate) dns_ms: Option<f64>,
    /// Setting up the TCP connection.
    pub(crate) connect_ms: Option<f64>,
    /// The TLS handshake.
    pub(crate) tls_ms: Option<f64>,
    /// From the connection being ready (or the request going out on a reused one) until the
    /// response headers came.
    pub(crate) ttfb_ms: Option<f64>,
    /// Reading the body, when it was read.
    pub(crate) body_ms: Option<f64>,
}

impl Timings {
    /// Each phase with its name, in the order they happen.
    pub(crate) fn phases(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("dns", self.dns_ms),
            ("connect", self.connect_ms),
            ("tls", self.tls_ms),
            ("ttfb", self.ttfb_ms),
            ("body", self.body_ms),
        ]
    }
}

/// One target's result, serialised as the contract's result object.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TargetResult {
    /// Position in the whole input.
    #[serde(skip)]
    pub(crate) seq: u64,
    /// Which probe the target got; `None` for a line that is not a target.
    #[serde(skip)]
    pub(crate) kind: Option<TargetKind>,
    /// The target as written in the input.
    pub(crate) target: String,
    /// Where the target was read from.
    pub(crate) source: Arc<str>,
    /// 1-based line number in `source`.
    pub(crate) line: Option<u64>,
    /// Healthy or not.
    pub(crate) ok: bool,
    /// Final HTTP status, if a response came.
    pub(crate) status: Option<u16>,
    /// Duration of the last completed attempt.
    #[serde(serialize_with = "serialize_millis")]
    pub(crate) latency_ms: Option<Duration>,
    /// Attempts started, a cancelled one included.
    pub(crate) attempts: u32,
    /// Why the target is unhealthy.
    pub(crate) error_kind: Option<ErrorKind>,
    /// Why the target is unhealthy, for people.
    pub(crate) error: Option<String>,
    // The fields above are the contract's nine; those below were added after it.
    /// The entry's name, from a checks file.
    pub(crate) name: Option<String>,
    /// The entry's tags, from a checks file.
    pub(crate) tags: Vec<String>,
    /// Healthy, but slower than `--slow`.
    pub(crate) slow: bool,
    /// When the earliest-expiring certificate of the chain that served the response expires (Unix seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub(crate) cert_expires_at: Option<i64>,
    /// Whole days left until `cert_expires_at` when the response came; negative once expired.
    pub(crate) cert_days_left: Option<i64>,
    /// `ok` in the `--state` file's run; `None` without `--state` or for a target new to it.
    pub(crate) previous_ok: Option<bool>,
    /// When the target's health last changed, as far as the `--state` file knows (Unix
    /// seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub(crate) changed_at: Option<i64>,
    /// The address that answered: `127.0.0.1:443`, `[::1]:443`.
    pub(crate) address: Option<SocketAddr>,
    /// Where the last completed attempt's time went.
    pub(crate) timings: Timings,
    /// The first line a TCP service sent (`--banner-contains`); `None` when nothing was read.
    pub(crate) banner: Option<String>,
}

impl TargetResult {
    /// The result for `target` (of `kind`, none for a line that is not a target) from
    /// `origin`, labelled as its checks-file entry says, with the given verdict.
    pub(crate) fn new(
        origin: Origin,
        target: String,
        kind: Option<TargetKind>,
        labels: Labels,
        verdict: Verdict,
    ) -> Self {
        let (ok, error_kind, error) = match verdict.failure {
            None => (true, None, None),
            Some(failure) => (false, Some(failure.kind), Some(failure.message)),
        };
        TargetResult {
            seq: origin.seq,
            kind,
            target,
            source: origin.source,
            line: origin.line,
            ok,
            status: verdict.status,
            latency_ms: verdict.latency,
            attempts: verdict.attempts,
            error_kind,
            error,
            name: labels.name,
            tags: labels.tags,
            slow: verdict.slow,
            cert_expires_at: verdict.cert.map(|cert| cert.not_after),
            cert_days_left: verdict.cert.map(|cert| cert.days_left),
            previous_ok: None,
            changed_at: None,
            address: verdict.address,
            timings: verdict.timings,
            banner: verdict.banner,
        }
    }

    /// Whether the target was never checked because the run was cut short.
    pub(crate) fn is_skipped(&self) -> bool {
        self.error_kind.is_some_and(ErrorKind::is_skip)
    }
}

/// What checking a target found, before it is joined with where the target came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Verdict {
    /// Final HTTP status, if a response came.
    pub(crate) status: Option<u16>,
    /// Duration of the last completed attempt.
    pub(crate) latency: Option<Duration>,
    /// Attempts started.
    pub(crate) attempts: u32,
    /// `None` when healthy.
    pub(crate) failure: Option<Failure>,
    /// The TLS certificate's expiry, when the last completed attempt saw one.
    pub(crate) cert: Option<CertExpiry>,
    /// The first line of the banner the last completed attempt read.
    pub(crate) banner: Option<String>,
    /// Healthy, but slower than `--slow`.
    pub(crate) slow: bool,
    /// The address that answered the last completed attempt.
    pub(crate) address: Option<SocketAddr>,
    /// Where the last completed attempt's time went.
    pub(crate) timings: Timings,
}

impl Verdict {
    /// A verdict with no attempt made, for targets that were never probed.
    pub(crate) fn unattempted(failure: Failure) -> Self {
        Verdict {
            failure: Some(failure),
            ..Verdict::default()
        }
    }
}

/// Milliseconds with microsecond precision: enough to tell loopback answers apart.
pub(crate) fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

fn serialize_rfc3339<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(unix) => s.serialize_str(&rfc3339(*unix)),
        None => s.serialize_none(),
    }
}

fn serialize_millis<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => s.serialize_f64(millis(*duration)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
