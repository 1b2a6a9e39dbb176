//! Host name resolution with a typed error, so that a failed lookup is told apart from a failed connect.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

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

/// The resolver given to the HTTP client, so its lookup failures carry a [`DnsError`].
pub(crate) struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs = lookup(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
