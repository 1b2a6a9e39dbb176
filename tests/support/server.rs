//! Scripted HTTP(S) servers on 127.0.0.1, shared by the tests and the example fleet: each
//! path is a behaviour, well or badly behaved ([`BEHAVIOURS`] lists them), and the server
//! records what it saw.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// Chunks of 16 KiB the endless body sends at most (1 GiB).
const ENDLESS_CHUNKS: usize = 65_536;

/// Requests kept in the log: every test's worth, without a million-target run holding
/// a million of them.
const MAX_RECORDED: usize = 100_000;

/// Longest request head read, as servers commonly limit it.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Request method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server saw.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Every request, in arrival order (the first [`MAX_RECORDED`]).
    pub requests: Vec<Request>,
    /// Requests being answered now.
    pub in_flight: usize,
    /// The most requests ever answered at once.
    pub max_in_flight: usize,
    /// TCP connections accepted.
    pub connections: usize,
    /// When each connection was accepted (the first [`MAX_RECORDED`]).
    pub accepted: Vec<Instant>,
    /// When each answer started to go out (the first [`MAX_RECORDED`]).
    pub answered: Vec<Instant>,
    flaky: HashMap<String, u32>,
}

/// A running server; stops when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    tls: bool,
    seen: Arc<Mutex<Seen>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    /// A plain HTTP server on a free port.
    pub fn start() -> Server {
        Server::bind("127.0.0.1:0".parse().unwrap(), false).expect("bind a loopback port")
    }

    /// An HTTPS server with a fresh self-signed certificate, on a free port.
    pub fn start_tls() -> Server {
        Server::bind("127.0.0.1:0".parse().unwrap(), true).expect("bind a loopback port")
    }

    /// An HTTPS server whose self-signed certificate expires at `not_after` (Unix seconds),
    /// on a free port.
    pub fn start_tls_expiring_at(not_after: i64) -> Server {
        let acceptor = certificate_acceptor(Some(not_after));
        Server::bind_with("127.0.0.1:0".parse().unwrap(), Some(acceptor))
            .expect("bind a loopback port")
    }

    /// A server on `addr`, HTTPS when `tls`.
    pub fn bind(addr: SocketAddr, tls: bool) -> io::Result<Server> {
        let acceptor = if tls {
            Some(certificate_acceptor(None))
        } else {
            None
        };
        Server::bind_with(addr, acceptor)
    }

    fn bind_with(addr: SocketAddr, acceptor: Option<TlsAcceptor>) -> io::Result<Server> {
        let tls = acceptor.is_some();
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (shutdown, stopped) = oneshot::channel();
        let state = seen.clone();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("start the server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("register the listener");
                tokio::select! {
                    _ = stopped => {}
                    _ = accept_loop(listener, acceptor, state) => {}
                }
            });
            runtime.shutdown_background();
        });
        Ok(Server {
            addr,
            tls,
            seen,
            shutdown: Some(shutdown),
        })
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// A copy of what the server has seen so far.
    pub fn seen(&self) -> Seen {
        lock(&self.seen).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A TLS acceptor with a fresh self-signed certificate for localhost and 127.0.0.1, valid
/// until `not_after` (Unix seconds) when given, else rcgen's default (until 4096).
fn certificate_acceptor(not_after: Option<i64>) -> TlsAcceptor {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut params = rcgen::CertificateParams::new(names).expect("valid names");
    if let Some(not_after) = not_after {
        let at = |unix| time::OffsetDateTime::from_unix_timestamp(unix).expect("a valid time");
        params.not_before = at(not_after - 365 * 86_400);
        params.not_after = at(not_after);
    }
    let signing_key = rcgen::KeyPair::generate().expect("generate a key");
    let cert = params
        .self_signed(&signing_key)
        .expect("generate a certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default TLS versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .expect("a valid certificate");
    TlsAcceptor::from(Arc::new(config))
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, seen: Arc<Mutex<Seen>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        {
            let mut seen = lock(&seen);
            seen.connections += 1;
            if seen.accepted.len() < MAX_RECORDED {
                seen.accepted.push(Instant::now());
            }
        }
        let (acceptor, seen) = (acceptor.clone(), seen.clone());
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        if let Some(stream) = serve(stream, &seen).await {
                            let _ = stream.get_ref().0.set_zero_linger();
                        }
                    }
                }
                None => {
                    if let Some(stream) = serve(stream, &seen).await {
                        let _ = stream.set_zero_linger();
                    }
                }
            }
        });
    }
}

/// Answers requests on one connection until a behaviour closes it or the client leaves.
/// How a connection ends after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Wait for the next request.
    KeepOpen,
    /// Close normally.
    Close,
    /// Abort with a TCP reset.
    Reset,
}

/// Answers requests on one connection; returns the stream when a behaviour asks for a reset.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, seen: &Mutex<Seen>) -> Option<S> {
    let mut stream = BufReader::new(stream);
    while let Some(request) = read_request(&mut stream).await {
        {
            let mut seen = lock(seen);
            if seen.requests.len() < MAX_RECORDED {
                seen.requests.push(request.clone());
            }
            seen.in_flight += 1;
            seen.max_in_flight = seen.max_in_flight.max(seen.in_flight);
        }
        let mut answering = Answering {
            stream: stream.get_mut(),
            seen,
            answered: false,
        };
        let next = respond(&mut answering, &request, seen).await;
        answering.answer();
        match next {
            Next::KeepOpen => {}
            Next::Close => return None,
            Next::Reset => return Some(stream.into_inner()),
        }
    }
    None
}

/// A connection's writer that ends its request's time in flight as the answer starts to
/// go out: the client may act on the answer (and start its next probe) before the task
/// that wrote it runs again.
struct Answering<'a, S> {
    stream: &'a mut S,
    seen: &'a Mutex<Seen>,
    answered: bool,
}

impl<S> Answering<'_, S> {
    /// Notes the request answered, once.
    fn answer(&mut self) {
        if !self.answered {
            self.answered = true;
            let mut seen = lock(self.seen);
            seen.in_flight -= 1;
            if seen.answered.len() < MAX_RECORDED {
                seen.answered.push(Instant::now());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Answering<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.answer();
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let read = stream.read_until(b'\n', &mut head).await.ok()?;
        if read == 0 || head.len() > MAX_HEAD_BYTES {
            return None;
        }
        if &head[before..] == b"\r\n" || &head[before..] == b"\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let request = Request {
        method,
        path,
        headers,
        at: Instant::now(),
    };
    let body_length = request
        .header("content-length")
        .and_then(|length| length.parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = stream.take(body_length);
    tokio::io::copy(&mut body, &mut tokio::io::sink())
        .await
        .ok()?;
    Some(request)
}

/// What each path does: the route table of [`respond`]'s `match`, printed by the example
/// fleet. Keep the two in step.
#[allow(dead_code)] // Read by examples/fleet.rs; the tests read the match itself.
pub const BEHAVIOURS: &str = "\
/ok                      200, at once
/ok-then-close           200 (keep-alive, as HTTP/1.1 is), closing the connection 20 ms later
/status/CODE             that status
/slow/MS                 200 after MS milliseconds
/hang                    reads the request, never answers (a black hole)
/retry-after/SECS        429 with Retry-After: SECS
/unavailable/SECS        503 with Retry-After: SECS
/flaky/N/KEY             503 for the first N requests naming KEY, then 200
/redirect/N              N redirects, then /ok
/loop                    redirects to itself forever
/redirect-to/URL         one redirect to URL (file://, ftp://, ...)
/body/TEXT               200 with TEXT as the body
/padded/N/TEXT           200 with N filler bytes, then TEXT
/garbage                 answers with bytes that are not HTTP
/close                   closes the connection without answering
/stall-body              sends headers and part of the body, then stalls
/trickle                 sends the response one byte a second
/reset-headers           resets the connection in the middle of the headers
/reset-body              resets the connection in the middle of the body
/big-headers             200 with 64 KiB of headers (64 of 1 KiB)
/endless                 200 with a body that never ends (chunked)
/bad-chunked             200 with a broken chunked encoding
/informational           100 Continue and 103 Early Hints, then 200
/gzip                    200 with a body labelled gzip (never decompressed)
";

/// Answers one request and says how the connection goes on.
async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &Request,
    seen: &Mutex<Seen>,
) -> Next {
    let path = request
        .path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_start_matches('/');
    let parts: Vec<&str> = path.splitn(3, '/').collect();
    let number = |index: usize| {
        parts
            .get(index)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match parts[0] {
        "" | "ok" => reply(stream, 200, &[], "ok\n").await,
        "ok-then-close" => {
            reply(stream, 200, &[], "ok\n").await;
            // Long enough for the client to send its next request over the connection.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Next::Close
        }
        "status" => reply(stream, number(1) as u16, &[], "status\n").await,
        "slow" => {
            tokio::time::sleep(Duration::from_millis(number(1))).await;
            reply(stream, 200, &[], "slow\n").await
        }
        "hang" => std::future::pending().await,
        "retry-after" => {
            let wait = number(1).to_string();
            reply(stream, 429, &[("Retry-After", &wait)], "slow down\n").await
        }
        "unavailable" => {
            let wait = number(1).to_string();
            reply(stream, 503, &[("Retry-After", &wait)], "unavailable\n").await
        }
        "flaky" => {
            let key = parts.get(2).copied().unwrap_or_default().to_owned();
            let failures_left = {
                let mut seen = lock(seen);
                let count = seen.flaky.entry(key).or_insert(0);
                *count += 1;
                u64::from(*count) <= number(1)
            };
            if failures_left {
                reply(stream, 503, &[], "not yet\n").await
            } else {
                reply(stream, 200, &[], "recovered\n").await
            }
        }
        "redirect" => {
            let next = match number(1) {
                0 => "/ok".to_owned(),
                n => format!("/redirect/{}", n - 1),
            };
            reply(stream, 302, &[("Location", &next)], "").await
        }
        "loop" => reply(stream, 302, &[("Location", "/loop")], "").await,
        "redirect-to" => {
            let target = path.strip_prefix("redirect-to/").unwrap_or_default();
            reply(stream, 302, &[("Location", target)], "").await
        }
        "body" => {
            let text = path.strip_prefix("body/").unwrap_or_default().to_owned();
            reply(stream, 200, &[], &text).await
        }
        "padded" => {
            let text = parts.get(2).copied().unwrap_or_default();
            let body = format!("{}{text}", ".".repeat(number(1) as usize));
            reply(stream, 200, &[], &body).await
        }
        "garbage" => {
            send_raw(stream, b"SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n\r\n").await;
            Next::Close
        }
        "close" => Next::Close,
        "stall-body" => {
            send_raw(
                stream,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial",
            )
            .await;
            std::future::pending().await
        }
        "trickle" => {
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n" {
                if !send_raw(stream, &[*byte]).await {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Next::Close
        }
        "reset-headers" => {
            send_raw(stream, b"HTTP/1.1 200 OK\r\nContent-Le").await;
            Next::Reset
        }
        "reset-body" => {
            send_raw(
                stream,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial",
            )
            .await;
            Next::Reset
        }
        "big-headers" => {
            // It closes after answering, so it says so: a client may otherwise put the
            // connection back in its pool and lose its next request to the close.
            let mut head =
                String::from("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n");
            for n in 0..64 {
                head.push_str(&format!("X-Filler-{n:02}: {}\r\n", "f".repeat(1009)));
            }
            head.push_str("\r\nok\n");
            send_raw(stream, head.as_bytes()).await;
            Next::Close
        }
        "endless" => {
            send_raw(
                stream,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await;
            let chunk = format!("4000\r\n{}\r\n", "z".repeat(0x4000));
            // Bounded so a client that never hangs up cannot keep the server busy forever.
            for _ in 0..ENDLESS_CHUNKS {
                if !send_raw(stream, chunk.as_bytes()).await {
                    break;
                }
            }
            Next::Close
        }
        "bad-chunked" => {
            send_raw(
                stream,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n",
            )
            .await;
            Next::Close
        }
        "informational" => {
            let answer: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
            if send_raw(stream, answer).await {
                Next::KeepOpen
            } else {
                Next::Close
            }
        }
        "gzip" => {
            // Labelled gzip but never decompressed by upcheck: a bomb stays 64 KiB of bytes.
            let body = vec![0x1f_u8; 64 * 1024];
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let sent = send_raw(stream, head.as_bytes()).await && send_raw(stream, &body).await;
            if sent {
                Next::KeepOpen
            } else {
                Next::Close
            }
        }
        _ => reply(stream, 404, &[], "no such behaviour\n").await,
    }
}

/// Writes raw bytes; false when the client has gone.
async fn send_raw<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok()
}

async fn reply<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Next {
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(body);
    if send_raw(stream, response.as_bytes()).await {
        Next::KeepOpen
    } else {
        Next::Close
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
