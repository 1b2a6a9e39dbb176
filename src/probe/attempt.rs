//! What one attempt at a target found.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::outcome::{CertExpiry, ErrorKind, Failure, Timings};

/// What one attempt found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Attempt {
    /// Time from the attempt's start until its verdict was known.
    pub(crate) latency: Duration,
    /// HTTP status, if a response came.
    pub(crate) status: Option<u16>,
    /// `None` when healthy.
    pub(crate) failure: Option<Failure>,
    /// How long the server asked us to wait (`Retry-After` on a 429 or 503).
    pub(crate) retry_after: Option<Duration>,
    /// The attempt never reached the network: this process was out of file descriptors.
    pub(crate) out_of_files: bool,
    /// The earliest expiry among the TLS certificates served with the response.
    pub(crate) cert: Option<CertExpiry>,
    /// The address that answered, when a connection was made.
    pub(crate) address: Option<SocketAddr>,
    /// Where the time went.
    pub(crate) timings: Timings,
    /// The first line a TCP service sent, when its banner was read.
    pub(crate) banner: Option<String>,
}

impl Attempt {
    /// A healthy attempt that took `latency` and got no HTTP response (a TCP connect).
    pub(crate) fn healthy(latency: Duration) -> Self {
        Attempt {
            latency,
            status: None,
            failure: None,
            retry_after: None,
            out_of_files: false,
            cert: None,
            address: None,
            timings: Timings::default(),
            banner: None,
        }
    }

    /// An attempt that ended in `failure` with no response.
    pub(crate) fn failed(latency: Duration, failure: Failure) -> Self {
        Attempt {
            failure: Some(failure),
            ..Attempt::healthy(latency)
        }
    }

    /// The same attempt, its time spent as `timings` say, answered from `address` if any.
    pub(crate) fn traced(self, timings: Timings, address: Option<SocketAddr>) -> Self {
        Attempt {
            timings,
            address,
            ..self
        }
    }

    /// An attempt that never reached the network for want of a file descriptor.
    pub(crate) fn out_of_files(latency: Duration, err: &io::Error) -> Self {
        Attempt {
            out_of_files: true,
            ..Attempt::failed(
                latency,
                Failure::new(
                    ErrorKind::Other,
                    format!("out of file descriptors ({err}): raise 'ulimit -n' or lower -c"),
                ),
            )
        }
    }
}
