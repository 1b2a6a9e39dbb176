//! upcheck: check many HTTP(S) and TCP endpoints at once and say which are healthy.
//!
//! Targets flow one way: [`input`] reads them (plain lists, and [`checks`] files with
//! per-target settings), [`schedule`] runs [`probe`]s within the limits (with [`retry`] and
//! [`stop`]), and the [`report`] prints every [`outcome`] to the [`output`].

pub mod cert;
pub mod checks;
pub mod cli;
pub mod exit;
pub mod fdlimit;
pub mod input;
pub mod outcome;
pub mod output;
pub mod probe;
pub mod progress;
pub mod rate;
pub mod report;
pub mod resolve;
pub mod retry;
pub mod schedule;
pub mod shard;
pub mod shell;
pub mod stop;
pub mod summary;
pub mod text;

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::error::ErrorKind as ClapErrorKind;
use clap::Parser;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use cli::Cli;

use crate::cli::Format;
use crate::exit::RunEnd;
use crate::input::Inputs;
use crate::output::Output;
use crate::probe::{ProbeSettings, Prober};
use crate::progress::Progress;
use crate::rate::Pacer;
use crate::report::{nagios, ReportStyle, Reporter};
use crate::retry::RetryPolicy;
use crate::schedule::{Engine, Limits};
use crate::shard::ShardFilter;

/// Results queued for the reporter: enough to ride out a slow terminal briefly, then the
/// probes wait for it (back-pressure rather than unbounded memory).
const RESULT_QUEUE: usize = 4096;

/// The whole program: parses `args` (the program name first), runs the check, prints why
/// it failed if it did, and returns the exit status.
///
/// With `--format nagios`, usage errors (clap's included) print an UNKNOWN status line on
/// stdout and exit 3, as a plugin must, rather than the contract's 2.
pub fn main_with_args(args: Vec<OsString>) -> u8 {
    let nagios = cli::asks_for_nagios(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let shown_and_fine = matches!(
                err.kind(),
                ClapErrorKind::DisplayHelp | ClapErrorKind::DisplayVersion
            );
            let _ = err.print();
            if nagios && !shown_and_fine {
                let message = err.render().to_string();
                let first = message.lines().next().unwrap_or_default();
                return nagios::unknown(first.trim_start_matches("error: "));
            }
            return u8::try_from(err.exit_code()).unwrap_or(exit::USAGE);
        }
    };
    match run(cli) {
        Ok(status) => status,
        Err(err) if nagios && !exit::is_broken_pipe(&err) => nagios::unknown(&format!("{err:#}")),
        Err(err) => exit::explain(&err),
    }
}

/// Runs one check of everything `cli` names and returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    // Before anything that needs targets: these print and exit on their own.
    if let Some(printed) = shell::print_requested(&cli) {
        printed?;
        return Ok(exit::HEALTHY);
    }
    // One runtime thread: probes wait on the network, not the CPU, and with several workers
    // most of the CPU went to threads waking each other (futex) rather than to probing.
    // Name resolution and the reporter still run on threads of their own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime.block_on(check_all(cli));
    // Probes cut short and a reader blocked on standard input must not hold up the exit.
    runtime.shutdown_background();
    status
}

async fn check_all(cli: Cli) -> anyhow::Result<u8> {
    let started = Instant::now();
    let headers = cli::parse_headers(&cli.headers)?;
    let inputs = Inputs::open(&cli.files, &cli.checks, &cli.urls)?;
    let output = Output::open(cli.output.as_deref())?;
    if cli.insecure {
        eprintln!("upcheck: warning: --insecure: TLS certificates are not verified");
    }
    let (concurrency, fd_warning) = fdlimit::fit_concurrency(cli.concurrency);
    if let Some(warning) = fd_warning {
        eprintln!("upcheck: {warning}");
    }
    let prober = Prober::new(ProbeSettings {
        timeout: cli.timeout,
        method: cli.method,
        headers,
        expect_status: cli.expect_status,
        body_contains: cli.body_contains,
        max_body: cli.max_body,
        follow_redirects: !cli.no_follow,
        insecure: cli.insecure,
        idle_per_host: cli.per_host,
        cert_min_days: cli.cert_min_days,
    })
    .context("cannot set up the HTTP client")?;
    let engine = Arc::new(Engine {
        prober,
        policy: RetryPolicy {
            retries: cli.retries,
            deadline: cli.deadline.map(|deadline| started + deadline),
        },
        limits: Limits {
            concurrency,
            per_host: cli.per_host,
        },
        slow: cli.slow,
        pacer: Pacer::new(cli.rate),
    });

    let (trigger, stop) = stop::channel();
    if let Some(deadline) = cli.deadline {
        stop::stop_at_deadline(trigger.clone(), started, deadline);
    }
    stop::stop_on_signals(trigger).context("cannot listen for signals")?;

    let progress = Progress::new(cli.progress);
    let stdout_is_terminal = matches!(output, Output::Stdout(_)) && io::stdout().is_terminal();
    let style = ReportStyle {
        format: cli.format,
        quiet: cli.quiet && cli.format == Format::Text,
        color: stdout_is_terminal && !no_color_requested(),
        stdout_is_terminal,
    };
    let mut reporter = Reporter::new(style, output, progress.clone());
    let (results, mut received) = mpsc::channel(RESULT_QUEUE);
    let mut report =
        tokio::task::spawn_blocking(move || reporter.consume(&mut received).map(|()| reporter));

    let shard = ShardFilter::new(cli.shard);
    let entries = inputs.stream(progress.clone(), shard.clone());
    let schedule = schedule::run(engine, entries, stop.clone(), progress, results);
    let read_error = tokio::select! {
        // The schedule first: when both are ready, the input finished and so did the report.
        biased;
        read_error = schedule => read_error,
        // The reporter holds on until the last result, so ending first means stdout failed.
        reported = &mut report => {
            reporter_outcome(reported)?;
            bail!("the reporter stopped before the results were in");
        }
    };
    let reporter = reporter_outcome(report.await)?;

    // A signal or the deadline before the first line is a cut-short run, not an empty list.
    if reporter.tallies().total() == 0 && read_error.is_none() && stop.reason().is_none() {
        match shard.shard() {
            // Another shard has them all: normal for a short list spread over many machines.
            Some(kept) if shard.others() > 0 => eprintln!(
                "upcheck: shard {kept} has nothing to check: every target falls in another shard"
            ),
            _ => bail!("no targets to check: the input holds only blank lines and comments"),
        }
    }
    if let Some(err) = &read_error {
        eprintln!("upcheck: {err:#}");
    }
    let tallies = reporter.tallies();
    let end = RunEnd {
        failed: tallies.failed(),
        cert_expiring: tallies.cert_expiring(),
        slow: tallies.slow(),
        fail_slow: cli.fail_slow,
        read_failed: read_error.is_some(),
        deadline_skipped: tallies.deadline_skipped(),
        stop: stop.reason(),
    };
    reporter
        .finish(started.elapsed(), &end)
        .context("cannot write results")?
        .commit()?;
    Ok(match cli.format {
        Format::Nagios => nagios::status(&end),
        _ => exit::status(end),
    })
}

/// The reporter thread's end: the reporter back, or why it could not go on.
fn reporter_outcome<T>(joined: Result<io::Result<T>, tokio::task::JoinError>) -> anyhow::Result<T> {
    joined
        .context("the reporter stopped")?
        .context("cannot write results")
}

/// Whether `NO_COLOR` asks for no colour (set and not empty).
fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}
