//! Host name resolution with a typed error, so that a failed lookup is told apart from a failed connect;
//! and the rules on top of any lookup: `--resolve` pins and `-4`/`-6`.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::trace::ConnectionTrace;

/// A host name that could not be resolved.
#[derive(Debug)]
pub(crate) struct DnsError {
    host: String,
    source: io::Error,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve '{}': {}", self.host, self.source)
    }
}

impl Error for DnsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Resolves `host` with the system resolver (getaddrinfo on tokio's blocking pool).
pub(crate) async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
    let failed = |source| DnsError {
        host: host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(failed)?
        .collect();
    if addrs.is_empty() {
        return Err(failed(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses found",
        )));
    }
    Ok(addrs)
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
            Some(family) if !family.allows(ip) => Err(DnsError {
                host: ip.to_string(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "not an {} address, and {} allows no other",
                        family.name(),
                        family.option()
                    ),
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The addresses to try for `host:port` under `rules`, and whether DNS was asked: the
/// pinned ones without asking DNS, else those `lookup` finds, less other families.
pub(crate) async fn addresses(
    host: &str,
    port: u16,
    rules: &AddressRules,
) -> Result<(Vec<SocketAddr>, bool), DnsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
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
        return Err(DnsError {
            host: host.to_owned(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no {} address, and {} allows no other",
                    family.name(),
                    family.option()
                ),
            ),
        });
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
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules.clone();
        let connection = ConnectionTrace::current();
        Box::pin(async move {
            let host = name.as_str();
            let port = match &connection {
                Some(connection) => connection.port,
                // Only a pinned host needs the port; any other is looked up as it always was.
                None if !rules.pins_host(&host.to_ascii_lowercase()) => 0,
                None => {
                    return Err(Box::new(DnsError {
                        host: host.to_owned(),
                        source: io::Error::other(
                            "the port to connect to is not known, so --resolve cannot apply",
                        ),
                    }) as Box<dyn Error + Send + Sync>)
                }
            };
            let began = Instant::now();
            let found = addresses(host, port, &rules).await;
            let asked = match &found {
                Ok((_, asked)) => *asked,
                Err(_) => !rules.pins(host, port),
            };
            if let (Some(connection), true) = (&connection, asked) {
                connection.looked_up(began, Instant::now());
            }
            let (addrs, _) = found?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
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
