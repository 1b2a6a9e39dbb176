//! The TCP probe: healthy when a connection to the host and port is accepted, and with
//! `--banner-contains`, when what the service sends first holds the text.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::attempt::Attempt;
use super::classify::{describe_io, dns_failure, is_out_of_files, text_missing};
use super::http::contains;
use super::resolve::{self, AddressRules};
use super::trace::ConnectionTrace;
use crate::outcome::{ErrorKind, Failure};
use crate::values::human_duration;

/// Longest banner line kept in the result, in characters.
const BANNER_CHARS: usize = 256;

/// Bytes asked of the socket per read while waiting for a banner.
const BANNER_READ: usize = 4096;

/// What a banner must hold, and how much of it to read for how long.
pub(crate) struct BannerCheck<'a> {
    /// The text the banner must contain.
    pub(crate) needle: &'a str,
    /// Most bytes read (`--max-body`).
    pub(crate) limit: usize,
    /// The attempt's limit: what has arrived by then is judged, silence is a timeout.
    pub(crate) timeout: Duration,
}

/// Connects to `host:port` on an address `rules` allow and, when asked, checks its banner;
/// `started` is when the attempt began.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    started: Instant,
    rules: &AddressRules,
    banner: Option<BannerCheck<'_>>,
) -> Attempt {
    let connection = ConnectionTrace::start(port);
    let addrs = match resolve::addresses_noted(host, port, rules, Some(&connection)).await {
        Ok(addrs) => addrs,
        Err(err) => {
            return Attempt::failed(started.elapsed(), dns_failure(&err))
                .traced(connection.timings(), None)
        }
    };
    match connect_any(&addrs).await {
        Ok(stream) => {
            let address = stream.peer_addr().ok();
            connection.ready(stream.local_addr().ok(), address);
            let attempt = match banner {
                Some(check) => check_banner(stream, &check, started).await,
                None => Attempt::healthy(started.elapsed()),
            };
            attempt.traced(connection.timings(), address)
        }
        Err(err) if is_out_of_files(&err) => Attempt::out_of_files(started.elapsed(), &err),
        // A reset once the handshake is done (one in answer to the SYN is "refused"): the
        // port accepted the connection and its service dropped it at once. Whether the
        // reset lands before the connect returns or after is timing, so the verdict is
        // the same either way: open, and for a banner, the reset that read would meet.
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Attempt {
            failure: banner.map(|_| Failure::new(ErrorKind::Protocol, describe_io(&err))),
            ..Attempt::healthy(started.elapsed())
        }
        .traced(connection.timings(), None),
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

/// Reads what the service sends first until `check`'s text shows up, the limit is read,
/// the service closes, or the attempt's time is up, and judges it.
///
/// The read ends at the attempt's own deadline, just before the probe's timeout would
/// cancel it, so that a banner that arrived without the text is `body`, not `timeout`.
async fn check_banner(mut stream: TcpStream, check: &BannerCheck<'_>, started: Instant) -> Attempt {
    let deadline = tokio::time::Instant::from_std(started + check.timeout);
    let needle = check.needle.as_bytes();
    let mut read = Vec::new();
    let mut chunk = [0u8; BANNER_READ];
    let ended = loop {
        let room = check.limit.saturating_sub(read.len()).min(BANNER_READ);
        if room == 0 {
            break BannerEnd::Limit;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) => break BannerEnd::TimeUp,
            Ok(Ok(0)) => break BannerEnd::Closed,
            Ok(Ok(count)) => {
                let searched_up_to = read.len().saturating_sub(needle.len().saturating_sub(1));
                read.extend_from_slice(&chunk[..count]);
                if contains(&read[searched_up_to..], needle) {
                    break BannerEnd::Found;
                }
            }
            Ok(Err(err)) => break BannerEnd::Failed(err),
        }
    };
    let failure = match ended {
        BannerEnd::Found => None,
        BannerEnd::TimeUp if read.is_empty() => Some(Failure::new(
            ErrorKind::Timeout,
            format!("no banner within {}", human_duration(check.timeout)),
        )),
        BannerEnd::Failed(err) if read.is_empty() => {
            Some(Failure::new(ErrorKind::Protocol, describe_io(&err)))
        }
        BannerEnd::Closed if read.is_empty() => Some(Failure::new(
            ErrorKind::Body,
            "the service closed the connection without sending a banner",
        )),
        _ => Some(text_missing("banner", check.needle, read.len())),
    };
    Attempt {
        banner: first_line(&read),
        failure,
        ..Attempt::healthy(started.elapsed())
    }
}

/// Why reading a banner stopped.
enum BannerEnd {
    Found,
    Limit,
    TimeUp,
    Closed,
    Failed(io::Error),
}

/// The first line of `read` that is not blank, CR and LF removed, at most
/// [`BANNER_CHARS`] characters; `None` when nothing was read.
fn first_line(read: &[u8]) -> Option<String> {
    if read.is_empty() {
        return None;
    }
    // Some services greet with blank lines first (SSH allows lines before its version).
    let line = read
        .split(|&b| b == b'\n')
        .find(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .unwrap_or_default();
    Some(
        String::from_utf8_lossy(line)
            .chars()
            .filter(|&c| c != '\r')
            .take(BANNER_CHARS)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_is_the_first_line_without_cr_lf_and_capped() {
        assert_eq!(first_line(b""), None);
        assert_eq!(
            first_line(b"SSH-2.0-OpenSSH_9.6\r\nmore"),
            Some("SSH-2.0-OpenSSH_9.6".to_owned())
        );
        assert_eq!(first_line(b"\r\n"), Some(String::new()));
        assert_eq!(
            first_line(b"\r\n \t\r\nSSH-2.0-x\r\n"),
            Some("SSH-2.0-x".to_owned())
        );
        assert_eq!(first_line(b"no newline"), Some("no newline".to_owned()));
        let long = first_line(&[b'a'; 1000]).unwrap();
        assert_eq!(long.chars().count(), BANNER_CHARS);
        assert_eq!(first_line(b"\xff220"), Some("\u{fffd}220".to_owned()));
    }
}
