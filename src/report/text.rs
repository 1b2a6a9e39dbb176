//! `--format text`: a line per result as it completes, coloured on a terminal, and a
//! closing summary line.

use std::time::Duration;

use super::escape::visible;
use crate::outcome::{millis, ErrorKind, TargetResult};
use crate::state::{Change, Changes};
use crate::summary::Summary;
use crate::values::human_duration;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// One text line: state, status, latency, target (and name), and why it failed.
pub(super) fn result_line(result: &TargetResult, color: bool) -> String {
    let (state, paint) = if result.ok && result.slow {
        ("SLOW", YELLOW)
    } else if result.ok {
        ("OK", GREEN)
    } else if result.is_skipped() {
        ("SKIP", YELLOW)
    } else {
        ("FAIL", RED)
    };
    let state = if color {
        format!("{paint}{state:<4}{RESET}")
    } else {
        format!("{state:<4}")
    };
    let status = result
        .status
        .map_or_else(|| "-".to_owned(), |status| status.to_string());
    let latency = result
        .latency_ms
        .map_or_else(|| "-".to_owned(), short_latency);
    let mut line = format!(
        "{state} {status:>3} {latency:>8}  {}",
        visible(&result.target)
    );
    if let Some(name) = &result.name {
        line.push_str(&format!(" ({})", visible(name)));
    }
    if let Some(banner) = &result.banner {
        // What a server sent, quoted, its control characters escaped like every other
        // untrusted text, so it cannot move the cursor or recolour the terminal.
        line.push_str(&format!("  banner \"{}\"", visible(banner)));
    }
    if let Some(why) = why_unhealthy(result) {
        line.push_str("  ");
        line.push_str(&visible(&why));
    }
    line.push('\n');
    line
}

/// `line` (a result line) with how the target's health changed since the `--state` run.
pub(super) fn with_change(mut line: String, change: Change) -> String {
    let end = line.trim_end_matches('\n').len();
    line.insert_str(end, &format!("  [{}]", change.as_str()));
    line
}

/// The line for a target of the `--state` run that is no longer in the list.
pub(super) fn gone_line(source: &str, target: &str, color: bool) -> String {
    let state = if color {
        format!("{YELLOW}GONE{RESET}")
    } else {
        "GONE".to_owned()
    };
    format!("{state}   -        -  {target}  [gone from {source}]\n")
}

/// The failures broken down by kind, `8 failed: 3 timeout, 2 tls, 2 status, 1 dns`; `None`
/// when nothing failed.
pub(super) fn failures_line(summary: &Summary) -> Option<String> {
    if summary.failed == 0 {
        return None;
    }
    let kinds: Vec<String> = summary
        .failed_by_kind
        .iter()
        .map(|(kind, count)| format!("{count} {kind}"))
        .collect();
    Some(format!("{} failed: {}\n", summary.failed, kinds.join(", ")))
}

/// What changed since the `--state` run, `2 went down, 1 recovered`, or `no change`.
fn changes_phrase(changes: &Changes) -> String {
    let parts: Vec<String> = [
        (changes.went_down, "went down"),
        (changes.recovered, "recovered"),
        (changes.new, "new"),
        (changes.gone, "gone"),
    ]
    .iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} {what}"))
    .collect();
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `kind: error`, with the file and line first for an invalid entry; `None` when healthy.
pub(super) fn why_unhealthy(result: &TargetResult) -> Option<String> {
    let (kind, error) = (result.error_kind?, result.error.as_ref()?);
    Some(match result.line.filter(|_| kind == ErrorKind::Invalid) {
        Some(number) => format!("{kind}: {}:{number}: {error}", result.source),
        None => format!("{kind}: {error}"),
    })
}

/// A latency in the text report: milliseconds with one decimal, seconds past one.
fn short_latency(latency: Duration) -> String {
    if latency < Duration::from_secs(1) {
        format!("{:.1}ms", millis(latency))
    } else {
        format!("{:.2}s", latency.as_secs_f64())
    }
}

/// The closing text line: counts, time taken and latency percentiles.
pub(super) fn summary_line(summary: &Summary, color: bool) -> String {
    let elapsed = human_duration(Duration::from_secs_f64(summary.elapsed_ms / 1000.0));
    let mut failed = format!("{} failed", summary.failed);
    if color && summary.failed > 0 {
        failed = format!("{RED}{failed}{RESET}");
    }
    let slow = match summary.slow {
        0 => String::new(),
        slow => format!(" ({slow} slow)"),
    };
    let mut line = format!(
        "{} checked in {elapsed}: {} ok{slow}, {failed}, {} skipped",
        summary.total, summary.ok, summary.skipped
    );
    let percentiles = &summary.latency_ms;
    if let (Some(p50), Some(p95), Some(p99), Some(max)) = (
        percentiles.p50,
        percentiles.p95,
        percentiles.p99,
        percentiles.max,
    ) {
        let ms = |value: f64| short_latency(Duration::from_secs_f64(value / 1000.0));
        line.push_str(&format!(
            "; latency p50 {}, p95 {}, p99 {}, max {}",
            ms(p50),
            ms(p95),
            ms(p99),
            ms(max)
        ));
    }
    if let Some(changes) = &summary.changes {
        line.push_str("; since the last run: ");
        line.push_str(&changes_phrase(changes));
    }
    if !summary.complete {
        line.push_str(" (incomplete)");
    }
    line.push('\n');
    line
}

/// Each phase's median and 95th percentile, when results have timings, so "slow" has a
/// visible cause; printed above the summary line, which stays last.
pub(super) fn phases_line(summary: &Summary) -> Option<String> {
    if summary.phases.is_empty() {
        return None;
    }
    let ms = |value: f64| short_latency(Duration::from_secs_f64(value / 1000.0));
    let phases: Vec<String> = summary
        .phases
        .iter()
        .map(|phase| format!("{} {}/{}", phase.phase, ms(phase.p50), ms(phase.p95)))
        .collect();
    Some(format!("phases p50/p95: {}\n", phases.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, Verdict};
    use crate::target::{Labels, Origin, TargetKind};

    fn result(failure: Option<Failure>) -> TargetResult {
        let origin = Origin {
            seq: 0,
            source: "list.txt".into(),
            line: Some(3),
        };
        let verdict = Verdict {
            status: Some(503),
            latency: Some(Duration::from_micros(12_345)),
            attempts: 1,
            failure,
            ..Verdict::default()
        };
        TargetResult::new(
            origin,
            "http://a.test/".into(),
            Some(TargetKind::Http),
            Labels::default(),
            verdict,
        )
    }

    #[test]
    fn text_lines_show_state_status_latency_target_and_error() {
        let failed = result(Some(Failure::new(
            ErrorKind::Status,
            "got 503, expected 200-399",
        )));
        assert_eq!(
            result_line(&failed, false),
            "FAIL 503   12.3ms  http://a.test/  status: got 503, expected 200-399\n"
        );
        assert_eq!(
            result_line(&result(None), false),
            "OK   503   12.3ms  http://a.test/\n"
        );
        assert!(result_line(&failed, true).starts_with("\x1b[1;31mFAIL\x1b[0m"));
    }

    #[test]
    fn slow_results_and_names_are_marked() {
        let mut slow = result(None);
        slow.slow = true;
        slow.name = Some("api".into());
        assert_eq!(
            result_line(&slow, false),
            "SLOW 503   12.3ms  http://a.test/ (api)\n"
        );
    }

    #[test]
    fn changes_are_marked_and_counted() {
        let line = with_change(result_line(&result(None), false), Change::Recovered);
        assert_eq!(line, "OK   503   12.3ms  http://a.test/  [recovered]\n");
        assert_eq!(
            gone_line("list.txt", "http://b.test/", false),
            "GONE   -        -  http://b.test/  [gone from list.txt]\n"
        );
        let changes = Changes {
            went_down: 2,
            recovered: 1,
            ..Changes::default()
        };
        assert_eq!(changes_phrase(&changes), "2 went down, 1 recovered");
        assert_eq!(changes_phrase(&Changes::default()), "no change");
        let summary = Summary {
            total: 3,
            changes: Some(changes),
            complete: true,
            ..Summary::default()
        };
        assert!(summary_line(&summary, false)
            .ends_with("; since the last run: 2 went down, 1 recovered\n"));
    }

    #[test]
    fn banners_are_quoted_with_control_characters_escaped() {
        let mut read = result(None);
        read.banner = Some("SSH-2.0-x \u{1b}[31m\"".into());
        assert_eq!(
            result_line(&read, false),
            "OK   503   12.3ms  http://a.test/  banner \"SSH-2.0-x \\x1b[31m\"\"\n"
        );
    }

    #[test]
    fn invalid_lines_name_their_file_and_line() {
        let invalid = result(Some(Failure::new(
            ErrorKind::Invalid,
            "unknown scheme 'ftp'",
        )));
        assert!(result_line(&invalid, false).contains("invalid: list.txt:3: unknown scheme"));
    }
}
