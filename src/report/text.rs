//! `--format text`: a line per result as it completes, coloured on a terminal, and a
//! closing summary line.

use std::time::Duration;

use super::escape::visible;
use crate::outcome::{millis, ErrorKind, TargetResult};
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
    if let Some(why) = why_unhealthy(result) {
        line.push_str("  ");
        line.push_str(&visible(&why));
    }
    line.push('\n');
    line
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
    if !summary.complete {
        line.push_str(" (incomplete)");
    }
    line.push('\n');
    line
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
    fn invalid_lines_name_their_file_and_line() {
        let invalid = result(Some(Failure::new(
            ErrorKind::Invalid,
            "unknown scheme 'ftp'",
        )));
        assert!(result_line(&invalid, false).contains("invalid: list.txt:3: unknown scheme"));
    }
}
