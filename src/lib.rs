//! upcheck: check many HTTP(S), TCP and ICMP endpoints at once and say which are healthy.
//!
//! "The contract" in comments is the command-line interface as the README documents it
//! (options, input format, result fields, output formats, exit codes): what users and
//! scripts rely on, and what changes only by addition.
//!
//! Data flows one way, targets in and results out, and each module owns one idea:
//!
//! ```text
//! main.rs        sets the allocator (jemalloc) and calls main_with_args
//! lib.rs         wires the stages together for one run
//! cli.rs         the options, as clap declares them
//! settings.rs    the command line turned into settings, once
//! values.rs      option values: durations, sizes, status sets, headers
//! target.rs      the target vocabulary: Target, TargetKind, Origin, Labels, parsing
//! input.rs       reading lists (and checks files) into entries, as a stream
//! range.rs       address ranges in a list line, walked one address at a time
//! checks.rs      checks files: [[check]] tables with per-target overrides
//! shard.rs       which targets this shard of the list checks
//! schedule.rs    feeding entries to probes within -c and --per-host
//! workers.rs     --threads: hosts spread over worker threads, a runtime each
//! rate.rs        pacing request starts (--rate)
//! retry.rs       attempts, backoff and Retry-After, to one verdict
//! probe/         one attempt at one target
//!   mod.rs         the Prober: picks the protocol, applies the timeout
//!   http.rs        the HTTP probe
//!   tcp.rs         the TCP connect probe, and the banner a service sends first
//!   icmp.rs        the ICMP echo probe over one shared socket per address family
//!   classify.rs    what an error means: error_kind and sentence
//!   resolve.rs     name resolution with a typed error; --resolve pins, -4/-6
//!   tls.rs         trusted CAs, client certificates, the chain served
//!   connect.rs     the layer that traces each new HTTP connection
//!   trace.rs       where an attempt's time went, phase by phase
//!   environment.rs proxies and SSL_CERT_FILE from the environment
//!   cert.rs        a certificate's expiry, read from its DER
//!   settings.rs    what a probe is asked to do
//!   attempt.rs     what one attempt found
//! stop.rs        the deadline and signals
//! outcome.rs     one target's result, its verdict and error kinds
//! summary.rs     the run's totals and latency percentiles
//! exit.rs        how the run ended, and its exit status
//! report/        the one owner of stdout: text, json, jsonl, prometheus, nagios;
//!                  the histogram, and control characters made visible
//! output.rs      stdout, or -o FILE replaced atomically
//! progress.rs    the progress bar on stderr
//! calendar.rs    dates in UTC, for certificate expiry
//! fdlimit.rs     fitting -c into the open-file limit
//! shell.rs       completion scripts and the man page
//! state.rs       --state: what the last run found, to say what changed
//! inflight.rs    the targets in flight, for SIGUSR1 and the progress bar
//! ```

// The surface is deliberate: only what main.rs and the tests need is public.
#![warn(unreachable_pub)]

mod calendar;
mod checks;
mod cli;
mod exit;
mod fdlimit;
mod inflight;
mod input;
mod outcome;
mod output;
mod probe;
mod progress;
mod range;
mod rate;
mod report;
mod retry;
mod schedule;
mod settings;
mod shard;
mod shell;
mod state;
mod stop;
mod summary;
mod target;
mod values;
mod workers;

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::error::ErrorKind as ClapErrorKind;
use clap::Parser;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

pub use cli::Cli;

use crate::exit::{Ending, RunFacts};
use crate::inflight::InFlight;
use crate::input::Inputs;
use crate::outcome::TargetResult;
use crate::output::Output;
use crate::probe::Prober;
use crate::progress::Progress;
use crate::rate::Pacer;
use crate::report::{nagios, ReportStyle, Reporter};
use crate::retry::RetryPolicy;
use crate::schedule::{Engine, InputEnd};
use crate::settings::Settings;
use crate::shard::ShardFilter;
use crate::state::StateFile;
use crate::stop::Stop;

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
fn run(cli: Cli) -> anyhow::Result<u8> {
    // Before anything that needs targets: these print and exit on their own.
    if let Some(printed) = shell::print_requested(&cli) {
        printed?;
        return Ok(exit::HEALTHY);
    }
    // A current-thread runtime: with tokio's multi-thread one, most of the CPU went to
    // threads waking each other (futex) rather than to probing. It keeps signals, the
    // deadline and the routing of entries, and probes as the first worker; each further
    // worker thread probes its hosts on a runtime of its own (see workers.rs). The input
    // reader and the reporter run on threads of their own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime.block_on(check_everything(Settings::from_cli(cli)?));
    // Probes cut short and a reader blocked on standard input must not hold up the exit.
    runtime.shutdown_background();
    status
}

/// Checks every target `settings` name, reports them, and returns the exit status.
async fn check_everything(settings: Settings) -> anyhow::Result<u8> {
    let started = Instant::now();
    // Everything that can be refused is opened before anything is probed.
    let inputs = Inputs::open(&settings.files, &settings.checks, &settings.urls)?;
    let read: Vec<_> = (inputs.regular_files().iter())
        .chain(&settings.option_files)
        .cloned()
        .collect();
    let output = Output::open(settings.output.as_deref(), &read)?;
    let state = match &settings.state {
        Some((path, reset)) => Some(StateFile::open(path, *reset, &read)?),
        None => None,
    };
    let in_flight = InFlight::default();
    let engines = start_engines(&settings, started, &in_flight)?;
    let stop = watch_for_stops(&settings, started)?;
    let progress = Progress::new(settings.progress);
    inflight::report_on_sigusr1(in_flight.clone(), progress.clone())
        .context("cannot listen for SIGUSR1")?;
    inflight::show_laggard(in_flight, progress.clone(), settings.target.timeout / 2);
    let style = report_style(&settings, &output);
    let reporter = Reporter::new(style, output, progress.clone(), state);

    let shard = ShardFilter::new(settings.shard);
    let entries = inputs.stream(settings.target.clone(), progress.clone(), shard.clone());
    let (results, received) = mpsc::channel(RESULT_QUEUE);
    let schedule = workers::start(engines, entries, stop.clone(), progress, results)?;
    let (mut reporter, input_end) = report_while(schedule, reporter, received).await?;
    let InputEnd {
        error: read_error,
        left_unread,
    } = input_end;

    // A signal or the deadline before the first line is a cut-short run, not an empty list.
    if reporter.totals().total() == 0 && read_error.is_none() && stop.reason().is_none() {
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
    // Only a run that read its whole input can tell that a target left the list.
    let read_whole = stop.reason().is_none() && read_error.is_none();
    let state = reporter
        .settle_state(read_whole)
        .context("cannot write the state file")?;
    let mut summary = reporter
        .totals()
        .summary(started.elapsed(), stop.reason().is_some());
    summary.changes = state.as_ref().map(StateFile::changes);
    let facts = RunFacts {
        stop: stop.reason(),
        read_failed: read_error.is_some(),
        left_unread,
        fail_slow: settings.fail_slow,
    };
    let ending = Ending::of(&summary, facts);
    reporter
        .finish(&summary, ending, facts)
        .context("cannot write results")?
        .commit()?;
    // After the report: a change is remembered only once it has been reported.
    if let Some(state) = state {
        state.commit()?;
    }
    Ok(settings.format.exit_code(ending))
}

/// The probes' engines, one per worker thread: each with its own client, and the `-c`
/// slots (fitted to the open-file limit), retries, pacing and `in_flight` register they
/// all share.
fn start_engines(
    settings: &Settings,
    started: Instant,
    in_flight: &InFlight,
) -> anyhow::Result<Vec<Arc<Engine>>> {
    if settings.client.insecure {
        eprintln!("upcheck: warning: --insecure: TLS certificates are not verified");
    }
    let (concurrency, fd_warning) = fdlimit::fit_concurrency(settings.limits.concurrency);
    if let Some(warning) = fd_warning {
        eprintln!("upcheck: {warning}");
    }
    let pacer = Arc::new(Pacer::new(settings.rate));
    let slots = Arc::new(Semaphore::new(concurrency.min(Semaphore::MAX_PERMITS)));
    // More workers than slots would only idle.
    (0..settings.threads.min(concurrency))
        .map(|_| {
            let prober = Prober::new(&settings.client, &settings.target.tls)
                .context("cannot set up the HTTP client")?;
            Ok(Arc::new(Engine {
                prober,
                policy: RetryPolicy {
                    retries: settings.retries,
                    deadline: settings.deadline.map(|deadline| started + deadline),
                },
                slots: slots.clone(),
                per_host: settings.limits.per_host,
                slow: settings.slow,
                pacer: pacer.clone(),
                in_flight: in_flight.clone(),
            }))
        })
        .collect()
}

/// What stops the run early: the deadline, counted from `started`, and signals.
fn watch_for_stops(settings: &Settings, started: Instant) -> anyhow::Result<Stop> {
    let (trigger, stop) = stop::channel();
    if let Some(deadline) = settings.deadline {
        stop::stop_at_deadline(trigger.clone(), started, deadline);
    }
    stop::stop_on_signals(trigger, output::remove_pending).context("cannot listen for signals")?;
    Ok(stop)
}

/// How the report looks, given where it goes.
fn report_style(settings: &Settings, output: &Output) -> ReportStyle {
    let stdout_is_terminal = matches!(output, Output::Stdout(_)) && io::stdout().is_terminal();
    let color = stdout_is_terminal && !no_color_requested();
    ReportStyle {
        format: settings.format,
        quiet: settings.quiet,
        color,
        stdout_is_terminal,
        changes_only: settings.changes_only,
        // Drawn where colour would be: a terminal, without NO_COLOR.
        histogram: settings.histogram || (color && settings.format == report::Format::Text),
    }
}

/// Runs `schedule` while `reporter`, on a thread of its own, prints the results it sends;
/// returns the reporter, every result printed, and how the input ended.
async fn report_while<W: io::Write + Send + 'static>(
    schedule: impl std::future::Future<Output = InputEnd>,
    mut reporter: Reporter<W>,
    mut received: mpsc::Receiver<TargetResult>,
) -> anyhow::Result<(Reporter<W>, InputEnd)> {
    let mut report =
        tokio::task::spawn_blocking(move || reporter.consume(&mut received).map(|()| reporter));
    let input_end = tokio::select! {
        // The schedule first: when both are ready, the input finished and so did the report.
        biased;
        input_end = schedule => input_end,
        // The reporter holds on until the last result, so ending first means stdout failed.
        reported = &mut report => {
            reporter_outcome(reported)?;
            bail!("the reporter stopped before the results were in");
        }
    };
    Ok((reporter_outcome(report.await)?, input_end))
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
