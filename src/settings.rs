//! The command line turned into settings once, before anything runs, as ripgrep turns its
//! low-level arguments into high-level ones: each stage gets what it needs already parsed,
//! and nothing later reads the options again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::cli::Cli;
use crate::output::{self, FileId};
use crate::probe::{
    check_cert_file, AddressRules, ClientSettings, Family, Identity, IdentityFile, Proxies, Roots,
    TargetSettings, TlsSettings,
};
use crate::progress::ProgressWhen;
use crate::rate::Rate;
use crate::report::Format;
use crate::schedule::Limits;
use crate::shard::Shard;
use crate::values;

/// Everything a run needs to know, from the command line.
pub(crate) struct Settings {
    /// Endpoint lists (`-` for standard input).
    pub(crate) files: Vec<PathBuf>,
    /// Checks files.
    pub(crate) checks: Vec<PathBuf>,
    /// Targets given with `--url`.
    pub(crate) urls: Vec<String>,
    /// The part of the list this run checks.
    pub(crate) shard: Option<Shard>,
    /// The files the options read, which `-o` and `--state` must not replace.
    pub(crate) option_files: Vec<(String, FileId)>,
    /// How every target is probed, unless its checks-file entry says otherwise.
    pub(crate) target: Arc<TargetSettings>,
    /// How the shared HTTP client behaves.
    pub(crate) client: ClientSettings,
    /// Probes in flight, over all hosts (before fitting the open-file limit) and per host.
    pub(crate) limits: Limits,
    /// Worker threads (`--threads`, else the cores), each with a runtime of its own.
    pub(crate) threads: usize,
    /// Extra attempts after a transient failure.
    pub(crate) retries: u32,
    /// Limit for the whole run.
    pub(crate) deadline: Option<Duration>,
    /// Request starts per second.
    pub(crate) rate: Option<Rate>,
    /// Healthy results slower than this are marked slow.
    pub(crate) slow: Option<Duration>,
    /// Whether slow results fail the run.
    pub(crate) fail_slow: bool,
    /// Output format.
    pub(crate) format: Format,
    /// Text format: only unhealthy results and the summary.
    pub(crate) quiet: bool,
    /// Where the report goes instead of stdout.
    pub(crate) output: Option<PathBuf>,
    /// When the progress bar is drawn.
    pub(crate) progress: ProgressWhen,
    /// `--state FILE`, and whether to start it afresh.
    pub(crate) state: Option<(PathBuf, bool)>,
    /// Text format: only targets whose health changed since the state's run.
    pub(crate) changes_only: bool,
    /// Text format: the latency histogram even off a terminal.
    pub(crate) histogram: bool,
}

impl Settings {
    /// The settings `cli` asks for; fails on what clap cannot check (the `-H` values).
    pub(crate) fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        let headers = values::parse_headers(&cli.headers)?;
        refuse_report_over_state(&cli)?;
        let option_files = option_files(&cli);
        // Machine formats carry previous_ok and ok for a filter, and have no room for bars.
        for (asked, option) in [
            (cli.changes_only, "--changes-only"),
            (cli.histogram, "--histogram"),
        ] {
            if asked && cli.format != Format::Text {
                bail!("{option} applies to the text format only");
            }
        }
        let tls = tls_settings(&cli)?;
        let family = match (cli.ipv4, cli.ipv6) {
            (true, _) => Some(Family::V4),
            (_, true) => Some(Family::V6),
            _ => None,
        };
        let proxies = Proxies::from_env()?;
        check_cert_file()?;
        Ok(Settings {
            files: cli.files,
            checks: cli.checks,
            urls: cli.urls,
            shard: cli.shard,
            option_files,
            target: Arc::new(TargetSettings {
                timeout: cli.timeout,
                method: cli.method,
                headers,
                expect_status: cli.expect_status,
                body_contains: cli.body_contains,
                tls,
                banner_contains: cli.banner_contains,
            }),
            client: ClientSettings {
                max_body: cli.max_body,
                follow_redirects: !cli.no_follow,
                insecure: cli.insecure,
                idle_per_host: cli.per_host,
                cert_min_days: cli.cert_min_days,
                addresses: Arc::new(AddressRules::new(cli.resolve, family)),
                proxies,
            },
            limits: Limits {
                concurrency: cli.concurrency,
                per_host: cli.per_host,
            },
            threads: cli.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
            retries: cli.retries,
            deadline: cli.deadline,
            rate: cli.rate,
            slow: cli.slow,
            fail_slow: cli.fail_slow,
            quiet: cli.quiet && cli.format == Format::Text,
            format: cli.format,
            output: cli.output,
            progress: cli.progress,
            state: cli.state.map(|path| (path, cli.state_reset)),
            changes_only: cli.changes_only,
            histogram: cli.histogram,
        })
    }
}

/// The files the options read (a `-H @FILE`, the TLS files), each named with its option:
/// the report and the state file must not replace them, as they must not replace an input.
fn option_files(cli: &Cli) -> Vec<(String, FileId)> {
    let header_files = cli
        .headers
        .iter()
        .filter_map(|header| header.strip_prefix('@'))
        .map(|file| ("-H", Path::new(file)));
    let tls_files = [
        ("--cacert", cli.cacert.as_deref()),
        ("--cert", cli.cert.as_deref()),
        ("--key", cli.key.as_deref()),
    ];
    let named = tls_files
        .into_iter()
        .filter_map(|(option, path)| Some((option, path?)))
        .chain(header_files);
    named
        .filter_map(|(option, path)| {
            let id = FileId::of_path(path)?;
            Some((format!("{} (read by {option})", path.display()), id))
        })
        .collect()
}

/// Refuses `-o` and `--state` naming one file, each replacing it at the end of the run.
/// Compared by name too, for neither need exist yet.
fn refuse_report_over_state(cli: &Cli) -> anyhow::Result<()> {
    if let (Some(report), Some(state)) = (&cli.output, &cli.state) {
        if output::same_file(report, state) {
            bail!(
                "-o and --state name the same file '{}': one would replace the other",
                state.display()
            );
        }
    }
    Ok(())
}

/// The TLS files `--cacert`, `--cert` and `--key` name, read and checked; an error names
/// the option whose file is at fault.
fn tls_settings(cli: &Cli) -> anyhow::Result<TlsSettings> {
    let roots = match &cli.cacert {
        Some(path) => Some(Roots::load(path).map_err(|why| anyhow!("--cacert: {why}"))?),
        None => None,
    };
    let identity = match &cli.cert {
        Some(cert) => Some(
            Identity::load(cert, cli.key.as_deref()).map_err(|(file, why)| {
                let option = match file {
                    IdentityFile::Cert => "--cert",
                    IdentityFile::Key => "--key",
                };
                anyhow!("{option}: {why}")
            })?,
        ),
        None => None,
    };
    Ok(TlsSettings { roots, identity })
}
