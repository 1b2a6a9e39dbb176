//! The TCP probe: healthy when a connection to the host and port is accepted.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::TcpStream;

use super::attempt::Attempt;
use super::classify::{describe_io, dns_failure, is_out_of_files};
use super::resolve::{self, AddressRules};
use super::trace::ConnectionTrace;
use crate::outcome::{ErrorKind, Failure};

/// Connects to `host:port` on an address `rules` allow; `started` is when the attempt began.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    started: Instant,
    rules: &AddressRules,
) -> Attempt {
    let connection = ConnectionTrace::start(port);
    let lookup_began = Instant::now();
    let found = resolve::addresses(host, port, rules).await;
    let asked = match &found {
        Ok((_, asked)) => *asked,
        Err(_) => !rules.pins(host, port),
    };
    if asked {
        connection.looked_up(lookup_began, Instant::now());
    }
    let addrs = match found {
        Ok((addrs, _)) => addrs,
        Err(err) => {
            return Attempt::failed(started.elapsed(), dns_failure(&err))
                .traced(connection.timings(), None)
        }
    };
    match connect_any(&addrs).await {
        Ok(stream) => {
            let address = stream.peer_addr().ok();
            connection.ready(stream.local_addr().ok(), address);
            Attempt::healthy(started.elapsed()).traced(connection.timings(), address)
        }
        Err(err) if is_out_of_files(&err) => Attempt::out_of_files(started.elapsed(), &err),
        Err(err) => Attempt::failed(
            started.elapsed(),
            Failure::new(ErrorKind::Connect, describe_io(&err)),
        )
        .traced(connection.timings(), None),
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
