//! One attempt at one target: each protocol's probe is a file here, beside what they share
//! (name resolution, certificate reading, error classification).

mod attempt;
pub(crate) mod cert;
mod classify;
mod connect;
mod environment;
mod http;
mod icmp;
mod resolve;
mod settings;
mod tcp;
mod tls;
mod trace;

use std::time::Instant;

pub(crate) use attempt::Attempt;
pub(crate) use environment::{check_cert_file, Proxies};
pub(crate) use resolve::{AddressRules, Family, Pin};
pub(crate) use settings::{ClientSettings, TargetSettings};
pub(crate) use tls::{Identity, IdentityFile, Roots, TlsSettings};

use crate::outcome::{ErrorKind, Failure};
use crate::target::Target;
use crate::values::human_duration;
use classify::dns_failure;
use http::HttpProber;
use icmp::IcmpProber;
use trace::AttemptTrace;

/// Whether the connection an HTTP attempt uses is kept for a later target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// Another target for the same host was read lately: keep the connection pooled.
    Keep,
    /// No other target for the host is in sight: close the connection after the answer
    /// (`Connection: close`), so a list of distinct hosts leaves no idle connections
    /// behind, each about 30 KiB until the pool's idle timeout.
    Close,
}

/// Makes attempts; one per run, shared by all tasks so HTTP connections and ICMP sockets
/// are reused.
pub(crate) struct Prober {
    http: HttpProber,
    addresses: std::sync::Arc<AddressRules>,
    icmp: IcmpProber,
    /// Most banner bytes read from a TCP service (`--max-body`).
    banner_limit: usize,
}

impl Prober {
    /// Builds the HTTP client for `settings` and the command line's TLS settings (`tls`).
    pub(crate) fn new(settings: &ClientSettings, tls: &TlsSettings) -> anyhow::Result<Self> {
        Ok(Prober {
            http: HttpProber::new(settings, tls)?,
            addresses: settings.addresses.clone(),
            icmp: IcmpProber::new(),
            banner_limit: usize::try_from(settings.max_body).unwrap_or(usize::MAX),
        })
    }

    /// Makes one attempt at `target` as `settings` say, bounded by their timeout; `reuse`
    /// says whether its HTTP connection is kept for later targets.
    pub(crate) async fn attempt(
        &self,
        target: &Target,
        settings: &TargetSettings,
        reuse: Reuse,
    ) -> Attempt {
        let started = Instant::now();
        let trace = AttemptTrace::new();
        let exchange = trace.during(async {
            match target {
                Target::Http(url) => {
                    self.http
                        .exchange(url, settings, reuse, started, &trace)
                        .await
                }
                Target::Tcp { host, port } => {
                    let banner =
                        settings
                            .banner_contains
                            .as_deref()
                            .map(|needle| tcp::BannerCheck {
                                needle,
                                limit: self.banner_limit,
                                timeout: settings.timeout,
                            });
                    tcp::connect(host, *port, started, &self.addresses, banner).await
                }
                Target::Icmp { host } => self.icmp.ping(host, started, &self.addresses).await,
            }
        });
        let lookups = resolve::Lookups::default();
        match tokio::time::timeout(settings.timeout, lookups.watch(exchange)).await {
            Ok(attempt) => attempt,
            Err(_) => {
                let (timings, address) = trace.failed_timings();
                let failure = match lookups.unanswered(settings.timeout) {
                    Some(unresolved) => dns_failure(&unresolved),
                    None => Failure::new(
                        ErrorKind::Timeout,
                        format!("no answer within {}", human_duration(settings.timeout)),
                    ),
                };
                Attempt::failed(started.elapsed(), failure).traced(timings, address)
            }
        }
    }
}
