//! The result of checking one target: the record every target yields exactly once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::cert::{self, CertExpiry};
use crate::checks::Check;

/// Why a target is unhealthy; the variants are exactly the contract's `error_kind` strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
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
    pub fn as_str(self) -> &'static str {
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
    pub fn is_skip(self) -> bool {
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
pub struct Failure {
    /// What went wrong, for machines.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// Where a target came from: the input it was read from and its line there.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Position in the whole input, used to print `json` results in input order.
    pub seq: u64,
    /// The file name as given, `-` for standard input, `--url` for `--url`.
    pub source: Arc<str>,
    /// 1-based line number in `source`; `None` for `--url`.
    pub line: Option<u64>,
}

/// One target's result, serialised as the contract's result object.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    #[serde(skip)]
    /// Position in the whole input.
    pub seq: u64,
    /// The target as written in the input.
    pub target: String,
    /// Where the target was read from.
    pub source: Arc<str>,
    /// 1-based line number in `source`.
    pub line: Option<u64>,
    /// Healthy or not.
    pub ok: bool,
    /// Final HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration of the last completed attempt.
    #[serde(serialize_with = "serialize_millis")]
    pub latency_ms: Option<Duration>,
    /// Attempts started, a cancelled one included.
    pub attempts: u32,
    /// Why the target is unhealthy.
    pub error_kind: Option<ErrorKind>,
    /// Why the target is unhealthy, for people.
    pub error: Option<String>,
    // The fields above are the contract's nine; those below were added after it.
    /// The entry's name, from a checks file.
    pub name: Option<String>,
    /// The entry's tags, from a checks file.
    pub tags: Vec<String>,
    /// Healthy, but slower than `--slow`.
    pub slow: bool,
    /// When the TLS certificate that served the response expires (Unix seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub cert_expires_at: Option<i64>,
    /// Whole days left until `cert_expires_at` when the response came; negative once expired.
    pub cert_days_left: Option<i64>,
}

impl CheckResult {
    /// A result for `target` from `origin` with the given verdict.
    pub fn new(origin: Origin, target: String, verdict: Verdict) -> Self {
        let (ok, error_kind, error) = match verdict.failure {
            None => (true, None, None),
            Some(failure) => (false, Some(failure.kind), Some(failure.message)),
        };
        CheckResult {
            seq: origin.seq,
            target,
            source: origin.source,
            line: origin.line,
            ok,
            status: verdict.status,
            latency_ms: verdict.latency,
            attempts: verdict.attempts,
            error_kind,
            error,
            name: None,
            tags: Vec::new(),
            slow: verdict.slow,
            cert_expires_at: verdict.cert.map(|cert| cert.not_after),
            cert_days_left: verdict.cert.map(|cert| cert.days_left),
        }
    }

    /// This result with the name and tags of the checks-file entry it came from, if any.
    pub fn labelled(mut self, check: Option<&Check>) -> Self {
        if let Some(check) = check {
            self.name.clone_from(&check.name);
            self.tags.clone_from(&check.tags);
        }
        self
    }

    /// Whether the target was never checked because the run was cut short.
    pub fn is_skipped(&self) -> bool {
        self.error_kind.is_some_and(ErrorKind::is_skip)
    }
}

/// What checking a target found, before it is joined with where the target came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Final HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration of the last completed attempt.
    pub latency: Option<Duration>,
    /// Attempts started.
    pub attempts: u32,
    /// `None` when healthy.
    pub failure: Option<Failure>,
    /// The TLS certificate's expiry, when the last completed attempt saw one.
    pub cert: Option<CertExpiry>,
    /// Healthy, but slower than `--slow`.
    pub slow: bool,
}

impl Verdict {
    /// A verdict with no attempt made, for targets that were never probed.
    pub fn unattempted(failure: Failure) -> Self {
        Verdict {
            failure: Some(failure),
            ..Verdict::default()
        }
    }
}

/// Milliseconds with microsecond precision: enough to tell loopback answers apart.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

fn serialize_rfc3339<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(unix) => s.serialize_str(&cert::rfc3339(*unix)),
        None => s.serialize_none(),
    }
}

fn serialize_millis<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => s.serialize_f64(millis(*duration)),
        None => s.serialize_none(),
    }
}
