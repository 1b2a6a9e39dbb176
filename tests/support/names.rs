//! Host names in tests without asking this machine's resolver: a DNS responder on a
//! loopback address, and the binary run in a private mount namespace whose /etc/hosts and
//! /etc/resolv.conf the test writes (the machine's own files stay untouched).

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

/// DNS record types the responder answers.
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// Loopback addresses handed to responders, one each, so tests running at once never
/// share port 53 of the same address.
static NEXT_RESPONDER: AtomicU16 = AtomicU16::new(1);

/// The answer for a name the tests serve: 127.0.0.1.
pub fn loopback() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
}

/// How the responder treats a query.
#[derive(Clone, Copy, Debug)]
pub enum Answering {
    /// Answers every query after this delay (zero: at once).
    After(Duration),
    /// Never answers: a dead resolver.
    Never,
}

/// A DNS server on 127.0.53.N:53 answering A and AAAA queries for the names it was given
/// (NXDOMAIN for others); stops when dropped.
pub struct DnsResponder {
    /// Where it listens.
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl DnsResponder {
    /// Starts a responder for `records` (lower-case names without the final dot).
    pub fn start(records: HashMap<String, Vec<IpAddr>>, answering: Answering) -> DnsResponder {
        let n = NEXT_RESPONDER.fetch_add(1, Ordering::Relaxed);
        let ip = Ipv4Addr::new(127, 0, 53 + (n / 250) as u8, (n % 250) as u8 + 1);
        let socket = UdpSocket::bind((ip, 53))
            .unwrap_or_else(|err| panic!("cannot bind a DNS responder on {ip}:53: {err}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set a read timeout");
        let addr = socket.local_addr().expect("a local address");
        let (queries, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (seen, stopped) = (queries.clone(), stop.clone());
        let records = Arc::new(records);
        thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                seen.fetch_add(1, Ordering::Relaxed);
                let Some(reply) = reply(&buffer[..length], &records) else {
                    continue;
                };
                match answering {
                    Answering::After(Duration::ZERO) => {
                        let _ = socket.send_to(&reply, peer);
                    }
                    Answering::After(delay) => {
                        let socket = socket.try_clone().expect("clone the socket");
                        thread::spawn(move || {
                            thread::sleep(delay);
                            let _ = socket.send_to(&reply, peer);
                        });
                    }
                    Answering::Never => {}
                }
            }
        });
        DnsResponder {
            addr,
            queries,
            stop,
        }
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The reply to one query, or `None` for a datagram that is not one.
fn reply(query: &[u8], records: &HashMap<String, Vec<IpAddr>>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_lowercase());
        at += length;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    query.get(..question_end)?;
    let name = labels.join(".");
    let answers: Vec<&IpAddr> = records
        .get(&name)
        .map(|addrs| {
            addrs
                .iter()
                .filter(|addr| match addr {
                    IpAddr::V4(_) => qtype == TYPE_A,
                    IpAddr::V6(_) => qtype == TYPE_AAAA,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut reply = query[..question_end].to_vec();
    // Response, recursion desired and available; NXDOMAIN for names it does not know.
    reply[2] = 0x81 | (query[2] & 0x01);
    reply[3] = if records.contains_key(&name) {
        0x80
    } else {
        0x83
    };
    reply[4..12].copy_from_slice(&[0, 1, 0, answers.len() as u8, 0, 0, 0, 0]);
    for addr in answers {
        // A pointer to the question's name, the type, class IN, a TTL of 60 s.
        reply.extend_from_slice(&[0xC0, 0x0C]);
        reply.extend_from_slice(&qtype.to_be_bytes());
        reply.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        match addr {
            IpAddr::V4(v4) => {
                reply.extend_from_slice(&4u16.to_be_bytes());
                reply.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                reply.extend_from_slice(&16u16.to_be_bytes());
                reply.extend_from_slice(&v6.octets());
            }
        }
    }
    Some(reply)
}

/// The files a private namespace shows as /etc/hosts and /etc/resolv.conf.
pub struct PrivateEtc {
    directory: TempDir,
}

impl PrivateEtc {
    /// `hosts` as /etc/hosts (localhost is always there), and a resolv.conf naming only
    /// `nameserver` (none: a resolver that refuses at once, on a loopback port nobody
    /// listens on), asking for one try of at most a second.
    pub fn new(hosts: &str, nameserver: Option<&DnsResponder>) -> PrivateEtc {
        let server =
            nameserver.map_or_else(|| "127.0.0.1".to_owned(), |dns| dns.addr.ip().to_string());
        PrivateEtc::with_resolv(
            hosts,
            &format!("nameserver {server}\noptions timeout:1 attempts:1\n"),
        )
    }

    /// `hosts` as /etc/hosts (localhost is always there) and `resolv` as resolv.conf, as
    /// written: for tests of the resolver's own defaults, search list and ndots.
    pub fn with_resolv(hosts: &str, resolv: &str) -> PrivateEtc {
        let directory = tempfile::tempdir().expect("create a directory for /etc files");
        let hosts = format!("127.0.0.1 localhost\n::1 localhost ip6-localhost\n{hosts}\n");
        std::fs::write(directory.path().join("hosts"), hosts).expect("write hosts");
        std::fs::write(directory.path().join("resolv.conf"), resolv).expect("write resolv.conf");
        PrivateEtc { directory }
    }

    /// A launcher for [`super::Upcheck::via`]: runs the binary in a private mount namespace
    /// that sees these files as /etc/hosts and /etc/resolv.conf.
    pub fn launcher(&self) -> Vec<OsString> {
        let mut launcher: Vec<OsString> = ["unshare", "--mount", "--propagation", "private"]
            .into_iter()
            .map(OsString::from)
            .collect();
        launcher.extend([
            "sh".into(),
            "-c".into(),
            "mount --bind \"$1\" /etc/hosts && mount --bind \"$2\" /etc/resolv.conf \
             && shift 2 && exec \"$@\""
                .into(),
            "sh".into(),
            self.directory.path().join("hosts").into(),
            self.directory.path().join("resolv.conf").into(),
        ]);
        launcher
    }
}
