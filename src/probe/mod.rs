//! One attempt at one target: each protocol's probe is a file here, beside what they share
//! (name resolution, certificate reading, error classification).

mod attempt;
pub(crate) mod cert;
mod classify;
mod http;
mod resolve;
mod settings;
mod tcp;

use std::time::Instant;

pub(crate) use attempt::Attempt;
pub(crate) use settings::{ClientSettings, TargetSettings};

use crate::outcome::{ErrorKind, Failure};
use crate::target::Target;
use crate::values::human_duration;
use classify::dns_failure;
use http::HttpProber;

/// Makes attempts; one per run, shared by all tasks so HTTP connections are reused.
pub(crate) struct Prober {
    http: HttpProber,
}

impl Prober {
    /// Builds the shared HTTP client for `settings`.
    pub(crate) fn new(settings: &ClientSettings) -> anyhow::Result<Self> {
        Ok(Prober {
            http: HttpProber::new(settings)?,
        })
    }

    /// Makes one attempt at `target` as `settings` say, bounded by their timeout.
    pub(crate) async fn attempt(&self, target: &Target, settings: &TargetSettings) -> Attempt {
        let started = Instant::now();
        let exchange = async {
            match target {
                Target::Http(url) => self.http.exchange(url, settings, started).await,
                Target::Tcp { host, port } => tcp::connect(host, *port, started).await,
            }
        };
        let lookups = resolve::Lookups::default();
        match tokio::time::timeout(settings.timeout, lookups.watch(exchange)).await {
            Ok(attempt) => attempt,
            Err(_) => match lookups.unanswered(settings.timeout) {
                Some(unresolved) => Attempt::failed(started.elapsed(), dns_failure(&unresolved)),
                None => Attempt::failed(
                    started.elapsed(),
                    Failure::new(
                        ErrorKind::Timeout,
                        format!("no answer within {}", human_duration(settings.timeout)),
                    ),
                ),
            },
        }
    }
}
