//! Host name resolution with a typed error, so that a failed lookup is told apart from a
//! failed connect.
//!
//! Lookups are asynchronous (hickory-resolver, configured from /etc/resolv.conf: its
//! nameservers, search list, ndots, timeout and attempts), after /etc/hosts, which is
//! read once per runtime thread. getaddrinfo was the first choice: each lookup held a
//! blocking thread for the resolver's own timeouts whatever `-t` said, so a dead
//! resolver filled the pool and starved every other name, and the threads' allocator
//! arenas grew memory with the number of distinct names. An async lookup is a future:
//! the attempt's timeout drops it, and with it its socket.

use std::cell::OnceCell;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::config::{LookupIpStrategy, ResolveHosts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Hosts, Name, ResolveError, TokioResolver};
use reqwest::dns::{Addrs, Resolve, Resolving};

use crate::values::human_duration;

/// Negative and positive answers kept: a bulk list names each host about once, and the
/// HTTP pool already keeps the connections of hosts seen again, so a big cache would
/// only hold memory for names never asked again.
const CACHE_ENTRIES: usize = 64;

/// A host name that could not be resolved.
#[derive(Debug)]
pub(crate) struct DnsError {
    host: String,
    reason: String,
}

impl DnsError {
    fn new(host: &str, reason: impl fmt::Display) -> Self {
        DnsError {
            host: host.to_owned(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve '{}': {}", self.host, self.reason)
    }
}

impl Error for DnsError {}

/// The runtime thread's resolver: /etc/hosts, then DNS as resolv.conf says.
struct Resolver {
    hosts: Hosts,
    dns: TokioResolver,
}

thread_local! {
    // Per runtime thread, because the resolver's connections live on the runtime that
    // made them; built at the first lookup. An unreadable resolv.conf is every
    // lookup's error rather than the run's, as with getaddrinfo.
    static RESOLVER: OnceCell<Result<Arc<Resolver>, String>> = const { OnceCell::new() };
}

impl Resolver {
    fn build() -> Result<Self, String> {
        let mut builder = TokioResolver::builder(TokioConnectionProvider::default())
            .map_err(|err| format!("cannot read /etc/resolv.conf: {err}"))?;
        let options = builder.options_mut();
        // Both families at once, as getaddrinfo asks; the connector picks between them.
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // /etc/hosts is read here, for the name as written, the way nsswitch's `files`
        // does; the resolver would apply the search list to it and ask DNS for a family
        // the hosts file lacks.
        options.use_hosts_file = ResolveHosts::Never;
        options.cache_size = CACHE_ENTRIES;
        // A missing or unreadable hosts file is no hosts entries, as for getaddrinfo.
        let hosts = Hosts::from_system().unwrap_or_default();
        Ok(Resolver {
            hosts,
            dns: builder.build(),
        })
    }

    fn current() -> Result<Arc<Resolver>, String> {
        RESOLVER.with(|cell| cell.get_or_init(|| Self::build().map(Arc::new)).clone())
    }

    /// The addresses /etc/hosts gives `name`, if it names it.
    fn in_hosts_file(&self, name: &Name) -> Option<Vec<IpAddr>> {
        let addrs: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|kind| {
                self.hosts
                    .lookup_static_host(&Query::query(name.clone(), kind))
            })
            .flat_map(|lookup| {
                lookup
                    .iter()
                    .filter_map(|data| data.ip_addr())
                    .collect::<Vec<_>>()
            })
            .collect();
        (!addrs.is_empty()).then_some(addrs)
    }
}

/// Resolves `host`: an IP literal as it is, a name from /etc/hosts or else DNS.
///
/// The lookup ends when its future is dropped; inside [`Lookups::watch`], a lookup still
/// waiting for DNS when the attempt times out is what [`Lookups::unanswered`] reports.
pub(crate) async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolver = Resolver::current().map_err(|reason| DnsError::new(host, reason))?;
    let name = Name::from_str_relaxed(host).map_err(|err| DnsError::new(host, err))?;
    let ips = match resolver.in_hosts_file(&name) {
        Some(ips) => ips,
        None => {
            // Only a lookup that ends clears the mark: one dropped by the attempt's
            // timeout leaves it for the prober to read.
            let watcher = LOOKUPS.try_with(Lookups::clone).ok();
            watcher.iter().for_each(|lookups| lookups.mark(Some(host)));
            let answer = resolver.dns.lookup_ip(name).await;
            watcher.iter().for_each(|lookups| lookups.mark(None));
            answer
                .map_err(|err| DnsError::new(host, describe(&err)))?
                .iter()
                .collect()
        }
    };
    if ips.is_empty() {
        return Err(DnsError::new(host, "no addresses found"));
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// A resolver error in the words getaddrinfo's users know.
fn describe(err: &ResolveError) -> String {
    if err.is_nx_domain() {
        "no such host name (NXDOMAIN)".to_owned()
    } else if err.is_no_records_found() {
        "no addresses found".to_owned()
    } else if err
        .proto()
        .is_some_and(|proto| matches!(proto.kind(), ProtoErrorKind::Timeout))
    {
        "no answer from the resolver within the timeout and attempts of /etc/resolv.conf".to_owned()
    } else {
        err.to_string()
    }
}

/// The resolver given to the HTTP client, so its lookup failures carry a [`DnsError`].
pub(crate) struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> Resolving {
        Box::pin(async move {
            let addrs = lookup(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

tokio::task_local! {
    static LOOKUPS: Lookups;
}

/// The name an attempt is resolving right now, if any: when the attempt's time runs out
/// there, the resolver is what did not answer, and the result says so.
#[derive(Clone, Default)]
pub(crate) struct Lookups {
    waiting: Arc<Mutex<Option<String>>>,
}

impl Lookups {
    /// Runs `attempt`, noting the lookups it makes (in its own task).
    pub(crate) async fn watch<F: Future>(&self, attempt: F) -> F::Output {
        LOOKUPS.scope(self.clone(), attempt).await
    }

    fn mark(&self, host: Option<&str>) {
        *self.waiting.lock().unwrap_or_else(PoisonError::into_inner) = host.map(str::to_owned);
    }

    /// The failure of an attempt that timed out after `timeout`, if it was waiting for a
    /// name at that moment.
    pub(crate) fn unanswered(&self, timeout: Duration) -> Option<DnsError> {
        let host = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let reason = format!(
            "no answer from the resolver within {}",
            human_duration(timeout)
        );
        Some(DnsError::new(&host, reason))
    }
}
