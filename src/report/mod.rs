//! The reporter: the one owner of stdout (or of the `-o` file), printing results as text,
//! JSON or JSON lines as they come, or as a Prometheus or Nagios report at the end.

mod escape;
mod histogram;
pub(crate) mod nagios;
mod prometheus;
mod text;

use std::io::{self, Write};

use clap::ValueEnum;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::exit::{Ending, RunFacts, HEALTHY};
use crate::outcome::TargetResult;
use crate::progress::Progress;
use crate::state::{Change, StateFile};
use crate::summary::{Summary, Totals};

/// How results are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per result as it completes, then a summary line
    Text,
    /// One JSON document with a summary and the results in input order
    Json,
    /// One JSON object per result as it completes
    Jsonl,
    /// Prometheus text exposition format, with blackbox_exporter's metric names
    Prometheus,
    /// A Nagios/Icinga plugin status line with performance data, and plugin exit codes
    Nagios,
}

impl Format {
    /// The exit status of a run that ended as `ending`: the plugin's codes for Nagios, the
    /// contract's for every other format.
    pub(crate) fn exit_code(self, ending: Ending) -> u8 {
        match self {
            Format::Nagios => ending.nagios_state().code(),
            _ => ending.contract_code(),
        }
    }
}

/// Bytes of formatted output held before writing, whether or not more results are queued.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// How long the reporter lets results gather after printing a batch: short enough that
/// nobody sees the lag, long enough that fast runs print in batches rather than waking it
/// for each result.
const REPORT_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// How the reporter prints.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReportStyle {
    /// Output format.
    pub(crate) format: Format,
    /// Text format: only unhealthy results and the summary.
    pub(crate) quiet: bool,
    /// Text format: ANSI colours.
    pub(crate) color: bool,
    /// Whether stdout is the terminal the progress bar draws on.
    pub(crate) stdout_is_terminal: bool,
    /// Text format: only targets whose health changed since the `--state` run.
    pub(crate) changes_only: bool,
    /// Text format: draw the latency histogram above the summary.
    pub(crate) histogram: bool,
}

/// Prints results as they arrive and the summary at the end.
pub(crate) struct Reporter<W: Write> {
    style: ReportStyle,
    out: W,
    pending: Vec<u8>,
    totals: Totals,
    progress: Progress,
    collected: Vec<TargetResult>,
    state: Option<StateFile>,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing to `out` in `style`, comparing results with `state` when given.
    pub(crate) fn new(
        style: ReportStyle,
        out: W,
        progress: Progress,
        state: Option<StateFile>,
    ) -> Self {
        Reporter {
            style,
            out,
            pending: Vec::with_capacity(WRITE_BATCH_BYTES),
            totals: Totals::default(),
            progress,
            collected: Vec::new(),
            state,
        }
    }

    /// Prints results until every sender is gone, writing whenever the queue runs dry, so
    /// output streams without a write per result.
    pub(crate) fn consume(&mut self, results: &mut mpsc::Receiver<TargetResult>) -> io::Result<()> {
        while let Some(result) = results.blocking_recv() {
            self.record(result)?;
            while let Ok(result) = results.try_recv() {
                self.record(result)?;
            }
            self.write_pending()?;
            // A reporter waiting on an empty queue must be woken by the next result: on fast
            // runs that was a futex call per result on every probing thread. Results that
            // come in during the pause are taken in one go, and no one waits on the pause.
            std::thread::sleep(REPORT_PAUSE);
        }
        Ok(())
    }

    /// The counts so far.
    pub(crate) fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Once every result is in: settles the `--state` file (the targets gone from the list
    /// are printed in the text format, before the summary) and hands it back, to be put in
    /// place once the report is.
    pub(crate) fn settle_state(&mut self, complete: bool) -> io::Result<Option<StateFile>> {
        let Some(mut state) = self.state.take() else {
            return Ok(None);
        };
        let (style, pending) = (self.style, &mut self.pending);
        state.settle(complete, |source, target| {
            if style.format == Format::Text {
                let line = text::gone_line(source, target, style.color);
                pending.extend_from_slice(line.as_bytes());
            }
        })?;
        Ok(Some(state))
    }

    /// Prints the summary (and for `json`, `prometheus` and `nagios`, the whole report) of
    /// a run that ended as `ending`, for the reasons in `facts`; hands back the output, all
    /// written.
    pub(crate) fn finish(
        mut self,
        summary: &Summary,
        ending: Ending,
        facts: RunFacts,
    ) -> io::Result<W> {
        self.progress.finish();
        match self.style.format {
            Format::Text => {
                if self.shows_summary(summary, ending) {
                    if self.style.histogram {
                        let histogram = histogram::render(&summary.latency_bins);
                        self.pending.extend_from_slice(histogram.as_bytes());
                    }
                    let breakdowns = [text::phases_line(summary), text::failures_line(summary)];
                    for line in breakdowns.into_iter().flatten() {
                        self.pending.extend_from_slice(line.as_bytes());
                    }
                    let line = text::summary_line(summary, self.style.color);
                    self.pending.extend_from_slice(line.as_bytes());
                }
            }
            Format::Json => {
                self.collected.sort_unstable_by_key(|result| result.seq);
                let document = Document {
                    summary,
                    results: &self.collected,
                };
                serde_json::to_writer(&mut self.pending, &document).map_err(io::Error::other)?;
                self.pending.push(b'\n');
            }
            Format::Jsonl => {}
            Format::Prometheus => {
                self.collected.sort_unstable_by_key(|result| result.seq);
                let text = prometheus::render(&self.collected, summary);
                self.pending.extend_from_slice(text.as_bytes());
            }
            Format::Nagios => {
                self.collected.sort_unstable_by_key(|result| result.seq);
                let text = nagios::render(&self.collected, summary, ending, facts);
                self.pending.extend_from_slice(text.as_bytes());
            }
        }
        self.write_pending()?;
        Ok(self.out)
    }

    /// Whether the text summary is printed: always, but with `--changes-only` only when
    /// something changed or (without `-q`) the run is not healthy, so a quiet run prints
    /// nothing at all.
    fn shows_summary(&self, summary: &Summary, ending: Ending) -> bool {
        !self.style.changes_only
            || summary.changes.is_some_and(|changes| changes.any())
            || (!self.style.quiet && ending.contract_code() != HEALTHY)
    }

    /// The text line for `result`, if it is printed.
    fn text_line(&self, result: &TargetResult, change: Option<Change>) -> Option<String> {
        let shown = if self.style.changes_only {
            change.is_some()
        } else {
            // Slow results are healthy, but worth a line even with -q.
            !(self.style.quiet && result.ok && !result.slow)
        };
        if !shown {
            return None;
        }
        let line = text::result_line(result, self.style.color);
        Some(match change {
            Some(change) => text::with_change(line, change),
            None => line,
        })
    }

    fn record(&mut self, mut result: TargetResult) -> io::Result<()> {
        let change = match &mut self.state {
            Some(state) => state.note(&mut result)?,
            None => None,
        };
        self.totals.record(&result);
        self.progress.result_done(self.totals.failed());
        match self.style.format {
            Format::Text => {
                if let Some(line) = self.text_line(&result, change) {
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
    results: &'a [TargetResult],
}

/// A healthy-or-not result (status 200, 1.5 s) at position `seq`, for the formats' tests.
#[cfg(test)]
pub(crate) fn sample_result(
    seq: u64,
    target: &str,
    failure: Option<crate::outcome::Failure>,
) -> TargetResult {
    let origin = crate::target::Origin {
        seq,
        source: "list.txt".into(),
        line: Some(seq + 1),
    };
    let verdict = crate::outcome::Verdict {
        status: Some(200),
        latency: Some(std::time::Duration::from_millis(1500)),
        attempts: 1,
        failure,
        ..crate::outcome::Verdict::default()
    };
    TargetResult::new(
        origin,
        target.to_owned(),
        crate::target::parse_target(target).ok().map(|t| t.kind()),
        crate::target::Labels::default(),
        verdict,
    )
}
