//! `--format nagios`: one status line with performance data, in the plugin format that
//! Nagios, Icinga and Zabbix run, then one line per target that needs attention; and the
//! plugin exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) instead of the contract's.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use crate::exit::RunEnd;
use crate::outcome::{CheckResult, ErrorKind};
use crate::stop::StopReason;
use crate::summary::Summary;
use crate::text::human_duration;

/// Names listed on the status line before the rest are only counted.
const LISTED_NAMES: usize = 10;

/// A plugin state; its value is the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Every target is healthy and none is slow.
    Ok = 0,
    /// Nothing is down, but something is slow or its certificate expires soon.
    Warning = 1,
    /// Something is down, or the deadline passed before every target was checked.
    Critical = 2,
    /// The check itself could not be made: a usage error, unreadable input, a signal.
    Unknown = 3,
}

impl State {
    /// The word plugins print for this state.
    pub fn word(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// The exit code for this state.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Targets down: failed for any reason but a certificate within `--cert-min-days`.
fn down(end: &RunEnd) -> u64 {
    end.failed.saturating_sub(end.cert_expiring)
}

/// The state of a run that ended as `end`; where several apply, the same order as the
/// contract's exit codes decides (a signal over the deadline over unreadable input).
pub fn state(end: &RunEnd) -> State {
    if matches!(end.stop, Some(StopReason::Signal(_))) {
        State::Unknown
    } else if end.deadline_skipped > 0 {
        State::Critical
    } else if end.read_failed {
        State::Unknown
    } else if down(end) > 0 || (end.fail_slow && end.slow > 0) {
        State::Critical
    } else if end.cert_expiring > 0 || end.slow > 0 {
        State::Warning
    } else {
        State::Ok
    }
}

/// The exit code of a run in Nagios mode.
pub fn status(end: &RunEnd) -> u8 {
    state(end).code()
}

/// Prints the status line of a check that could not be made at all (a usage error) and
/// returns the UNKNOWN exit code.
pub fn unknown(message: &str) -> u8 {
    // Nothing better can be done if stdout is gone: the exit code still says UNKNOWN.
    let _ = writeln!(io::stdout(), "UPCHECK UNKNOWN - {}", plain(message));
    State::Unknown.code()
}

/// The report: the status line with performance data, then a line per target that needs
/// attention. `noted` holds, in input order, the results that are unhealthy or slow.
pub fn render(noted: &[CheckResult], summary: &Summary, end: &RunEnd) -> String {
    let state = state(end);
    let is_down =
        |r: &&CheckResult| !r.ok && !r.is_skipped() && r.error_kind != Some(ErrorKind::CertExpiry);
    let is_cert = |r: &&CheckResult| r.error_kind == Some(ErrorKind::CertExpiry);
    let is_slow = |r: &&CheckResult| r.slow;
    let total = summary.total;
    let down_part = || {
        format!(
            "{} of {total} down: {}",
            down(end),
            names(noted.iter().filter(is_down))
        )
    };
    let slow_part = || {
        format!(
            "{} of {total} slow: {}",
            summary.slow,
            names(noted.iter().filter(is_slow))
        )
    };
    let cert_part = || {
        let count = end.cert_expiring;
        let noun = if count == 1 {
            "certificate"
        } else {
            "certificates"
        };
        format!(
            "{count} {noun} expiring: {}",
            names(noted.iter().filter(is_cert))
        )
    };
    let mut parts = Vec::new();
    match end.stop {
        Some(StopReason::Signal(signal)) if state == State::Unknown => {
            parts.push(format!(
                "interrupted by {}: {} of {total} not checked",
                signal.name(),
                summary.skipped
            ));
        }
        Some(StopReason::Deadline(deadline)) if end.deadline_skipped > 0 => {
            parts.push(format!(
                "the {} deadline passed: {} of {total} not checked",
                human_duration(deadline),
                end.deadline_skipped
            ));
        }
        _ => {}
    }
    if end.read_failed {
        parts.push("an input could not be read to its end".to_owned());
    }
    if down(end) > 0 {
        parts.push(down_part());
    }
    if end.cert_expiring > 0 {
        parts.push(cert_part());
    }
    if summary.slow > 0 {
        parts.push(slow_part());
    }
    if parts.is_empty() {
        parts.push(format!("{} of {total} up", summary.ok));
    }

    let mut out = format!("UPCHECK {} - {}", state.word(), parts.join("; "));
    let _ = writeln!(
        out,
        " | total={total};;; ok={};;; down={};;; slow={};;; cert_expiring={};;; skipped={};;; time={:.3}s;;;",
        summary.ok,
        down(end),
        summary.slow,
        end.cert_expiring,
        summary.skipped,
        summary.elapsed_ms / 1000.0,
    );
    for result in noted {
        let (state, why) = match (result.error_kind, super::why_unhealthy(result)) {
            (Some(kind), Some(why)) => {
                let state = if kind == ErrorKind::CertExpiry {
                    State::Warning
                } else if kind.is_skip() {
                    State::Unknown
                } else {
                    State::Critical
                };
                (state, why)
            }
            _ => {
                let latency = result
                    .latency_ms
                    .map_or_else(|| "-".to_owned(), human_duration);
                (State::Warning, format!("slow: {latency}"))
            }
        };
        let _ = writeln!(
            out,
            "[{}] {} - {}",
            state.word(),
            plain(&label(result)),
            plain(&why)
        );
    }
    out
}

/// How a target is named in the report: its name, else the target as written.
fn label(result: &CheckResult) -> String {
    match &result.name {
        Some(name) => format!("{name} ({})", result.target),
        None => result.target.clone(),
    }
}

/// The first names of `results`, then how many more there are.
fn names<'a>(results: impl Iterator<Item = &'a CheckResult>) -> String {
    let mut listed = Vec::new();
    let mut more = 0;
    for result in results {
        if listed.len() < LISTED_NAMES {
            listed.push(plain(result.name.as_deref().unwrap_or(&result.target)));
        } else {
            more += 1;
        }
    }
    let mut text = listed.join(", ");
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}

/// Text safe on a plugin line: `|` starts performance data and a line feed a new line.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Failure;
    use crate::stop::Signal;
    use std::time::Duration;

    fn result(seq: u64, target: &str, failure: Option<Failure>, slow: bool) -> CheckResult {
        CheckResult {
            slow,
            ..crate::report::sample_result(seq, target, failure)
        }
    }

    fn summary(results: &[CheckResult], healthy: u64) -> Summary {
        let mut tallies = crate::summary::Tallies::default();
        for result in results {
            tallies.record(result);
        }
        for n in 0..healthy {
            tallies.record(&result(100 + n, "http://ok/", None, false));
        }
        tallies.summary(Duration::from_millis(1234), false)
    }

    fn end_of(summary: &Summary, cert_expiring: u64) -> RunEnd {
        RunEnd {
            failed: summary.failed,
            cert_expiring,
            slow: summary.slow,
            ..RunEnd::default()
        }
    }

    #[test]
    fn states_follow_the_plugin_convention() {
        let end = RunEnd::default();
        assert_eq!(state(&end), State::Ok);
        assert_eq!(state(&RunEnd { slow: 1, ..end }), State::Warning);
        let cert = RunEnd {
            failed: 1,
            cert_expiring: 1,
            ..end
        };
        assert_eq!(state(&cert), State::Warning);
        assert_eq!(state(&RunEnd { failed: 2, ..cert }), State::Critical);
        let fail_slow = RunEnd {
            slow: 1,
            fail_slow: true,
            ..end
        };
        assert_eq!(state(&fail_slow), State::Critical);
        let deadline = RunEnd {
            deadline_skipped: 1,
            stop: Some(StopReason::Deadline(Duration::from_secs(1))),
            ..end
        };
        assert_eq!(state(&deadline), State::Critical);
        assert_eq!(
            state(&RunEnd {
                read_failed: true,
                ..end
            }),
            State::Unknown
        );
        let signal = RunEnd {
            stop: Some(StopReason::Signal(Signal::Terminate)),
            ..deadline
        };
        assert_eq!(state(&signal), State::Unknown);
        assert_eq!(status(&signal), 3);
    }

    #[test]
    fn the_status_line_lists_what_is_down_and_carries_perfdata() {
        let noted = [
            result(
                0,
                "http://a/",
                Some(Failure::new(ErrorKind::Status, "x")),
                false,
            ),
            result(1, "http://b/", None, true),
        ];
        let summary = summary(&noted, 3);
        let text = render(&noted, &summary, &end_of(&summary, 0));
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "UPCHECK CRITICAL - 1 of 5 down: http://a/; 1 of 5 slow: http://b/ \
             | total=5;;; ok=4;;; down=1;;; slow=1;;; cert_expiring=0;;; skipped=0;;; time=1.234s;;;"
        );
        assert_eq!(lines.next().unwrap(), "[CRITICAL] http://a/ - status: x");
        assert_eq!(lines.next().unwrap(), "[WARNING] http://b/ - slow: 1.5s");
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn names_are_capped_and_pipes_never_reach_the_perfdata() {
        let noted: Vec<_> = (0..12)
            .map(|n| {
                let failure = Failure::new(ErrorKind::Connect, "refused | reset");
                result(n, &format!("http://h{n}/a|b"), Some(failure), false)
            })
            .collect();
        let summary = summary(&noted, 0);
        let text = render(&noted, &summary, &end_of(&summary, 0));
        let first = text.lines().next().unwrap();
        assert!(first.contains("http://h9/a/b and 2 more |"), "{first}");
        assert_eq!(first.matches('|').count(), 1);
        assert!(text.lines().skip(1).all(|line| !line.contains('|')));
    }

    #[test]
    fn invalid_entries_name_their_file_and_line() {
        let failure = Failure::new(ErrorKind::Invalid, "unknown scheme 'ftp'");
        let noted = [result(2, "ftp://x/", Some(failure), false)];
        let summary = summary(&noted, 0);
        let text = render(&noted, &summary, &end_of(&summary, 0));
        assert_eq!(
            text.lines().nth(1),
            Some("[CRITICAL] ftp://x/ - invalid: list.txt:3: unknown scheme 'ftp'")
        );
    }

    #[test]
    fn all_up_is_ok() {
        let summary = summary(&[], 2);
        let text = render(&[], &summary, &end_of(&summary, 0));
        assert!(
            text.starts_with("UPCHECK OK - 2 of 2 up | total=2;;;"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
    }
}
