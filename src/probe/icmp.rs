//! The ICMP echo probe: one echo request per attempt, healthy when its reply comes back.
//!
//! Every probe of a run shares one socket per address family, opened when the first
//! `icmp://` target of that family is probed: a /16 needs two descriptors, not 65,000. A
//! task per socket reads every datagram and hands each reply to the probe waiting for it,
//! found by the token the request carried in its payload (a reply echoes the payload).
//!
//! The socket is an ICMP datagram socket where the system allows one for our group
//! (`net.ipv4.ping_group_range`, unprivileged), else a raw socket (root or `CAP_NET_RAW`).
//! A raw socket sees every ICMP message of the host, our own echo requests on loopback
//! among them, so only echo replies carrying this run's cookie and identifier, and errors
//! quoting one of our requests, are taken. Neither kind allowed is a failed result per
//! target, naming the cause and both remedies.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::attempt::Attempt;
use super::classify::{describe_io, dns_failure};
use super::resolve::{self, AddressRules};
use crate::outcome::{ErrorKind, Failure};

/// ICMPv4 message types (RFC 792).
const V4_ECHO_REPLY: u8 = 0;
const V4_UNREACHABLE: u8 = 3;
const V4_ECHO_REQUEST: u8 = 8;
const V4_TIME_EXCEEDED: u8 = 11;

/// ICMPv6 message types (RFC 4443).
const V6_UNREACHABLE: u8 = 1;
const V6_TIME_EXCEEDED: u8 = 3;
const V6_ECHO_REQUEST: u8 = 128;
const V6_ECHO_REPLY: u8 = 129;

/// IPv6's next-header number for ICMPv6.
const NEXT_HEADER_ICMPV6: u8 = 58;

/// Echo header (type, code, checksum, identifier, sequence) and payload (cookie, token).
const HEADER_LEN: usize = 8;
const PACKET_LEN: usize = HEADER_LEN + 16;

/// Receive buffer asked of the kernel, so that a burst of replies to a wide `-c` is not dropped.
const RECEIVE_BUFFER: usize = 1 << 20;

/// Probes echo requests for the whole run, over sockets opened on first use.
pub(crate) struct IcmpProber {
    v4: OnceLock<Result<Arc<Pinger>, String>>,
    v6: OnceLock<Result<Arc<Pinger>, String>>,
}

impl IcmpProber {
    /// A prober that has opened nothing yet.
    pub(crate) fn new() -> Self {
        IcmpProber {
            v4: OnceLock::new(),
            v6: OnceLock::new(),
        }
    }

    /// Pings `host` once, at an address `rules` allow (-4, -6); `started` is when the
    /// attempt began.
    pub(crate) async fn ping(&self, host: &str, started: Instant, rules: &AddressRules) -> Attempt {
        let address = match resolve::addresses(host, 0, rules).await {
            Ok((addrs, _)) => addrs[0].ip(),
            Err(err) => return Attempt::failed(started.elapsed(), dns_failure(&err)),
        };
        let family = if address.is_ipv4() {
            &self.v4
        } else {
            &self.v6
        };
        match family.get_or_init(|| Pinger::open(address.is_ipv6())) {
            Ok(pinger) => pinger.ping(address, started).await,
            Err(refused) => Attempt::failed(
                started.elapsed(),
                Failure::new(ErrorKind::Other, refused.clone()),
            ),
        }
    }
}

/// Which kind of ICMP socket the system gave us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SocketKind {
    /// `SOCK_DGRAM`: the kernel sets the identifier and passes us only our replies.
    Datagram,
    /// `SOCK_RAW`: every ICMP message of the host, with the IPv4 header in front.
    Raw,
}

/// What became of one echo request.
#[derive(Debug)]
enum Answer {
    /// The reply arrived at this instant.
    Reply(Instant),
    /// An ICMP error quoting the request came back: why the address cannot be reached.
    Unreachable(String),
}

/// A probe waiting for its reply.
struct Waiter {
    address: IpAddr,
    sequence: u16,
    answer: oneshot::Sender<Answer>,
}

/// One address family's socket and the probes waiting on it.
struct Pinger {
    socket: UdpSocket,
    kind: SocketKind,
    v6: bool,
    /// Our echo identifier on a raw socket (a datagram socket's kernel picks its own).
    identifier: u16,
    /// Tells this run's echo replies from those of other programs on the host.
    cookie: u64,
    next_token: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiter>>,
}

impl Pinger {
    /// Opens the family's socket, datagram first, and starts the task that reads it.
    fn open(v6: bool) -> Result<Arc<Self>, String> {
        let (domain, protocol) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let (socket, kind) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => (socket, SocketKind::Datagram),
            Err(datagram) => match Socket::new(domain, Type::RAW, Some(protocol)) {
                Ok(socket) => (socket, SocketKind::Raw),
                Err(raw) => return Err(refusal(v6, &datagram, &raw)),
            },
        };
        let opened = |err: io::Error| format!("cannot set up the ICMP socket: {err}");
        socket.set_nonblocking(true).map_err(opened)?;
        // A smaller buffer than asked for still works; it only drops replies sooner.
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
        let socket = UdpSocket::from_std(socket.into()).map_err(opened)?;
        let seed = RandomState::new().hash_one(std::process::id());
        let pinger = Arc::new(Pinger {
            socket,
            kind,
            v6,
            identifier: std::process::id() as u16,
            cookie: seed,
            next_token: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
        });
        let reader = Arc::clone(&pinger);
        // The task lives as long as the run: the runtime's shutdown ends it.
        tokio::spawn(async move { reader.read_replies().await });
        Ok(pinger)
    }

    /// Sends one echo request to `address` and waits for what comes back.
    async fn ping(&self, address: IpAddr, started: Instant) -> Attempt {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let sequence = token as u16;
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            pinger: self,
            token,
        };
        self.waiters().insert(
            token,
            Waiter {
                address,
                sequence,
                answer,
            },
        );
        let packet = self.echo_request(sequence, token);
        let sent = Instant::now();
        if let Err(err) = self
            .socket
            .send_to(&packet, SocketAddr::new(address, 0))
            .await
        {
            return Attempt::failed(started.elapsed(), send_failure(address, &err));
        }
        let answer = answered.await;
        drop(waiting);
        match answer {
            Ok(Answer::Reply(at)) => Attempt::healthy(at.saturating_duration_since(sent)),
            Ok(Answer::Unreachable(why)) => {
                Attempt::failed(started.elapsed(), Failure::new(ErrorKind::Connect, why))
            }
            // The reader is gone only when the socket failed; the timeout tells the rest.
            Err(_) => std::future::pending().await,
        }
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiter>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An echo request carrying `sequence`, our cookie and `token`.
    fn echo_request(&self, sequence: u16, token: u64) -> [u8; PACKET_LEN] {
        let mut packet = [0u8; PACKET_LEN];
        packet[0] = if self.v6 {
            V6_ECHO_REQUEST
        } else {
            V4_ECHO_REQUEST
        };
        packet[4..6].copy_from_slice(&self.identifier.to_be_bytes());
        packet[6..8].copy_from_slice(&sequence.to_be_bytes());
        packet[8..16].copy_from_slice(&self.cookie.to_be_bytes());
        packet[16..24].copy_from_slice(&token.to_be_bytes());
        // The kernel fills in the ICMPv6 checksum, which covers a pseudo-header we cannot see.
        if !self.v6 {
            let checksum = internet_checksum(&packet);
            packet[2..4].copy_from_slice(&checksum.to_be_bytes());
        }
        packet
    }

    /// Reads every datagram and answers the probe each one is for, for as long as the run lasts.
    async fn read_replies(&self) {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let (length, from) = match self.socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                // A datagram that could not be read is one fewer reply: its probe times out.
                Err(_) => continue,
            };
            let at = Instant::now();
            let message = &buffer[..length];
            let message = match self.kind {
                SocketKind::Raw if !self.v6 => match strip_ipv4_header(message) {
                    Some(message) => message,
                    None => continue,
                },
                _ => message,
            };
            if let Some((token, answer)) = self.read_message(message, from.ip(), at) {
                self.answer(token, answer);
            }
        }
    }

    /// Which waiting probe `message` from `from` answers, and how.
    fn read_message(&self, message: &[u8], from: IpAddr, at: Instant) -> Option<(Found, Answer)> {
        let (&kind, _) = message.split_first()?;
        let code = *message.get(1)?;
        let (reply, unreachable, exceeded) = if self.v6 {
            (V6_ECHO_REPLY, V6_UNREACHABLE, V6_TIME_EXCEEDED)
        } else {
            (V4_ECHO_REPLY, V4_UNREACHABLE, V4_TIME_EXCEEDED)
        };
        if kind == reply {
            let token = self.our_echo(message)?;
            return Some((
                Found::Token {
                    token,
                    address: from,
                },
                Answer::Reply(at),
            ));
        }
        if kind != unreachable && kind != exceeded {
            // Echo requests (our own, seen on loopback) and everything else.
            return None;
        }
        let (quoted_to, quoted) = self.quoted_request(message.get(HEADER_LEN..)?)?;
        let why = describe_error(self.v6, kind == exceeded, code, from);
        let found = match self.our_echo(quoted) {
            Some(token) => Found::Token {
                token,
                address: quoted_to,
            },
            // Routers need quote only the first 8 bytes: the sequence, not our payload.
            None => Found::Sequence {
                sequence: u16::from_be_bytes([*quoted.get(6)?, *quoted.get(7)?]),
                address: quoted_to,
            },
        };
        Some((found, Answer::Unreachable(why)))
    }

    /// The token of an echo message (reply, or our request quoted) that is ours.
    fn our_echo(&self, echo: &[u8]) -> Option<u64> {
        if echo.len() < PACKET_LEN {
            return None;
        }
        let identifier = u16::from_be_bytes([echo[4], echo[5]]);
        if self.kind == SocketKind::Raw && identifier != self.identifier {
            return None;
        }
        let cookie = u64::from_be_bytes(echo[8..16].try_into().ok()?);
        if cookie != self.cookie {
            return None;
        }
        Some(u64::from_be_bytes(echo[16..24].try_into().ok()?))
    }

    /// In an ICMP error's body (the datagram that caused it), the destination and the
    /// echo request it quotes, if it quotes one of ours.
    fn quoted_request<'m>(&self, body: &'m [u8]) -> Option<(IpAddr, &'m [u8])> {
        let (to, echo) = if self.v6 {
            if *body.get(6)? != NEXT_HEADER_ICMPV6 {
                return None;
            }
            let to: [u8; 16] = body.get(24..40)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(to)), body.get(40..)?)
        } else {
            let to: [u8; 4] = body.get(16..20)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(to)), strip_ipv4_header(body)?)
        };
        let request = if self.v6 {
            V6_ECHO_REQUEST
        } else {
            V4_ECHO_REQUEST
        };
        if echo.len() < HEADER_LEN || echo[0] != request {
            return None;
        }
        if self.kind == SocketKind::Raw && echo[4..6] != self.identifier.to_be_bytes() {
            return None;
        }
        Some((to, echo))
    }

    /// Hands `answer` to the probe `found` names, if it is still waiting.
    fn answer(&self, found: Found, answer: Answer) {
        let mut waiters = self.waiters();
        let token = match found {
            Found::Token { token, address } => {
                match waiters.get(&token) {
                    Some(waiter) if waiter.address == address => token,
                    // A reply from elsewhere than we asked is not the answer to our request.
                    _ => return,
                }
            }
            Found::Sequence { sequence, address } => {
                let Some((&token, _)) = waiters
                    .iter()
                    .find(|(_, w)| w.sequence == sequence && w.address == address)
                else {
                    return;
                };
                token
            }
        };
        if let Some(waiter) = waiters.remove(&token) {
            let _ = waiter.answer.send(answer);
        }
    }
}

/// How a message names the request it answers.
#[derive(Debug)]
enum Found {
    /// By the token in the echoed payload, from the address the request went to.
    Token { token: u64, address: IpAddr },
    /// By sequence number, for errors quoting only the request's header.
    Sequence { sequence: u16, address: IpAddr },
}

/// Removes a probe's waiter when it stops waiting, answered or not (a timeout drops it).
struct Waiting<'p> {
    pinger: &'p Pinger,
    token: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pinger.waiters().remove(&self.token);
    }
}

/// Why no ICMP socket could be opened, with both ways to allow one.
fn refusal(v6: bool, datagram: &io::Error, raw: &io::Error) -> String {
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    let denied = |err: &io::Error| {
        matches!(
            err.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::Other
        ) || matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES))
    };
    if denied(datagram) && denied(raw) {
        format!(
            "cannot open an {family} socket: this user may not ping (ICMP datagram sockets \
             are refused: the group is not in net.ipv4.ping_group_range; raw sockets are \
             refused: they need root or CAP_NET_RAW); allow the group with sysctl -w \
             net.ipv4.ping_group_range=\"0 2147483647\", or run upcheck as root or with \
             CAP_NET_RAW (setcap cap_net_raw+ep upcheck)"
        )
    } else {
        format!("cannot open an {family} socket: datagram: {datagram}; raw: {raw}")
    }
}

/// The failure of an echo request the system would not send.
fn send_failure(address: IpAddr, err: &io::Error) -> Failure {
    let kind = match err.kind() {
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::AddrNotAvailable => ErrorKind::Connect,
        _ => ErrorKind::Other,
    };
    let why = match err.kind() {
        io::ErrorKind::AddrNotAvailable => "no route to the address".to_owned(),
        _ => describe_io(err),
    };
    Failure::new(
        kind,
        format!("cannot send an echo request to {address}: {why}"),
    )
}

/// What an ICMP error of `code` from `from` says.
fn describe_error(v6: bool, exceeded: bool, code: u8, from: IpAddr) -> String {
    let what = match (v6, exceeded, code) {
        (_, true, _) => "time to live exceeded in transit".to_owned(),
        (false, false, 0) | (true, false, 0) => "network unreachable".to_owned(),
        (false, false, 1) | (true, false, 3) => "host unreachable".to_owned(),
        (false, false, 9 | 10 | 13) | (true, false, 1) => {
            "communication administratively prohibited".to_owned()
        }
        (_, false, code) => format!("destination unreachable (code {code})"),
    };
    format!("{what} (reported by {from})")
}

/// The ICMP message inside an IPv4 datagram as a raw socket reads it.
fn strip_ipv4_header(datagram: &[u8]) -> Option<&[u8]> {
    let header = usize::from(datagram.first()? & 0x0f) * 4;
    if header < 20 {
        return None;
    }
    datagram.get(header..)
}

/// The Internet checksum (RFC 1071) of `data`.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_follow_rfc_1071() {
        // The example of RFC 1071, section 3.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        let mut packet = [8, 0, 0, 0, 0x12, 0x34, 0, 7, b'x'];
        let sum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(internet_checksum(&packet), 0);
    }

    #[test]
    fn ipv4_headers_are_skipped_by_their_length() {
        let mut datagram = vec![0x46; 24];
        datagram.extend([0, 0]);
        assert_eq!(strip_ipv4_header(&datagram), Some(&[0u8, 0][..]));
        assert_eq!(strip_ipv4_header(&[0x41, 0, 0]), None);
        assert_eq!(strip_ipv4_header(&[]), None);
    }

    #[test]
    fn errors_say_what_and_who() {
        let router = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        assert_eq!(
            describe_error(false, false, 1, router),
            "host unreachable (reported by 127.0.0.9)"
        );
        assert!(describe_error(true, false, 0, router).starts_with("network unreachable"));
        assert!(describe_error(false, true, 0, router).starts_with("time to live"));
        assert!(describe_error(false, false, 4, router).contains("code 4"));
    }

    #[test]
    fn refusal_names_both_remedies() {
        let datagram = io::Error::from_raw_os_error(libc::EACCES);
        let raw = io::Error::from_raw_os_error(libc::EPERM);
        let message = refusal(false, &datagram, &raw);
        assert!(message.contains("net.ipv4.ping_group_range"), "{message}");
        assert!(message.contains("CAP_NET_RAW"), "{message}");
    }
}
