//! The target vocabulary shared by every stage: what a target is, what kind it is, where it
//! came from, and how a line of text becomes one.
//!
//! A leaf module: the readers ([`crate::input`], [`crate::checks`]) make these, the
//! scheduler and the probes use them, and the reports read the kind from the result rather
//! than guessing it from the text.

use std::fmt;
use std::sync::Arc;

use reqwest::Url;
use serde::Serialize;

/// The source name for targets given with `--url`.
pub(crate) const URL_SOURCE: &str = "--url";

/// Which probe a target gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetKind {
    /// An HTTP exchange (`http://` or `https://`).
    Http,
    /// A TCP connect (`tcp://`).
    Tcp,
    /// An ICMP echo (`icmp://`).
    Icmp,
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::Http => "http",
            TargetKind::Tcp => "tcp",
            TargetKind::Icmp => "icmp",
        })
    }
}

/// A parsed, probe-able target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// An `http://` or `https://` URL.
    Http(Url),
    /// A `tcp://HOST:PORT` address.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// An `icmp://HOST` address.
    Icmp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
    },
}

impl Target {
    /// Which probe this target gets.
    pub(crate) fn kind(&self) -> TargetKind {
        match self {
            Target::Http(_) => TargetKind::Http,
            Target::Tcp { .. } => TargetKind::Tcp,
            Target::Icmp { .. } => TargetKind::Icmp,
        }
    }

    /// The `host:port` this target connects to (the host alone for ICMP), used for the
    /// per-host limit.
    pub(crate) fn host_key(&self) -> String {
        match self {
            Target::Http(url) => format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or_default()
            ),
            Target::Tcp { host, port } => format!("{host}:{port}"),
            Target::Icmp { host } => host.clone(),
        }
    }
}

/// Parses one target: an `http(s)://` URL, `tcp://HOST:PORT` or `icmp://HOST`.
pub(crate) fn parse_target(text: &str) -> Result<Target, String> {
    if !text.contains("://") {
        return Err(
            "not a URL: it needs a scheme (http://, https://, tcp:// or icmp://)".to_owned(),
        );
    }
    let url = Url::parse(text).map_err(|err| invalid_url(text, err))?;
    if url.port() == Some(0) {
        return Err("port 0 cannot be connected to".to_owned());
    }
    match url.scheme() {
        "http" | "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err("the URL has no host".to_owned());
            }
            Ok(Target::Http(url))
        }
        "tcp" => {
            let host = url
                .host_str()
                .filter(|host| !host.is_empty())
                .ok_or("tcp:// target has no host")?;
            let port = url
                .port()
                .ok_or("tcp:// target needs a port (tcp://HOST:PORT)")?;
            if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some()
            {
                return Err("tcp:// target takes only HOST:PORT".to_owned());
            }
            let host = tcp_host(text, host)?;
            Ok(Target::Tcp { host, port })
        }
        "icmp" => {
            let host = url
                .host_str()
                .filter(|host| !host.is_empty())
                .ok_or("icmp:// target has no host")?;
            if url.port().is_some()
                || !matches!(url.path(), "" | "/")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err("icmp:// target takes only a host (icmp://HOST)".to_owned());
            }
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            Ok(Target::Icmp { host })
        }
        other => Err(format!(
            "unknown scheme '{other}' (use http://, https://, tcp:// or icmp://)"
        )),
    }
}

/// Why `text` is not a URL, with a hint for an IPv6 address written without brackets.
fn invalid_url(text: &str, err: impl fmt::Display) -> String {
    let authority = authority(text).unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.matches(':').count() > 1 && !host_port.starts_with('[') {
        return format!(
            "not a valid URL: {err} (an IPv6 address needs brackets: tcp://[::1]:22, http://[::1]:8080/)"
        );
    }
    format!("not a valid URL: {err}")
}

/// The authority of `text` (what lies between `://` and the path), if it has a scheme.
fn authority(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The host of a `tcp://` target as the resolver wants it: a `tcp:` URL's host is opaque
/// (percent-encoded, not IDNA), so it is read again as an `http:` host, which converts an
/// international name to ASCII (`xn--`) as the HTTP probe's URLs do, and unbrackets IPv6.
fn tcp_host(text: &str, opaque: &str) -> Result<String, String> {
    let authority = authority(text).unwrap_or(opaque);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let as_http = Url::parse(&format!("http://{host_port}/"))
        .map_err(|err| format!("tcp:// target has an invalid host: {err}"))?;
    let host = as_http.host_str().ok_or("tcp:// target has no host")?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

/// `text` with the password of a `scheme://user:password@` URL shown as `xxxxx`, as Go's
/// `url.Redacted()` does: every place a target is shown uses the text after this, while the
/// probe keeps the real URL (and sends the password as Basic auth).
pub(crate) fn redacted(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(authority) = authority(text) else {
        return text.into();
    };
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return text.into();
    };
    let Some((user, _password)) = userinfo.split_once(':') else {
        return text.into();
    };
    let start = text.find("://").map_or(0, |at| at + 3);
    let password_start = start + user.len() + 1;
    let password_end = start + userinfo.len();
    format!("{}xxxxx{}", &text[..password_start], &text[password_end..]).into()
}

/// Where a target came from: the input it was read from and its line there.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// Position in the whole input, used to print `json` results in input order.
    pub(crate) seq: u64,
    /// The file name as given, `-` for standard input, `--url` for `--url`.
    pub(crate) source: Arc<str>,
    /// 1-based line number in `source`; `None` for `--url`.
    pub(crate) line: Option<u64>,
}

/// What a checks-file entry says about its target for the reports: a name and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Labels {
    /// Shown with the result, and a label in the Prometheus output.
    pub(crate) name: Option<String>,
    /// Carried into the result.
    pub(crate) tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_use_default_ports() {
        let key = |t: &str| parse_target(t).unwrap().host_key();
        assert_eq!(key("https://a.test/x"), "a.test:443");
        assert_eq!(key("http://a.test:8080/"), "a.test:8080");
        assert_eq!(key("tcp://[::1]:22"), "::1:22");
        assert_eq!(key("icmp://[::1]"), "::1");
        assert_eq!(key("icmp://127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn icmp_targets_take_a_host_only() {
        let parse = |t: &str| parse_target(t);
        assert_eq!(
            parse("ICMP://127.0.0.1"),
            Ok(Target::Icmp {
                host: "127.0.0.1".into()
            })
        );
        assert_eq!(
            parse("icmp://[::1]/"),
            Ok(Target::Icmp { host: "::1".into() })
        );
        assert!(parse("icmp://127.0.0.1:7").is_err());
        assert!(parse("icmp://127.0.0.1/x").is_err());
        assert!(parse("icmp://").is_err());
    }

    #[test]
    fn passwords_are_redacted_and_users_kept() {
        assert_eq!(
            redacted("https://user:s3cret@a.test/x?q=1"),
            "https://user:xxxxx@a.test/x?q=1"
        );
        assert_eq!(redacted("ftp://u:p:q@h/"), "ftp://u:xxxxx@h/");
        assert_eq!(redacted("https://user@a.test/"), "https://user@a.test/");
        assert_eq!(redacted("https://a.test/p@x:y"), "https://a.test/p@x:y");
        assert_eq!(redacted("not a url u:p@h"), "not a url u:p@h");
    }

    #[test]
    fn tcp_hosts_are_idna_and_port_zero_is_refused() {
        assert_eq!(
            parse_target("tcp://bücher.test:443"),
            Ok(Target::Tcp {
                host: "xn--bcher-kva.test".into(),
                port: 443
            })
        );
        assert!(parse_target("tcp://::1:443")
            .unwrap_err()
            .contains("needs brackets"));
        assert!(parse_target("tcp://a.test:0")
            .unwrap_err()
            .contains("port 0"));
        assert!(parse_target("http://a.test:0/")
            .unwrap_err()
            .contains("port 0"));
    }

    #[test]
    fn the_kind_follows_the_scheme_in_any_case() {
        let kind = |t: &str| parse_target(t).unwrap().kind();
        assert_eq!(kind("HTTP://127.0.0.1:1/"), TargetKind::Http);
        assert_eq!(kind("https://a.test/"), TargetKind::Http);
        assert_eq!(kind("tcp://a.test:1"), TargetKind::Tcp);
        assert_eq!(kind("icmp://a.test"), TargetKind::Icmp);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn target_parsing_never_panics_and_explains(text in "(http|https|tcp|icmp|ftp)?(://)?\\PC{0,40}") {
                if let Err(reason) = parse_target(&text) {
                    prop_assert!(!reason.is_empty());
                }
            }

            #[test]
            fn tcp_targets_keep_host_and_port(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,5})?", port in 1u16..) {
                let parsed = parse_target(&format!("tcp://{host}:{port}"));
                prop_assert_eq!(parsed, Ok(Target::Tcp { host, port }));
            }
        }
    }
}
