//! What a probe is asked to do: settings shared by the whole run, and those of one target.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;

use super::environment::Proxies;
use super::resolve::AddressRules;
use super::tls::TlsSettings;
use crate::values::StatusSet;

/// How one target is probed: the command line's settings, with a checks-file entry's
/// overrides applied once when the entry is read, so an attempt never re-reads them.
#[derive(Clone, Debug)]
pub(crate) struct TargetSettings {
    /// Limit for one attempt.
    pub(crate) timeout: Duration,
    /// HTTP method.
    pub(crate) method: Method,
    /// Request headers.
    pub(crate) headers: HeaderMap,
    /// Healthy status codes.
    pub(crate) expect_status: StatusSet,
    /// Text the body must contain.
    pub(crate) body_contains: Option<String>,
    /// CAs to trust and the client certificate to present.
    pub(crate) tls: TlsSettings,
    /// Text a TCP service's banner must contain; `None`: a pure connect check.
    pub(crate) banner_contains: Option<String>,
}

#[cfg(test)]
impl TargetSettings {
    /// The command line's defaults, for tests that need some settings.
    pub(crate) fn example() -> Self {
        TargetSettings {
            timeout: Duration::from_secs(5),
            method: Method::GET,
            headers: HeaderMap::new(),
            expect_status: StatusSet::parse("200-399").expect("a valid set"),
            body_contains: None,
            tls: TlsSettings::default(),
            banner_contains: None,
        }
    }
}

/// What is the same for every target of a run: how the HTTP clients behave.
#[derive(Clone, Debug)]
pub(crate) struct ClientSettings {
    /// Most body bytes read.
    pub(crate) max_body: u64,
    /// Whether redirects are followed.
    pub(crate) follow_redirects: bool,
    /// Whether invalid certificates are accepted.
    pub(crate) insecure: bool,
    /// Idle connections kept per host, matched to the per-host limit.
    pub(crate) idle_per_host: usize,
    /// Unhealthy when the TLS certificate expires within this many days.
    pub(crate) cert_min_days: Option<u32>,
    /// `--resolve` pins and the `-4`/`-6` family.
    pub(crate) addresses: Arc<AddressRules>,
    /// The proxies the environment names.
    pub(crate) proxies: Proxies,
}
