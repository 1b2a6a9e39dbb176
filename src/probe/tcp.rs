//! The TCP probe: healthy when a connection to the host and port is accepted.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::TcpStream;

use super::attempt::Attempt;
use super::classify::{describe_io, dns_failure, is_out_of_files};
use super::resolve;
use crate::outcome::{ErrorKind, Failure};

/// Connects to `host:port`; `started` is when the attempt began.
pub(crate) async fn connect(host: &str, port: u16, started: Instant) -> Attempt {
    let addrs = match resolve::lookup(host, port).await {
        Ok(addrs) => addrs,
        Err(err) => return Attempt::failed(started.elapsed(), dns_failure(&err)),
    };
    match connect_any(&addrs).await {
        Ok(_stream) => Attempt::healthy(started.elapsed()),
        Err(err) if is_out_of_files(&err) => Attempt::out_of_files(started.elapsed(), &err),
        Err(err) => Attempt::failed(
            started.elapsed(),
            Failure::new(ErrorKind::Connect, describe_io(&err)),
        ),
    }
}

/// Tries each address in turn, as a client library would, and keeps the first error.
async fn connect_any(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut first_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to connect to")))
}
