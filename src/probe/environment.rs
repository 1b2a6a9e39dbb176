//! What the environment tells the HTTP client: proxies (`HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`, as curl reads them) and `SSL_CERT_FILE`, checked once before
//! anything is probed so that a mistake there is a usage error rather than every check
//! failing for a reason nobody sees.

use std::fmt;
use std::net::IpAddr;

use anyhow::{bail, Context};
use reqwest::{Proxy, Url};

use super::resolve::ip_literal;
use crate::target::redacted;

/// The proxies the environment names, and the hosts reached without them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proxies {
    http: Option<Url>,
    https: Option<Url>,
    bypass: Vec<Bypass>,
}

impl Proxies {
    /// The proxies the process environment names; fails naming a variable that is not a
    /// proxy URL.
    pub(crate) fn from_env() -> anyhow::Result<Self> {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// The proxies that `var` (a variable's value by name) names.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        // Lower case first, as curl reads them; an empty value is no value.
        let read = |name: &str| {
            [name.to_ascii_lowercase(), name.to_owned()]
                .into_iter()
                .find_map(|name| Some((var(&name).filter(|v| !v.trim().is_empty())?, name)))
        };
        let all = read("ALL_PROXY");
        let proxy = |name: &str| match read(name).or_else(|| all.clone()) {
            Some((value, name)) => proxy_url(&name, &value).map(Some),
            None => Ok(None),
        };
        Ok(Proxies {
            http: proxy("HTTP_PROXY")?,
            https: proxy("HTTPS_PROXY")?,
            bypass: read("NO_PROXY")
                .map(|(value, _)| value.split(',').filter_map(Bypass::parse).collect())
                .unwrap_or_default(),
        })
    }

    /// The proxy a request to `url` goes through, if any. Loopback addresses and
    /// `localhost` never go through one (Go's net/http rule): a proxy elsewhere cannot
    /// reach this machine's loopback, and `tcp://` targets beside them connect directly.
    pub(crate) fn for_url(&self, url: &Url) -> Option<&Url> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if is_loopback(&host) || self.bypass.iter().any(|rule| rule.matches(&host)) {
            return None;
        }
        Some(proxy)
    }

    /// The client's proxy setting: exactly [`Proxies::for_url`], or none at all.
    pub(crate) fn client_proxy(&self) -> Option<Proxy> {
        if self.http.is_none() && self.https.is_none() {
            return None;
        }
        let proxies = self.clone();
        Some(Proxy::custom(move |url| proxies.for_url(url).cloned()))
    }
}

/// A proxy as it may be shown: its URL with any password redacted.
pub(crate) struct ShownProxy<'a>(pub(crate) &'a Url);

impl fmt::Display for ShownProxy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(self.0.as_str()))
    }
}

/// The proxy URL in variable `name`; a bare `host:port` is taken as `http://host:port`, as
/// curl does.
fn proxy_url(name: &str, value: &str) -> anyhow::Result<Url> {
    let value = value.trim();
    let written = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let shown = redacted(value);
    let url =
        Url::parse(&written).with_context(|| format!("{name} is not a proxy URL: '{shown}'"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "{name} names a {}: proxy ('{shown}'); upcheck supports http:// and https:// proxies",
            url.scheme()
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("{name} is not a proxy URL: '{shown}' has no host");
    }
    Ok(url)
}

/// Whether `host` (lower case, unbracketed) is this machine's loopback.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One `NO_PROXY` entry: every host, a domain and its subdomains, or an address range.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bypass {
    Everything,
    Domain(String),
    Network(IpAddr, u8),
}

impl Bypass {
    /// The rule `entry` writes; `None` for an empty entry.
    fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(Bypass::Everything);
        }
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, prefix.parse().ok()),
            None => (entry.as_str(), None),
        };
        if let Some(ip) = ip_literal(address) {
            let full = if ip.is_ipv4() { 32 } else { 128 };
            return Some(Bypass::Network(ip, prefix.unwrap_or(full).min(full)));
        }
        let domain = entry.trim_start_matches("*.").trim_start_matches('.');
        Some(Bypass::Domain(domain.to_owned()))
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Bypass::Everything => true,
            Bypass::Domain(domain) => {
                host == domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            Bypass::Network(network, prefix) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| same_prefix(ip, *network, *prefix)),
        }
    }
}

/// Whether `a` and `b` agree in their first `prefix` bits (and are of one family).
fn same_prefix(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    let (a, b, width) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let ignored = width - u32::from(prefix);
    ignored >= width || (a >> ignored) == (b >> ignored)
}

/// Refuses a `SSL_CERT_FILE` that cannot be read or holds no certificate: the TLS library
/// would then trust nothing, and every https check would fail as an unknown issuer (curl
/// stops with error 77 here).
pub(crate) fn check_cert_file() -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|path| !path.is_empty()) else {
        return Ok(());
    };
    let shown = path.to_string_lossy();
    let bytes = std::fs::read(&path)
        .with_context(|| format!("SSL_CERT_FILE names '{shown}', which cannot be read"))?;
    if !bytes
        .windows(CERTIFICATE_MARK.len())
        .any(|window| window == CERTIFICATE_MARK)
    {
        bail!("SSL_CERT_FILE names '{shown}', which holds no PEM certificate");
    }
    Ok(())
}

/// How a PEM certificate begins.
const CERTIFICATE_MARK: &[u8] = b"-----BEGIN CERTIFICATE-----";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxies(vars: &[(&str, &str)]) -> anyhow::Result<Proxies> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::from_vars(|name| vars.get(name).cloned())
    }

    fn via(proxies: &Proxies, url: &str) -> Option<String> {
        proxies
            .for_url(&Url::parse(url).unwrap())
            .map(|proxy| proxy.to_string())
    }

    #[test]
    fn loopback_and_no_proxy_hosts_go_direct() {
        let proxies = proxies(&[
            ("HTTP_PROXY", "127.0.0.1:3128"),
            ("no_proxy", ".internal, 10.0.0.0/8,example.org"),
        ])
        .unwrap();
        let proxied = Some("http://127.0.0.1:3128/".to_owned());
        assert_eq!(via(&proxies, "http://a.test/"), proxied);
        assert_eq!(via(&proxies, "http://127.0.0.1:8080/"), None);
        assert_eq!(via(&proxies, "http://127.9.9.9/"), None);
        assert_eq!(via(&proxies, "http://[::1]:80/"), None);
        assert_eq!(via(&proxies, "http://LOCALHOST/"), None);
        assert_eq!(via(&proxies, "http://db.internal/"), None);
        assert_eq!(via(&proxies, "http://10.1.2.3/"), None);
        assert_eq!(via(&proxies, "http://www.example.org/"), None);
        assert_eq!(via(&proxies, "http://notexample.org/"), proxied);
        assert_eq!(via(&proxies, "https://a.test/"), None);
    }

    #[test]
    fn lower_case_wins_and_all_proxy_fills_in() {
        let proxies = proxies(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:2"),
            ("ALL_PROXY", "http://all:3"),
        ])
        .unwrap();
        assert_eq!(
            via(&proxies, "https://a.test/"),
            Some("http://lower:2/".into())
        );
        assert_eq!(
            via(&proxies, "http://a.test/"),
            Some("http://all:3/".into())
        );
    }

    #[test]
    fn a_malformed_variable_is_named_and_its_password_hidden() {
        let err = format!("{:#}", proxies(&[("HTTP_PROXY", "not a url")]).unwrap_err());
        assert!(
            err.contains("HTTP_PROXY") && err.contains("'not a url'"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            proxies(&[("https_proxy", "socks5://u:s3cret@h:1")]).unwrap_err()
        );
        assert!(
            err.contains("https_proxy") && !err.contains("s3cret"),
            "{err}"
        );
    }
}
