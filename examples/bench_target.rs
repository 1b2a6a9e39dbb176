//! A fast HTTP/1.1 target fleet for `bench/run`: many listeners, canned answers, no logging.
//!
//! ```text
//! cargo run --release --example bench_target -- ADDR...   # e.g. 127.0.0.7:18100
//! ```
//!
//! `tls:ADDR` is an HTTPS listener (self-signed) that answers any request with 200 and
//! closes the connection, so every check is a full handshake; `dns:ADDR:MS` is a DNS
//! server answering `nI.<anything>` with 127.0.1.(I % 100 + 1) after MS milliseconds
//! (`dns:ADDR:never`: never answering).
//!
//! Every listener answers the same paths (any query string is ignored):
//!
//! ```text
//! /ok             200 at once
//! /slow/MS        200 after MS milliseconds (the connection stays open meanwhile)
//! /status/CODE    that status at once
//! /retry-after/1  429 with Retry-After: 1
//! /hang           reads the request and never answers (a black hole)
//! ```
//!
//! It prints `ready` on stdout once every address is bound. The integration tests' scripted
//! server (`tests/support/server.rs`) records every request in a `Vec` under a lock, which
//! grows without bound over millions of requests (43 MiB after 60,000) and served ~10% fewer
//! requests/s under oha; this one keeps keep-alive connections, one reused buffer per
//! connection and pre-built responses, and keeps nothing per request.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Pending connections per listener: a burst of hundreds of connects must not overflow the
/// accept queue (the default of 128 turns an overflow into a 1 s SYN retransmit).
const BACKLOG: u32 = 4096;

/// Longest request head accepted before the connection is closed.
const MAX_HEAD_BYTES: usize = 16 * 1024;

fn main() {
    let listeners: Vec<Listener> = std::env::args()
        .skip(1)
        .map(|arg| Listener::parse(&arg).unwrap_or_else(|err| panic!("bad listener {arg}: {err}")))
        .collect();
    if listeners.is_empty() {
        eprintln!("usage: bench_target [tls:|dns:]ADDR[:DELAY_MS|:never]...");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the runtime");
    runtime.block_on(async move {
        let acceptor = certificate_acceptor();
        for listener in listeners {
            match listener {
                Listener::Http(addr) => {
                    let listener = listen(addr);
                    tokio::spawn(async move {
                        loop {
                            if let Ok((stream, _)) = listener.accept().await {
                                tokio::spawn(serve(stream));
                            }
                        }
                    });
                }
                Listener::Tls(addr) => {
                    let listener = listen(addr);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        loop {
                            if let Ok((stream, _)) = listener.accept().await {
                                tokio::spawn(serve_tls_once(acceptor.clone(), stream));
                            }
                        }
                    });
                }
                Listener::Dns(addr, delay) => {
                    let socket = tokio::net::UdpSocket::bind(addr)
                        .await
                        .unwrap_or_else(|err| panic!("cannot bind {addr}: {err}"));
                    // A run starts with -c lookups of two queries each at once: the default
                    // buffer (208 KiB, ~270 queries) overflowed, dropping some (the names
                    // then failed as `dns`). DNS servers size theirs up for bursts too.
                    socket2::SockRef::from(&socket)
                        .set_recv_buffer_size(DNS_RECEIVE_BUFFER)
                        .unwrap_or_else(|err| panic!("cannot size {addr}'s buffer: {err}"));
                    tokio::spawn(serve_dns(Arc::new(socket), delay));
                }
            }
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
    });
}

/// One thing the fleet serves.
enum Listener {
    /// Keep-alive HTTP/1.1.
    Http(SocketAddr),
    /// HTTPS that closes every connection after one answer: each check a full handshake.
    Tls(SocketAddr),
    /// A DNS server answering after the delay, or never (`None`).
    Dns(SocketAddr, Option<Duration>),
}

impl Listener {
    fn parse(arg: &str) -> Result<Self, String> {
        if let Some(addr) = arg.strip_prefix("tls:") {
            return addr.parse().map(Listener::Tls).map_err(|e| e.to_string());
        }
        let Some(rest) = arg.strip_prefix("dns:") else {
            return arg.parse().map(Listener::Http).map_err(|e| e.to_string());
        };
        let (addr, delay) = rest.rsplit_once(':').ok_or("dns:ADDR:DELAY_MS|never")?;
        let delay = match delay {
            "never" => None,
            ms => Some(Duration::from_millis(ms.parse().map_err(|_| "bad delay")?)),
        };
        let addr = addr
            .parse()
            .map_err(|e: std::net::AddrParseError| e.to_string())?;
        Ok(Listener::Dns(addr, delay))
    }
}

fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(addr)
        .unwrap_or_else(|err| panic!("cannot bind {addr}: {err}"));
    socket.listen(BACKLOG).expect("listen")
}

/// A self-signed certificate (the tools run with `-k` or its equivalent).
fn certificate_acceptor() -> TlsAcceptor {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let params = rcgen::CertificateParams::new(names).expect("valid names");
    let signing_key = rcgen::KeyPair::generate().expect("generate a key");
    let cert = params
        .self_signed(&signing_key)
        .expect("generate a certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default TLS versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .expect("a valid certificate");
    // Every check a full handshake for every tool, as the tls scenario says: a client that
    // resumes sessions (lychee's does) would otherwise do less work than one that does not.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    TlsAcceptor::from(Arc::new(config))
}

/// Answers one request over TLS with 200 and `Connection: close`, then closes.
async fn serve_tls_once(acceptor: TlsAcceptor, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut stream) = acceptor.accept(stream).await else {
        return;
    };
    let mut buffer = Vec::with_capacity(4096);
    while find_head_end(&buffer).is_none() && buffer.len() <= MAX_HEAD_BYTES {
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        .await;
    let _ = stream.shutdown().await;
}

/// Bytes of queries the DNS server's socket holds (capped by `net.core.rmem_max`).
const DNS_RECEIVE_BUFFER: usize = 4 << 20;

/// Answers A queries for `nI.ANYTHING` with 127.0.1.(I % 100 + 1), AAAA queries for them
/// with no records, anything else with NXDOMAIN; after `delay`, or never.
async fn serve_dns(socket: Arc<tokio::net::UdpSocket>, delay: Option<Duration>) {
    let mut buffer = [0u8; 512];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let (Some(delay), Some(reply)) = (delay, dns_reply(&buffer[..length])) else {
            continue;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&reply, peer).await;
        });
    }
}

fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut at = 12;
    let mut first_label: Option<&[u8]> = None;
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        first_label.get_or_insert(query.get(at..at + length)?);
        at += length;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    query.get(..question_end)?;
    let number = first_label
        .and_then(|label| {
            label
                .strip_prefix(b"n")
                .or_else(|| label.strip_prefix(b"N"))
        })
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse::<u32>().ok());
    let mut reply = query[..question_end].to_vec();
    reply[2] = 0x81 | (query[2] & 0x01);
    reply[3] = if number.is_some() { 0x80 } else { 0x83 };
    let answers = u8::from(number.is_some() && qtype == 1);
    reply[4..12].copy_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    if answers == 1 {
        let host = (number? % 100 + 1) as u8;
        reply.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 1, host]);
    }
    Some(reply)
}

/// Answers requests on one connection until the client leaves.
async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(4096);
    let mut answers = Vec::with_capacity(4096);
    loop {
        // Answer every complete request already buffered (pipelining), then write once.
        let mut start = 0;
        while let Some(end) = find_head_end(&buffer[start..]) {
            let head = &buffer[start..start + end];
            start += end + 4;
            match answer(head) {
                Answer::Now(bytes) => answers.extend_from_slice(bytes),
                Answer::After(delay, bytes) => {
                    if !answers.is_empty() && stream.write_all(&answers).await.is_err() {
                        return;
                    }
                    answers.clear();
                    tokio::time::sleep(delay).await;
                    answers.extend_from_slice(bytes);
                }
                Answer::Never => {
                    // Read and discard until the client gives up, so its socket closes cleanly.
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
            }
        }
        buffer.drain(..start);
        if !answers.is_empty() {
            if stream.write_all(&answers).await.is_err() {
                return;
            }
            answers.clear();
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return;
        }
        buffer.reserve(4096);
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

enum Answer {
    Now(&'static [u8]),
    After(Duration, &'static [u8]),
    Never,
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// The answer to one request head (request line and headers, without the blank line).
fn answer(head: &[u8]) -> Answer {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let mut parts = path.split(|&b| b == b'/').skip(1);
    let name = parts.next().unwrap_or_default();
    let number = parts
        .next()
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<u64>().ok());
    let ok = if method == b"HEAD" { OK_HEAD } else { OK };
    match (name, number) {
        (b"ok", _) => Answer::Now(ok),
        (b"slow", Some(ms)) => Answer::After(Duration::from_millis(ms), ok),
        (b"status", Some(code)) => Answer::Now(canned_status(code)),
        (b"retry-after", Some(1)) => Answer::Now(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
        ),
        (b"hang", _) => Answer::Never,
        _ => Answer::Now(NOT_FOUND),
    }
}

fn canned_status(code: u64) -> &'static [u8] {
    match code {
        200 => OK,
        404 => NOT_FOUND,
        429 => b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n",
        500 => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        503 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        _ => NOT_FOUND,
    }
}
