//! The reporter: the one owner of stdout (or of the `-o` file), printing results as text,
//! JSON or JSON lines as they come, or as a Prometheus or Nagios report at the end.

pub mod nagios;
pub mod prometheus;

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::Format;
use crate::exit::RunEnd;
use crate::outcome::{millis, CheckResult, ErrorKind};
use crate::progress::Progress;
use crate::summary::{Summary, Tallies};
use crate::text::human_duration;

/// Bytes of formatted output held before writing, whether or not more results are queued.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// How the reporter prints.
#[derive(Clone, Copy, Debug)]
pub struct ReportStyle {
    /// Output format.
    pub format: Format,
    /// Text format: only unhealthy results and the summary.
    pub quiet: bool,
    /// Text format: ANSI colours.
    pub color: bool,
    /// Whether stdout is the terminal the progress bar draws on.
    pub stdout_is_terminal: bool,
}

/// Prints results as they arrive and the summary at the end.
pub struct Reporter<W: Write> {
    style: ReportStyle,
    out: W,
    pending: Vec<u8>,
    tallies: Tallies,
    progress: Progress,
    collected: Vec<CheckResult>,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing to `out` in `style`.
    pub fn new(style: ReportStyle, out: W, progress: Progress) -> Self {
        Reporter {
            style,
            out,
            pending: Vec::with_capacity(WRITE_BATCH_BYTES),
            tallies: Tallies::default(),
            progress,
            collected: Vec::new(),
        }
    }

    /// Prints results until every sender is gone, writing whenever the queue runs dry, so
    /// output streams without a write per result.
    pub fn consume(&mut self, results: &mut mpsc::Receiver<CheckResult>) -> io::Result<()> {
        while let Some(result) = results.blocking_recv() {
            self.record(result)?;
            while let Ok(result) = results.try_recv() {
                self.record(result)?;
            }
            self.write_pending()?;
        }
        Ok(())
    }

    /// The counts so far.
    pub fn tallies(&self) -> &Tallies {
        &self.tallies
    }

    /// Prints the summary (and for `json`, `prometheus` and `nagios`, the whole report) for a
    /// run that took `elapsed` and ended as `end`; hands back the output, all written.
    pub fn finish(mut self, elapsed: Duration, end: &RunEnd) -> io::Result<W> {
        self.progress.finish();
        let summary = self.tallies.summary(elapsed, end.stop.is_some());
        match self.style.format {
            Format::Text => {
                let line = summary_line(&summary, self.style.color);
                self.pending.extend_from_slice(line.as_bytes());
            }
            Format::Json => {
                self.collected.sort_unstable_by_key(|result| result.seq);
                let document = Document {
                    summary: &summary,
                    results: &self.collected,
                };
                serde_json::to_writer(&mut self.pending, &document).map_err(io::Error::other)?;
                self.pending.push(b'\n');
            }
            Format::Jsonl => {}
            Format::Prometheus => {
                self.collected.sort_unstable_by_key(|result| result.seq);
                let text = prometheus::render(&self.collected, &summary);
                self.pending.extend_from_slice(text.as_bytes());
            }
            Format::Nagios => {
                self.collected.sort_unstable_by_key(|result| result.seq);
                let text = nagios::render(&self.collected, &summary, end);
                self.pending.extend_from_slice(text.as_bytes());
            }
        }
        self.write_pending()?;
        Ok(self.out)
    }

    fn record(&mut self, result: CheckResult) -> io::Result<()> {
        self.tallies.record(&result);
        self.progress.result_done(self.tallies.failed());
        match self.style.format {
            Format::Text => {
                // Slow results are healthy, but worth a line even with -q.
                if !(self.style.quiet && result.ok && !result.slow) {
                    let line = result_line(&result, self.style.color);
                    self.pending.extend_from_slice(line.as_bytes());
                }
            }
            Format::Json | Format::Prometheus => self.collected.push(result),
            // Nagios lists only what is wrong, so only that is kept.
            Format::Nagios => {
                if !result.ok || result.slow {
                    self.collected.push(result);
                }
            }
            Format::Jsonl => {
                serde_json::to_writer(&mut self.pending, &result).map_err(io::Error::other)?;
                self.pending.push(b'\n');
            }
        }
        if self.pending.len() >= WRITE_BATCH_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (out, pending) = (&mut self.out, &self.pending);
        let mut write = || out.write_all(pending).and_then(|()| out.flush());
        if self.style.stdout_is_terminal {
            self.progress.suspend(write)?;
        } else {
            write()?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// The `json` format's one document.
#[derive(Serialize)]
struct Document<'a> {
    summary: &'a Summary,
    results: &'a [CheckResult],
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// One text line: state, status, latency, target (and name), and why it failed.
fn result_line(result: &CheckResult, color: bool) -> String {
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
    let mut line = format!("{state} {status:>3} {latency:>8}  {}", result.target);
    if let Some(name) = &result.name {
        line.push_str(&format!(" ({name})"));
    }
    if let Some(why) = why_unhealthy(result) {
        line.push_str("  ");
        line.push_str(&why);
    }
    line.push('\n');
    line
}

/// `kind: error`, with the file and line first for an invalid entry; `None` when healthy.
fn why_unhealthy(result: &CheckResult) -> Option<String> {
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
fn summary_line(summary: &Summary, color: bool) -> String {
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

/// A healthy-or-not HTTP result (status 200, 1.5 s) at position `seq`, for the formats' tests.
#[cfg(test)]
pub(crate) fn sample_result(
    seq: u64,
    target: &str,
    failure: Option<crate::outcome::Failure>,
) -> CheckResult {
    let origin = crate::outcome::Origin {
        seq,
        source: "list.txt".into(),
        line: Some(seq + 1),
    };
    let verdict = crate::outcome::Verdict {
        status: Some(200),
        latency: Some(Duration::from_millis(1500)),
        attempts: 1,
        failure,
        ..crate::outcome::Verdict::default()
    };
    CheckResult::new(origin, target.to_owned(), verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ErrorKind, Failure, Origin, Verdict};

    fn result(failure: Option<Failure>) -> CheckResult {
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
        CheckResult::new(origin, "http://a.test/".into(), verdict)
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
