//! Host name resolution with a typed error, so that a failed lookup is told apart from a
//! failed connect; and the rules on top of any lookup: `--resolve` pins and `-4`/`-6`.
//!
//! Lookups are asynchronous (hickory-resolver, configured from /etc/resolv.conf: its
//! nameservers, search list, ndots, timeout and attempts), after /etc/hosts, which is
//! read once per run and shared by the runtime threads. getaddrinfo was the first
//! choice: each lookup held a blocking thread for the resolver's own timeouts whatever
//! `-t` said, so a dead resolver filled the pool and starved every other name, and the
//! threads' allocator arenas grew memory with the number of distinct names. An async
//! lookup is a future: the attempt's timeout drops it, and with it its socket.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, ResolveHosts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Hosts, Name, ResolveError, TokioResolver};
use reqwest::dns::{Addrs, Resolve, Resolving};

use super::trace::ConnectionTrace;
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
    hosts: &'static Hosts,
    dns: TokioResolver,
}

/// /etc/hosts as read at the first lookup, for every runtime thread: held in memory it
/// takes about 850 bytes a line, and a copy per worker made a 200,000-line hosts file
/// (ad-blocking lists are that long) cost 169 MiB at one worker and 308 MiB at two
/// (173 MiB shared).
static HOSTS_FILE: OnceLock<Hosts> = OnceLock::new();

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
        let hosts = HOSTS_FILE.get_or_init(|| Hosts::from_system().unwrap_or_default());
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
    if let Some(ip) = ip_literal(host) {
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

/// The one address family `-4` or `-6` allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl Family {
    /// Whether `ip` is of this family.
    pub(crate) fn allows(self, ip: IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }

    /// The option that asks for this family.
    fn option(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    /// The family's name in messages.
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// One `--resolve HOST:PORT:ADDR[,ADDR...]`: connect to these addresses for this host and
/// port, without asking DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pin {
    host: String,
    port: u16,
    addrs: Vec<IpAddr>,
}

impl Pin {
    /// Parses curl's `HOST:PORT:ADDR[,ADDR...]`; an IPv6 ADDR may be bracketed.
    pub(crate) fn parse(text: &str) -> Result<Pin, String> {
        let shape = "expected HOST:PORT:ADDR[,ADDR...], e.g. api.example.com:443:10.0.0.7";
        let (host, rest) = text.split_once(':').ok_or(shape)?;
        let (port, addrs) = rest.split_once(':').ok_or(shape)?;
        if host.is_empty() || host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
            return Err(format!("'{host}' is not a host name ({shape})"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| format!("'{port}' is not a port from 1 to 65535"))?;
        let addrs = addrs
            .split(',')
            .map(|addr| {
                let bare = addr
                    .strip_prefix('[')
                    .and_then(|addr| addr.strip_suffix(']'))
                    .unwrap_or(addr);
                bare.parse::<IpAddr>()
                    .map_err(|_| format!("'{addr}' is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pin {
            host: host.to_ascii_lowercase(),
            port,
            addrs,
        })
    }
}

/// Which addresses a connection may use: `--resolve` pins first, then DNS, and only those
/// of the family `-4`/`-6` asks for.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddressRules {
    pins: HashMap<(String, u16), Vec<IpAddr>>,
    family: Option<Family>,
}

impl AddressRules {
    /// Rules from the `--resolve` values (a later value for the same host and port adds
    /// its addresses after the earlier ones') and the family asked for.
    pub(crate) fn new(pins: Vec<Pin>, family: Option<Family>) -> Self {
        let mut pinned: HashMap<(String, u16), Vec<IpAddr>> = HashMap::new();
        for pin in pins {
            pinned
                .entry((pin.host, pin.port))
                .or_default()
                .extend(pin.addrs);
        }
        AddressRules {
            pins: pinned,
            family,
        }
    }

    /// Whether `host:port` is pinned.
    pub(crate) fn pins(&self, host: &str, port: u16) -> bool {
        self.pins.contains_key(&(host.to_ascii_lowercase(), port))
    }

    /// Whether any port of `host` is pinned.
    fn pins_host(&self, host: &str) -> bool {
        self.pins.keys().any(|(pinned, _)| pinned == host)
    }

    /// Refuses an IP literal of the wrong family, as a lookup that found none.
    pub(crate) fn check_literal(&self, ip: IpAddr) -> Result<(), DnsError> {
        match self.family {
            Some(family) if !family.allows(ip) => Err(DnsError::new(
                &ip.to_string(),
                format!(
                    "not an {} address, and {} allows no other",
                    family.name(),
                    family.option()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// `host` as an IP address, when it is one (IPv6 in brackets or not).
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// [`addresses`], noting on `connection` how long the lookup took when one was made: a
/// failed one too, unless `host` is an IP literal or pinned.
pub(crate) async fn addresses_noted(
    host: &str,
    port: u16,
    rules: &AddressRules,
    connection: Option<&ConnectionTrace>,
) -> Result<Vec<SocketAddr>, DnsError> {
    let began = Instant::now();
    let found = addresses(host, port, rules).await;
    let asked = match &found {
        Ok((_, asked)) => *asked,
        Err(_) => ip_literal(host).is_none() && !rules.pins(host, port),
    };
    if let (Some(connection), true) = (connection, asked) {
        connection.looked_up(began, Instant::now());
    }
    found.map(|(addrs, _)| addrs)
}

/// The addresses to try for `host:port` under `rules`, and whether DNS was asked: the
/// pinned ones without asking DNS, else those `lookup` finds, less other families.
pub(crate) async fn addresses(
    host: &str,
    port: u16,
    rules: &AddressRules,
) -> Result<(Vec<SocketAddr>, bool), DnsError> {
    if let Some(ip) = ip_literal(host) {
        rules.check_literal(ip)?;
        return Ok((vec![SocketAddr::new(ip, port)], false));
    }
    let key = (host.to_ascii_lowercase(), port);
    let (found, asked) = match rules.pins.get(&key) {
        Some(pinned) => (
            pinned.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
            false,
        ),
        None => (lookup(host, port).await?, true),
    };
    let Some(family) = rules.family else {
        return Ok((found, asked));
    };
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|addr| family.allows(addr.ip()))
        .collect();
    if kept.is_empty() {
        return Err(DnsError::new(
            host,
            format!(
                "no {} address, and {} allows no other",
                family.name(),
                family.option()
            ),
        ));
    }
    Ok((kept, asked))
}

/// The resolver given to the HTTP client, so its lookup failures carry a [`DnsError`]; it
/// applies the run's address rules, learning the port from the connection being set up,
/// and notes how long the lookup took.
pub(crate) struct SystemResolver {
    /// Pins and family.
    pub(crate) rules: Arc<AddressRules>,
}

impl Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> Resolving {
        let rules = self.rules.clone();
        let connection = ConnectionTrace::current();
        Box::pin(async move {
            let host = name.as_str();
            let port = match &connection {
                Some(connection) => connection.port,
                // Only a pinned host needs the port; any other is looked up as it always was.
                None if !rules.pins_host(&host.to_ascii_lowercase()) => 0,
                None => {
                    return Err(Box::new(DnsError::new(
                        host,
                        "the port to connect to is not known, so --resolve cannot apply",
                    )) as Box<dyn Error + Send + Sync>)
                }
            };
            let addrs = addresses_noted(host, port, &rules, connection.as_deref()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_as_curl_writes_them() {
        let pin = Pin::parse("API.test:8443:127.0.0.1,[::1]").unwrap();
        assert_eq!(pin.host, "api.test");
        assert_eq!(pin.port, 8443);
        assert_eq!(
            pin.addrs,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(Pin::parse("a.test:443:::1").is_ok(), "a bare IPv6 address");
        for bad in [
            "a.test",
            "a.test:443",
            "a.test:x:127.0.0.1",
            "a.test:0:127.0.0.1",
            "a.test:443:nope",
            ":443:127.0.0.1",
            "127.0.0.1:443:127.0.0.2",
        ] {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn pinned_names_skip_dns_and_only_their_port_is_pinned() {
        let rules = AddressRules::new(vec![Pin::parse("a.test:443:127.0.0.7").unwrap()], None);
        let (addrs, asked) = addresses("A.test", 443, &rules).await.unwrap();
        assert_eq!(addrs, ["127.0.0.7:443".parse::<SocketAddr>().unwrap()]);
        assert!(!asked);
        let (addrs, asked) = addresses("localhost", 80, &rules).await.unwrap();
        assert!(asked && !addrs.is_empty());
    }

    #[tokio::test]
    async fn a_family_keeps_only_its_addresses_with_no_fallback() {
        let pins = vec![Pin::parse("a.test:443:127.0.0.7").unwrap()];
        let v6 = AddressRules::new(pins.clone(), Some(Family::V6));
        let err = addresses("a.test", 443, &v6).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("no IPv6 address, and -6 allows no other"),
            "{err}"
        );
        assert!(addresses("127.0.0.1", 443, &v6).await.is_err());
        assert!(addresses("[::1]", 443, &v6).await.is_ok());
        let v4 = AddressRules::new(pins, Some(Family::V4));
        assert!(addresses("a.test", 443, &v4).await.is_ok());
        assert!(addresses("::1", 443, &v4).await.is_err());
    }
}
