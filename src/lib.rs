//! upcheck: check many HTTP(S) and TCP endpoints at once and say which are healthy.
//!
//! Targets flow one way: [`input`] reads them, [`schedule`] runs [`probe`]s within the
//! limits (with [`retry`] and [`stop`]), and the [`report`] prints every [`outcome`].

pub mod cli;
pub mod exit;
pub mod input;
pub mod outcome;
pub mod probe;
pub mod progress;
pub mod report;
pub mod resolve;
pub mod retry;
pub mod schedule;
pub mod stop;
pub mod summary;
pub mod text;

use std::io::{self, IsTerminal};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use cli::Cli;

use crate::cli::Format;
use crate::input::Inputs;
use crate::probe::{ProbeSettings, Prober};
use crate::progress::Progress;
use crate::report::{ReportStyle, Reporter};
use crate::retry::RetryPolicy;
use crate::schedule::{Engine, Limits};

/// Results queued for the reporter: enough to ride out a slow terminal briefly, then the
/// probes wait for it (back-pressure rather than unbounded memory).
const RESULT_QUEUE: usize = 4096;

/// Runs one check of everything `cli` names and returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
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
    let inputs = Inputs::open(&cli.files, &cli.urls)?;
    if cli.insecure {
        eprintln!("upcheck: warning: --insecure: TLS certificates are not verified");
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
    })
    .context("cannot set up the HTTP client")?;
    let engine = Arc::new(Engine {
        prober,
        policy: RetryPolicy {
            retries: cli.retries,
            deadline: cli.deadline.map(|deadline| started + deadline),
        },
        limits: Limits {
            concurrency: cli.concurrency,
            per_host: cli.per_host,
        },
    });

    let (trigger, stop) = stop::channel();
    if let Some(deadline) = cli.deadline {
        stop::stop_at_deadline(trigger.clone(), started, deadline);
    }
    stop::stop_on_signals(trigger).context("cannot listen for signals")?;

    let progress = Progress::new(cli.progress);
    let stdout_is_terminal = io::stdout().is_terminal();
    let style = ReportStyle {
        format: cli.format,
        quiet: cli.quiet && cli.format == Format::Text,
        color: stdout_is_terminal && !no_color_requested(),
        stdout_is_terminal,
    };
    let mut reporter = Reporter::new(style, io::stdout(), progress.clone());
    let (results, mut received) = mpsc::channel(RESULT_QUEUE);
    let mut report =
        tokio::task::spawn_blocking(move || reporter.consume(&mut received).map(|()| reporter));

    let schedule = schedule::run(engine, inputs.stream(), stop.clone(), progress, results);
    let read_error = tokio::select! {
        read_error = schedule => read_error,
        // The reporter holds on until the last result, so ending first means stdout failed.
        reported = &mut report => {
            reported.context("the reporter stopped")?.context("cannot write results")?;
            bail!("the reporter stopped before the results were in");
        }
    };
    let reporter = report
        .await
        .context("the reporter stopped")?
        .context("cannot write results")?;

    if reporter.tallies().total() == 0 && read_error.is_none() {
        bail!("no targets to check: the input holds only blank lines and comments");
    }
    if let Some(err) = &read_error {
        eprintln!("upcheck: {err:#}");
    }
    let tallies_failed = reporter.tallies().failed();
    let deadline_skipped = reporter.tallies().deadline_skipped();
    reporter
        .finish(started.elapsed())
        .context("cannot write results")?;
    Ok(exit::status(exit::RunEnd {
        failed: tallies_failed,
        read_failed: read_error.is_some(),
        deadline_skipped,
        stop: stop.reason(),
    }))
}

/// Whether `NO_COLOR` asks for no colour (set and not empty).
fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}
