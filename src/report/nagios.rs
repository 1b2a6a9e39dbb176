//! `--format nagios`: one status line with performance data, in the plugin format that
//! Nagios, Icinga and Zabbix run, then one line per target that needs attention; and the
//! plugin exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) instead of the contract's.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use super::escape::visible;
use super::text::why_unhealthy;
use crate::exit::{Ending, NagiosState, RunFacts};
use crate::outcome::{ErrorKind, TargetResult};
use crate::stop::StopReason;
use crate::summary::Summary;
use crate::values::human_duration;

/// Names listed on the status line before the rest are only counted.
const LISTED_NAMES: usize = 10;

/// Prints the status line of a check that could not be made at all (a usage error) and
/// returns the UNKNOWN exit code.
pub(crate) fn unknown(message: &str) -> u8 {
    // Nothing better can be done if stdout is gone: the exit code still says UNKNOWN.
    let _ = writeln!(io::stdout(), "UPCHECK UNKNOWN - {}", plain(message));
    NagiosState::Unknown.code()
}

/// The report: the status line with performance data, then a line per target that needs
/// attention. `noted` holds, in input order, the results that are unhealthy or slow; the
/// run ended as `ending`, for the reasons in `facts`.
pub(crate) fn render(
    noted: &[TargetResult],
    summary: &Summary,
    ending: Ending,
    facts: RunFacts,
) -> String {
    let state = ending.nagios_state();
    let mut out = format!(
        "UPCHECK {} - {}",
        state.word(),
        status_parts(noted, summary, ending, facts.stop).join("; ")
    );
    let _ = writeln!(
        out,
        " | total={};;; ok={};;; down={};;; slow={};;; cert_expiring={};;; skipped={};;; time={:.3}s;;;",
        summary.total,
        summary.ok,
        summary.down(),
        summary.slow,
        summary.cert_expiring,
        summary.skipped,
        summary.elapsed_ms / 1000.0,
    );
    for result in noted {
        let (state, why) = target_state(result, facts.fail_slow);
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

/// What the status line says, most serious first.
fn status_parts(
    noted: &[TargetResult],
    summary: &Summary,
    ending: Ending,
    stop: Option<StopReason>,
) -> Vec<String> {
    let total = summary.total;
    let mut parts = Vec::new();
    match stop {
        Some(StopReason::Signal(signal)) if matches!(ending, Ending::Interrupted(_)) => {
            parts.push(format!(
                "interrupted by {}: {} of {total} not checked",
                signal.name(),
                summary.skipped
            ));
        }
        Some(StopReason::Deadline(deadline)) if summary.deadline_skipped > 0 => {
            parts.push(format!(
                "the {} deadline passed: {} of {total} not checked",
                human_duration(deadline),
                summary.deadline_skipped
            ));
        }
        Some(StopReason::Deadline(deadline)) if ending == Ending::DeadlinePassed => {
            parts.push(format!(
                "the {} deadline passed before the input was read to its end",
                human_duration(deadline)
            ));
        }
        _ => {}
    }
    if ending == Ending::InputUnreadable {
        parts.push("an input could not be read to its end".to_owned());
    }
    let listed = |keep: fn(&TargetResult) -> bool| names(noted.iter().filter(|r| keep(r)));
    if summary.down() > 0 {
        let down =
            listed(|r| !r.ok && !r.is_skipped() && r.error_kind != Some(ErrorKind::CertExpiry));
        parts.push(format!("{} of {total} down: {down}", summary.down()));
    }
    if summary.cert_expiring > 0 {
        let count = summary.cert_expiring;
        let noun = if count == 1 {
            "certificate"
        } else {
            "certificates"
        };
        let expiring = listed(|r| r.error_kind == Some(ErrorKind::CertExpiry));
        parts.push(format!("{count} {noun} expiring: {expiring}"));
    }
    if summary.slow > 0 {
        let slow = listed(|r| r.slow);
        parts.push(format!("{} of {total} slow: {slow}", summary.slow));
    }
    if parts.is_empty() {
        parts.push(format!("{} of {total} up", summary.ok));
    }
    parts
}

/// The state of one noted target, and why.
fn target_state(result: &TargetResult, fail_slow: bool) -> (NagiosState, String) {
    match (result.error_kind, why_unhealthy(result)) {
        (Some(ErrorKind::CertExpiry), Some(why)) => (NagiosState::Warning, why),
        (Some(kind), Some(why)) if kind.is_skip() => (NagiosState::Unknown, why),
        (Some(_), Some(why)) => (NagiosState::Critical, why),
        _ => {
            let latency = result
                .latency_ms
                .map_or_else(|| "-".to_owned(), human_duration);
            // With --fail-slow a slow target fails the run, and is CRITICAL like one down.
            let state = if fail_slow {
                NagiosState::Critical
            } else {
                NagiosState::Warning
            };
            (state, format!("slow: {latency}"))
        }
    }
}

/// How a target is named in the report: its name, else the target as written.
fn label(result: &TargetResult) -> String {
    match &result.name {
        Some(name) => format!("{name} ({})", result.target),
        None => result.target.clone(),
    }
}

/// The first names of `results`, then how many more there are.
fn names<'a>(results: impl Iterator<Item = &'a TargetResult>) -> String {
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

/// Text safe on a plugin line: `|` starts performance data, and control characters (a line
/// feed starts a new line) are shown escaped.
fn plain(text: &str) -> String {
    visible(text).replace('|', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::RunFacts;
    use crate::outcome::Failure;
    use crate::stop::Signal;
    use std::time::Duration;

    fn result(seq: u64, target: &str, failure: Option<Failure>, slow: bool) -> TargetResult {
        TargetResult {
            slow,
            ..crate::report::sample_result(seq, target, failure)
        }
    }

    fn summary(results: &[TargetResult], healthy: u64) -> Summary {
        let mut totals = crate::summary::Totals::default();
        for result in results {
            totals.record(result);
        }
        for n in 0..healthy {
            totals.record(&result(100 + n, "http://ok/", None, false));
        }
        totals.summary(Duration::from_millis(1234), false)
    }

    fn end_of(summary: &Summary) -> Ending {
        Ending::of(summary, RunFacts::default())
    }

    #[test]
    fn states_follow_the_plugin_convention() {
        let state = |summary: &Summary, facts: RunFacts| Ending::of(summary, facts).nagios_state();
        let none = RunFacts::default();
        let all_up = Summary::default();
        assert_eq!(state(&all_up, none), NagiosState::Ok);
        let slow = Summary {
            slow: 1,
            ..Summary::default()
        };
        assert_eq!(state(&slow, none), NagiosState::Warning);
        let cert = Summary {
            failed: 1,
            cert_expiring: 1,
            ..Summary::default()
        };
        assert_eq!(state(&cert, none), NagiosState::Warning);
        let cert_and_down = Summary {
            failed: 2,
            ..cert.clone()
        };
        assert_eq!(state(&cert_and_down, none), NagiosState::Critical);
        let fail_slow = RunFacts {
            fail_slow: true,
            ..none
        };
        assert_eq!(state(&slow, fail_slow), NagiosState::Critical);
        let cut = Summary {
            deadline_skipped: 1,
            ..Summary::default()
        };
        let deadline = RunFacts {
            stop: Some(StopReason::Deadline(Duration::from_secs(1))),
            ..none
        };
        assert_eq!(state(&cut, deadline), NagiosState::Critical);
        let read_failed = RunFacts {
            read_failed: true,
            ..none
        };
        assert_eq!(state(&all_up, read_failed), NagiosState::Unknown);
        let signal = RunFacts {
            stop: Some(StopReason::Signal(Signal::Terminate)),
            ..none
        };
        assert_eq!(state(&cut, signal), NagiosState::Unknown);
        assert_eq!(state(&cut, signal).code(), 3);
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
        let text = render(&noted, &summary, end_of(&summary), RunFacts::default());
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "UPCHECK CRITICAL - 1 of 5 down: http://a/; 1 of 5 slow: http://b/ \
             | total=5;;; ok=4;;; down=1;;; slow=1;;; cert_expiring=0;;; skipped=0;;; time=1.234s;;;"
        );
        assert_eq!(lines.next().unwrap(), "[CRITICAL] http://a/ - status: x");
        assert_eq!(lines.next().unwrap(), "[WARNING] http://b/ - slow: 1.5s");
        assert_eq!(lines.next(), None);
        // With --fail-slow a slow target fails the run, and its line says so.
        let fail_slow = RunFacts {
            fail_slow: true,
            ..RunFacts::default()
        };
        let text = render(&noted, &summary, Ending::of(&summary, fail_slow), fail_slow);
        assert!(
            text.ends_with("[CRITICAL] http://b/ - slow: 1.5s\n"),
            "{text}"
        );
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
        let text = render(&noted, &summary, end_of(&summary), RunFacts::default());
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
        let text = render(&noted, &summary, end_of(&summary), RunFacts::default());
        assert_eq!(
            text.lines().nth(1),
            Some("[CRITICAL] ftp://x/ - invalid: list.txt:3: unknown scheme 'ftp'")
        );
    }

    #[test]
    fn all_up_is_ok() {
        let summary = summary(&[], 2);
        let text = render(&[], &summary, end_of(&summary), RunFacts::default());
        assert!(
            text.starts_with("UPCHECK OK - 2 of 2 up | total=2;;;"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
    }
}
