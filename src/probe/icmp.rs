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
//!
//! A datagram socket passes ICMP errors on only through its error queue (`IP_RECVERR`,
//! `IPV6_RECVERR`), which the same task drains whenever the socket reports an error.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
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

/// Sends tried per echo request on a datagram socket while the system says unreachable:
/// an ICMP error queued for another request also fails the next send once (`sk_err`).
const DATAGRAM_SENDS: usize = 3;

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
        if kind == SocketKind::Datagram {
            enable_error_queue(socket.as_raw_fd(), v6).map_err(opened)?;
        }
        // A smaller buffer than asked for still works; it only drops replies sooner.
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
        let socket = UdpSocket::from_std(socket.into()).map_err(opened)?;
        let seed = RandomState::new().hash_one(std::process::id());
        let pinger = Arc::new(Pinger {
            socket,
            kind,
            v6,
            // Random rather than the process id: each worker thread has a socket of its own,
            // and an ICMP error that quotes only the echo header tells them apart by this.
            identifier: (seed >> 48) as u16,
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
        if let Err(err) = self.send(&packet, address).await {
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

    /// Sends `packet` to `address`; on a datagram socket an unreachable error is tried
    /// again, as it may be an ICMP error for another request that the send picked up.
    async fn send(&self, packet: &[u8], address: IpAddr) -> io::Result<()> {
        let tries = match self.kind {
            SocketKind::Datagram => DATAGRAM_SENDS,
            SocketKind::Raw => 1,
        };
        let mut tried = 0;
        loop {
            tried += 1;
            match self
                .socket
                .send_to(packet, SocketAddr::new(address, 0))
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) if tried < tries && unreachable_error(&err) => continue,
                Err(err) => return Err(err),
            }
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

    /// Reads every datagram (and, on a datagram socket, every queued ICMP error) and
    /// answers the probe each one is for, for as long as the run lasts.
    async fn read_replies(&self) {
        let mut buffer = vec![0u8; 64 * 1024];
        let interest = match self.kind {
            SocketKind::Datagram => Interest::READABLE | Interest::ERROR,
            SocketKind::Raw => Interest::READABLE,
        };
        loop {
            let Ok(ready) = self.socket.ready(interest).await else {
                // Only a runtime shutting down fails this: the run is over.
                return;
            };
            if ready.is_error() {
                self.read_error_queue(&mut buffer);
            }
            if !ready.is_readable() {
                continue;
            }
            let (length, from) = match self.socket.try_recv_from(&mut buffer) {
                Ok(received) => received,
                // Nothing after all, or a datagram that could not be read (one fewer
                // reply: its probe times out).
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

    /// Answers the probes that the ICMP errors queued on the socket are for, until the
    /// queue is empty.
    fn read_error_queue(&self, buffer: &mut [u8]) {
        let fd = self.socket.as_raw_fd();
        // Any failure, an empty queue included, ends this pass; an empty queue also tells
        // the runtime to wait for the next error.
        while let Ok(queued) = self
            .socket
            .try_io(Interest::ERROR, || receive_queued_error(fd, buffer))
        {
            if let Some(error) = queued {
                if let Some(found) = self.quoted_echo(&buffer[..error.length], error.to) {
                    let why = describe_error(self.v6, error.exceeded, error.code, error.from);
                    self.answer(found, Answer::Unreachable(why));
                }
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
        Some((
            self.quoted_echo(quoted, quoted_to)?,
            Answer::Unreachable(why),
        ))
    }

    /// The probe whose echo request to `to` an ICMP error quotes as `quoted`.
    fn quoted_echo(&self, quoted: &[u8], to: IpAddr) -> Option<Found> {
        Some(match self.our_echo(quoted) {
            Some(token) => Found::Token { token, address: to },
            // Routers need quote only the first 8 bytes: the sequence, not our payload.
            None => Found::Sequence {
                sequence: u16::from_be_bytes([*quoted.get(6)?, *quoted.get(7)?]),
                address: to,
            },
        })
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

/// Has the kernel queue the ICMP errors for our requests on the socket's error queue,
/// the only way a datagram socket passes them on.
fn enable_error_queue(fd: RawFd, v6: bool) -> io::Result<()> {
    let (level, option) = if v6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed with it.
    let set = unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An ICMP error taken off a datagram socket's error queue; the echo request it quotes
/// is the first `length` bytes of the buffer it was read into.
#[derive(Debug, PartialEq, Eq)]
struct QueuedError {
    length: usize,
    /// Where the quoted request went.
    to: IpAddr,
    /// Who sent the error.
    from: IpAddr,
    exceeded: bool,
    code: u8,
}

/// Takes one message off `fd`'s error queue into `buffer`: `None` when it is not an ICMP
/// unreachable or time exceeded error; `WouldBlock` when the queue is empty.
fn receive_queued_error(fd: RawFd, buffer: &mut [u8]) -> io::Result<Option<QueuedError>> {
    // u64s keep the control buffer aligned for the cmsghdr read from it.
    let mut control = [0u64; 64];
    // SAFETY: all-zero bytes are a valid sockaddr_storage and msghdr.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: as above.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    header.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `header` points at a live buffer of the length given.
    let received = unsafe { libc::recvmsg(fd, &mut header, libc::MSG_ERRQUEUE) };
    let Ok(length) = usize::try_from(received) else {
        return Err(io::Error::last_os_error());
    };
    // SAFETY: recvmsg wrote at most msg_namelen bytes of a socket address into `name`.
    let Some(to) = (unsafe { socket_address(&name, header.msg_namelen) }) else {
        return Ok(None);
    };
    // SAFETY: recvmsg filled `control` up to the msg_controllen it set in `header`, and
    // CMSG_FIRSTHDR/CMSG_NXTHDR stay within it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&header) };
    while !cmsg.is_null() {
        // SAFETY: a non-null cmsg from CMSG_FIRSTHDR/NXTHDR is a whole header in `control`.
        let (level, kind, len) =
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        let ours = (level == libc::SOL_IP && kind == libc::IP_RECVERR)
            || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR);
        // The error, then the offender's address (SO_EE_OFFENDER): a sockaddr_in or _in6.
        // SAFETY: CMSG_LEN only computes.
        let data_len = len.saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
        let error_len = mem::size_of::<libc::sock_extended_err>();
        if ours && data_len >= error_len {
            let offender_len = (data_len - error_len).min(mem::size_of::<libc::sockaddr_in6>());
            // SAFETY: the data holds `data_len` bytes, and `error_len + offender_len` of
            // them are read, unaligned, into values of at least that size.
            let (error, from) = unsafe {
                let data = libc::CMSG_DATA(cmsg);
                let error: libc::sock_extended_err = std::ptr::read_unaligned(data.cast());
                let mut offender: libc::sockaddr_storage = mem::zeroed();
                std::ptr::copy_nonoverlapping(
                    data.add(error_len),
                    (&mut offender as *mut libc::sockaddr_storage).cast::<u8>(),
                    offender_len,
                );
                (
                    error,
                    socket_address(&offender, offender_len as libc::socklen_t),
                )
            };
            return Ok(classify_queued(&error, from, to, length));
        }
        // SAFETY: as for CMSG_FIRSTHDR above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&header, cmsg) };
    }
    Ok(None)
}

/// What a queued `error` about a request to `to` says, if it is an ICMP error we report.
fn classify_queued(
    error: &libc::sock_extended_err,
    from: Option<IpAddr>,
    to: IpAddr,
    length: usize,
) -> Option<QueuedError> {
    let (unreachable, exceeded) = match error.ee_origin {
        libc::SO_EE_ORIGIN_ICMP => (V4_UNREACHABLE, V4_TIME_EXCEEDED),
        libc::SO_EE_ORIGIN_ICMP6 => (V6_UNREACHABLE, V6_TIME_EXCEEDED),
        _ => return None,
    };
    if error.ee_type != unreachable && error.ee_type != exceeded {
        return None;
    }
    Some(QueuedError {
        length,
        to,
        from: from?,
        exceeded: error.ee_type == exceeded,
        code: error.ee_code,
    })
}

/// The address in a socket address of `len` bytes, if it is an IPv4 or IPv6 one.
///
/// # Safety
/// The first `len` bytes of `storage` must be a socket address as the kernel writes one.
unsafe fn socket_address(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: an AF_INET address of this length is a sockaddr_in.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: an AF_INET6 address of this length is a sockaddr_in6.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
        }
        _ => None,
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

/// Whether the system refused a send because the address cannot be reached.
fn unreachable_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::AddrNotAvailable
    )
}

/// The failure of an echo request the system would not send.
fn send_failure(address: IpAddr, err: &io::Error) -> Failure {
    let kind = if unreachable_error(err) {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
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
    fn queued_errors_are_taken_only_from_icmp_unreachable_and_time_exceeded() {
        let error = |origin, kind, code| libc::sock_extended_err {
            ee_errno: libc::EHOSTUNREACH as u32,
            ee_origin: origin,
            ee_type: kind,
            ee_code: code,
            ee_pad: 0,
            ee_info: 0,
            ee_data: 0,
        };
        let router = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)));
        let to = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
        let unreachable = error(libc::SO_EE_ORIGIN_ICMP, V4_UNREACHABLE, 1);
        assert_eq!(
            classify_queued(&unreachable, router, to, 24),
            Some(QueuedError {
                length: 24,
                to,
                from: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
                exceeded: false,
                code: 1,
            })
        );
        let exceeded = error(libc::SO_EE_ORIGIN_ICMP6, V6_TIME_EXCEEDED, 0);
        assert!(classify_queued(&exceeded, router, to, 24).is_some_and(|e| e.exceeded));
        // A redirect, a local error, and an error whose sender we cannot name are skipped.
        let redirect = error(libc::SO_EE_ORIGIN_ICMP, 5, 1);
        assert_eq!(classify_queued(&redirect, router, to, 24), None);
        let local = error(libc::SO_EE_ORIGIN_LOCAL, V4_UNREACHABLE, 1);
        assert_eq!(classify_queued(&local, router, to, 24), None);
        assert_eq!(classify_queued(&unreachable, None, to, 24), None);
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
